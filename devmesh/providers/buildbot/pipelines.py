"""Pipelines: a pipeline is a force scheduler (its name is the pipeline's id) and the
builders it can start are its projects.

``trigger_pipeline`` forces it for all of them; Buildbot makes one *buildset* holding
a build request per builder, so a run's id is ``bs-<buildsetid>``. A run lists one
build per request under the build ids (``br-<n>`` while queued, the build id once
started); its status is the kit's roll-up of theirs.
"""

from __future__ import annotations

import asyncio
import re

from devmesh.adapters import rollup
from devmesh.domain.errors import AdapterError, UpstreamNotFound
from devmesh.domain.models import Build, BuildStatus, Pipeline, PipelineRequest, PipelineRun
from devmesh.providers.buildbot.builds import (
    BUILD_PROPERTIES,
    RETRY,
    Builds,
    build_property,
    status_of,
)
from devmesh.providers.buildbot.builds import time_of as _time
from devmesh.providers.buildbot.catalog import Catalog, force_params, settable
from devmesh.providers.buildbot.client import BuildbotClient
from devmesh.providers.buildbot.models import WireBuild

__all__ = ["PipelineOperations"]

_RUN_PREFIX = "bs-"
_RUN_ID = re.compile(r"bs-([0-9]{1,18})")


class PipelineOperations:
    """``PipelineAdapter``'s methods, mixed into ``BuildbotAdapter``."""

    _client: BuildbotClient
    _catalog: Catalog
    _builds: Builds

    async def list_pipelines(self) -> list[Pipeline]:
        schedulers = await self._catalog.schedulers.get(max_age=0)
        return [
            Pipeline(
                id=scheduler.name,
                name=scheduler.label or scheduler.name,
                projects=sorted(scheduler.builder_names),
                parameters=sorted(settable(scheduler)),
            )
            for scheduler in sorted(schedulers, key=lambda s: s.name)
        ]

    async def trigger_pipeline(self, request: PipelineRequest) -> PipelineRun:
        scheduler = await self._catalog.scheduler_named(request.pipeline)
        params = force_params(
            scheduler,
            f"(pipeline {scheduler.name!r})",
            parameters=request.parameters,
            branch=request.branch,
            commit=request.commit,
            reason=request.reason,
        )
        # Without builderNames or builderid, a force scheduler starts all its builders.
        forced = await self._client.force(scheduler.name, params)
        if not forced.requests:
            raise AdapterError(
                f"buildbot accepted the trigger of pipeline {scheduler.name!r} but made no "
                "build requests; check its builders in master.cfg"
            )
        builds = [
            self._builds.requested(
                await self._catalog.builder_name(builderid), builderid, buildrequestid
            )
            for builderid, buildrequestid in sorted(forced.requests.items(), key=lambda i: i[1])
        ]
        return PipelineRun(
            id=f"{_RUN_PREFIX}{forced.buildsetid}",
            pipeline_id=scheduler.name,
            status=BuildStatus.QUEUED,
            status_text=rollup.summary(build.status for build in builds),
            builds=builds,
            metadata={"buildsetid": forced.buildsetid},
        )

    async def get_pipeline_run(self, run_id: str) -> PipelineRun:
        match = _RUN_ID.fullmatch(run_id.strip())
        if match is None:
            raise UpstreamNotFound(
                f"{run_id!r} is not a Buildbot pipeline run id; use the id trigger_pipeline "
                "returned (bs-<digits>)",
                details={"run_id": run_id},
            )
        bsid = int(match.group(1))
        try:
            buildset = await self._client.buildset(bsid)
        except UpstreamNotFound as exc:
            raise UpstreamNotFound(
                f"pipeline run {run_id} not found on buildbot; trigger_pipeline returns run ids",
                details={"run_id": run_id},
            ) from exc
        requests, properties = await asyncio.gather(
            self._client.buildset_requests(bsid), self._client.buildset_properties(bsid)
        )
        wires = (
            await self._client.builds(
                buildrequestids=[r.buildrequestid for r in requests],
                properties=BUILD_PROPERTIES,
            )
            if requests
            else []
        )
        newest: dict[int, WireBuild] = {}
        for wire in wires:  # newest first
            newest.setdefault(wire.buildrequestid, wire)
        builds: list[Build] = []
        for request in requests:
            latest = newest.get(request.buildrequestid)
            # A build that ended in "retry" is not the request's last word: it waits again.
            retried = latest is not None and latest.complete and latest.results == RETRY
            if latest is None or (retried and not request.complete):
                builds.append(await self._builds.queued(request))
            else:
                builds.append(await self._builds.build(latest))
        # A buildset without requests: only Buildbot's own verdict is left.
        status = rollup.roll_up([b.status for b in builds]) or status_of(
            buildset.complete, buildset.results, started=False
        )
        started = [b.started_at for b in builds if b.started_at is not None]
        finished = [b.finished_at for b in builds if b.finished_at is not None]
        return PipelineRun(
            id=f"{_RUN_PREFIX}{bsid}",
            pipeline_id=build_property(properties, "scheduler"),
            status=status,
            status_text=rollup.summary(b.status for b in builds),
            started_at=min(started, default=None),
            finished_at=(max(finished, default=None) or _time(buildset.complete_at))
            if status.finished
            else None,
            builds=builds,
            metadata={
                "buildsetid": bsid,
                "reason": buildset.reason,
                "submitted_at": _time(buildset.submitted_at),
            },
        )
