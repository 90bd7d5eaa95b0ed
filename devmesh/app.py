"""The composition root: everything is built here, from ``Settings``, in one place.

``open_services`` builds the long-lived objects and closes them in reverse order;
``create_app`` runs it in the FastAPI lifespan. The CLI uses ``open_services`` too,
so a command and the server see the same wiring.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

import structlog
from fastapi import FastAPI
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from opentelemetry.sdk.trace import TracerProvider
from redis.asyncio import Redis
from starlette.routing import Match, Route
from starlette.types import Receive, Scope, Send

from devmesh.adapters.clients import HttpClients
from devmesh.adapters.egress import EgressPolicy
from devmesh.adapters.registry import ProviderRegistry
from devmesh.adapters.resilience import Resilience
from devmesh.api.errors import install_error_handlers
from devmesh.api.fastpath import OperationFastPath
from devmesh.api.gate import IngressGate
from devmesh.api.middleware import RequestContextMiddleware
from devmesh.api.openapi import install_openapi
from devmesh.api.routers import (
    builds,
    contexts,
    events,
    health,
    keys,
    subscriptions,
    tenant,
    tools,
    webhooks,
)
from devmesh.config import Settings
from devmesh.events.background import in_background
from devmesh.events.bus import EventBus
from devmesh.events.handlers import HandlerRegistry
from devmesh.events.log import EventLog
from devmesh.events.outbox import Outbox
from devmesh.events.retention import Pruner
from devmesh.events.sql import SqlEventBus
from devmesh.events.streams import RedisEventBus
from devmesh.events.worker import Worker, route_for
from devmesh.knowledge.embedding import build_embedder
from devmesh.knowledge.history import BuildHistory
from devmesh.knowledge.service import ContextService
from devmesh.mcp.changes import ToolListChanges
from devmesh.mcp.http import McpHttpEndpoint, resolve_http_caller, resolve_http_view
from devmesh.mcp.server import build_server
from devmesh.notifications.notifier import Notifier
from devmesh.notifications.subscriptions import SubscriptionService
from devmesh.observability.metrics import Metrics
from devmesh.observability.tracing import TRACER_NAME, build_tracer_provider
from devmesh.security.keyfile import load_master_key
from devmesh.security.ratelimit import InboundRateLimiter
from devmesh.security.tenants import TenantService
from devmesh.security.vault import Vault
from devmesh.store.db import Database
from devmesh.tools.context_operations import knowledge_operations
from devmesh.tools.learner import LearnFromBuilds
from devmesh.tools.learning import BuildLearning
from devmesh.tools.service import ToolService
from devmesh.tools.watcher import BuildWatcher
from devmesh.tools.webhooks import WebhookService

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
    rate_limiter: InboundRateLimiter
    bus: EventBus
    events: EventLog
    worker: Worker
    watcher: BuildWatcher
    subscriptions: SubscriptionService
    notifier: Notifier
    webhooks: WebhookService
    pruner: Pruner
    contexts: ContextService
    learning: BuildLearning
    redis: Redis | None = None

    def health_checks(self) -> dict[str, Callable[[], Awaitable[None]]]:
        """What readiness means: every dependency we built answers."""
        checks: dict[str, Callable[[], Awaitable[None]]] = {"database": self.db.ping}
        if self.redis is not None:
            checks["redis"] = self._ping_redis
        return checks

    async def _ping_redis(self) -> None:
        assert self.redis is not None
        await self.redis.ping()


@asynccontextmanager
async def open_services(
    settings: Settings,
    *,
    metrics: Metrics | None = None,
    registry: ProviderRegistry | None = None,
    tracer_provider: TracerProvider | None = None,
    handlers: HandlerRegistry | None = None,
) -> AsyncIterator[Services]:
    """Build every long-lived object; ``registry`` replaces the installed providers and
    ``handlers`` the installed event handlers."""
    metrics = metrics or Metrics()
    async with AsyncExitStack() as stack:
        if tracer_provider is None:
            tracer_provider = build_tracer_provider(settings.tracing)
            stack.callback(tracer_provider.shutdown)
        if settings.database_url is None:
            settings.data_dir.mkdir(parents=True, exist_ok=True)
        master_key = load_master_key(
            settings.encryption_key.get_secret_value() if settings.encryption_key else None,
            data_dir=settings.data_dir,
        )
        db = Database(
            settings.resolved_database_url,
            pool_size=settings.db_pool_size,
            sqlite_synchronous=settings.database.sqlite_synchronous,
        )
        stack.push_async_callback(db.close)
        if settings.auto_migrate:
            await db.upgrade()
        # Pooled clients for every upstream call, one per TLS policy: connections are
        # reused across calls and tenants. Credentials travel per request, and no
        # client keeps cookies, so no session can pass from one tenant's call to
        # another's. Every connection passes the egress policy; no proxy or .netrc
        # from the environment applies, as either would slip past it.
        egress = _egress_policy(settings)
        clients = HttpClients(egress)
        stack.push_async_callback(clients.aclose)
        # httpx logs every request's full URL at info, and httpcore its traces at debug:
        # the service logs its own calls, without them.
        for name in ("httpx", "httpcore"):
            logging.getLogger(name).setLevel(logging.WARNING)
        redis: Redis | None = None
        limits_storage: Storage = MemoryStorage()
        if settings.redis_url:
            redis = Redis.from_url(settings.redis_url)
            stack.push_async_callback(redis.aclose)
            limits_storage = RedisStorage(
                "async+" + settings.redis_url,
                implementation="redispy",
                key_prefix="devmesh-limits",
                connection_pool=redis.connection_pool,  # type: ignore[arg-type]
            )
        resilience = Resilience(
            metrics=metrics,
            tracer=tracer_provider.get_tracer(TRACER_NAME),
            limits_storage=limits_storage,
            redis_url=settings.redis_url,
        )
        stack.push_async_callback(resilience.close)
        await resilience.start()
        registry = registry or ProviderRegistry.from_entry_points()
        # Installed handlers, plus the knowledge handler, which needs services built
        # below; a registry passed in (tests) is taken as it is.
        installed = handlers is None
        handlers = handlers if handlers is not None else HandlerRegistry.from_entry_points()
        route = route_for(handlers, settings.events)
        bus: EventBus
        if redis is not None:
            bus = RedisEventBus(
                db,
                redis,
                router=route,
                claim_idle=settings.events.claim_idle,
                stream=settings.events.stream,
                block=settings.events.poll_interval,
            )
        else:
            bus = SqlEventBus(db, router=route, claim_idle=settings.events.claim_idle)
        await bus.start()
        stack.push_async_callback(bus.close)
        worker = Worker(
            db=db, bus=bus, handlers=handlers, settings=settings.events, metrics=metrics
        )
        vault = Vault(master_key)
        # Subscribers get a pool of their own on a policy at least as strict as the
        # tools': a tenant's URL reaches loopback or private ranges only if the
        # operator allows it for notifications as well.
        notify_egress = _notification_egress(settings)
        notify_clients = HttpClients(notify_egress)
        stack.push_async_callback(notify_clients.aclose)
        outbox = Outbox(on_commit=worker.wake)
        history = BuildHistory(db)
        tools = ToolService(
            db=db,
            registry=registry,
            vault=vault,
            clients=clients,
            egress=egress,
            resilience=resilience,
            cache_ttl=settings.cache_ttl,
            outbox=outbox,
            error_patterns=history.error_pattern,
        )
        # The embedder's endpoint (embedder openai) is reached through the egress
        # policy like any tool; the default model runs in process.
        contexts = ContextService(
            db=db, embedder=build_embedder(settings.knowledge, client=clients.client())
        )
        learning = BuildLearning(
            db=db, tools=tools, contexts=contexts, history=history, settings=settings.knowledge
        )
        if installed and settings.knowledge.learn:
            handlers.add(LearnFromBuilds(db=db, tools=tools, learning=learning))
        yield Services(
            settings=settings,
            db=db,
            metrics=metrics,
            tenants=TenantService(db, cache_ttl=settings.cache_ttl),
            registry=registry,
            tools=tools,
            rate_limiter=InboundRateLimiter(settings.rate_limit, limits_storage, metrics),
            bus=bus,
            events=EventLog(db),
            worker=worker,
            watcher=BuildWatcher(db=db, tools=tools, outbox=outbox, settings=settings.events),
            pruner=Pruner(db=db, settings=settings.events.retention),
            subscriptions=SubscriptionService(db=db, vault=vault, egress=notify_egress),
            notifier=Notifier(
                db=db,
                clients=notify_clients,
                resilience=resilience,
                vault=vault,
                settings=settings.notifications,
                poll_interval=settings.events.poll_interval,
            ),
            webhooks=WebhookService(
                db=db,
                registry=registry,
                vault=vault,
                outbox=outbox,
                metrics=metrics,
                cache_ttl=settings.cache_ttl,
            ),
            contexts=contexts,
            learning=learning,
            redis=redis,
        )


def _egress_policy(settings: Settings) -> EgressPolicy:
    return _policy(settings, settings.egress.allow_loopback, settings.egress.allow_private)


def _notification_egress(settings: Settings) -> EgressPolicy:
    # At least as strict as the tools' policy: both settings must allow a range.
    notify = settings.notifications
    return _policy(
        settings,
        settings.egress.allow_loopback and notify.allow_loopback,
        settings.egress.allow_private and notify.allow_private,
    )


def _policy(settings: Settings, allow_loopback: bool, allow_private: bool) -> EgressPolicy:
    egress = settings.egress
    return EgressPolicy.own(
        host=settings.host,
        port=settings.port,
        allow_loopback=allow_loopback,
        allow_private=allow_private,
        allow_networks=[ipaddress.ip_network(n, strict=False) for n in egress.allow_networks],
        deny_networks=[ipaddress.ip_network(n, strict=False) for n in egress.deny_networks],
    )


class _Mcp:
    """The endpoint itself is built in the lifespan, after routing is set up."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        endpoint: McpHttpEndpoint = scope["app"].state.mcp
        await endpoint(scope, receive, send)


