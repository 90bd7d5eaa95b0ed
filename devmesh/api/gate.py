"""The gate in front of routing: what a request must pass before its body is read.

For ``/api/v1/*`` and ``/mcp`` alike it takes the one Bearer key (two
``Authorization`` headers are refused, so no face can pick a different one),
refuses a client address or key prefix that has failed too often, authenticates
the key, applies the key's rate limit, and leaves the tenant in
``scope["state"]["tenant"]`` for the faces. Then, on every route, it reads the
body itself, against a size cap and a deadline.

Why here and not in each face: REST used to parse a body of any size before its
auth dependency ran. Why pure ASGI: it must act before anything calls
``receive()``. It sits in ``api`` beside ``RequestContextMiddleware`` because it
speaks HTTP (statuses, problem+json); the decisions it asks for live in
``security``, and the MCP face only reads the tenant it leaves.

The body is read whole here, not counted on the way through, because both faces
read it whole anyway (JSON); reading it here means a refusal (413, 408) always
comes from the gate, before the app could turn a failing ``receive`` into a 400
or a 500, and the deadline covers the whole body, not each chunk, so a client
trickling a byte at a time cannot hold the request open.
"""

from __future__ import annotations

import asyncio
import json
import re

from fastapi.routing import RouteContext, iter_route_contexts
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from devmesh.api.errors import problem_body, problem_headers, status_for
from devmesh.config import HttpSettings
from devmesh.domain.errors import DevMeshError, Forbidden, Unauthorized
from devmesh.security.tenants import Caller

__all__ = ["IngressGate", "Refusal", "bearer_token", "send_problem"]

_AUTHENTICATED = ("/api/v1/", "/mcp")
# A tool's webhook deliveries carry the tool's own proof (a signature, a shared
# secret), never an API key: this one path is let in without one. Its failures (a bad
# proof, an unknown tool) still count against the client address.
_WEBHOOK = re.compile(r"/api/v1/webhooks/[^/]+")
_WEBHOOK_FAILURES = (401, 404)


class Refusal(Exception):
    """A request the gate answers itself, as problem+json."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        *,
        headers: dict[str, str] | None = None,
        retriable: bool | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.headers = headers or {}
        self.retriable = status in (408, 429) if retriable is None else retriable

    @classmethod
    def of(cls, error: DevMeshError) -> Refusal:
        """The answer the REST error handlers would give, for an error met before routing
        (a bad key, a rate limit, a database that cannot be reached)."""
        status = status_for(error)
        return cls(
            status,
            error.code,
            error.message,
            headers=problem_headers(error, status),
            retriable=error.retriable,
        )


class _Disconnected(Exception):
    """The client went away while sending its body: there is nobody to answer."""


def bearer_token(headers: list[tuple[bytes, bytes]]) -> str:
    """The key of ``Authorization: Bearer <key>``.

    ``Unauthorized`` without one; ``Refusal`` (400) for more than one header, which
    each face would otherwise resolve differently (first or last).
    """
    values = [value for name, value in headers if name == b"authorization"]
    if len(values) > 1:
        raise Refusal(400, "bad_request", "send one Authorization header, not several")
    scheme, _, token = (values[0] if values else b"").decode("latin-1").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("missing API key: send 'Authorization: Bearer <api key>'")
    return token.strip()


class IngressGate:
    def __init__(self, app: ASGIApp, *, limits: HttpSettings) -> None:
        self.app = app
        self.limits = limits
        self._templates: list[tuple[re.Pattern[str], RouteContext]] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared, has_body = _declared_body(scope["headers"])
        try:
            if declared is not None and declared > self.limits.max_body_bytes:
                raise self._too_large()
            path: str = scope["path"]
            if _WEBHOOK.fullmatch(path) and scope["method"] == "POST":
                address = await _admit_webhook(scope)
                send = _counting_failures(scope, send, address)
            elif path.startswith(_AUTHENTICATED):
                face = "rest" if path.startswith("/api/") else "mcp"
                caller = await _admit(scope, face=face)
                state = scope.setdefault("state", {})
                state["tenant"], state["read_only"] = caller.tenant, caller.read_only
                if caller.read_only and face == "rest":
                    _check_read_only(scope)
            if has_body:
                receive = _replay(await self._read_body(receive), receive)
        except Refusal as refusal:
            self._name_route(scope)
            if refusal.status == 413 and _WEBHOOK.fullmatch(scope["path"]):
                # Refused before the tool is looked up: its provider is not known.
                scope["app"].state.services.metrics.webhook_deliveries.labels(
                    provider="unknown", outcome="too_large"
                ).inc()
            if has_body:
                # The rest of the body is still on its way: do not read it.
                refusal.headers["connection"] = "close"
            await send_problem(scope, send, refusal)
            return
        except _Disconnected:
            return
        await self.app(scope, receive, send)

    async def _read_body(self, receive: Receive) -> bytes:
        chunks: list[bytes] = []
        size = 0
        try:
            async with asyncio.timeout(self.limits.body_timeout):
                more = True
                while more:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        raise _Disconnected
                    chunk: bytes = message.get("body", b"")
                    size += len(chunk)
                    if size > self.limits.max_body_bytes:
                        raise self._too_large()
                    chunks.append(chunk)
                    more = message.get("more_body", False)
        except TimeoutError as exc:
            raise Refusal(
                408,
                "request_timeout",
                f"the request body did not arrive within {self.limits.body_timeout:g}s",
            ) from exc
        return b"".join(chunks)

    def _name_route(self, scope: Scope) -> None:
        """Name the route a refused request was meant for, so its metrics and access
        log carry the route template, not ``unmatched``. Only refusals pay for this."""
        if self._templates is None:
            # Routes are fixed once the app serves; compiled on the first refusal.
            self._templates = [
                (compile_path(route.path)[0], route)
                for route in iter_route_contexts(scope["app"].routes)
                if route.path
            ]
        path = scope["path"]
        for pattern, route in self._templates:
            if pattern.match(path):
                scope["route"] = route
                return

    def _too_large(self) -> Refusal:
        return Refusal(
            413,
            "body_too_large",
            f"the request body is larger than {self.limits.max_body_bytes} bytes",
        )


# What a read-only key may send besides GET: running an operation (the tool service
# refuses one not hinted read-only, naming it) and searching contexts.
_READ_ONLY_POSTS = (
    re.compile(r"/api/v1/tools/[^/]+/operations/[^/]+"),
    re.compile(r"/api/v1/contexts/search"),
)


def _check_read_only(scope: Scope) -> None:
    """Refuse a read-only key's request that would change something."""
    method, path = scope["method"], scope["path"]
    if method in ("GET", "HEAD", "OPTIONS"):
        return
    if method == "POST" and any(pattern.fullmatch(path) for pattern in _READ_ONLY_POSTS):
        return
    raise Refusal(
        403,
        Forbidden.code,
        f"this API key is read-only: {method} {path} would change something",
    )


