"""Named dependencies: what a route needs, spelled once as ``Annotated`` aliases."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

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
    "current_tenant",
]


# Every dependency here is async although none awaits: FastAPI runs a plain ``def``
# dependency in a worker thread, a thread hop per dependency per request (a fifth
# of a REST call's CPU; docs/performance.md).
def _of(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


async def _services(request: Request) -> Services:
    return _of(request)


def _part(name: str) -> Any:
    """A dependency giving one of the services by its name on ``Services``."""

    async def part(request: Request) -> Any:
        return getattr(_of(request), name)

    return Depends(part)


def current_tenant(request: Request) -> Tenant:
    """The tenant the gate (api/gate.py) authenticated before the body was read."""
    tenant: Tenant | None = getattr(request.state, "tenant", None)
    if tenant is None:
        raise Unauthorized("missing API key: send 'Authorization: Bearer <api key>'")
    return tenant


async def _current_tenant(request: Request) -> Tenant:
    # Async only so FastAPI calls it in place instead of in a worker thread.
    return current_tenant(request)


AppServices = Annotated["Services", Depends(_services)]
Tenants = Annotated[TenantService, _part("tenants")]
CurrentTenant = Annotated[Tenant, Depends(_current_tenant)]
Tools = Annotated[ToolService, _part("tools")]
Events = Annotated[EventLog, _part("events")]
Bus = Annotated[EventBus, _part("bus")]
Subscriptions = Annotated[SubscriptionService, _part("subscriptions")]
Webhooks = Annotated[WebhookService, _part("webhooks")]
Contexts = Annotated[ContextService, _part("contexts")]
Learning = Annotated[BuildLearning, _part("learning")]
