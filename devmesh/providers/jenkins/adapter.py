"""The Jenkins adapter: a project is a job, a build is one of its builds.

``trigger_build`` queues a build (``buildWithParameters``, or ``build`` for a job
without parameters) and returns at once with the queue item's id
(``team/app#queue-17``), which every operation takes; ``get_build_status`` follows
the item to the build it became. ``retry_build`` queues a new build of the same job
with the parameters the old one ran with (Jenkins core has no "rebuild" API).
``cancel_build`` stops a running build (``/stop``) or takes a queued one out of the
queue (``/queue/cancelItem``).

Pipelines are not offered: Jenkins has no object above a job that starts several
builds as one run (a Pipeline job is a job, and its builds are builds here).
Artifacts are the build's archived files (``artifact/<path>``) and its console
(``console``, read from any offset with ``progressiveText``, so a running build's
log can be followed).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from devmesh.adapters.registry import Connection
from devmesh.domain.errors import UpstreamInvalidArgument, UpstreamNotFound
from devmesh.domain.models import (
    Artifact,
    ArtifactChunk,
    Build,
    BuildRequest,
    BuildStatus,
    LogLine,
)
from devmesh.providers.jenkins.builds import build_of, queued_build_of
from devmesh.providers.jenkins.client import JenkinsClient
from devmesh.providers.jenkins.ids import (
    BuildRef,
    QueueRef,
    checked_job,
    job_path,
    parse_build_id,
)
from devmesh.providers.jenkins.logs import log_lines
from devmesh.providers.jenkins.models import JenkinsConfig, WireJob

__all__ = ["JenkinsAdapter"]

# Jenkins lists a job's newest builds; more than this is not worth one answer.
_MAX_LISTED = 100
_WAIT_S = 5.0
_POLL_S = 0.2
_CONSOLE = "console"
_FILE = "artifact/"
_MAX_PATH = 1024


class JenkinsAdapter:
    """CI and artifact operations on one Jenkins controller."""

    def __init__(self, connection: Connection) -> None:
        if not isinstance(connection.config, JenkinsConfig):
            raise TypeError(f"expected a JenkinsConfig, got {type(connection.config).__name__}")
        self._config = connection.config
        self._client = JenkinsClient(connection, timeout=self._config.request_timeout)

    # --- CIAdapter -------------------------------------------------------------------

    async def ping(self) -> None:
        await self._client.whoami()

    async def trigger_build(self, request: BuildRequest) -> Build:
        job = checked_job(request.project)
        for field in ("branch", "commit"):
            if getattr(request, field):
                raise UpstreamInvalidArgument(
                    f"a Jenkins job decides for itself what it checks out and takes no "
                    f"{field}; if the job has a parameter for it, pass it in parameters",
                    details={"field": field},
                )
        found = await self._job(job)
        parameters = _parameters(found, request.parameters)
        queue_id = await self._client.trigger(job, parameters=parameters)
        ref = QueueRef(job, queue_id)
        item = await self._client.queue_item(queue_id)
        if item is not None and item.executable is not None:
            return await self._build(BuildRef(job, item.executable.number))
        return Build(
            id=str(ref),
            project=job,
            status=BuildStatus.QUEUED,
            status_text=(item.why if item is not None else None) or "queued",
            metadata={"queue_id": queue_id, "failed_stage": None},
        )

    async def get_build(self, build_id: str) -> Build:
        ref = parse_build_id(build_id)
        if isinstance(ref, BuildRef):
            return await self._build(ref)
        return await self._queued(ref)

    async def list_builds(
        self, *, project: str | None, status: BuildStatus | None, limit: int
    ) -> list[Build]:
        if not project:
            raise UpstreamInvalidArgument(
                "Jenkins lists builds per job: pass project (the job's full name, 'team/app')",
                details={"field": "project"},
            )
        job = checked_job(project)
        wanted = min(_MAX_LISTED, limit if status is None else _MAX_LISTED)
        builds = [
            build_of(BuildRef(job, b.number), b, unstable_is=self._config.unstable_is)
            for b in await self._client.builds(job, limit=wanted)
        ]
        return [b for b in builds if status is None or b.status is status][:limit]

    async def cancel_build(self, build_id: str) -> Build:
        ref = parse_build_id(build_id)
        if isinstance(ref, QueueRef):
            item = await self._client.queue_item(ref.queue_id)
            if item is not None and not item.left:
                await self._client.cancel_queue_item(ref.queue_id)
            # It may have left the queue for an executor meanwhile: then stop the build.
            resolved = await self._resolved(ref)
            if isinstance(resolved, Build):
                return resolved
            ref = resolved
        build = await self._build(ref)
        if build.status.finished:
            return build
        await self._client.stop(ref.job, ref.number)
        # Jenkins answers before the build has wound down; wait a little for the outcome.
        deadline = time.monotonic() + _WAIT_S
        while not build.status.finished and time.monotonic() < deadline:
            await asyncio.sleep(_POLL_S)
            build = await self._build(ref)
        return build

    async def retry_build(self, build_id: str) -> Build:
        original = await self.get_build(build_id)
        if not original.status.finished or original.number is None:
            raise UpstreamInvalidArgument(
                f"build {build_id} is {original.status_text}; retry_build reruns a build that "
                "ran and finished, so wait for it (or trigger_build a build that never ran)",
                details={"build_id": build_id, "status": str(original.status)},
            )
        job = checked_job(original.project)
        found = await self._job(job)
        wire = await self._client.build(job, original.number)
        parameters = _parameters(found, wire.parameters())
        queue_id = await self._client.trigger(job, parameters=parameters)
        return Build(
            id=str(QueueRef(job, queue_id)),
            project=job,
            status=BuildStatus.QUEUED,
            status_text="queued",
            metadata={"queue_id": queue_id, "retry_of": original.id, "failed_stage": None},
        )

    async def read_log_lines(self, build_id: str, *, failed_only: bool) -> list[LogLine]:
        ref = await self._started(build_id)
        if isinstance(ref, Build):
            return []  # still queued, or dropped from the queue: no log yet
        build = await self._build(ref)
        tail = await self._client.console_tail(
            ref.job, ref.number, max_bytes=self._config.max_log_bytes
        )
        return log_lines(
            tail,
            failed=build.status is BuildStatus.FAILED,
            failed_only=failed_only,
            max_lines=self._config.max_log_lines,
        )

    # --- ArtifactAdapter --------------------------------------------------------------

    async def list_artifacts(self, build_id: str) -> list[Artifact]:
        ref = await self._started(build_id)
        if isinstance(ref, Build):
            return []
        build = await self._client.build(ref.job, ref.number)
        found = [
            Artifact(
                id=_FILE + item.relativePath,
                name=item.displayPath or item.fileName,
                build_id=str(ref),
                kind="file",
                url=f"{build.url}artifact/{item.relativePath}" if build.url else None,
                downloadable=True,
                metadata={"path": item.relativePath},
            )
            for item in build.artifacts
        ]
        found.append(
            Artifact(
                id=_CONSOLE,
                name="console text",
                build_id=str(ref),
                kind="log",
                content_type="text/plain",
                url=f"{build.url}consoleText" if build.url else None,
                downloadable=True,
                metadata={"growing": build.building},
            )
        )
        return found

    async def read_artifact(
        self, build_id: str, artifact_id: str, *, offset: int, limit: int
    ) -> ArtifactChunk:
        path = _artifact_path(artifact_id)
        ref = await self._started(build_id)
        if isinstance(ref, Build):
            raise UpstreamNotFound(
                f"build {build_id} has not started, so it has no {artifact_id} yet",
                details={"field": "build_id"},
            )
        if path is None:
            window = await self._client.console_window(
                ref.job, ref.number, offset=offset, limit=limit
            )
        else:
            window = await self._client.artifact_window(
                ref.job, ref.number, path, offset=offset, limit=limit
            )
        return ArtifactChunk(
            data=window.data,
            offset=offset,
            size=window.size,
            more=window.more,
            content_type=window.content_type,
        )

    # --- helpers ----------------------------------------------------------------------

    async def _job(self, job: str) -> WireJob:
        found = await self._client.job(job)
        if found.is_folder:
            raise UpstreamInvalidArgument(
                f"{job} is a folder, not a job; name a job in it ('{job}/<job>')",
                details={"field": "project"},
            )
        return found

    async def _build(self, ref: BuildRef) -> Build:
        wire = await self._client.build(ref.job, ref.number)
        return build_of(ref, wire, unstable_is=self._config.unstable_is)

    async def _queued(self, ref: QueueRef) -> Build:
        resolved = await self._resolved(ref)
        return resolved if isinstance(resolved, Build) else await self._build(resolved)

    async def _resolved(self, ref: QueueRef) -> BuildRef | Build:
        """The build a queue item became, or the queued (or cancelled) build it still is."""
        item = await self._client.queue_item(ref.queue_id)
        if item is not None:
            task = str((item.task or {}).get("url") or "")
            if task and not _same_job(task, ref.job):
                raise UpstreamNotFound(
                    f"queue item {ref.queue_id} is not a build of {ref.job}",
                    details={"field": "build_id"},
                )
            if item.executable is not None:
                return BuildRef(ref.job, item.executable.number)
            return queued_build_of(ref, item)
        # Jenkins forgets a left item after a few minutes; its build keeps the queue id.
        for build in await self._client.builds(ref.job, limit=_MAX_LISTED):
            if build.queueId == ref.queue_id:
                return BuildRef(ref.job, build.number)
        raise UpstreamNotFound(
            f"jenkins has no queued build {ref} (nor a recent build of {ref.job} from it)",
            details={"field": "build_id"},
        )

    async def _started(self, build_id: str) -> BuildRef | Build:
        ref = parse_build_id(build_id)
        return await self._resolved(ref) if isinstance(ref, QueueRef) else ref


def _same_job(task_url: str, job: str) -> bool:
    return task_url.rstrip("/").endswith(job_path(job))


def _parameters(job: WireJob, given: dict[str, Any]) -> dict[str, str] | None:
    """What ``buildWithParameters`` takes, or ``None`` for ``build`` (no parameters).

    Jenkins silently drops parameters a job does not define (SECURITY-170), so a
    misspelt name is refused here, naming it, rather than ignored."""
    defined = {definition.name for definition in job.parameters()}
    if not defined:
        if given:
            raise UpstreamInvalidArgument(
                "this Jenkins job takes no parameters; leave parameters out",
                details={"field": "parameters"},
            )
        return None
    values: dict[str, str] = {}
    for key, value in given.items():
        if key not in defined:
            raise UpstreamInvalidArgument(
                f"the job has no parameter {key!r}; it takes: {', '.join(sorted(defined))}",
                details={"field": f"parameters.{key}"},
            )
        if isinstance(value, dict | list):
            raise UpstreamInvalidArgument(
                f"parameters.{key} must be a string, number or boolean",
                details={"field": f"parameters.{key}"},
            )
        text = str(value).lower() if isinstance(value, bool) else str(value)
        values[key] = "" if value is None else text
    return values


def _artifact_path(artifact_id: str) -> str | None:
    """``None`` for the console, else the archived file's relative path (checked)."""
    if artifact_id == _CONSOLE:
        return None
    path = artifact_id.removeprefix(_FILE)
    parts = path.split("/")
    if (
        not artifact_id.startswith(_FILE)
        or len(path) > _MAX_PATH
        or any(part in ("", ".", "..") for part in parts)
    ):
        raise UpstreamInvalidArgument(
            f"artifact_id {artifact_id[:80]!r} is not an artifact of a Jenkins build; use an "
            "id get_artifacts shows: 'artifact/<path>' or 'console'",
            details={"field": "artifact_id"},
        )
    return path
