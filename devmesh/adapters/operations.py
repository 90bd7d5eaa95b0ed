"""Operations: what a tool instance offers, described once, served by REST and MCP.

An operation has a typed input model and output model (their JSON Schemas are
what agents see), hints about its effects, and a ``run`` over an adapter. The
standard operations are defined here once, in groups by the protocol they need:
``CI_OPERATIONS`` over ``CIAdapter``, ``PIPELINE_OPERATIONS`` over
``PipelineAdapter``, ``ARTIFACT_OPERATIONS`` over ``ArtifactAdapter``. A provider
lists the groups (or single operations) it offers and may add its own.

Each standard operation names its toolset, the set a client chooses to see
(``devmesh.tools.toolsets``): builds, logs, pipelines or artifacts.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from devmesh.adapters import artifacts, logs
from devmesh.adapters.protocols import ArtifactAdapter, CIAdapter, PipelineAdapter
from devmesh.domain.models import (
    Artifact,
    ArtifactContent,
    Build,
    BuildRequest,
    BuildStatus,
    LogPage,
    LogSearchResult,
    Pipeline,
    PipelineRequest,
    PipelineRun,
)

__all__ = [
    "ARTIFACT_OPERATIONS",
    "CI_OPERATIONS",
    "PIPELINE_OPERATIONS",
    "JsonArguments",
    "Operation",
]

A = TypeVar("A")


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True)
class Operation(Generic[A]):
    name: str
    summary: str
    input_model: type[BaseModel]
    output_model: type[BaseModel]
    run: Callable[[A, Any], Awaitable[BaseModel]]
    read_only: bool = False
    destructive: bool = False
    idempotent: bool = False
    # The adapter methods ``run`` calls; the registry checks the adapter has them.
    requires: tuple[str, ...] = ()
    # The set a client picks it by (``devmesh.tools.toolsets``): ``builds``, ``logs``,
    # ``pipelines``, ``artifacts``, or an OpenAPI tag. ``None``: the provider's own.
    toolset: str | None = None
    # Operations made from a document (an OpenAPI description) have JSON Schemas, not
    # models: thousands of classes nobody calls are not worth building. Arguments are
    # checked against ``input_schema`` and ``run`` gets them as ``JsonArguments``.
    input_schema: Mapping[str, Any] | None = None
    output_schema: Mapping[str, Any] | None = None


class JsonArguments(BaseModel):
    """An operation's arguments, already checked against its ``input_schema``."""

    model_config = ConfigDict(extra="allow")

    @property
    def values(self) -> dict[str, Any]:
        return dict(self.__pydantic_extra__ or {})


class BuildRef(_Input):
    build_id: str = Field(min_length=1, description="The build's id, as trigger_build returns.")


class TriggerBuildInput(_Input):
    project: str = Field(min_length=1, description="The job, builder or workflow to run.")
    branch: str | None = Field(default=None, description="Branch to build, if the CI takes one.")
    commit: str | None = Field(default=None, description="Commit to build, if the CI takes one.")
    parameters: dict[str, Any] = Field(
        default_factory=dict, description="Build parameters or properties, by name."
    )
    reason: str | None = Field(default=None, description="Why, shown in the CI's UI.")


class ListBuildsInput(_Input):
    project: str | None = Field(default=None, description="Only builds of this project.")
    status: BuildStatus | None = Field(default=None, description="Only builds in this state.")
    limit: int = Field(default=20, ge=1, le=100)


class ListFailedBuildsInput(_Input):
    project: str | None = Field(default=None, description="Only builds of this project.")
    limit: int = Field(default=20, ge=1, le=100)


class BuildList(BaseModel):
    builds: list[Build]


class GetBuildLogsInput(BuildRef):
    lines: int = Field(
        default=100, ge=1, le=logs.MAX_LINES, description="How many lines from the end."
    )
    cursor: str | None = Field(
        default=None,
        description="Read forward from here instead of tailing ('0' = the start); "
        "use the next_cursor of a previous page.",
    )
    failed_only: bool = Field(default=False, description="Only the steps that failed.")


class SearchBuildLogsInput(BuildRef):
    pattern: str = Field(min_length=1, description="A regular expression (case-insensitive).")
    context: int = Field(default=2, ge=0, le=20, description="Lines to show around each match.")
    max_matches: int = Field(default=20, ge=1, le=logs.MAX_MATCHES)