async def _admit(scope: Scope, *, face: str) -> Caller:
    services = scope["app"].state.services
    try:
        token = bearer_token(scope["headers"])
        address = (scope.get("client") or ("unknown", 0))[0]
        await services.rate_limiter.check_failures(address=address, raw_key=token, face=face)
        try:
            caller: Caller = await services.tenants.identify(token)
        except Unauthorized:
            await services.rate_limiter.count_failure(address=address, raw_key=token)
            raise
        await services.rate_limiter.check(token, face=face)
    except DevMeshError as exc:
        raise Refusal.of(exc) from exc
    return caller


async def _admit_webhook(scope: Scope) -> str:
    """Refuse a client address that failed too often lately; the address, to count
    this delivery's failure against."""
    address: str = (scope.get("client") or ("unknown", 0))[0]
    try:
        await scope["app"].state.services.rate_limiter.check_failures(
            address=address, raw_key="", face="rest"
        )
    except DevMeshError as exc:
        raise Refusal.of(exc) from exc
    return address


def _counting_failures(scope: Scope, send: Send, address: str) -> Send:
    """``send``, counting a refused delivery (bad proof, unknown tool) as a failure."""

    async def counting(message: Message) -> None:
        if message["type"] == "http.response.start" and message["status"] in _WEBHOOK_FAILURES:
            await scope["app"].state.services.rate_limiter.count_failure(
                address=address, raw_key=""
            )
        await send(message)

    return counting


def _declared_body(headers: list[tuple[bytes, bytes]]) -> tuple[int | None, bool]:
    """``(Content-Length, whether a body follows)``. The server has already refused
    malformed or conflicting framing, so the value parses."""
    length: int | None = None
    chunked = False
    for name, value in headers:
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding":
            chunked = True
    return length, chunked or bool(length)


def _replay(body: bytes, receive: Receive) -> Receive:
    """The body once, then the real ``receive`` (which reports a disconnect)."""
    pending = True

    async def replay() -> Message:
        nonlocal pending
        if pending:
            pending = False
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def send_problem(scope: Scope, send: Send, refusal: Refusal) -> None:
    """An RFC 9457 body, shaped like the REST error handlers' (they run after routing,
    too late for the gate)."""
    problem = problem_body(
        status=refusal.status,
        code=refusal.code,
        detail=refusal.detail,
        instance=scope.get("path", ""),
        retriable=refusal.retriable,
        request_id=scope.get("state", {}).get("request_id"),
    )
    body = json.dumps(problem).encode()
    headers = [
        (b"content-type", b"application/problem+json"),
        (b"content-length", str(len(body)).encode()),
        *(
            (name.encode("latin-1"), value.encode("latin-1"))
            for name, value in refusal.headers.items()
        ),
    ]
    await send({"type": "http.response.start", "status": refusal.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
