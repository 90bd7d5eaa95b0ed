"""Named dependencies: what a route needs, spelled once as ``Annotated`` aliases."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request

from devmesh.domain.errors import Unauthorized
from devmesh.domain.models import Tenant
from devmesh.events.bus import EventBus
from devmesh.events.log import EventLog
from devmesh.knowledge.service import ContextService
from devmesh.notifications.subscriptions import SubscriptionService
from devmesh.security.tenants import TenantService
from devmesh.tools.learning import BuildLearning
from devmesh.tools.service import ToolService
from devmesh.tools.webhooks import WebhookService

if TYPE_CHECKING:
    from devmesh.app import Services

__all__ = [
    "AppServices",
    "Bus",
    "Contexts",
    "CurrentTenant",
    "Events",
    "Learning",
    "Subscriptions",
    "Tenants",
    "Tools",
    "Webhooks",
]


# Every dependency here is async although none awaits: FastAPI runs a plain ``def``
# dependency in a worker thread, a thread hop per dependency per request (a fifth
# of a REST call's CPU; docs/performance.md).
def _of(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


async def _services(request: Request) -> Services:
    return _of(request)


async def _tenants(request: Request) -> TenantService:
    return _of(request).tenants


async def _tools(request: Request) -> ToolService:
    return _of(request).tools


async def _webhooks(request: Request) -> WebhookService:
    return _of(request).webhooks


async def _events(request: Request) -> EventLog:
    return _of(request).events


async def _subscriptions(request: Request) -> SubscriptionService:
    return _of(request).subscriptions


async def _contexts(request: Request) -> ContextService:
    return _of(request).contexts


async def _bus(request: Request) -> EventBus:
    return _of(request).bus


async def _learning(request: Request) -> BuildLearning:
    return _of(request).learning


async def _current_tenant(request: Request) -> Tenant:
    # The gate (api/gate.py) authenticated the key before the body was read. Async
    # only so FastAPI calls it in place instead of in a worker thread.
    tenant: Tenant | None = getattr(request.state, "tenant", None)
    if tenant is None:
        raise Unauthorized("missing API key: send 'Authorization: Bearer <api key>'")
    return tenant


AppServices = Annotated["Services", Depends(_services)]
Tenants = Annotated[TenantService, Depends(_tenants)]
CurrentTenant = Annotated[Tenant, Depends(_current_tenant)]
Tools = Annotated[ToolService, Depends(_tools)]
Events = Annotated[EventLog, Depends(_events)]
Bus = Annotated[EventBus, Depends(_bus)]
Subscriptions = Annotated[SubscriptionService, Depends(_subscriptions)]
Webhooks = Annotated[WebhookService, Depends(_webhooks)]
Contexts = Annotated[ContextService, Depends(_contexts)]
Learning = Annotated[BuildLearning, Depends(_learning)]
