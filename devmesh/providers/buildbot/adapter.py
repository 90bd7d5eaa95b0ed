"""The Buildbot adapter: the CI, pipeline and artifact operations over Buildbot's REST API.

Build ids. Buildbot answers a trigger with a *build request*; the build itself is
made only when a worker takes the request, maybe much later. So there are two
kinds of id, and every operation takes both:

* ``br-<buildrequestid>``: what ``trigger_build`` and ``retry_build`` return. It
  works at once: while nothing runs it reads as ``queued`` (or ``cancelled`` if the
  request was dropped); once a build runs it reads as that build, under the
  build's own id (the newest build, if Buildbot retried the request).
* ``<buildid>`` (digits): a build that started, as ``list_builds`` shows it and as
  a ``br-`` id resolves to. It is Buildbot's global build id, not the per-builder
  number shown in the UI (that one is ``Build.number``).

Statuses (``builds``), logs (``logs``), pipelines (``pipelines``) and artifacts
(``artifacts``) are described in their modules; this class puts them together.
"""

from __future__ import annotations

import asyncio
import time

from devmesh.adapters.registry import Connection
from devmesh.domain.errors import AdapterError, UpstreamInvalidArgument
from devmesh.domain.models import (
    Build,
    BuildRequest,
    BuildStatus,
    LogLine,
)
from devmesh.providers.buildbot import logs
from devmesh.providers.buildbot.artifacts import ArtifactOperations
from devmesh.providers.buildbot.builds import BUILD_PROPERTIES, RESULTS_FOR_STATUS, Builds
from devmesh.providers.buildbot.catalog import Catalog, force_params
from devmesh.providers.buildbot.client import BuildbotClient
from devmesh.providers.buildbot.models import BuildbotConfig
from devmesh.providers.buildbot.pipelines import PipelineOperations

__all__ = ["BuildbotAdapter"]

_CANCEL_REASON = "cancelled through Developer Mesh"
_CANCEL_WAIT_S = 10.0
_POLL_S = 0.2


class BuildbotAdapter(PipelineOperations, ArtifactOperations):
    """CI operations on one Buildbot master. Keep one per tool instance: it caches the
    master's builders and force schedulers, and its login session."""

    def __init__(self, connection: Connection) -> None:
        if not isinstance(connection.config, BuildbotConfig):
            raise TypeError(f"expected a BuildbotConfig, got {type(connection.config).__name__}")
        self._config = connection.config
        self._client = BuildbotClient(
            base_url=connection.base_url,
            http=connection.http,
            credentials=connection.credentials,
            timeout=connection.config.request_timeout,
            policy=connection.policy,
        )
        self._catalog = Catalog(self._client, scheduler=self._config.scheduler)
        self._builds = Builds(self._client, self._catalog)

    # --- CIAdapter -------------------------------------------------------------------

    async def ping(self) -> None:
        await self._catalog.builders.get(max_age=0)

    async def trigger_build(self, request: BuildRequest) -> Build:
        builder = await self._catalog.builder_named(request.project)
        scheduler = await self._catalog.scheduler_for(builder.name, request.parameters)
        params = force_params(
            scheduler,
            f"for {builder.name!r}",
            parameters=request.parameters,
            branch=request.branch,
            commit=request.commit,
            reason=request.reason,
        )
        # builderNames, unlike builderid, is checked against the scheduler's own builders.
        params["builderNames"] = [builder.name]
        requests = (await self._client.force(scheduler.name, params)).requests
        if builder.builderid not in requests:
            raise AdapterError(
                f"buildbot accepted the trigger of {builder.name!r} but made no build request "
                f"for it; check force scheduler {scheduler.name!r} in master.cfg"
            )
        return self._builds.requested(builder.name, builder.builderid, requests[builder.builderid])

    async def get_build(self, build_id: str) -> Build:
        return (await self._builds.find(build_id)).build

    async def list_builds(
        self, *, project: str | None, status: BuildStatus | None, limit: int
    ) -> list[Build]:
        builderid = (await self._catalog.builder_named(project)).builderid if project else None
        queued: list[Build] = []
        if status in (None, BuildStatus.QUEUED):
            # Requests waiting for a worker have no build yet, but they are the newest work.
            pending = await self._client.pending_build_requests(builderid=builderid, limit=limit)
            queued = [await self._builds.queued(request) for request in pending]
            if status is BuildStatus.QUEUED:
                return queued[:limit]
        wires = await self._client.builds(
            builderid=builderid,
            complete=False if status is BuildStatus.RUNNING else None,
            results=RESULTS_FOR_STATUS.get(status, ()) if status else (),
            limit=limit,
            properties=BUILD_PROPERTIES,
        )
        builds = [await self._builds.build(wire) for wire in wires]
        return (queued + builds)[:limit]

    async def cancel_build(self, build_id: str) -> Build:
        found = await self._builds.find(build_id)
        if found.build.status.finished:
            return found.build
        if found.buildid is None or found.build.status is BuildStatus.QUEUED:
            # Cancelling the request also stops its build if a worker took it meanwhile.
            await self._client.cancel_build_request(found.buildrequestid, reason=_CANCEL_REASON)
        else:
            await self._client.stop_build(found.buildid, reason=_CANCEL_REASON)
        # Buildbot answers before the worker has stopped; wait a little for the outcome.
        deadline = time.monotonic() + _CANCEL_WAIT_S
        build = found.build
        while not build.status.finished and time.monotonic() < deadline:
            await asyncio.sleep(_POLL_S)
            build = (await self._builds.find(build_id)).build
        return build

    async def retry_build(self, build_id: str) -> Build:
        found = await self._builds.find(build_id)
        if not found.build.status.finished:
            raise UpstreamInvalidArgument(
                f"build {build_id} is still {found.build.status}; retry_build reruns a finished "
                "build, so wait for it or cancel it first",
                details={"build_id": build_id, "status": str(found.build.status)},
            )
        if found.buildid is None:
            raise UpstreamInvalidArgument(
                f"build {build_id} was {found.build.status} before it started, so there is no "
                "build to rerun; use trigger_build instead",
                details={"build_id": build_id},
            )
        requests = (await self._client.rebuild(found.buildid)).requests
        if found.builderid not in requests:
            raise AdapterError(
                f"buildbot accepted the rebuild of build {found.buildid} but made no build request"
            )
        rebuilt = self._builds.requested(
            found.build.project, found.builderid, requests[found.builderid]
        )
        metadata = {**rebuilt.metadata, "rebuild_of": str(found.buildid)}
        return rebuilt.model_copy(update={"metadata": metadata})

    async def read_log_lines(self, build_id: str, *, failed_only: bool) -> list[LogLine]:
        found = await self._builds.find(build_id)
        if found.buildid is None:
            return []
        return await logs.read_log_lines(
            self._client,
            found.buildid,
            failed_only=failed_only,
            max_lines=self._config.max_log_lines,
        )
