"""The GitLab adapter: builds are pipelines, pipelines are pipeline schedules.

Builds. ``trigger_build`` creates a pipeline for a branch or tag
(``POST /projects/:id/pipeline``; ``parameters`` become its variables), the project's
default branch if none is given. GitLab runs a ref's head and takes no commit, so
``commit`` is refused rather than ignored. ``retry_build`` reruns a failed or
cancelled pipeline's failed jobs in place (``…/retry``: the same build id), and runs a
succeeded one again as a new pipeline of the same ref and variables.

Pipelines are pipeline schedules rather than trigger tokens: a schedule is a named,
listable pipeline set-up (ref and variables) that maintainers already keep in
GitLab, played with the same access token as everything else; a trigger token is
one more secret per project, cannot be listed and adds nothing ``trigger_build``
does not already do. A run of a schedule is the pipeline it made (see ``ids``).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from devmesh.adapters.concurrency import gather_bounded
from devmesh.adapters.registry import Connection
from devmesh.domain.errors import UpstreamInvalidArgument
from devmesh.domain.models import (
    Artifact,
    ArtifactChunk,
    Build,
    BuildRequest,
    BuildStatus,
    LogLine,
    Pipeline,
    PipelineRequest,
    PipelineRun,
)
from devmesh.providers.gitlab import artifacts, logs
from devmesh.providers.gitlab.builds import GITLAB_STATUSES, build_of, status_of
from devmesh.providers.gitlab.client import GitLabClient
from devmesh.providers.gitlab.ids import (
    PipelineRef,
    ScheduleRef,
    checked_project,
    is_schedule_id,
    parse_build_id,
    parse_schedule_id,
)
from devmesh.providers.gitlab.models import GitLabConfig, WireJob, WireSchedule

__all__ = ["GitLabAdapter"]

_MAX_JOBS = 500
_MAX_PROJECTS = 20
_SCHEDULES_PER_PROJECT = 50
_WAIT_S = 5.0
_POLL_S = 0.25


class GitLabAdapter:
    """CI, pipeline and artifact operations on one GitLab (gitlab.com or self-hosted)."""

    def __init__(self, connection: Connection) -> None:
        if not isinstance(connection.config, GitLabConfig):
            raise TypeError(f"expected a GitLabConfig, got {type(connection.config).__name__}")
        self._config = connection.config
        self._client = GitLabClient(connection, timeout=self._config.request_timeout)

    # --- CIAdapter -------------------------------------------------------------------

    async def ping(self) -> None:
        await self._client.version()

    async def trigger_build(self, request: BuildRequest) -> Build:
        project = checked_project(request.project)
        if request.commit:
            raise UpstreamInvalidArgument(
                "GitLab runs a pipeline on the head of a branch or tag and takes no commit; "
                "leave commit out and pass branch (a branch or tag name)",
                details={"field": "commit"},
            )
        ref = request.branch or (await self._client.project(project)).default_branch
        if not ref:
            raise UpstreamInvalidArgument(
                f"project {project} has no default branch; pass branch",
                details={"field": "branch"},
            )
        pipeline = await self._client.create_pipeline(
            project, ref=ref, variables=_variables(request.parameters)
        )
        return build_of(PipelineRef(project, pipeline.id), pipeline)

    async def get_build(self, build_id: str) -> Build:
        return await self._build(parse_build_id(build_id))

    async def list_builds(
        self, *, project: str | None, status: BuildStatus | None, limit: int
    ) -> list[Build]:
        if not project:
            raise UpstreamInvalidArgument(
                "GitLab lists pipelines per project: pass project ('group/app')",
                details={"field": "project"},
            )
        name = checked_project(project)
        wanted: tuple[str | None, ...] = GITLAB_STATUSES[status] if status else (None,)
        found = await gather_bounded(
            self._client.pipelines(name, status=gitlab_status, limit=limit)
            for gitlab_status in wanted
        )
        pipelines = sorted((p for group in found for p in group), key=lambda p: -p.id)[:limit]
        jobs: dict[int, list[WireJob]] = {}
        if status is BuildStatus.FAILED:
            # One read of the project's failed jobs says what failed in each pipeline.
            for job in await self._client.failed_jobs(name, limit=100):
                if job.pipeline is not None:
                    jobs.setdefault(job.pipeline.id, []).append(job)
        if status is not BuildStatus.FAILED:
            return [build_of(PipelineRef(name, p.id), p) for p in pipelines]
        return [
            build_of(PipelineRef(name, p.id), p, jobs.get(p.id, []), all_jobs=False)
            for p in pipelines
        ]

    async def cancel_build(self, build_id: str) -> Build:
        ref = parse_build_id(build_id)
        pipeline = await self._client.pipeline(ref.project, ref.pipeline_id)
        if status_of(pipeline.status).finished:
            return await self._build(ref)
        await self._client.cancel_pipeline(ref.project, ref.pipeline_id)
        # GitLab answers while jobs are still canceling; wait a little for the outcome.
        deadline = time.monotonic() + _WAIT_S
        build = await self._build(ref)
        while not build.status.finished and time.monotonic() < deadline:
            await asyncio.sleep(_POLL_S)
            build = await self._build(ref)
        return build

    async def retry_build(self, build_id: str) -> Build:
        ref = parse_build_id(build_id)
        pipeline = await self._client.pipeline(ref.project, ref.pipeline_id)
        status = status_of(pipeline.status)
        if not status.finished:
            raise UpstreamInvalidArgument(
                f"build {ref} is still {status}; retry_build reruns a finished build, so "
                "wait for it or cancel it first",
                details={"build_id": str(ref), "status": str(status)},
            )
        if status is BuildStatus.SUCCEEDED or not pipeline.ref:
            variables = await self._client.pipeline_variable_pairs(ref.project, ref.pipeline_id)
            fresh = await self._client.create_pipeline(
                ref.project, ref=pipeline.ref or "", variables=variables
            )
            rerun = build_of(PipelineRef(ref.project, fresh.id), fresh)
        else:
            retried = await self._client.retry_pipeline(ref.project, ref.pipeline_id)
            rerun = build_of(ref, retried)
        return rerun.model_copy(update={"metadata": {**rerun.metadata, "retry_of": str(ref)}})

    async def read_log_lines(self, build_id: str, *, failed_only: bool) -> list[LogLine]:
        ref = parse_build_id(build_id)
        jobs = await self._client.pipeline_jobs(ref.project, ref.pipeline_id, limit=_MAX_JOBS)
        return await logs.read_log_lines(
            self._client,
            ref.project,
            jobs,
            failed_only=failed_only,
            max_lines=self._config.max_log_lines,
            max_trace_bytes=self._config.max_trace_bytes,
        )

    # --- PipelineAdapter --------------------------------------------------------------

    async def list_pipelines(self) -> list[Pipeline]:
        projects = self._config.projects or [
            p.path_with_namespace for p in await self._client.member_projects(limit=_MAX_PROJECTS)
        ]
        names = [checked_project(p, field="config.projects") for p in projects]
        found = await gather_bounded(
            self._client.schedules(name, limit=_SCHEDULES_PER_PROJECT) for name in names
        )
        return [
            _pipeline(name, schedule)
            for name, schedules in zip(names, found, strict=True)
            for schedule in schedules
        ]

    async def trigger_pipeline(self, request: PipelineRequest) -> PipelineRun:
        ref = parse_schedule_id(request.pipeline, field="pipeline")
        if ref.after is not None:
            raise UpstreamInvalidArgument(
                "pipeline names a run, not a schedule; use an id list_pipelines shows",
                details={"field": "pipeline"},
            )
        for field in ("branch", "commit"):
            if getattr(request, field):
                raise UpstreamInvalidArgument(
                    f"a GitLab pipeline schedule runs its own ref and variables and takes no "
                    f"{field}; use trigger_build for a pipeline of another ref or variables",
                    details={"field": field},
                )
        if request.parameters:
            raise UpstreamInvalidArgument(
                "a GitLab pipeline schedule runs with its own variables and takes no "
                "parameters; use trigger_build to pass variables",
                details={"field": "parameters"},
            )
        before = await self._client.schedule(ref.project, ref.schedule_id)
        last = before.last_pipeline.id if before.last_pipeline else 0
        await self._client.play_schedule(ref.project, ref.schedule_id)
        pending = ScheduleRef(ref.project, ref.schedule_id, after=last)
        deadline = time.monotonic() + _WAIT_S
        while True:
            run = await self._schedule_run(pending)
            if run.builds or time.monotonic() >= deadline:
                return run
            await asyncio.sleep(_POLL_S)

    async def get_pipeline_run(self, run_id: str) -> PipelineRun:
        if is_schedule_id(run_id):
            return await self._schedule_run(parse_schedule_id(run_id, field="run_id"))
        return _run(await self._build(parse_build_id(run_id)))

    # --- ArtifactAdapter --------------------------------------------------------------

    async def list_artifacts(self, build_id: str) -> list[Artifact]:
        ref = parse_build_id(build_id)
        jobs = await self._client.pipeline_jobs(ref.project, ref.pipeline_id, limit=_MAX_JOBS)
        return artifacts.list_artifacts(ref, jobs)

    async def read_artifact(
        self, build_id: str, artifact_id: str, *, offset: int, limit: int
    ) -> ArtifactChunk:
        ref = parse_build_id(build_id)
        return await artifacts.read_artifact(
            self._client, ref, artifact_id, offset=offset, limit=limit
        )

    # --- helpers ----------------------------------------------------------------------

    async def _build(self, ref: PipelineRef) -> Build:
        pipeline, jobs = await asyncio.gather(
            self._client.pipeline(ref.project, ref.pipeline_id),
            self._client.pipeline_jobs(ref.project, ref.pipeline_id, limit=_MAX_JOBS),
        )
        return build_of(ref, pipeline, jobs)

    async def _schedule_run(self, ref: ScheduleRef) -> PipelineRun:
        """The run a schedule's play made: its pipeline once GitLab has made it."""
        if ref.after is None:
            raise UpstreamInvalidArgument(
                "run_id names a schedule, not a run; pass the id trigger_pipeline returned",
                details={"field": "run_id"},
            )
        schedule = await self._client.schedule(ref.project, ref.schedule_id)
        last = schedule.last_pipeline
        if last is not None and last.id > ref.after:
            run = _run(await self._build(PipelineRef(ref.project, last.id)))
            schedule_id = str(ScheduleRef(ref.project, ref.schedule_id))
            return run.model_copy(update={"pipeline_id": schedule_id})
        return PipelineRun(
            id=str(ref),
            pipeline_id=str(ScheduleRef(ref.project, ref.schedule_id)),
            status=BuildStatus.QUEUED,
            status_text="GitLab has not made the schedule's pipeline yet; ask again shortly",
        )


def _variables(parameters: dict[str, Any]) -> list[dict[str, str]]:
    variables = []
    for key, value in parameters.items():
        if isinstance(value, dict | list):
            raise UpstreamInvalidArgument(
                f"parameters.{key} must be a string, number or boolean: GitLab variables are text",
                details={"field": f"parameters.{key}"},
            )
        text = str(value).lower() if isinstance(value, bool) else str(value)
        variables.append({"key": key, "value": "" if value is None else text})
    return variables


def _pipeline(project: str, schedule: WireSchedule) -> Pipeline:
    return Pipeline(
        id=str(ScheduleRef(project, schedule.id)),
        name=f"{project}: {schedule.description or schedule.ref}",
        projects=[project],
        parameters=[],
    )


def _run(build: Build) -> PipelineRun:
    return PipelineRun(
        id=build.id,
        status=build.status,
        status_text=build.status_text,
        started_at=build.started_at,
        finished_at=build.finished_at,
        url=build.url,
        builds=[build],
        metadata={key: build.metadata[key] for key in ("source",) if key in build.metadata},
    )
