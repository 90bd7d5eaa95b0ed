"""The stand-in's ASGI app: ``/api/v4`` (GitLab) behind faults and a throttle, and ``/_standin``.

Throttling follows docs.gitlab.com/ee/administration/settings/user_and_ip_rate_limits.html
(#response-text, #response-headers) and docs.gitlab.com/ee/security/rate_limits.html:
a throttled request gets ``429`` with the plain-text body ``Retry later``,
``Retry-After`` (seconds) and ``RateLimit-Name``, ``RateLimit-Limit``,
``RateLimit-Observed``, ``RateLimit-Remaining``, ``RateLimit-Reset`` (Unix time) and
``RateLimit-ResetTime`` (an HTTP date). GitLab itself sends the ``RateLimit-*``
headers only on throttled answers; GitLab.com's load balancers send them on every
answer, which ``always_headers`` imitates.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from tests.standins.gitlab.api import dispatch
from tests.standins.gitlab.control import Fault, Limits, control_routes
from tests.standins.gitlab.model import World

__all__ = ["create_app"]

_API = "/api/v4"
_THROTTLE = "throttle_authenticated_api"
_SEEN_MAX = 10_000


@dataclass
class _Throttle:
    """Faults, the throttle's windows, and the request log: the API's outer layer."""

    faults: list[Fault] = field(default_factory=list)
    limits: Limits = field(default_factory=Limits)
    # Per caller: (window start, requests in it).
    windows: dict[str, tuple[float, int]] = field(default_factory=dict)
    seen: list[dict[str, Any]] = field(default_factory=list)

    def reset(self) -> None:
        self.faults.clear()
        self.limits = Limits()
        self.windows.clear()
        self.seen.clear()

    @staticmethod
    def base_of(request: Request) -> str:
        return f"{request.url.scheme}://{request.url.netloc}"

    def take_fault(self, method: str, raw_path: str) -> Fault | None:
        for index, fault in enumerate(self.faults):
            if fault.method is not None and fault.method.upper() != method:
                continue
            if fault.path is not None and not re.search(fault.path, raw_path):
                continue
            if fault.count is not None:
                left = fault.count - 1
                if left:
                    self.faults[index] = fault.model_copy(update={"count": left})
                else:
                    del self.faults[index]
            return fault
        return None

    def observe(self, caller: str, now: float) -> dict[str, str] | None:
        """Count the request; the ``RateLimit-*`` headers when the throttle is on."""
        limit = self.limits.limit
        if not limit:
            return None
        start, count = self.windows.get(caller, (now, 0))
        if now - start >= self.limits.window_s:
            start, count = now, 0
        count += 1
        self.windows[caller] = (start, count)
        return _rate_headers(limit, count, start + self.limits.window_s, now)


def _rate_headers(limit: int, observed: int, reset_at: float, now: float) -> dict[str, str]:
    return {
        "RateLimit-Name": _THROTTLE,
        "RateLimit-Limit": str(limit),
        "RateLimit-Observed": str(observed),
        "RateLimit-Remaining": str(max(0, limit - observed)),
        "RateLimit-Reset": str(int(reset_at)),
        "RateLimit-ResetTime": formatdate(reset_at, usegmt=True),
        "_retry": str(max(1, round(reset_at - now))),
    }


def _throttled(headers: dict[str, str], body: str | None) -> Response:
    retry = headers.pop("_retry")
    return PlainTextResponse(
        body if body is not None else "Retry later\n",
        status_code=429,
        headers={**headers, "Retry-After": retry},
    )


def _fault_answer(fault: Fault, now: float) -> Response:
    if fault.status == 429:
        retry = fault.retry_after if fault.retry_after is not None else 60
        headers = _rate_headers(600, 601, now + retry, now)
        headers["_retry"] = str(retry)
        return _throttled(headers, fault.body)
    headers = {} if fault.retry_after is None else {"Retry-After": str(fault.retry_after)}
    if fault.body is not None:
        return PlainTextResponse(fault.body, status_code=fault.status, headers=headers)
    text = {500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}
    message = f"{fault.status} {text.get(fault.status, 'Error')}"
    return JSONResponse({"message": message}, status_code=fault.status, headers=headers)


def _caller(request: Request) -> str:
    for name in ("private-token", "job-token", "authorization"):
        if value := request.headers.get(name):
            return f"{name}:{value}"
    return f"ip:{request.client.host if request.client else '?'}"


def _credential(request: Request) -> str | None:
    if "private-token" in request.headers:
        return "PRIVATE-TOKEN"
    if "job-token" in request.headers:
        return "JOB-TOKEN"
    if "authorization" in request.headers:
        return "Authorization"
    return None


def create_app(world: World | None = None) -> Starlette:
    """The app over ``world`` (a fresh, empty one by default)."""
    world = world if world is not None else World()
    outer = _Throttle()

    async def api(request: Request) -> Response:
        # The raw path keeps %2F, which a project path in :id needs (group%2Fapp).
        raw_path = request.scope.get("raw_path", b"").decode("latin-1").split("?", 1)[0]
        sub = raw_path[len(_API) :]
        now = world.clock.now()
        fault = outer.take_fault(request.method, raw_path)
        rate = outer.observe(_caller(request), now)
        if fault is not None:
            response = _fault_answer(fault, now)
        elif (
            rate is not None
            and int(rate["RateLimit-Remaining"]) == 0
            and (int(rate["RateLimit-Observed"]) > outer.limits.limit)
        ):
            response = _throttled(rate, None)
        else:
            response = await dispatch(request, world, outer.base_of(request), sub)
            if rate is not None and outer.limits.always_headers:
                rate.pop("_retry")
                response.headers.update(rate)
        if len(outer.seen) < _SEEN_MAX:
            outer.seen.append(
                {
                    "method": request.method,
                    "path": raw_path,
                    "query": request.url.query,
                    "status": response.status_code,
                    "credential": _credential(request),
                }
            )
        return response

    methods = ["GET", "POST", "PUT", "DELETE", "HEAD", "PATCH"]
    routes = [
        *control_routes(world, outer),
        Route(_API + "/{rest:path}", api, methods=methods),
    ]
    app = Starlette(routes=routes)
    app.state.world = world
    return app
