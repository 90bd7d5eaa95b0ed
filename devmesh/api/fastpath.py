"""REST without FastAPI's routing for the hottest route: running an operation.

``POST /api/v1/tools/{tool}/operations/{operation}`` is the one route agents call in
a loop, and FastAPI's share of it (walking every route to match, solving the
parameters, the exit stacks, the response model) cost more CPU than our gate and
middleware together (docs/performance.md). So a well-formed call is answered here,
after the gate, by the same ``ToolService.execute`` with the same arguments the
route would pass, and its errors by the app's own exception handlers; anything this
path is not sure of (another content type, a body that is not a JSON object, a
header over its length, a ``root_path``) goes on to the FastAPI route, which gives
the answer it always gave, validation problems included. The route stays declared
there, for the OpenAPI document and for those requests.
"""

from __future__ import annotations

import json
import re
from typing import Any

from fastapi.routing import iter_route_contexts
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from devmesh.api.responses import JsonBody
from devmesh.domain.errors import DevMeshError, Unauthorized
from devmesh.domain.limits import MAX_IDEMPOTENCY_KEY, MAX_UPSTREAM_TOKEN

__all__ = ["OperationFastPath"]

TEMPLATE = "/api/v1/tools/{tool}/operations/{operation}"
# What Starlette's compiled template matches: each parameter one path segment.
_PATH = re.compile(r"/api/v1/tools/([^/]+)/operations/([^/]+)")
_JSON = b"application/json"


class OperationFastPath:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._route: Any = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] != "POST"
            or scope.get("root_path")
            or (match := _PATH.fullmatch(scope["path"])) is None
        ):
            await self.app(scope, receive, send)
            return
        headers = _headers(scope["headers"])
        if headers is None:
            await self.app(scope, receive, send)
            return
        body, receive = await _read(receive)
        arguments = _arguments(body, headers.get(b"content-type"))
        if arguments is None:
            await self.app(scope, receive, send)
            return
        await self._execute(scope, receive, send, match, headers, arguments)

    async def _execute(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        match: re.Match[str],
        headers: dict[bytes, str],
        arguments: dict[str, Any],
    ) -> None:
        scope["route"] = self._route or self._find_route(scope)
        scope["path_params"] = {"tool": match.group(1), "operation": match.group(2)}
        state = scope.setdefault("state", {})
        services = scope["app"].state.services
        try:
            tenant = state.get("tenant")
            if tenant is None:
                # The gate refuses a call without a key before it gets here; this is the
                # route's own check (``CurrentTenant``), kept for the same answer.
                raise Unauthorized("missing API key: send 'Authorization: Bearer <api key>'")
            result = await services.tools.execute(
                tenant,
                match.group(1),
                match.group(2),
                arguments,
                upstream_token=headers.get(b"x-upstream-token"),
                idempotency_key=headers.get(b"idempotency-key"),
                read_only=state.get("read_only", False),
            )
        except DevMeshError as exc:
            # The handler FastAPI would have called for this error, found the same way.
            handler = _handler_for(scope["app"].exception_handlers, exc)
            if handler is None:
                raise
            response = await handler(Request(scope, receive), exc)
            await response(scope, receive, send)
            return
        await JsonBody(result)(scope, receive, send)

    def _find_route(self, scope: Scope) -> Any:
        for route in iter_route_contexts(scope["app"].routes):
            if getattr(route, "path", None) == TEMPLATE and "POST" in (route.methods or ()):
                self._route = route
                return route
        raise LookupError(f"no route {TEMPLATE}")


# The headers the route reads, with FastAPI's limits; the first of each, as Starlette's
# ``Headers.get`` gives it.
_WANTED = {b"content-type": None, b"idempotency-key": MAX_IDEMPOTENCY_KEY}
_WANTED[b"x-upstream-token"] = MAX_UPSTREAM_TOKEN


def _headers(raw: list[tuple[bytes, bytes]]) -> dict[bytes, str] | None:
    """The headers the route reads; ``None`` when one is over its length (FastAPI's 422)."""
    found: dict[bytes, str] = {}
    for name, value in raw:
        if name in _WANTED and name not in found:
            limit = _WANTED[name]
            text = value.decode("latin-1")
            if limit is not None and len(text) > limit:
                return None
            found[name] = text
    return found


async def _read(receive: Receive) -> tuple[bytes, Receive]:
    """The whole body (the gate has read it already, so this is one message), and a
    ``receive`` that gives it again for the FastAPI route."""
    chunks: list[bytes] = []
    more = True
    while more:
        message = await receive()
        if message["type"] != "http.request":
            return b"", _again(b"", receive, message)
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    body = b"".join(chunks)
    return body, _again(body, receive, None)


def _again(body: bytes, receive: Receive, first: Message | None) -> Receive:
    pending = True

    async def replay() -> Message:
        nonlocal pending
        if pending:
            pending = False
            return first or {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def _arguments(body: bytes, content_type: str | None) -> dict[str, Any] | None:
    """The operation's arguments, when the body is surely what the route accepts: no
    body, or a JSON object sent as ``application/json``. ``None``: let FastAPI decide."""
    if not body:
        return {}
    if content_type is None or content_type.encode("latin-1") != _JSON:
        return None
    try:
        parsed = json.loads(body)
    except ValueError:
        return None
    if parsed is None:
        return {}
    return parsed if isinstance(parsed, dict) else None


def _handler_for(handlers: dict[Any, Any], exc: Exception) -> Any:
    for cls in type(exc).__mro__:
        if cls in handlers:
            return handlers[cls]
    return None
