"""Builds as the caller sees them: ids of both kinds resolved, Buildbot's records read
as ``Build``s (the id schemes are described in ``adapter``).

Buildbot's result codes and build properties, read as the domain's statuses.

Buildbot's results map as success, warnings and skipped → succeeded; failure and
exception → failed; cancelled → cancelled; retry → queued (Buildbot will run the
request again, and the build id follows it). An unfinished build is running; a
request without a build is queued.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from devmesh.domain.errors import AdapterError, UpstreamNotFound
from devmesh.domain.models import Build, BuildStatus
from devmesh.providers.buildbot.catalog import Catalog
from devmesh.providers.buildbot.client import BuildbotClient
from devmesh.providers.buildbot.models import WireBuild, WireBuildRequest

__all__ = [
    "BUILD_PROPERTIES",
    "FAILED_STEP_RESULTS",
    "RESULTS_FOR_STATUS",
    "Builds",
    "Found",
    "build_property",
    "status_of",
    "time_of",
]

REQUEST_PREFIX = "br-"
_ID = re.compile(r"(br-)?([0-9]{1,18})")

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
RESULTS_FOR_STATUS: dict[BuildStatus, tuple[int, ...]] = {
    BuildStatus.SUCCEEDED: (SUCCESS, WARNINGS, SKIPPED),
    BuildStatus.FAILED: (FAILURE, EXCEPTION),
    BuildStatus.CANCELLED: (CANCELLED,),
}
# A step "failed" for failed_only if it is where the build went wrong or was stopped.
FAILED_STEP_RESULTS = frozenset({FAILURE, EXCEPTION, CANCELLED})
BUILD_PROPERTIES = ("branch", "revision", "got_revision")


def time_of(epoch: float | None) -> datetime | None:
    return datetime.fromtimestamp(epoch, UTC) if epoch is not None else None


def result_name(results: int | None) -> str | None:
    if results is None or not 0 <= results < len(_RESULT_NAMES):
        return None
    return _RESULT_NAMES[results]


def status_of(complete: bool, results: int | None, started: bool) -> BuildStatus:
    if not complete:
        return BuildStatus.RUNNING if started else BuildStatus.QUEUED
    # An unknown result code is a newer Buildbot's; call it failed rather than hide it.
    return _STATUS.get(results if results is not None else EXCEPTION, BuildStatus.FAILED)


def build_property(properties: dict[str, Any], name: str) -> str | None:
    # Buildbot sends each property as [value, source]; multi-codebase values are dicts.
    value = properties.get(name)
    if isinstance(value, list) and value and isinstance(value[0], str) and value[0]:
        return value[0]
    return None


@dataclass(frozen=True)
class Found:
    """A build as the caller sees it, and what Buildbot calls it."""

    build: Build
    builderid: int
    buildrequestid: int
    buildid: int | None  # None while the request has no build


def _parse_id(build_id: str) -> tuple[Literal["build", "request"], int]:
    match = _ID.fullmatch(build_id.strip())
    if match is None:
        raise UpstreamNotFound(
            f"{build_id!r} is not a Buildbot build id; use an id that trigger_build or "
            "list_builds returned (digits, or br-<digits> for a build request)",
            details={"build_id": build_id},
        )
    return ("request" if match.group(1) else "build"), int(match.group(2))


class Builds:
    """Finds builds by either kind of id and reads Buildbot's records as ``Build``s."""

    def __init__(self, client: BuildbotClient, catalog: Catalog) -> None:
        self._client = client
        self._catalog = catalog

    async def find(self, build_id: str) -> Found:
        kind, number = _parse_id(build_id)
        if kind == "request":
            return await self._find_request(number, build_id)
        try:
            wire = await self._client.build(number, properties=BUILD_PROPERTIES)
        except UpstreamNotFound as exc:
            raise self._not_found(build_id) from exc
        if wire.complete and wire.results == RETRY:
            # Buildbot runs a retried request again as a new build; follow it there.
            return await self._find_request(wire.buildrequestid, build_id)
        return Found(await self.build(wire), wire.builderid, wire.buildrequestid, wire.buildid)

    async def _find_request(self, buildrequestid: int, build_id: str) -> Found:
        builds = await self._client.builds(
            buildrequestids=[buildrequestid], limit=1, properties=BUILD_PROPERTIES
        )
        if builds:
            wire = builds[0]
            return Found(await self.build(wire), wire.builderid, buildrequestid, wire.buildid)
        try:
            request = await self._client.build_request(buildrequestid)
        except UpstreamNotFound as exc:
            raise self._not_found(build_id) from exc
        return Found(await self.queued(request), request.builderid, buildrequestid, None)

    @staticmethod
    def _not_found(build_id: str) -> UpstreamNotFound:
        return UpstreamNotFound(
            f"build {build_id} not found on buildbot; list_builds shows recent ids",
            details={"build_id": build_id},
        )

    async def build(self, wire: WireBuild) -> Build:
        started, finished = time_of(wire.started_at), time_of(wire.complete_at)
        status = status_of(wire.complete, wire.results, started is not None)
        return Build(
            id=str(wire.buildid),
            project=await self._catalog.builder_name(wire.builderid),
            number=wire.number,
            branch=build_property(wire.properties, "branch"),
            commit=build_property(wire.properties, "got_revision")
            or build_property(wire.properties, "revision"),
            status=status,
            status_text=wire.state_string,
            started_at=started,
            finished_at=finished if wire.complete else None,
            duration=(finished - started).total_seconds()
            if wire.complete and started and finished
            else None,
            url=f"{self._client.base_url}/#/builders/{wire.builderid}/builds/{wire.number}",
            # Buildbot's result name (failure, exception) is the reason it gives.
            failure_reason=result_name(wire.results) if status is BuildStatus.FAILED else None,
            failed_stage=await self._failed_step(wire.buildid)
            if status is BuildStatus.FAILED
            else None,
            metadata={
                "buildid": wire.buildid,
                "buildrequestid": wire.buildrequestid,
                "builderid": wire.builderid,
                "results": result_name(wire.results),
            },
        )

    async def _failed_step(self, buildid: int) -> str | None:
        """The name of the first step that failed: one more request, failed builds only."""
        try:
            steps = await self._client.steps(buildid)
        except AdapterError:
            # The build's own status was read; a step list that will not come must
            # not turn that answer into an error.
            return None
        failed = [step for step in steps if step.results in (FAILURE, EXCEPTION)]
        return min(failed, key=lambda step: step.number).name if failed else None

    async def queued(self, request: WireBuildRequest) -> Build:
        """A request no build has come from (yet)."""
        if request.complete:
            status = status_of(True, request.results, started=False)
            result = result_name(request.results) or "finished"
            text = f"{result} before it started"
        else:
            status = BuildStatus.QUEUED
            text = "starting on a worker" if request.claimed else "waiting for a worker"
        return Build(
            id=f"{REQUEST_PREFIX}{request.buildrequestid}",
            project=await self._catalog.builder_name(request.builderid),
            status=status,
            status_text=text,
            url=self._request_url(request.buildrequestid),
            metadata={
                "buildrequestid": request.buildrequestid,
                "builderid": request.builderid,
                "results": result_name(request.results),
                "submitted_at": time_of(request.submitted_at),
            },
        )

    def requested(self, project: str, builderid: int, buildrequestid: int) -> Build:
        # Built from what the trigger told us: asking Buildbot again would only race
        # the worker, and the id reads right whatever has happened since.
        return Build(
            id=f"{REQUEST_PREFIX}{buildrequestid}",
            project=project,
            status=BuildStatus.QUEUED,
            status_text="requested; waiting for a worker",
            url=self._request_url(buildrequestid),
            metadata={"buildrequestid": buildrequestid, "builderid": builderid},
        )

    def _request_url(self, buildrequestid: int) -> str:
        # The UI's request page forwards to the build once there is one.
        return f"{self._client.base_url}/#/buildrequests/{buildrequestid}?redirect_to_build=true"
