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

Statuses. Buildbot's results map as success, warnings and skipped → succeeded;
failure and exception → failed; cancelled → cancelled; retry → queued (Buildbot
will run the request again, and the build id follows it). An unfinished build is
running; a request without a build is queued.

Logs. ``read_log_lines`` reads every step's stdio log (Buildbot's ``s`` logs; html
and text logs are left out), at most ``BuildbotConfig.max_log_lines`` lines (50,000
by default): past that the end of the build is kept, where failures are. Lines are
numbered by their place in the whole build log, so a number means the same line
whether or not ``failed_only`` or the cap left earlier lines out.

Pipelines. A pipeline is a force scheduler (its name is the pipeline's id) and the
builders it can start are its projects. ``trigger_pipeline`` forces it for all of
them; Buildbot makes one *buildset* holding a build request per builder, so a run's
id is ``bs-<buildsetid>``. A run lists one build per request under the ids above
(``br-<n>`` while queued, the build id once started).

Artifacts. Buildbot keeps no artifact store, but a build leaves three kinds of
things: blobs steps stored with ``setBuildData`` (files, id ``data-<name>``, read
from ``/builds/<id>/data/<name>/value``), its steps' logs (id ``log-<logid>``, read
from ``/logs/<logid>/raw``: the text without stream prefixes, after a three-line
header naming builder, build number and worker), and URLs steps published (id
``link-<stepid>-<n>``), which point elsewhere and are listed, never fetched.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

from devmesh.adapters.registry import Connection
from devmesh.domain.errors import AdapterError, UpstreamInvalidArgument, UpstreamNotFound
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
from devmesh.providers.buildbot.client import BuildbotClient
from devmesh.providers.buildbot.models import (
    BuildbotConfig,
    WireBuild,
    WireBuildData,
    WireBuilder,
    WireBuildRequest,
    WireField,
    WireForceScheduler,
    WireLog,
    WireLogChunk,
    WireStep,
)

__all__ = ["BuildbotAdapter"]

T = TypeVar("T")

_REQUEST_PREFIX = "br-"
_RUN_PREFIX = "bs-"
_ID = re.compile(r"(br-)?([0-9]{1,18})")
_RUN_ID = re.compile(r"bs-([0-9]{1,18})")
_LOG_ARTIFACT = re.compile(r"log-([0-9]{1,18})")
_LINK_ARTIFACT = re.compile(r"link-([0-9]{1,18})-([0-9]{1,9})")
_DATA_PREFIX = "data-"
# Names Buildbot's URL router can address (buildbot.util.pathmatch's identifier).
_ROUTABLE_NAME = re.compile(r"[a-zA-Z_-][.a-zA-Z0-9_-]*")
_LOG_TYPES = {"s": "text/plain", "t": "text/plain", "h": "text/html"}

# Buildbot's result codes, in its own order (buildbot.process.results).
SUCCESS, WARNINGS, FAILURE, SKIPPED, EXCEPTION, RETRY, CANCELLED = range(7)
_RESULT_NAMES = ("success", "warnings", "failure", "skipped", "exception", "retry", "cancelled")
_STATUS = {
    SUCCESS: BuildStatus.SUCCEEDED,
    WARNINGS: BuildStatus.SUCCEEDED,
    FAILURE: BuildStatus.FAILED,
    SKIPPED: BuildStatus.SUCCEEDED,
    EXCEPTION: BuildStatus.FAILED,
    RETRY: BuildStatus.QUEUED,
    CANCELLED: BuildStatus.CANCELLED,
}
_RESULTS_FOR_STATUS: dict[BuildStatus, tuple[int, ...]] = {
    BuildStatus.SUCCEEDED: (SUCCESS, WARNINGS, SKIPPED),
    BuildStatus.FAILED: (FAILURE, EXCEPTION),
    BuildStatus.CANCELLED: (CANCELLED,),
}
# A step "failed" for failed_only if it is where the build went wrong or was stopped.
_FAILED_STEP_RESULTS = frozenset({FAILURE, EXCEPTION, CANCELLED})

_Stream = Literal["stdout", "stderr", "header"]
_STREAMS: dict[str, _Stream] = {
    "o": "stdout",
    "e": "stderr",
    "h": "header",
}
_BUILD_PROPERTIES = ("branch", "revision", "got_revision")
_TRUE = frozenset({"true", "yes", "on", "1"})
_FALSE = frozenset({"false", "no", "off", "0"})

