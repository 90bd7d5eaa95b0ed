"""The GitHub Actions adapter: builds are workflow runs, steps are jobs.

``trigger_build`` dispatches a workflow (``workflow_dispatch``, with ``branch`` as its
``ref`` and ``parameters`` as its ``inputs``) and finds the run it made: current API
versions answer the dispatch with the run's id (``return_run_details``); where the
answer is a bare 204 (older GitHub Enterprise Server), the run is the newest
``workflow_dispatch`` run of that workflow and ref created since the dispatch, by
GitHub's own clock (the answer's ``Date``): two dispatches of one workflow and ref
within a second may then both name the later run. GitHub runs a ref's head, so ``commit``
is refused rather than ignored.

``retry_build`` re-runs a finished run: its failed jobs (and what depends on them)
when it failed, all of its jobs otherwise. GitHub re-runs in place, as a new attempt
of the same run, so the build it returns names that attempt (``owner/repo#<id>.<n>``).

Pipelines are not offered: a workflow is what a build runs, and GitHub has no run of
several workflows as one.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from devmesh.adapters.concurrency import gather_bounded
from devmesh.adapters.registry import Connection
from devmesh.domain.errors import UpstreamInvalidArgument, UpstreamNotFound
from devmesh.domain.models import Artifact, ArtifactChunk, Build, BuildRequest, BuildStatus, LogLine
from devmesh.providers.github_actions import artifacts, logs
from devmesh.providers.github_actions.builds import (
    FAILED_CONCLUSIONS,
    GITHUB_STATUSES,
    build_of,
    status_of,
)
from devmesh.providers.github_actions.client import GitHubClient
from devmesh.providers.github_actions.ids import RunRef, parse_build_id, parse_project
from devmesh.providers.github_actions.models import GitHubActionsConfig, WireRun

__all__ = ["GitHubActionsAdapter"]

_MAX_JOBS = 256
_MAX_ARTIFACTS = 100
_MAX_INPUTS = 25  # GitHub's limit on a dispatch's inputs
_WAIT_S = 10.0
_POLL_S = 0.25
_CLOCK_SLACK = timedelta(seconds=1)  # created_at has whole seconds


class GitHubActionsAdapter:
    """CI and artifact operations on GitHub Actions (github.com or Enterprise Server)."""

    def __init__(self, connection: Connection) -> None:
        if not isinstance(connection.config, GitHubActionsConfig):
            raise TypeError(
                f"expected a GitHubActionsConfig, got {type(connection.config).__name__}"
            )
        self._config = connection.config
        self._client = GitHubClient(
            connection,
            timeout=self._config.request_timeout,
            installation_id=self._config.installation_id,
        )

    # --- CIAdapter -------------------------------------------------------------------

    async def ping(self) -> None:
        await self._client.rate_limit()

    async def trigger_build(self, request: BuildRequest) -> Build:
        project = parse_project(request.project)
        if request.commit:
            raise UpstreamInvalidArgument(
                "GitHub runs a dispatched workflow on the head of a branch or tag and takes "
                "no commit; leave commit out and pass branch",
                details={"field": "commit"},
            )
        inputs = _inputs(request.parameters)
        workflow = project.workflow or await self._only_workflow(project.repo)
        ref = request.branch or (await self._client.repository(project.repo)).default_branch
        if not ref:
            raise UpstreamInvalidArgument(
                f"repository {project.repo} has no default branch; pass branch",
                details={"field": "branch"},
            )
        dispatched, server_time = await self._client.dispatch(
            project.repo, workflow, ref=ref, inputs=inputs
        )
        if dispatched is not None:
            ref_ = RunRef(project.repo, dispatched.workflow_run_id)
            return build_of(ref_, await self._client.run(ref_))
        run = await self._dispatched_run(project.repo, workflow, ref, since=server_time)
        return build_of(RunRef(project.repo, run.id), run)

    async def get_build(self, build_id: str) -> Build:
        return await self._build(parse_build_id(build_id))

    async def list_builds(
        self, *, project: str | None, status: BuildStatus | None, limit: int
    ) -> list[Build]:
        if not project:
            raise UpstreamInvalidArgument(
                "GitHub lists workflow runs per repository: pass project ('owner/repo')",
                details={"field": "project"},
            )
        named = parse_project(project)
        wanted: tuple[str | None, ...] = GITHUB_STATUSES[status] if status else (None,)
        found = await gather_bounded(
            self._client.runs(
                named.repo, workflow=named.workflow, limit=limit,
                **({"status": github_status} if github_status else {}),
            )
            for github_status in wanted
        )  # fmt: skip
        runs = {run.id: run for group in found for run in group}.values()
        newest = sorted(runs, key=lambda run: (run.created_at, run.id), reverse=True)[:limit]
        return [build_of(RunRef(named.repo, run.id), run) for run in newest]

    async def cancel_build(self, build_id: str) -> Build:
        ref = parse_build_id(build_id)
        run = await self._client.run(ref)
        if status_of(run.status, run.conclusion).finished:
            return await self._build(ref)
        await self._client.cancel(ref.repo, ref.run_id)
        # GitHub answers 202 and cancels the jobs after; wait a little for the outcome.
        deadline = time.monotonic() + _WAIT_S
        build = await self._build(ref)
        while not build.status.finished and time.monotonic() < deadline:
            await asyncio.sleep(_POLL_S)
            build = await self._build(ref)
        return build

    async def retry_build(self, build_id: str) -> Build:
        ref = parse_build_id(build_id)
        latest = RunRef(ref.repo, ref.run_id)
        run = await self._client.run(latest)
        status = status_of(run.status, run.conclusion)
        if not status.finished:
            raise UpstreamInvalidArgument(
                f"build {ref} is still {status}; retry_build re-runs a finished build, so "
                "wait for it or cancel it first",
                details={"build_id": str(ref), "status": str(status)},
            )
        before = run.run_attempt or 1
        await self._client.rerun(
            ref.repo, ref.run_id, failed_only=run.conclusion in FAILED_CONCLUSIONS
        )
        deadline = time.monotonic() + _WAIT_S
        while (run.run_attempt or 1) <= before and time.monotonic() < deadline:
            await asyncio.sleep(_POLL_S)
            run = await self._client.run(latest)
        attempt = RunRef(ref.repo, ref.run_id, attempt=max(before + 1, run.run_attempt or 1))
        build = build_of(attempt, run)
        return build.model_copy(update={"metadata": {**build.metadata, "retry_of": str(ref)}})

    async def read_log_lines(self, build_id: str, *, failed_only: bool) -> list[LogLine]:
        ref = parse_build_id(build_id)
        jobs = await self._client.jobs(ref, limit=_MAX_JOBS)
        return await logs.read_log_lines(
            self._client,
            ref.repo,
            jobs,
            failed_only=failed_only,
            max_lines=self._config.max_log_lines,
            max_job_log_bytes=self._config.max_job_log_bytes,
        )

    # --- ArtifactAdapter --------------------------------------------------------------

    async def list_artifacts(self, build_id: str) -> list[Artifact]:
        ref = parse_build_id(build_id)
        found, jobs = await asyncio.gather(
            self._client.artifacts(ref, limit=_MAX_ARTIFACTS),
            self._client.jobs(ref, limit=_MAX_JOBS),
        )
        return await artifacts.list_artifacts(
            self._client, ref, found, jobs, max_archive_bytes=self._config.max_archive_bytes
        )

    async def read_artifact(
        self, build_id: str, artifact_id: str, *, offset: int, limit: int
    ) -> ArtifactChunk:
        return await artifacts.read_artifact(
            self._client,
            parse_build_id(build_id),
            artifact_id,
            offset=offset,
            limit=limit,
            max_archive_bytes=self._config.max_archive_bytes,
        )

    # --- helpers ----------------------------------------------------------------------

    async def _build(self, ref: RunRef) -> Build:
        run, jobs = await asyncio.gather(
            self._client.run(ref), self._client.jobs(ref, limit=_MAX_JOBS)
        )
        return build_of(ref, run, jobs)

    async def _only_workflow(self, repo: str) -> str:
        active = [w for w in await self._client.workflows(repo) if w.state == "active"]
        if len(active) == 1:
            return active[0].path.rsplit("/", 1)[-1]
        names = ", ".join(sorted(w.path.rsplit("/", 1)[-1] for w in active)[:10]) or "none"
        raise UpstreamInvalidArgument(
            f"repository {repo} has {len(active)} active workflows ({names}); name one as "
            f"'{repo}:<workflow file>'",
            details={"field": "project"},
        )

    async def _dispatched_run(
        self, repo: str, workflow: str, ref: str, *, since: datetime | None
    ) -> WireRun:
        """The run a dispatch answered without an id made: GitHub creates it shortly
        after, as the newest dispatched run of the workflow and ref since then."""
        start = (since or datetime.now(UTC)) - _CLOCK_SLACK
        deadline = time.monotonic() + _WAIT_S
        while True:
            # Newest first; the time is compared here: ``created`` takes GitHub's search
            # syntax in its docs but a bare date-time in its OpenAPI description.
            runs = await self._client.runs(
                repo, workflow=workflow, limit=20, event="workflow_dispatch", branch=ref
            )
            mine = [run for run in runs if run.created_at >= start]
            if mine:
                # The newest: times have whole seconds, so an older run of the same
                # second qualifies too, and ours is the last one made.
                return max(mine, key=lambda run: (run.created_at, run.id))
            if time.monotonic() >= deadline:
                raise UpstreamNotFound(
                    f"github accepted the dispatch of {workflow} in {repo} but showed no run "
                    f"of it within {_WAIT_S:.0f} s; list_builds will show it once it starts",
                    details={"field": "project"},
                )
            await asyncio.sleep(_POLL_S)


def _inputs(parameters: dict[str, Any]) -> dict[str, str]:
    if len(parameters) > _MAX_INPUTS:
        raise UpstreamInvalidArgument(
            f"GitHub takes at most {_MAX_INPUTS} workflow inputs", details={"field": "parameters"}
        )
    inputs: dict[str, str] = {}
    for key, value in parameters.items():
        if isinstance(value, dict | list):
            raise UpstreamInvalidArgument(
                f"parameters.{key} must be a string, number or boolean: workflow inputs are text",
                details={"field": f"parameters.{key}"},
            )
        inputs[key] = "" if value is None else str(value).lower() if isinstance(value, bool) \
            else str(value)  # fmt: skip
    return inputs