async def _trigger(adapter: CIAdapter, args: TriggerBuildInput) -> Build:
    return await adapter.trigger_build(BuildRequest.model_validate(args.model_dump()))


async def _get(adapter: CIAdapter, args: BuildRef) -> Build:
    return await adapter.get_build(args.build_id)


async def _list(adapter: CIAdapter, args: ListBuildsInput) -> BuildList:
    return BuildList(
        builds=await adapter.list_builds(project=args.project, status=args.status, limit=args.limit)
    )


async def _list_failed(adapter: CIAdapter, args: ListFailedBuildsInput) -> BuildList:
    builds = await adapter.list_builds(
        project=args.project, status=BuildStatus.FAILED, limit=args.limit
    )
    return BuildList(builds=builds)


async def _cancel(adapter: CIAdapter, args: BuildRef) -> Build:
    return await adapter.cancel_build(args.build_id)


async def _retry(adapter: CIAdapter, args: BuildRef) -> Build:
    return await adapter.retry_build(args.build_id)


async def _logs(adapter: CIAdapter, args: GetBuildLogsInput) -> LogPage:
    lines = await adapter.read_log_lines(args.build_id, failed_only=args.failed_only)
    return logs.page(args.build_id, lines, tail=args.lines, cursor=args.cursor, limit=args.lines)


async def _search(adapter: CIAdapter, args: SearchBuildLogsInput) -> LogSearchResult:
    lines = await adapter.read_log_lines(args.build_id, failed_only=False)
    return logs.search(
        args.build_id,
        lines,
        pattern=args.pattern,
        context=args.context,
        max_matches=args.max_matches,
    )


CI_OPERATIONS: tuple[Operation[CIAdapter], ...] = (
    Operation(
        name="trigger_build",
        toolset="builds",
        requires=("trigger_build",),
        summary="Start a build of a project; returns the build, queued or running.",
        input_model=TriggerBuildInput,
        output_model=Build,
        run=_trigger,
    ),
    Operation(
        name="get_build_status",
        toolset="builds",
        requires=("get_build",),
        summary="A build's status, timing and links.",
        input_model=BuildRef,
        output_model=Build,
        run=_get,
        read_only=True,
        idempotent=True,
    ),
    Operation(
        name="list_builds",
        toolset="builds",
        requires=("list_builds",),
        summary="Recent builds, newest first, optionally by project and status.",
        input_model=ListBuildsInput,
        output_model=BuildList,
        run=_list,
        read_only=True,
        idempotent=True,
    ),
    Operation(
        name="list_failed_builds",
        toolset="builds",
        requires=("list_builds",),
        summary="Recent failed builds, newest first.",
        input_model=ListFailedBuildsInput,
        output_model=BuildList,
        run=_list_failed,
        read_only=True,
        idempotent=True,
    ),
    Operation(
        name="get_build_logs",
        toolset="logs",
        requires=("read_log_lines",),
        summary="A build's log: the last N lines, or a page from a cursor; never unbounded.",
        input_model=GetBuildLogsInput,
        output_model=LogPage,
        run=_logs,
        read_only=True,
        idempotent=True,
    ),
    Operation(
        name="search_build_logs",
        toolset="logs",
        requires=("read_log_lines",),
        summary="Find lines matching a regular expression in a build's log, with context.",
        input_model=SearchBuildLogsInput,
        output_model=LogSearchResult,
        run=_search,
        read_only=True,
        idempotent=True,
    ),
    Operation(
        name="cancel_build",
        toolset="builds",
        requires=("cancel_build",),
        summary="Stop a running build or drop a queued one.",
        input_model=BuildRef,
        output_model=Build,
        run=_cancel,
        destructive=True,
        idempotent=True,
    ),
    Operation(
        name="retry_build",
        toolset="builds",
        requires=("retry_build",),
        summary="Run a finished build again with the same inputs; returns the new build.",
        input_model=BuildRef,
        output_model=Build,
        run=_retry,
    ),
)


# --- pipelines -------------------------------------------------------------------------


class PipelineList(BaseModel):
    pipelines: list[Pipeline]


class TriggerPipelineInput(_Input):
    pipeline: str = Field(min_length=1, description="The pipeline's id, as list_pipelines shows.")
    branch: str | None = Field(default=None, description="Branch to build, if the CI takes one.")
    commit: str | None = Field(default=None, description="Commit to build, if the CI takes one.")
    parameters: dict[str, Any] = Field(
        default_factory=dict,
        description="Parameters for every build of the run, by name; list_pipelines shows "
        "which the pipeline takes.",
    )
    reason: str | None = Field(default=None, description="Why, shown in the CI's UI.")


