"""Tenant-wide operations over the knowledge layer: search, read and store contexts,
analyse a failed build, record how a failure was fixed.

The MCP server shows them beside each tool instance's operations (see
``devmesh.tools.tenant_wide``); REST has the same under /api/v1/contexts and
/api/v1/tools/{tool}/builds/{build_id}/analysis and …/resolution.
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
from devmesh.tools.learning import BuildLearning, FailureReport, Resolution
from devmesh.tools.tenant_wide import TenantOperation

__all__ = [
    "AnalyzeFailureInput",
    "GetContextInput",
    "RecordResolutionInput",
    "StoreContextInput",
    "knowledge_operations",
]


class GetContextInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: Key
    tool: ToolName | None = Field(
        default=None,
        description="Needed only when the key exists under several tools (the error lists them).",
    )


class StoreContextInput(ContextWrite):
    key: Key


class AnalyzeFailureInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tool: ToolName = Field(description="The tool instance the build belongs to.")
    build_id: str = Field(min_length=1, max_length=255, description="The failed build's id.")


class RecordResolutionInput(AnalyzeFailureInput):
    note: str = Field(
        min_length=1,
        max_length=2000,
        description="How the failure was fixed, in a sentence or two; found by later searches.",
    )


def knowledge_operations(
    contexts: ContextService, learning: BuildLearning
) -> list[TenantOperation]:
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

    async def analyze(tenant: Tenant, given: AnalyzeFailureInput) -> FailureReport:
        return await learning.analyze_failure(tenant, given.tool, given.build_id)

    async def resolve(tenant: Tenant, given: RecordResolutionInput) -> Resolution:
        return await learning.record_resolution(tenant, given.tool, given.build_id, given.note)

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
        TenantOperation(
            name="analyze_failure",
            title="Analyze a failed build",
            summary="Why a build failed, in a few lines: category, failed stage, one-sentence "
            "reason, the log lines that explain it (numbered), an error pattern, whether a "
            "retry may help, and similar earlier failures with how they were fixed.",
            input_model=AnalyzeFailureInput,
            output_model=FailureReport,
            run=analyze,
        ),
        TenantOperation(
            name="record_resolution",
            title="Record how a failure was fixed",
            summary="Say how a failed build was fixed; later analyses of the same failure "
            "show it, and searches find it.",
            input_model=RecordResolutionInput,
            output_model=Resolution,
            run=resolve,
            read_only=False,
            idempotent=True,
        ),
    ]
