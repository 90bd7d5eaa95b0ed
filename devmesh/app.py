"""The composition root: everything is built here, from ``Settings``, in one place.

``open_services`` builds the long-lived objects and closes them in reverse order;
``create_app`` runs it in the FastAPI lifespan. The CLI uses ``open_services`` too,
so a command and the server see the same wiring.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from http.cookiejar import CookieJar, DefaultCookiePolicy

import httpx
import structlog
from fastapi import FastAPI
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from devmesh.adapters.registry import ProviderRegistry
from devmesh.api.errors import install_error_handlers
from devmesh.api.middleware import RequestContextMiddleware
from devmesh.api.routers import health, keys, tenant, tools
from devmesh.config import Settings
from devmesh.mcp.http import McpHttpEndpoint, resolve_http_caller
from devmesh.mcp.server import build_server
from devmesh.observability.metrics import Metrics
from devmesh.security.keyfile import load_master_key
from devmesh.security.tenants import TenantService
from devmesh.security.vault import Vault
from devmesh.store.db import Database
from devmesh.tools.service import ToolService

__all__ = ["Services", "create_app", "open_services"]

_log = structlog.get_logger(__name__)


@dataclass
class Services:
    settings: Settings
    db: Database
    metrics: Metrics
    tenants: TenantService
    registry: ProviderRegistry
    tools: ToolService

    def health_checks(self) -> dict[str, Callable[[], Awaitable[None]]]:
        """What readiness means: every dependency we built answers."""
        return {"database": self.db.ping}


@asynccontextmanager
async def open_services(
    settings: Settings,
    *,
    metrics: Metrics | None = None,
    registry: ProviderRegistry | None = None,
) -> AsyncIterator[Services]:
    """Build every long-lived object; ``registry`` replaces the installed providers."""
    async with AsyncExitStack() as stack:
        if settings.database_url is None:
            settings.data_dir.mkdir(parents=True, exist_ok=True)
        master_key = load_master_key(
            settings.encryption_key.get_secret_value() if settings.encryption_key else None,
            data_dir=settings.data_dir,
        )
        db = Database(settings.resolved_database_url, pool_size=settings.db_pool_size)
        stack.push_async_callback(db.close)
        if settings.auto_migrate:
            await db.upgrade()
        # One pooled client for every upstream call: connections are reused across
        # calls and tenants. Credentials travel per request, and the cookie jar
        # accepts nothing, so no session can pass from one tenant's call to another's.
        http = await stack.enter_async_context(
            httpx.AsyncClient(
                cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),
                timeout=httpx.Timeout(30.0, connect=5.0),
                limits=httpx.Limits(max_connections=200, max_keepalive_connections=50),
                follow_redirects=False,
            )
        )
        registry = registry or ProviderRegistry.from_entry_points()
        yield Services(
            settings=settings,
            db=db,
            metrics=metrics or Metrics(),
            tenants=TenantService(db),
            registry=registry,
            tools=ToolService(db=db, registry=registry, vault=Vault(master_key), http=http),
        )


class _McpRoute:
    """The /mcp route; the endpoint itself is built in the lifespan, after routing."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        endpoint: McpHttpEndpoint = scope["app"].state.mcp
        await endpoint(scope, receive, send)


def create_app(settings: Settings, *, registry: ProviderRegistry | None = None) -> FastAPI:
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with open_services(settings, metrics=metrics, registry=registry) as services:
            mcp_server = build_server(services.tools, resolve_http_caller)
            app.state.services = services
            app.state.mcp = McpHttpEndpoint(mcp_server, services.tenants, host=settings.host)
            async with app.state.mcp.run():
                _log.info(
                    "started",
                    database=services.db.engine.url.render_as_string(),
                    providers=services.registry.names(),
                )
                yield
        _log.info("stopped")

    app = FastAPI(
        title="Developer Mesh",
        version="0.1.0",
        summary="DevOps tools for AI agents, over MCP and REST.",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(tenant.router)
    app.include_router(keys.router)
    app.include_router(tools.router)
    app.router.routes.append(Route("/mcp", _McpRoute(), methods=["GET", "POST", "DELETE"]))
    app.add_middleware(RequestContextMiddleware, metrics=metrics)
    return app