class _McpRoute(Route):
    """POST /mcp. Names itself in the scope as FastAPI's routes do, so metrics, spans
    and access logs say ``route="/mcp"`` rather than ``unmatched``."""

    def __init__(self) -> None:
        super().__init__("/mcp", _Mcp(), methods=["POST"])

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child_scope = super().matches(scope)
        if match is not Match.NONE:
            child_scope["route"] = self
        return match, child_scope


async def migrate(settings: Settings) -> None:
    """Apply pending migrations and close: ``serve --workers N`` runs this once before
    it forks, as N processes migrating one SQLite file at once race each other."""
    if settings.database_url is None:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(
        settings.resolved_database_url,
        pool_size=1,
        sqlite_synchronous=settings.database.sqlite_synchronous,
    )
    try:
        await db.upgrade()
    finally:
        await db.close()


def create_app(
    settings: Settings,
    *,
    registry: ProviderRegistry | None = None,
    tracer_provider: TracerProvider | None = None,
    handlers: HandlerRegistry | None = None,
    run_worker: bool | None = None,
) -> FastAPI:
    """The ASGI app. ``tracer_provider`` replaces the one built from settings (tests
    pass one with an in-memory exporter). The event worker runs in the process when
    ``run_worker`` says so, by default when ``events.in_process_worker`` does."""
    in_process_worker = settings.events.in_process_worker if run_worker is None else run_worker
    metrics = Metrics()
    own_tracing = tracer_provider is None
    tracer_provider = tracer_provider or build_tracer_provider(settings.tracing)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            services = await stack.enter_async_context(
                open_services(
                    settings,
                    metrics=metrics,
                    registry=registry,
                    tracer_provider=tracer_provider,
                    handlers=handlers,
                )
            )
            if in_process_worker:
                worker = services.worker
                await stack.enter_async_context(
                    in_background(worker.run, name="devmesh-event-worker", on_stop=worker.wake)
                )
                if settings.events.watcher.enabled:
                    await stack.enter_async_context(
                        in_background(services.watcher.run, name="devmesh-build-watcher")
                    )
                await stack.enter_async_context(
                    in_background(services.notifier.run, name="devmesh-notifier")
                )
                await stack.enter_async_context(
                    in_background(services.pruner.run, name="devmesh-retention")
                )
            changes = ToolListChanges(resolve_http_caller)
            services.tools.on_catalog_change(changes.publish)
            mcp_server = build_server(
                services.tools,
                resolve_http_caller,
                separator=settings.tool_name_separator,
                tenant_operations=knowledge_operations(services.contexts, services.learning),
                resolve_view=resolve_http_view,
                default_toolsets=frozenset(settings.toolsets),
                listen=changes.listen,
                # A local model costs microseconds a search; an embeddings API would cost
                # a request on every search_tools call, so words alone rank then.
                embed=None
                if settings.knowledge.embedder == "openai"
                else services.contexts.embedder.embed,
            )
            app.state.services = services
            app.state.mcp = McpHttpEndpoint(mcp_server, host=settings.host)
            async with app.state.mcp.run():
                _log.info(
                    "started",
                    database=services.db.engine.url.render_as_string(),
                    providers=services.registry.names(),
                )
                try:
                    yield
                finally:
                    # Listen streams end with their closing frame, not a dropped line.
                    changes.close()
        if own_tracing:
            tracer_provider.shutdown()
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
    app.include_router(events.router)
    app.include_router(subscriptions.router)
    app.include_router(webhooks.router)
    app.include_router(contexts.router)
    app.include_router(builds.router)
    install_openapi(app)
    # First: every MCP request would otherwise be matched against each REST route.
    app.router.routes.insert(0, _McpRoute())
    # Added last, runs first: the request context wraps the gate, so refusals are
    # logged and counted like any other answer; the gate wraps the operation fast path.
    app.add_middleware(OperationFastPath)
    app.add_middleware(IngressGate, limits=settings.http)
    app.add_middleware(
        RequestContextMiddleware, metrics=metrics, tracer=tracer_provider.get_tracer(TRACER_NAME)
    )
    return app
