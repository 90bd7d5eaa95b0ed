"""Tenant-wide operations over the knowledge layer: search, read and store contexts.

The MCP server shows them beside each tool instance's operations (see
``devmesh.tools.tenant_wide``); REST has the same three under /api/v1/contexts.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from devmesh.domain.models import Tenant
from devmesh.knowledge.models import (
    Context,
    ContextQuery,
    ContextWrite,
    Key,
    SearchResults,
    ToolName,
)
from devmesh.knowledge.service import ContextService
from devmesh.tools.tenant_wide import TenantOperation

__all__ = ["GetContextInput", "StoreContextInput", "knowledge_operations"]


class GetContextInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: Key
    tool: ToolName | None = Field(
        default=None,
        description="Needed only when the key exists under several tools (the error lists them).",
    )


class StoreContextInput(ContextWrite):
    key: Key


def knowledge_operations(contexts: ContextService) -> list[TenantOperation]:
    async def search(tenant: Tenant, given: ContextQuery) -> SearchResults:
        return await contexts.search_contexts(tenant.id, given)

    async def get(tenant: Tenant, given: GetContextInput) -> Context:
        return await contexts.get_context(tenant.id, given.key, tool=given.tool)

    async def store(tenant: Tenant, given: StoreContextInput) -> Context:
        return await contexts.store_context(
            tenant.id,
            key=given.key,
            type=given.type,
            data=given.data,
            tool=given.tool,
            subject=given.subject,
            project=given.project,
            status=given.status,
        )

    return [
        TenantOperation(
            name="search_contexts",
            title="Search contexts",
            summary="Search what Developer Mesh remembers across your tools (builds, "
            "indexed build logs, failure analyses, resolutions) by words and meaning. "
            "Hits are short; get_context opens one, and a log hit's lines.cursor opens "
            "its lines with the tool's get_build_logs.",
            input_model=ContextQuery,
            output_model=SearchResults,
            run=search,
        ),
        TenantOperation(
            name="get_context",
            title="Get a context",
            summary="Read one stored context by key, e.g. build-42 or failure-analysis-42.",
            input_model=GetContextInput,
            output_model=Context,
            run=get,
        ),
        TenantOperation(
            name="store_context",
            title="Store a context",
            summary="Remember something (a note, a resolution, a build's facts) under a "
            "key, for later searches; storing a key again replaces it.",
            input_model=StoreContextInput,
            output_model=Context,
            run=store,
            read_only=False,
            idempotent=True,
        ),
    ]