class ListPipelinesInput(_Input):
    """Takes nothing: every pipeline is listed."""


class PipelineRunRef(_Input):
    run_id: str = Field(min_length=1, description="The run's id, as trigger_pipeline returns.")


async def _list_pipelines(adapter: PipelineAdapter, args: ListPipelinesInput) -> PipelineList:
    return PipelineList(pipelines=await adapter.list_pipelines())


async def _trigger_pipeline(adapter: PipelineAdapter, args: TriggerPipelineInput) -> PipelineRun:
    return await adapter.trigger_pipeline(PipelineRequest.model_validate(args.model_dump()))


async def _get_pipeline(adapter: PipelineAdapter, args: PipelineRunRef) -> PipelineRun:
    return await adapter.get_pipeline_run(args.run_id)


PIPELINE_OPERATIONS: tuple[Operation[PipelineAdapter], ...] = (
    Operation(
        name="list_pipelines",
        toolset="pipelines",
        requires=("list_pipelines",),
        summary="The pipelines trigger_pipeline can start, with their projects and parameters.",
        input_model=ListPipelinesInput,
        output_model=PipelineList,
        run=_list_pipelines,
        read_only=True,
        idempotent=True,
    ),
    Operation(
        name="trigger_pipeline",
        toolset="pipelines",
        requires=("trigger_pipeline",),
        summary="Start a pipeline: one build of each of its projects; returns the run, queued.",
        input_model=TriggerPipelineInput,
        output_model=PipelineRun,
        run=_trigger_pipeline,
    ),
    Operation(
        name="get_pipeline",
        toolset="pipelines",
        requires=("get_pipeline_run",),
        summary="A pipeline run's overall status and each of its builds.",
        input_model=PipelineRunRef,
        output_model=PipelineRun,
        run=_get_pipeline,
        read_only=True,
        idempotent=True,
    ),
)


# --- artifacts -------------------------------------------------------------------------


class ArtifactList(BaseModel):
    build_id: str
    artifacts: list[Artifact]
    hint: str | None = Field(default=None, description="Why the list is empty, when it is.")


class DownloadArtifactInput(BuildRef):
    artifact_id: str = Field(min_length=1, description="The artifact's id, as get_artifacts shows.")
    offset: int = Field(
        default=0, ge=0, description="Byte to start at; use the next_offset of a previous read."
    )
    max_bytes: int = Field(
        default=artifacts.DEFAULT_MAX_BYTES,
        ge=1,
        le=artifacts.MAX_BYTES,
        description="Most bytes to return; read large artifacts in parts.",
    )


async def _get_artifacts(adapter: ArtifactAdapter, args: BuildRef) -> ArtifactList:
    found = await adapter.list_artifacts(args.build_id)
    hint = None
    if not found:
        hint = (
            f"build {args.build_id} has no artifacts yet; a queued or running build may "
            "add some, check again once it has finished"
        )
    return ArtifactList(build_id=args.build_id, artifacts=found, hint=hint)


async def _download_artifact(
    adapter: ArtifactAdapter, args: DownloadArtifactInput
) -> ArtifactContent:
    chunk = await adapter.read_artifact(
        args.build_id, args.artifact_id, offset=args.offset, limit=args.max_bytes
    )
    return artifacts.content(args.build_id, args.artifact_id, chunk)


ARTIFACT_OPERATIONS: tuple[Operation[ArtifactAdapter], ...] = (
    Operation(
        name="get_artifacts",
        toolset="artifacts",
        requires=("list_artifacts",),
        summary="The files a build left: stored files, step logs, and links it published.",
        input_model=BuildRef,
        output_model=ArtifactList,
        run=_get_artifacts,
        read_only=True,
        idempotent=True,
    ),
    Operation(
        name="download_artifact",
        toolset="artifacts",
        requires=("read_artifact",),
        summary="Read part of an artifact: up to max_bytes from offset, as text or base64; "
        "never the whole file unasked.",
        input_model=DownloadArtifactInput,
        output_model=ArtifactContent,
        run=_download_artifact,
        read_only=True,
        idempotent=True,
    ),
)
