"""A build's failure analysis and its resolution: a thin face over ``BuildLearning``.

Build ids may hold slashes (GitLab's ``group/app#1234``), so the id is the path up
to the last segment; send it percent-encoded as any path segment.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from pydantic import BaseModel, ConfigDict, Field

from devmesh.api.deps import CurrentTenant, Learning
from devmesh.api.openapi import problems
from devmesh.tools.learning import FailureReport, Resolution

router = APIRouter(prefix="/api/v1/tools", tags=["knowledge"])

_Tool = Annotated[str, Path(min_length=1, max_length=64, description="The tool's name or id.")]
_BuildId = Annotated[str, Path(min_length=1, max_length=255, description="The build's id.")]


class ResolutionWrite(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: str = Field(
        min_length=1,
        max_length=2000,
        description="How the failure was fixed, in a sentence or two; found by later searches.",
    )


@router.post(
    "/{tool}/builds/{build_id:path}/analysis",
    response_model=FailureReport,
    summary="Analyse a failed build: why it failed, the lines that say so, similar failures",
    responses=problems(409),
)
async def analyze_failure(
    tool: _Tool, build_id: _BuildId, tenant: CurrentTenant, learning: Learning
) -> FailureReport:
    return await learning.analyze_failure(tenant, tool, build_id)


@router.put(
    "/{tool}/builds/{build_id:path}/resolution",
    response_model=Resolution,
    summary="Record how a failed build was fixed",
)
async def record_resolution(
    tool: _Tool,
    build_id: _BuildId,
    body: ResolutionWrite,
    tenant: CurrentTenant,
    learning: Learning,
) -> Resolution:
    return await learning.record_resolution(tenant, tool, build_id, body.note)