_DEFAULT_REASON = "triggered through Developer Mesh"
_CANCEL_REASON = "cancelled through Developer Mesh"
_CANCEL_WAIT_S = 10.0
_POLL_S = 0.2
# Builders and schedulers change only when the master is reconfigured. A lookup that
# misses reads them again unless they are fresh (so a new builder is found at once,
# and a list of builds of a deleted builder does not re-read them per build); the age
# limit catches renames and a master rebuilt under the same URL.
_CATALOG_TTL_S = 300.0
_LOOKUP_AGES = (_CATALOG_TTL_S, 5.0)
_LOG_PAGE_LINES = 10_000
_CONCURRENT_READS = 8


def _time(epoch: float | None) -> datetime | None:
    return datetime.fromtimestamp(epoch, UTC) if epoch is not None else None


def _result_name(results: int | None) -> str | None:
    if results is None or not 0 <= results < len(_RESULT_NAMES):
        return None
    return _RESULT_NAMES[results]


def _status(complete: bool, results: int | None, started: bool) -> BuildStatus:
    if not complete:
        return BuildStatus.RUNNING if started else BuildStatus.QUEUED
    # An unknown result code is a newer Buildbot's; call it failed rather than hide it.
    return _STATUS.get(results if results is not None else EXCEPTION, BuildStatus.FAILED)


def _property(properties: dict[str, Any], name: str) -> str | None:
    # Buildbot sends each property as [value, source]; multi-codebase values are dicts.
    value = properties.get(name)
    if isinstance(value, list) and value and isinstance(value[0], str) and value[0]:
        return value[0]
    return None


def _parse_id(build_id: str) -> tuple[Literal["build", "request"], int]:
    match = _ID.fullmatch(build_id.strip())
    if match is None:
        raise UpstreamNotFound(
            f"{build_id!r} is not a Buildbot build id; use an id that trigger_build or "
            "list_builds returned (digits, or br-<digits> for a build request)",
            details={"build_id": build_id},
        )
    return ("request" if match.group(1) else "build"), int(match.group(2))


def _leaves(fields: Iterable[WireField]) -> Iterable[WireField]:
    for field in fields:
        if field.fields:
            yield from _leaves(field.fields)
        elif field.type != "nested":
            yield field


