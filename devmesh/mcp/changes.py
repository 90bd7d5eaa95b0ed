"""``tools/list_changed`` for MCP clients that listen, one tenant at a time.

On the 2026-07-28 protocol a client opens a ``subscriptions/listen`` stream and the
server sends change events on it (``mcp.server.subscriptions``); earlier versions
sent ``notifications/tools/list_changed`` on a session, which a stateless server has
none of. The SDK's ``ListenHandler`` fans one bus out to every stream, so each tenant
gets a bus and a handler of its own: a tenant registering a tool wakes its own
listeners only, and another tenant learns nothing of it.

Events are in-process: a listener connected to one replica does not hear of a change
made through another (it still sees it on its next ``tools/list``, within the cache
hint's 30 seconds).
"""

from __future__ import annotations

import mcp_types as types
from mcp.server.subscriptions import InMemorySubscriptionBus, ListenHandler, ToolsListChanged

from devmesh.domain.models import Tenant
from devmesh.mcp.server import CallerResolver, Context

__all__ = ["ToolListChanges"]

# Streams one tenant may hold open at once (an agent needs one per session).
_MAX_STREAMS_PER_TENANT = 64


class ToolListChanges:
    """Per-tenant listen streams; ``publish`` after a tenant's tools change."""

    def __init__(self, resolve_caller: CallerResolver) -> None:
        self._resolve_caller = resolve_caller
        self._buses: dict[str, InMemorySubscriptionBus] = {}
        self._handlers: dict[str, ListenHandler] = {}

    async def publish(self, tenant: Tenant) -> None:
        bus = self._buses.get(tenant.id)
        if bus is not None:
            await bus.publish(ToolsListChanged())

    async def listen(
        self, ctx: Context, params: types.SubscriptionsListenRequestParams
    ) -> types.SubscriptionsListenResult:
        """The ``subscriptions/listen`` handler: the caller's tenant's stream."""
        tenant, _ = await self._resolve_caller(ctx)
        handler = self._handlers.get(tenant.id)
        if handler is None:
            bus = self._buses[tenant.id] = InMemorySubscriptionBus()
            handler = self._handlers[tenant.id] = ListenHandler(
                bus, max_subscriptions=_MAX_STREAMS_PER_TENANT
            )
        return await handler(ctx, params)

    def close(self) -> None:
        """End every open stream gracefully (at shutdown)."""
        for handler in self._handlers.values():
            handler.close()
