"""The knowledge handler: every final build event is remembered (``BuildLearning``).

Its work (reading the log from the tool, embedding, analysing, perhaps retrying)
is slow, so it runs in ``prepare``, outside the delivery's transaction; ``handle``
only lets the worker record the event as handled. What ``prepare`` writes replaces
by key and the retry is claimed and idempotent, so a redelivered event, or two
workers racing on one, leave the same result as one delivery.
"""

from __future__ import annotations

from sqlalchemy import select

from devmesh.config import RetryPolicySettings
from devmesh.domain.errors import NotFound
from devmesh.domain.events import Event, EventType
from devmesh.domain.models import Build, Tenant
from devmesh.events.handlers import HandlerContext
from devmesh.store.db import Database
from devmesh.store.rows import TenantRow, ToolRow
from devmesh.tools.learning import BuildLearning
from devmesh.tools.service import ToolService

__all__ = ["LearnFromBuilds"]


class LearnFromBuilds:
    name = "knowledge"
    types: frozenset[str] = frozenset(
        {EventType.BUILD_COMPLETED, EventType.BUILD_FAILED, EventType.BUILD_CANCELLED}
    )
    retry_policy: RetryPolicySettings | None = None

    def __init__(self, *, db: Database, tools: ToolService, learning: BuildLearning) -> None:
        self._db = db
        self._tools = tools
        self._learning = learning

    async def prepare(self, event: Event) -> object:
        async with self._db.session() as session:
            tenant_row = await session.get(TenantRow, event.tenant_id)
            tool = await session.scalar(
                select(ToolRow).where(
                    ToolRow.tenant_id == event.tenant_id, ToolRow.id == event.tool.id
                )
            )
        if tenant_row is None or tool is None:
            return "the tool was deleted"
        tenant = Tenant(id=tenant_row.id, name=tenant_row.name, created_at=tenant_row.created_at)
        build = await self._build(tenant, tool, event)
        if build is None:
            return "the build cannot be read"
        await self._learning.learn(tenant, tool.name, build)
        return None

    async def handle(self, context: HandlerContext) -> None:
        # Everything happened in prepare; the worker's mark, written in this
        # transaction, is what keeps a later delivery from doing it again.
        return None

    async def _build(self, tenant: Tenant, tool: ToolRow, event: Event) -> Build | None:
        """The build as the event carries it, or as the tool reports it when the event
        has less (a webhook of a provider whose payload is not a whole build)."""
        try:
            build = Build.model_validate(event.payload)
        except ValueError:
            build = None
        if build is not None and build.status.finished:
            return build
        if event.subject is None or tool.credential_mode == "passthrough":
            return None
        try:
            return Build.model_validate(
                await self._tools.execute(
                    tenant, tool.id, "get_build_status", {"build_id": event.subject}
                )
            )
        except NotFound:
            return None
