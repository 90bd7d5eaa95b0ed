"""MCP over Streamable HTTP at ``/mcp``: the SDK's transport behind the ingress gate.

Stateless: every request carries what it needs (the 2026-07-28 protocol is
stateless by design; older clients that ``initialize`` are served per request
too), so any replica behind a load balancer can answer any request. The gate
(``api/gate.py``) has already authenticated the key, applied the rate limits and
read the body within its cap; the tenant waits in ``scope["state"]``. Only POST
is routed here: a stateless server has no stream to offer on GET and no session
to end on DELETE, so both are 405 with ``Allow: POST``.

What a connection sees comes from its URL or headers, so a client configures it
once: ``/mcp?toolsets=builds,logs`` (or ``X-Devmesh-Toolsets``), ``?mode=search``
(``X-Devmesh-Mode``), ``?read_only=true`` (``X-Devmesh-Read-Only``); a read-only
API key is read-only whatever the connection asks.

The common request, one ``tools/call`` on the 2026-07-28 protocol, is answered by
``devmesh.mcp.direct`` without the SDK's per-request pipeline; everything else,
and anything that path cannot prove well-formed, is the SDK's.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pydantic_core
from mcp.server.lowlevel import Server
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from starlette.requests import Request
from starlette.types import Message, Receive, Scope, Send

from devmesh.domain.errors import InvalidInput, Unauthorized
from devmesh.domain.models import Tenant
from devmesh.mcp.direct import DirectToolCalls
from devmesh.mcp.server import Context, MeshServer
from devmesh.tools.toolsets import View, parse_toolsets

__all__ = ["McpHttpEndpoint", "resolve_http_caller", "resolve_http_view"]

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("", "0", "false", "no", "off")

_LOOPBACK = ("127.0.0.1", "localhost", "::1")
_INVALID_REQUEST = -32600


async def resolve_http_caller(ctx: Context) -> tuple[Tenant, str | None]:
    request = ctx.request
    if not isinstance(request, Request):
        raise Unauthorized("no HTTP request to authenticate")
    tenant: Tenant = request.state.tenant
    return tenant, request.headers.get("x-upstream-token") or None


async def resolve_http_view(ctx: Context) -> View:
    """The connection's view: the query string first, then the headers."""
    request = ctx.request
    if not isinstance(request, Request):
        raise Unauthorized("no HTTP request to authenticate")
    return await request_view(request)


async def request_view(request: Request) -> View:
    def given(name: str, header: str) -> str | None:
        value = request.query_params.get(name)
        return value if value is not None else request.headers.get(header)

    toolsets = parse_toolsets(given("toolsets", "x-devmesh-toolsets"), field="toolsets")
    mode = (given("mode", "x-devmesh-mode") or "tools").strip().lower()
    if mode not in ("tools", "search"):
        raise InvalidInput("mode must be 'tools' or 'search'", field="mode")
    asked = (given("read_only", "x-devmesh-read-only") or "").strip().lower()
    if asked not in _TRUE + _FALSE:
        raise InvalidInput("read_only must be true or false", field="read_only")
    key_read_only: bool = getattr(request.state, "read_only", False)
    return View(
        toolsets=toolsets, search=mode == "search", read_only=key_read_only or asked in _TRUE
    )


class McpHttpEndpoint:
    """The ASGI app routed at /mcp."""

    def __init__(self, server: Server[Any], *, host: str, direct: bool = True) -> None:
        """``direct`` off leaves every request to the SDK (tests compare the two)."""
        self.server = server
        security = None
        if host in _LOOPBACK:
            # A loopback server is reachable from a browser on this machine: refuse
            # DNS-rebound requests that claim another Host or Origin. A bare name is
            # what clients send for the default port, and still loopback.
            security = TransportSecuritySettings(
                enable_dns_rebinding_protection=True,
                allowed_hosts=[
                    *("127.0.0.1", "localhost", "[::1]"),
                    *("127.0.0.1:*", "localhost:*", "[::1]:*"),
                ],
                allowed_origins=[
                    *("http://127.0.0.1", "http://localhost", "http://[::1]"),
                    *("http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"),
                ],
            )
        self._manager = StreamableHTTPSessionManager(
            app=server, json_response=True, stateless=True, security_settings=security
        )
        # subscriptions/listen answers with a stream of events (tools/list_changed), which
        # needs SSE; every other request keeps the one JSON body, cheaper to serve.
        self._streaming = StreamableHTTPSessionManager(
            app=server, json_response=False, stateless=True, security_settings=security
        )
        # The common tools/call skips the SDK's per-request pipeline (devmesh.mcp.direct).
        self._direct = (
            DirectToolCalls(
                server,
                security=security,
                max_body_bytes=self._manager.max_request_body_size,
                resolve_view=request_view,
            )
            if direct and isinstance(server, MeshServer)
            else None
        )

    @asynccontextmanager
    async def run(self) -> AsyncIterator[None]:
        async with self._manager.run(), self._streaming.run():
            yield

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # The gate read the body already; this is a copy in memory, within its cap.
        first = await receive()
        body = first.get("body", b"")
        if (
            self._direct is not None
            and not first.get("more_body", False)
            and await self._direct.handle(scope, body, send)
        ):
            return
        problem = _invalid_envelope(body)
        if problem is not None:
            await _answer_invalid_request(send, problem)
            return
        manager = self._streaming if _LISTEN in body and _is_listen(body) else self._manager
        await manager.handle_request(scope, _prepend(first, receive), send)


_LISTEN = b"subscriptions/listen"


def _is_listen(body: bytes) -> bool:
    try:
        message = pydantic_core.from_json(body)
    except ValueError:
        return False
    return isinstance(message, dict) and message.get("method") == "subscriptions/listen"


def _invalid_envelope(body: bytes) -> str | None:
    """Why a message must be refused here, or ``None`` to let the SDK judge it.

    The SDK reads a request whose ``id`` is not a string or an integer (an object,
    ``null``, ``1.5``) as a notification and answers 202 with nothing, so the client
    waits for its own timeout; JSON-RPC says -32600 with ``id: null``. A batch (an
    array; MCP dropped batching) would get -32602, which names the wrong fault.
    """
    try:
        message = pydantic_core.from_json(body)
    except ValueError:
        return None  # the SDK answers -32700
    if isinstance(message, list):
        return "Invalid Request: batches are not supported; send one message per request"
    if isinstance(message, dict) and "id" in message:
        request_id = message["id"]
        if isinstance(request_id, bool) or not isinstance(request_id, int | str):
            return "Invalid Request: id must be a string or an integer"
    return None


async def _answer_invalid_request(send: Send, message: str) -> None:
    body = json.dumps(
        {"jsonrpc": "2.0", "id": None, "error": {"code": _INVALID_REQUEST, "message": message}}
    ).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    await send({"type": "http.response.start", "status": 400, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _prepend(first: Message, receive: Receive) -> Receive:
    pending = True

    async def again() -> Message:
        nonlocal pending
        if pending:
            pending = False
            return first
        return await receive()

    return again
