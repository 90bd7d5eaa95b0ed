"""The composition root: everything is built here, from ``Settings``, in one place.

``open_services`` builds the long-lived objects and closes them in reverse order;
``create_app`` runs it in the FastAPI lifespan. The CLI uses ``open_services`` too,
so a command and the server see the same wiring.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

import structlog
from fastapi import FastAPI

from devmesh.api.errors import install_error_handlers
from devmesh.api.middleware import RequestContextMiddleware
from devmesh.api.routers import health, tenant
from devmesh.config import Settings
from devmesh.observability.metrics import Metrics
from devmesh.security.keyfile import load_master_key
from devmesh.security.tenants import TenantService
from devmesh.store.db import Database

__all__ = ["Services", "create_app", "open_services"]

_log = structlog.get_logger(__name__)


@dataclass
class Services:
    settings: Settings
    db: Database
    metrics: Metrics
    tenants: TenantService
    master_key: bytes

    def health_checks(self) -> dict[str, Callable[[], Awaitable[None]]]:
        """What readiness means: every dependency we built answers."""
        return {"database": self.db.ping}


@asynccontextmanager
async def open_services(
    settings: Settings, *, metrics: Metrics | None = None
) -> AsyncIterator[Services]:
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
        yield Services(
            settings=settings,
            db=db,
            metrics=metrics or Metrics(),
            tenants=TenantService(db),
            master_key=master_key,
        )


def create_app(settings: Settings) -> FastAPI:
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with open_services(settings, metrics=metrics) as services:
            app.state.services = services
            _log.info("started", database=services.db.engine.url.render_as_string())
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
    app.add_middleware(RequestContextMiddleware, metrics=metrics)
    return app
