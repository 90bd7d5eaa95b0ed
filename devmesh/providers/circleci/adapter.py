"""The CircleCI adapter: a project is a project slug, a build is a pipeline.

``trigger_build`` triggers a pipeline on a branch with pipeline parameters (``POST
/project/{slug}/pipeline``) and returns at once with the pipeline's id. A build's
status rolls up its workflows (``builds.py``). ``cancel_build`` cancels each of its
workflows still running; ``retry_build`` reruns each of its workflows, a failed one
``from_failed`` (only the jobs that did not succeed run again), the others whole, and
returns the reruns as a new build (``<pipeline id>/<workflow id>,…``, see ``ids.py``).
Logs are the jobs' step outputs (``logs.py``); artifacts are the jobs' stored
artifacts, with ids ``<job number>/<path>``.

Pipelines (``trigger_pipeline``) are not offered: a CircleCI pipeline is the build
here, and there is no object above it that starts several.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from devmesh.adapters.concurrency import gather_bounded
from devmesh.adapters.registry import Connection
from devmesh.domain.errors import UpstreamInvalidArgument, UpstreamNotFound
from devmesh.domain.models import Artifact, ArtifactChunk, Build, BuildRequest, BuildStatus, LogLine
from devmesh.providers.circleci.builds import build_of, status_of_workflow
from devmesh.providers.circleci.client import CircleCIClient
from devmesh.providers.circleci.ids import BuildRef, checked_slug, parse_build_id
from devmesh.providers.circleci.logs import StepOutput, log_lines
from devmesh.providers.circleci.models import (
    CircleCIConfig,
    WireArtifact,
    WireJob,
    WirePipeline,
    WireWorkflow,
)

__all__ = ["CircleCIAdapter"]

_MAX_LISTED = 100
_WAIT_S = 10.0
_POLL_S = 0.2
_MAX_PATH = 1024


class CircleCIAdapter:
    """CI and artifact operations on CircleCI (cloud, or a server at base_url)."""

    def __init__(self, connection: Connection) -> None:
        if not isinstance(connection.config, CircleCIConfig):
            raise TypeError(f"expected a CircleCIConfig, got {type(connection.config).__name__}")
        self._config = connection.config
        self._client = CircleCIClient(connection, timeout=self._config.request_timeout)

    # --- CIAdapter ---------------------------------------------------------------------------

    async def ping(self) -> None:
        await self._client.me()

    async def trigger_build(self, request: BuildRequest) -> Build:
        slug = checked_slug(request.project)
        if request.commit:
            raise UpstreamInvalidArgument(
                "CircleCI triggers a pipeline on the head of a branch (or a tag) and takes no "
                "commit; pass branch",
                details={"field": "commit"},
            )
        parameters = _parameters(request.parameters)
        try:
            created = await self._client.trigger(slug, branch=request.branch, parameters=parameters)
        except UpstreamInvalidArgument as exc:
            # CircleCI's 400 here is about the parameters (undeclared, wrong type) or branch.
            field = "parameters" if parameters else "branch"
            raise UpstreamInvalidArgument(
                exc.message, details={**exc.details, "field": field}
            ) from exc
        return Build(
            id=created.id,
            project=slug,
            number=created.number,
            branch=request.branch,
            status=BuildStatus.FAILED if created.state == "errored" else BuildStatus.QUEUED,
            status_text=created.state,
            metadata={
                "pipeline_number": created.number,
                "state": created.state,
                "failed_stage": None,
            },
        )

    async def get_build(self, build_id: str) -> Build:
        return await self._build(parse_build_id(build_id))

    async def list_builds(
        self, *, project: str | None, status: BuildStatus | None, limit: int
    ) -> list[Build]:
        if not project:
            raise UpstreamInvalidArgument(
                "CircleCI lists pipelines per project: pass project (a slug, 'gh/org/repo')",
                details={"field": "project"},
            )
        slug = checked_slug(project)
        wanted = min(_MAX_LISTED, limit if status is None else _MAX_LISTED)
        pipelines = await self._client.pipelines(slug, limit=wanted)
        builds = await gather_bounded(self._build(BuildRef(p.id), pipeline=p) for p in pipelines)
        return [b for b in builds if status is None or b.status is status][:limit]

    async def cancel_build(self, build_id: str) -> Build:
        ref = parse_build_id(build_id)
        pipeline = await self._client.pipeline(ref.pipeline)
        workflows = await self._workflows(ref)
        deadline = time.monotonic() + _WAIT_S
        # Right after the trigger CircleCI is still compiling the config: no workflow yet.
        while not workflows and pipeline.state != "errored" and time.monotonic() < deadline:
            await asyncio.sleep(_POLL_S)
            pipeline = await self._client.pipeline(ref.pipeline)
            workflows = await self._workflows(ref)
        for workflow in workflows:
            if not status_of_workflow(workflow.status).finished:
                await self._client.cancel(workflow.id)
        build = await self._build(ref)
        # CircleCI answers 202 before the jobs have stopped; wait a little for it.
        while not build.status.finished and time.monotonic() < deadline:
            await asyncio.sleep(_POLL_S)
            build = await self._build(ref)
        return build

    async def retry_build(self, build_id: str) -> Build:
        ref = parse_build_id(build_id)
        original = await self._build(ref)
        if not original.status.finished:
            raise UpstreamInvalidArgument(
                f"build {build_id} is {original.status}; retry_build reruns workflows that "
                "finished, so wait for it (or cancel it first)",
                details={"field": "build_id", "status": str(original.status)},
            )
        workflows = await self._workflows(ref)
        if not workflows:
            raise UpstreamInvalidArgument(
                f"build {build_id} ran no workflow (its pipeline is {original.status_text}); "
                "there is nothing to rerun: trigger_build a new one",
                details={"field": "build_id"},
            )
        reruns = [
            await self._client.rerun(
                w.id, from_failed=status_of_workflow(w.status) is BuildStatus.FAILED
            )
            for w in workflows
        ]
        build = await self._build(BuildRef(ref.pipeline, tuple(reruns)))
        return build.model_copy(update={"metadata": {**build.metadata, "retry_of": original.id}})

    async def read_log_lines(self, build_id: str, *, failed_only: bool) -> list[LogLine]:
        ref = parse_build_id(build_id)
        build = await self._build(ref)
        jobs = await self._jobs(ref)
        slug = build.project
        details = await gather_bounded(
            self._client.job_detail(slug, job.job_number) for job in jobs if job.job_number
        )
        named = [job.name for job in jobs if job.job_number]
        wanted: list[tuple[str, str, bool, str]] = []
        for name, detail in zip(named, details, strict=True):
            for step in detail.steps:
                for action in step.actions:
                    if action.output_url and action.has_output is not False:
                        failed = bool(action.failed) or action.status == "failed"
                        wanted.append((name, step.name, failed, action.output_url))
        outputs = await gather_bounded(
            self._client.step_output(url, limit=self._config.max_step_bytes)
            for _, _, _, url in wanted
        )
        steps = [
            StepOutput(job=job, step=step, failed=failed, messages=messages, clipped=clipped)
            for (job, step, failed, _), (messages, clipped) in zip(wanted, outputs, strict=True)
        ]
        return log_lines(
            steps,
            failed=build.status is BuildStatus.FAILED,
            failed_only=failed_only,
            max_lines=self._config.max_log_lines,
        )

    # --- ArtifactAdapter -------------------------------------------------------------------

    async def list_artifacts(self, build_id: str) -> list[Artifact]:
        ref = parse_build_id(build_id)
        slug, jobs = await self._slug_and_jobs(ref)
        numbered = [job for job in jobs if job.job_number]
        found = await gather_bounded(
            self._client.artifacts(slug, job.job_number or 0) for job in numbered
        )
        return [
            Artifact(
                id=f"{job.job_number}/{item.path}",
                name=item.path,
                build_id=str(ref),
                kind="file",
                url=item.url,
                downloadable=True,
                metadata={
                    "job": job.name,
                    "job_number": job.job_number,
                    "node_index": item.node_index,
                },
            )
            for job, items in zip(numbered, found, strict=True)
            for item in items
        ]

    async def read_artifact(
        self, build_id: str, artifact_id: str, *, offset: int, limit: int
    ) -> ArtifactChunk:
        number, path = _artifact_ref(artifact_id)
        ref = parse_build_id(build_id)
        slug, jobs = await self._slug_and_jobs(ref)
        if number not in {job.job_number for job in jobs}:
            raise UpstreamNotFound(
                f"job {number} is not a job of build {build_id}", details={"field": "artifact_id"}
            )
        item = _find(await self._client.artifacts(slug, number), path)
        if item is None:
            raise UpstreamNotFound(
                f"job {number} of build {build_id} stored no artifact {path[:200]!r}",
                details={"field": "artifact_id"},
            )
        window = await self._client.artifact_window(item.url, offset=offset, limit=limit)
        return ArtifactChunk(
            data=window.data,
            offset=offset,
            size=window.size,
            more=window.more,
            content_type=window.content_type,
        )

    # --- helpers -------------------------------------------------------------------------------

    async def _workflows(self, ref: BuildRef) -> list[WireWorkflow]:
        """The build's workflows: the named reruns, or the pipeline's first run of each
        workflow (reruns of it are other builds)."""
        if ref.workflows:
            found = await gather_bounded(self._client.workflow(w) for w in ref.workflows)
            if any(w.pipeline_id != ref.pipeline for w in found):
                raise UpstreamNotFound(
                    f"a workflow of {ref} is not in pipeline {ref.pipeline}",
                    details={"field": "build_id"},
                )
            return found
        first: dict[str, WireWorkflow] = {}
        for workflow in sorted(
            await self._client.workflows(ref.pipeline), key=lambda w: w.created_at
        ):
            first.setdefault(workflow.name, workflow)
        return list(first.values())

    async def _jobs(
        self, ref: BuildRef, workflows: list[WireWorkflow] | None = None
    ) -> list[WireJob]:
        chosen = workflows if workflows is not None else await self._workflows(ref)
        lists = await gather_bounded(self._client.jobs(w.id) for w in chosen)
        return [job for jobs in lists for job in jobs]

    async def _slug_and_jobs(self, ref: BuildRef) -> tuple[str, list[WireJob]]:
        pipeline = await self._client.pipeline(ref.pipeline)
        return pipeline.project_slug, await self._jobs(ref)

    async def _build(self, ref: BuildRef, *, pipeline: WirePipeline | None = None) -> Build:
        pipeline = pipeline or await self._client.pipeline(ref.pipeline)
        workflows = await self._workflows(ref)
        failed = [w for w in workflows if status_of_workflow(w.status) is BuildStatus.FAILED]
        failed_jobs = await self._jobs(ref, failed) if failed else []
        return build_of(
            ref, pipeline, workflows, failed_jobs=failed_jobs, app_url=self._config.app_url
        )


def _parameters(given: dict[str, Any]) -> dict[str, Any]:
    """Pipeline parameters as CircleCI takes them: strings, integers and booleans."""
    for key, value in given.items():
        if not isinstance(value, str | int | bool):
            raise UpstreamInvalidArgument(
                f"parameters.{key} must be a string, integer or boolean (CircleCI's "
                "pipeline parameter types)",
                details={"field": f"parameters.{key}"},
            )
    return dict(given)


def _artifact_ref(artifact_id: str) -> tuple[int, str]:
    number, _, path = artifact_id.partition("/")
    parts = path.split("/")
    if (
        not number.isdigit()
        or len(number) > 12
        or not path
        or len(path) > _MAX_PATH
        or any(part in ("", ".", "..") for part in parts)
    ):
        raise UpstreamInvalidArgument(
            f"artifact_id {artifact_id[:80]!r} is not an artifact of a CircleCI build; use an "
            "id get_artifacts shows: '<job number>/<path>'",
            details={"field": "artifact_id"},
        )
    return int(number), path


def _find(items: list[WireArtifact], path: str) -> WireArtifact | None:
    return next((item for item in items if item.path == path), None)