def _text(name: str, value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise UpstreamInvalidArgument(
        f"parameter {name!r} takes text or a number, not {type(value).__name__}",
        details={"parameter": name},
    )


def _coerce(field: WireField, name: str, value: Any) -> Any:
    """The value as the force form expects it; Buildbot would silently misread others."""
    if field.type == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise UpstreamInvalidArgument(
            f"parameter {name!r} is a yes/no flag: pass true or false",
            details={"parameter": name},
        )
    if field.multiple and isinstance(value, list):
        return [_text(name, item) for item in value]
    return _text(name, value)


def _field_name(field: WireField) -> str:
    return field.full_name or field.name


def _parse_log(chunks: Sequence[WireLogChunk]) -> list[tuple[_Stream, str]]:
    """(stream, text) per line; each stored line starts with its stream's letter."""
    lines: list[tuple[_Stream, str]] = []
    for chunk in sorted(chunks, key=lambda c: c.firstline):
        parts = chunk.content.split("\n")
        if parts and parts[-1] == "":
            parts.pop()
        for raw in parts:
            stream = _STREAMS.get(raw[:1])
            lines.append((stream, raw[1:]) if stream else ("stdout", raw))
    return lines


async def _bounded(calls: Iterable[Awaitable[T]]) -> list[T]:
    """Run reads side by side, a few at a time, so a long build cannot flood the master."""
    gate = asyncio.Semaphore(_CONCURRENT_READS)

    async def one(call: Awaitable[T]) -> T:
        async with gate:
            return await call

    return list(await asyncio.gather(*(one(call) for call in calls)))


@dataclass(frozen=True)
class _Found:
    """A build as the caller sees it, and what Buildbot calls it."""

    build: Build
    builderid: int
    buildrequestid: int
    buildid: int | None  # None while the request has no build


@dataclass(frozen=True)
class _LogSlice:
    step: str
    log: WireLog
    first_number: int  # of the log's first line, in the whole build log
    offset: int  # first line to read, within the log
    count: int


class BuildbotAdapter:
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
        )
        self._builders: list[WireBuilder] = []
        self._builders_at = -_CATALOG_TTL_S
        self._schedulers: list[WireForceScheduler] = []
        self._schedulers_at = -_CATALOG_TTL_S

    # --- CIAdapter -------------------------------------------------------------------

    async def ping(self) -> None:
        await self._builder_list(max_age=0)

    async def trigger_build(self, request: BuildRequest) -> Build:
        builder = await self._builder_named(request.project)
        scheduler = await self._scheduler_for(builder.name, request.parameters)
        params = _force_params(
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
        return self._requested(builder.name, builder.builderid, requests[builder.builderid])

    async def get_build(self, build_id: str) -> Build:
        return (await self._find(build_id)).build

    async def list_builds(
        self, *, project: str | None, status: BuildStatus | None, limit: int
    ) -> list[Build]:
        builderid = (await self._builder_named(project)).builderid if project else None
        queued: list[Build] = []
        if status in (None, BuildStatus.QUEUED):
            # Requests waiting for a worker have no build yet, but they are the newest work.
            pending = await self._client.pending_build_requests(builderid=builderid, limit=limit)
            queued = [await self._queued(request) for request in pending]
            if status is BuildStatus.QUEUED:
                return queued[:limit]
        wires = await self._client.builds(
            builderid=builderid,
            complete=False if status is BuildStatus.RUNNING else None,
            results=_RESULTS_FOR_STATUS.get(status, ()) if status else (),
            limit=limit,
            properties=_BUILD_PROPERTIES,
        )
        builds = [await self._build(wire) for wire in wires]
        return (queued + builds)[:limit]

    async def cancel_build(self, build_id: str) -> Build:
        found = await self._find(build_id)
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
            build = (await self._find(build_id)).build
        return build

    async def retry_build(self, build_id: str) -> Build:
        found = await self._find(build_id)
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
        rebuilt = self._requested(found.build.project, found.builderid, requests[found.builderid])
        metadata = {**rebuilt.metadata, "rebuild_of": str(found.buildid)}
        return rebuilt.model_copy(update={"metadata": metadata})

    async def read_log_lines(self, build_id: str, *, failed_only: bool) -> list[LogLine]:
        found = await self._find(build_id)
        if found.buildid is None:
            return []
        steps = await self._client.steps(found.buildid)
        # Every step's logs are listed, not only the chosen ones, so line numbers can count
        # the lines before them.
        logs = await _bounded(self._client.logs(step.stepid) for step in steps)
        chosen = steps
        if failed_only:
            chosen = [s for s in steps if s.results in _FAILED_STEP_RESULTS] or steps
        slices = self._plan(steps, logs, {step.stepid for step in chosen})
        contents = await _bounded(self._read(piece) for piece in slices)
        lines: list[LogLine] = []
        for piece, content in zip(slices, contents, strict=True):
            for index, (stream, text) in enumerate(content[: piece.count]):
                lines.append(
                    LogLine(
                        number=piece.first_number + piece.offset + index,
                        step=piece.step,
                        stream=stream,
                        text=text.removesuffix("\r"),
                    )
                )
        return lines

    # --- PipelineAdapter --------------------------------------------------------------

    async def list_pipelines(self) -> list[Pipeline]:
        schedulers = await self._scheduler_list(max_age=0)
        return [
            Pipeline(
                id=scheduler.name,
                name=scheduler.label or scheduler.name,
                projects=sorted(scheduler.builder_names),
                parameters=sorted(_settable(scheduler)),
            )
            for scheduler in sorted(schedulers, key=lambda s: s.name)
        ]

    async def trigger_pipeline(self, request: PipelineRequest) -> PipelineRun:
        scheduler = await self._scheduler_named(request.pipeline)
        params = _force_params(
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
            self._requested(await self._builder_name(builderid), builderid, buildrequestid)
            for builderid, buildrequestid in sorted(forced.requests.items(), key=lambda i: i[1])
        ]
        return PipelineRun(
            id=f"{_RUN_PREFIX}{forced.buildsetid}",
            pipeline_id=scheduler.name,
            status=BuildStatus.QUEUED,
            status_text=_run_text(builds),
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
                properties=_BUILD_PROPERTIES,
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
                builds.append(await self._queued(request))
            else:
                builds.append(await self._build(latest))
        status = _run_status(builds, buildset.complete, buildset.results)
        started = [b.started_at for b in builds if b.started_at is not None]
        finished = [b.finished_at for b in builds if b.finished_at is not None]
        return PipelineRun(
            id=f"{_RUN_PREFIX}{bsid}",
            pipeline_id=_property(properties, "scheduler"),
            status=status,
            status_text=_run_text(builds),
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

    # --- ArtifactAdapter --------------------------------------------------------------

    async def list_artifacts(self, build_id: str) -> list[Artifact]:
        found = await self._find(build_id)
        if found.buildid is None:
            return []
        buildid, shown_id = found.buildid, found.build.id
        steps, stored = await asyncio.gather(
            self._client.steps(buildid), self._client.build_data(buildid)
        )
        logs = await _bounded(self._client.logs(step.stepid) for step in steps)
        files = [self._stored_file(data, shown_id) for data in sorted(stored, key=lambda d: d.name)]
        log_files = [
            Artifact(
                id=f"log-{log.logid}",
                name=f"{step.name}/{log.slug}",
                build_id=shown_id,
                kind="log",
                content_type=_LOG_TYPES.get(log.type),
                url=self._client.api_url(self._client.log_raw_path(log.logid)),
                downloadable=True,
                step=step.name,
                metadata={"lines": log.num_lines, "complete": log.complete},
            )
            for step, step_logs in zip(steps, logs, strict=True)
            for log in step_logs
        ]
        links = [
            Artifact(
                id=f"link-{step.stepid}-{index}",
                name=link.name,
                build_id=shown_id,
                kind="link",
                url=link.url,
                downloadable=False,
                step=step.name,
            )
            for step in steps
            for index, link in enumerate(step.urls)
        ]
        return files + log_files + links

    def _stored_file(self, data: WireBuildData, build_id: str) -> Artifact:
        routable = _ROUTABLE_NAME.fullmatch(data.name) is not None
        path = self._client.build_data_path(data.buildid, data.name)
        return Artifact(
            id=f"{_DATA_PREFIX}{data.name}",
            name=data.name,
            build_id=build_id,
            kind="file",
            size=data.length,
            url=self._client.api_url(path) if routable else None,
            downloadable=routable,
            metadata={"source": data.source} if data.source else {},
        )

    async def read_artifact(
        self, build_id: str, artifact_id: str, *, offset: int, limit: int
    ) -> ArtifactChunk:
        found = await self._find(build_id)
        artifact_id = artifact_id.strip()
        missing = UpstreamNotFound(
            f"build {build_id} has no artifact {artifact_id!r}; get_artifacts lists its "
            "artifacts and their ids",
            details={"build_id": build_id, "artifact_id": artifact_id},
        )
        if found.buildid is None:
            raise missing
        buildid = found.buildid
        what = f"download artifact {artifact_id} of build {build_id}"
        if match := _LINK_ARTIFACT.fullmatch(artifact_id):
            try:
                step = await self._client.step(int(match.group(1)))
            except UpstreamNotFound as exc:
                raise missing from exc
            if step.buildid != buildid or int(match.group(2)) >= len(step.urls):
                raise missing
            raise UpstreamInvalidArgument(
                f"artifact {artifact_id} is a link to something Buildbot does not keep; "
                "open its url (get_artifacts shows it) instead",
                details={"build_id": build_id, "artifact_id": artifact_id},
            )
        if match := _LOG_ARTIFACT.fullmatch(artifact_id):
            logid = int(match.group(1))
            try:
                log = await self._client.log(logid)
                step = await self._client.step(log.stepid)
            except UpstreamNotFound as exc:
                raise missing from exc
            if step.buildid != buildid:
                raise missing
            path = self._client.log_raw_path(logid)
            size = None
        elif artifact_id.startswith(_DATA_PREFIX):
            name = artifact_id.removeprefix(_DATA_PREFIX)
            if not _ROUTABLE_NAME.fullmatch(name):
                if name not in {data.name for data in await self._client.build_data(buildid)}:
                    raise missing
                raise UpstreamInvalidArgument(
                    f"build data {name!r} of build {build_id} cannot be downloaded: Buildbot's "
                    "REST API only serves names of letters, digits, '.', '_' and '-'",
                    details={"build_id": build_id, "artifact_id": artifact_id},
                )
            try:
                size = (await self._client.build_data_entry(buildid, name)).length
            except UpstreamNotFound as exc:
                raise missing from exc
            path = self._client.build_data_path(buildid, name)
        else:
            raise missing
        try:
            raw = await self._client.read_raw(path, offset=offset, limit=limit, what=what)
        except UpstreamNotFound as exc:
            raise missing from exc
        return ArtifactChunk(
            data=raw.data,
            offset=offset,
            size=raw.size if raw.size is not None else size,
            more=raw.more,
            content_type=raw.content_type,
        )

    # --- builds ----------------------------------------------------------------------

    async def _find(self, build_id: str) -> _Found:
        kind, number = _parse_id(build_id)
        if kind == "request":
            return await self._find_request(number, build_id)
        try:
            wire = await self._client.build(number, properties=_BUILD_PROPERTIES)
        except UpstreamNotFound as exc:
            raise self._not_found(build_id) from exc
        if wire.complete and wire.results == RETRY:
            # Buildbot runs a retried request again as a new build; follow it there.
            return await self._find_request(wire.buildrequestid, build_id)
        return _Found(await self._build(wire), wire.builderid, wire.buildrequestid, wire.buildid)

    async def _find_request(self, buildrequestid: int, build_id: str) -> _Found:
        builds = await self._client.builds(
            buildrequestids=[buildrequestid], limit=1, properties=_BUILD_PROPERTIES
        )
        if builds:
            wire = builds[0]
            return _Found(await self._build(wire), wire.builderid, buildrequestid, wire.buildid)
        try:
            request = await self._client.build_request(buildrequestid)
        except UpstreamNotFound as exc:
            raise self._not_found(build_id) from exc
        return _Found(await self._queued(request), request.builderid, buildrequestid, None)

    @staticmethod
    def _not_found(build_id: str) -> UpstreamNotFound:
        return UpstreamNotFound(
            f"build {build_id} not found on buildbot; list_builds shows recent ids",
            details={"build_id": build_id},
        )

    async def _build(self, wire: WireBuild) -> Build:
        started, finished = _time(wire.started_at), _time(wire.complete_at)
        status = _status(wire.complete, wire.results, started is not None)
        return Build(
            id=str(wire.buildid),
            project=await self._builder_name(wire.builderid),
            number=wire.number,
            branch=_property(wire.properties, "branch"),
            commit=_property(wire.properties, "got_revision")
            or _property(wire.properties, "revision"),
            status=status,
            status_text=wire.state_string,
            started_at=started,
            finished_at=finished if wire.complete else None,
            duration=(finished - started).total_seconds()
            if wire.complete and started and finished
            else None,
            url=f"{self._client.base_url}/#/builders/{wire.builderid}/builds/{wire.number}",
            metadata={
                "buildid": wire.buildid,
                "buildrequestid": wire.buildrequestid,
                "builderid": wire.builderid,
                "results": _result_name(wire.results),
            },
        )

    async def _queued(self, request: WireBuildRequest) -> Build:
        """A request no build has come from (yet)."""
        if request.complete:
            status = _status(True, request.results, started=False)
            result = _result_name(request.results) or "finished"
            text = f"{result} before it started"
        else:
            status = BuildStatus.QUEUED
            text = "starting on a worker" if request.claimed else "waiting for a worker"
        return Build(
            id=f"{_REQUEST_PREFIX}{request.buildrequestid}",
            project=await self._builder_name(request.builderid),
            status=status,
            status_text=text,
            url=self._request_url(request.buildrequestid),
            metadata={
                "buildrequestid": request.buildrequestid,
                "builderid": request.builderid,
                "results": _result_name(request.results),
                "submitted_at": _time(request.submitted_at),
            },
        )

    def _requested(self, project: str, builderid: int, buildrequestid: int) -> Build:
        # Built from what the trigger told us: asking Buildbot again would only race
        # the worker, and the id reads right whatever has happened since.
        return Build(
            id=f"{_REQUEST_PREFIX}{buildrequestid}",
            project=project,
            status=BuildStatus.QUEUED,
            status_text="requested; waiting for a worker",
            url=self._request_url(buildrequestid),
            metadata={"buildrequestid": buildrequestid, "builderid": builderid},
        )

    def _request_url(self, buildrequestid: int) -> str:
        # The UI's request page forwards to the build once there is one.
        return f"{self._client.base_url}/#/buildrequests/{buildrequestid}?redirect_to_build=true"

    # --- logs ------------------------------------------------------------------------

    def _plan(
        self, steps: Sequence[WireStep], logs: Sequence[list[WireLog]], chosen: set[int]
    ) -> list[_LogSlice]:
        """Which lines of which logs to read: the chosen steps' stdio, the end if too long."""
        slices: list[_LogSlice] = []
        number = 1
        for step, step_logs in zip(steps, logs, strict=True):
            for log in step_logs:
                if log.type != "s":
                    continue
                if step.stepid in chosen and log.num_lines > 0:
                    slices.append(_LogSlice(step.name, log, number, 0, log.num_lines))
                number += log.num_lines
        excess = sum(piece.count for piece in slices) - self._config.max_log_lines
        while excess > 0 and slices:
            first = slices[0]
            if first.count <= excess:
                excess -= first.count
                slices.pop(0)
            else:
                slices[0] = _LogSlice(
                    first.step,
                    first.log,
                    first.first_number,
                    first.offset + excess,
                    first.count - excess,
                )
                excess = 0
        return slices

    async def _read(self, piece: _LogSlice) -> list[tuple[_Stream, str]]:
        chunks: list[WireLogChunk] = []
        for start in range(piece.offset, piece.offset + piece.count, _LOG_PAGE_LINES):
            size = min(_LOG_PAGE_LINES, piece.offset + piece.count - start)
            chunks += await self._client.log_chunks(piece.log.logid, offset=start, limit=size)
        return _parse_log(chunks)

    # --- builders and schedulers -----------------------------------------------------

    async def _builder_list(self, *, max_age: float = _CATALOG_TTL_S) -> list[WireBuilder]:
        if time.monotonic() - self._builders_at >= max_age:
            self._builders = await self._client.builders()
            self._builders_at = time.monotonic()
        return self._builders

    async def _builder_named(self, name: str) -> WireBuilder:
        for max_age in _LOOKUP_AGES:
            for builder in await self._builder_list(max_age=max_age):
                if builder.name == name:
                    return builder
        names = sorted(builder.name for builder in self._builders)
        raise UpstreamNotFound(
            f"buildbot has no builder {name!r}; its builders are: {', '.join(names) or 'none'}",
            details={"project": name, "builders": names},
        )

    async def _builder_name(self, builderid: int) -> str:
        for max_age in _LOOKUP_AGES:
            for builder in await self._builder_list(max_age=max_age):
                if builder.builderid == builderid:
                    return builder.name
        return f"builder {builderid}"

    async def _scheduler_list(self, *, max_age: float = _CATALOG_TTL_S) -> list[WireForceScheduler]:
        if time.monotonic() - self._schedulers_at >= max_age:
            self._schedulers = await self._client.force_schedulers()
            self._schedulers_at = time.monotonic()
        return self._schedulers

    async def _scheduler_for(self, builder: str, parameters: dict[str, Any]) -> WireForceScheduler:
        wanted = self._config.scheduler
        for max_age in _LOOKUP_AGES:
            schedulers = await self._scheduler_list(max_age=max_age)
            if wanted:
                named = next((s for s in schedulers if s.name == wanted), None)
                if named is not None and builder in named.builder_names:
                    return named
                continue
            # A force scheduler starts whatever builder it is asked to, so pick one that
            # serves this builder; among several, the one that takes the given parameters,
            # and rather one of its own than a pipeline's (the master lists them in no
            # stable order).
            serving = sorted(
                (s for s in schedulers if builder in s.builder_names),
                key=lambda s: (len(s.builder_names), s.name),
            )
            fitting = [s for s in serving if set(parameters) <= _settable(s).keys()]
            if serving:
                return (fitting or serving)[0]
        names = sorted(s.name for s in self._schedulers)
        if wanted and wanted not in names:
            raise UpstreamInvalidArgument(
                f"config.scheduler {wanted!r} is not a force scheduler on buildbot; "
                f"its force schedulers are: {', '.join(names) or 'none'}",
                details={"scheduler": wanted, "schedulers": names},
            )
        if wanted:
            raise UpstreamInvalidArgument(
                f"force scheduler {wanted!r} (config.scheduler) cannot start builder {builder!r}",
                details={"scheduler": wanted, "project": builder},
            )
        raise UpstreamInvalidArgument(
            f"no force scheduler on buildbot can start builder {builder!r}; add a "
            "ForceScheduler for it to master.cfg, or set config.scheduler",
            details={"project": builder, "schedulers": names},
        )

    async def _scheduler_named(self, name: str) -> WireForceScheduler:
        for max_age in _LOOKUP_AGES:
            for scheduler in await self._scheduler_list(max_age=max_age):
                if scheduler.name == name:
                    return scheduler
        names = sorted(s.name for s in self._schedulers)
        raise UpstreamNotFound(
            f"buildbot has no pipeline {name!r} (a pipeline is a force scheduler); its "
            f"pipelines are: {', '.join(names) or 'none'}; list_pipelines shows what each starts",
            details={"pipeline": name, "pipelines": names},
        )


def _run_status(builds: Sequence[Build], complete: bool, results: int | None) -> BuildStatus:
    if not builds:
        # A buildset without requests: only Buildbot's own verdict is left.
        return _status(complete, results, started=False)
    if all(build.status.finished for build in builds):
        statuses = {build.status for build in builds}
        for worst in (BuildStatus.FAILED, BuildStatus.CANCELLED):
            if worst in statuses:
                return worst
        return BuildStatus.SUCCEEDED
    if any(build.status is not BuildStatus.QUEUED for build in builds):
        return BuildStatus.RUNNING
    return BuildStatus.QUEUED


def _run_text(builds: Sequence[Build]) -> str:
    counts: dict[BuildStatus, int] = {}
    for build in builds:
        counts[build.status] = counts.get(build.status, 0) + 1
    parts = [f"{counts[status]} {status}" for status in BuildStatus if status in counts]
    noun = "build" if len(builds) == 1 else "builds"
    return f"{len(builds)} {noun}: {', '.join(parts) or 'none'}"


def _settable(scheduler: WireForceScheduler) -> dict[str, WireField]:
    return {
        _field_name(field): field
        for field in _leaves(scheduler.all_fields)
        if field.type != "fixed" and _field_name(field)
    }


def _force_params(
    scheduler: WireForceScheduler,
    target: str,
    *,
    parameters: dict[str, Any],
    branch: str | None,
    commit: str | None,
    reason: str | None,
) -> dict[str, Any]:
    """The force call's params, checked against the scheduler's form.

    Buildbot ignores names its form does not have and keeps fixed fields fixed, so
    a misspelt parameter or an unsupported branch would otherwise start a build
    other than the one asked for, without a word. ``target`` ends the scheduler's
    name in messages, e.g. "for 'runtests'".
    """
    settable = _settable(scheduler)
    fixed = {_field_name(f) for f in _leaves(scheduler.all_fields)} - settable.keys()
    where = f"force scheduler {scheduler.name!r} {target}"
    params: dict[str, Any] = {}
    for name, value in parameters.items():
        field = settable.get(name)
        if field is None:
            why = "is fixed by" if name in fixed else "is not a parameter of"
            raise UpstreamInvalidArgument(
                f"{name!r} {why} {where}; parameters it takes: "
                f"{', '.join(sorted(settable)) or 'none'}",
                details={"parameter": name, "accepted": sorted(settable)},
            )
        params[name] = _coerce(field, name, value)
    for wanted, leaf, label in ((branch, "branch", "branch"), (commit, "revision", "commit")):
        if not wanted:
            continue
        targets = sorted(name for name, field in settable.items() if field.name == leaf)
        if len(targets) != 1:
            problem = (
                f"takes no {label} (its {leaf} is fixed or absent)"
                if not targets
                else f"has several codebases ({', '.join(targets)}); pass one in parameters"
            )
            raise UpstreamInvalidArgument(f"{where} {problem}", details={"field": label})
        params[targets[0]] = wanted
    params["reason"] = reason or params.get("reason") or _DEFAULT_REASON
    return params
