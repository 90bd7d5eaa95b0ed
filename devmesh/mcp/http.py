"""MCP over Streamable HTTP at ``/mcp``: API-key authentication in front of the SDK.

Stateless: every request carries what it needs (the 2026-07-28 protocol is
stateless by design; older clients that ``initialize`` are served per request
too), so any replica behind a load balancer can answer any request.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from mcp.server.lowlevel import Server
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from starlette.requests import Request
from starlette.types import Receive, Scope, Send

from devmesh.domain.errors import DevMeshError, RateLimited, Unauthorized
from devmesh.domain.models import Tenant
from devmesh.mcp.server import Context
from devmesh.security.ratelimit import InboundRateLimiter
from devmesh.security.tenants import TenantService

__all__ = ["McpHttpEndpoint", "resolve_http_caller"]

_LOOPBACK = ("127.0.0.1", "localhost", "::1")


async def resolve_http_caller(ctx: Context) -> tuple[Tenant, str | None]:
    request = ctx.request
    if not isinstance(request, Request):
        raise Unauthorized("no HTTP request to authenticate")
    tenant: Tenant = request.state.tenant
    return tenant, request.headers.get("x-upstream-token") or None


class McpHttpEndpoint:
    """The ASGI app mounted at /mcp."""

    def __init__(
        self,
        server: Server[Any],
        tenants: TenantService,
        rate_limiter: InboundRateLimiter,
        *,
        host: str,
    ) -> None:
        self._tenants = tenants
        self._rate_limiter = rate_limiter
        security = None
        if host in _LOOPBACK:
            # A loopback server is reachable from a browser on this machine: refuse
            # DNS-rebound requests that claim another Host or Origin.
            security = TransportSecuritySettings(
                enable_dns_rebinding_protection=True,
                allowed_hosts=["127.0.0.1:*", "localhost:*", "[::1]:*"],
                allowed_origins=["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"],
            )
        self._manager = StreamableHTTPSessionManager(
            app=server, json_response=True, stateless=True, security_settings=security
        )

    @asynccontextmanager
    async def run(self) -> AsyncIterator[None]:
        async with self._manager.run():
            yield

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = dict(scope["headers"])
        scheme, _, token = headers.get(b"authorization", b"").decode("latin-1").partition(" ")
        try:
            if scheme.lower() != "bearer" or not token.strip():
                raise Unauthorized("missing API key: send 'Authorization: Bearer <api key>'")
            tenant = await self._tenants.authenticate(token.strip())
            await self._rate_limiter.check(token.strip(), face="mcp")
        except (Unauthorized, RateLimited) as exc:
            await _refuse(scope, send, exc)
            return
        scope.setdefault("state", {})["tenant"] = tenant
        await self._manager.handle_request(scope, receive, send)


async def _refuse(scope: Scope, send: Send, exc: DevMeshError) -> None:
    # Before the SDK sees the request, so answered like the REST face: problem+json.
    unauthorized = isinstance(exc, Unauthorized)
    status, title = (401, "Unauthorized") if unauthorized else (429, "Too Many Requests")
    body = json.dumps(
        {
            "type": f"urn:devmesh:problem:{exc.code}",
            "title": title,
            "status": status,
            "detail": exc.message,
            "instance": scope.get("path", "/mcp"),
            "code": exc.code,
            "retriable": exc.retriable,
        }
    ).encode()
    headers = [
        (b"content-type", b"application/problem+json"),
        (b"content-length", str(len(body)).encode()),
    ]
    if unauthorized:
        headers.append((b"www-authenticate", b"Bearer"))
    if isinstance(exc, RateLimited) and exc.retry_after is not None:
        headers.append((b"retry-after", str(max(1, round(exc.retry_after))).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
