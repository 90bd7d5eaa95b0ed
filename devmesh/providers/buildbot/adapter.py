"""The Buildbot adapter: CI operations over Buildbot's REST API.

Build ids: a trigger returns before Buildbot has started the build, so its id
names the build request, ``br-<buildrequestid>``; ``get_build`` accepts it at
once and follows it to the build when one starts. Builds listed or started are
named by their build id, plain digits. Both kinds work in every operation.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

from devmesh.adapters.registry import Connection
from devmesh.domain.errors import UpstreamInvalidArgument, UpstreamNotFound
from devmesh.domain.models import Build, BuildRequest, BuildStatus, LogLine
from devmesh.providers.buildbot.client import BuildbotClient
from devmesh.providers.buildbot.models import BuildbotConfig

__all__ = ["BuildbotAdapter"]

_REQUEST_PREFIX = "br-"
# Buildbot result codes: SUCCESS, WARNINGS, FAILURE, SKIPPED, EXCEPTION, RETRY, CANCELLED.
_RESULTS = {
    0: BuildStatus.SUCCEEDED,
    1: BuildStatus.SUCCEEDED,
    2: BuildStatus.FAILED,
    3: BuildStatus.SUCCEEDED,
    4: BuildStatus.FAILED,
    5: BuildStatus.QUEUED,
    6: BuildStatus.CANCELLED,
}
_STREAMS: dict[str, Any] = {"o": "stdout", "e": "stderr", "h": "header"}
_CANCEL_WAIT = 10.0


def _time(epoch: int | float | None) -> datetime | None:
    return datetime.fromtimestamp(epoch, UTC) if epoch else None


class BuildbotAdapter:
    def __init__(self, connection: Connection) -> None:
        assert isinstance(connection.config, BuildbotConfig)
        self._config = connection.config
        self._client = BuildbotClient(
            base_url=connection.base_url,
            http=connection.http,
            credentials=connection.credentials,
        )
        self._builders: dict[int, str] | None = None

    # --- lookups -----------------------------------------------------------------

    async def _builder_names(self, *, refresh: bool = False) -> dict[int, str]:
        # Builder ids differ between masters and restarts; names are what users know.
        if self._builders is None or refresh:
            builders = await self._client.get_list("/builders", "builders", "list builders")
            self._builders = {b["builderid"]: b["name"] for b in builders}
        return self._builders

    async def _builder_id(self, name: str) -> int:
        for refresh in (False, True):
            for builder_id, builder_name in (await self._builder_names(refresh=refresh)).items():
                if builder_name == name:
                    return builder_id
        known = ", ".join(sorted((await self._builder_names()).values()))
        raise UpstreamNotFound(
            f"buildbot has no builder {name!r}; builders: {known}",
            details={"project": name, "builders": sorted((await self._builder_names()).values())},
        )

    async def _scheduler_for(self, builder: str) -> str:
        if self._config.scheduler:
            return self._config.scheduler
        schedulers = await self._client.get_list(
            "/forceschedulers", "forceschedulers", "list force schedulers"
        )
        # A scheduler does not check the builder it is asked for, so pick the one
        # that serves this builder rather than trusting any.
        for scheduler in schedulers:
            if builder in scheduler.get("builder_names", []):
                return str(scheduler["name"])
        raise UpstreamInvalidArgument(
            f"no force scheduler on buildbot can start {builder!r}; "
            "add a ForceScheduler for it to master.cfg or set config.scheduler"
        )

    # --- mapping -----------------------------------------------------------------

    async def _build(self, raw: dict[str, Any]) -> Build:
        names = await self._builder_names()
        if raw["builderid"] not in names:
            names = await self._builder_names(refresh=True)
        name = names.get(raw["builderid"], str(raw["builderid"]))
        results = raw.get("results")
        if raw.get("complete"):
            status = _RESULTS.get(results if isinstance(results, int) else 4, BuildStatus.FAILED)
        else:
            status = BuildStatus.RUNNING if raw.get("started_at") else BuildStatus.QUEUED
        started, finished = _time(raw.get("started_at")), _time(raw.get("complete_at"))
        properties = raw.get("properties") or {}
        branch = properties.get("branch", [None])[0] if "branch" in properties else None
        return Build(
            id=str(raw["buildid"]),
            project=name,
            number=raw.get("number"),
            branch=branch or None,
            status=status,
            status_text=raw.get("state_string"),
            started_at=started,
            finished_at=finished,
            duration=(finished - started).total_seconds() if started and finished else None,
            url=f"{self._client.base_url}/#/builders/{raw['builderid']}/builds/{raw.get('number')}",
            metadata={"buildrequestid": raw.get("buildrequestid"), "results": results},
        )

    async def _request(self, request_id: str) -> Build:
        """A build request: the build it became, or its own state while queued."""
        what = f"build {_REQUEST_PREFIX}{request_id}"
        builds = await self._client.get_list(
            "/builds", "builds", what, buildrequestid=request_id, order="-buildid", limit=1
        )
        if builds:
            return await self._build(builds[0])
        [raw] = await self._client.get_list(f"/buildrequests/{request_id}", "buildrequests", what)
        names = await self._builder_names()
        cancelled = raw.get("complete") and raw.get("results") == 6
        return Build(
            id=f"{_REQUEST_PREFIX}{request_id}",
            project=names.get(raw["builderid"], str(raw["builderid"])),
            status=BuildStatus.CANCELLED if cancelled else BuildStatus.QUEUED,
            status_text="cancelled before it started" if cancelled else "waiting for a worker",
            metadata={"buildrequestid": raw["buildrequestid"]},
        )

    @staticmethod
    def _parse_id(build_id: str) -> tuple[str, str]:
        """``("request", n)`` or ``("build", n)``."""
        kind, number = "build", build_id
        if build_id.startswith(_REQUEST_PREFIX):
            kind, number = "request", build_id.removeprefix(_REQUEST_PREFIX)
        if not number.isdigit():
            raise UpstreamNotFound(
                f"{build_id!r} is not a buildbot build id; use an id from trigger_build or "
                "list_builds (digits, or br-<digits> for a queued request)"
            )
        return kind, number

    async def _resolve(self, build_id: str) -> Build:
        kind, number = self._parse_id(build_id)
        try:
            if kind == "request":
                return await self._request(number)
            [raw] = await self._client.get_list(
                f"/builds/{number}", "builds", f"build {build_id}", property="branch"
            )
            return await self._build(raw)
        except UpstreamNotFound:
            raise UpstreamNotFound(
                f"build {build_id} not found on buildbot; list_builds shows recent ids",
                details={"build_id": build_id},
            ) from None

    # --- CIAdapter -----------------------------------------------------------------

    async def ping(self) -> None:
        await self._builder_names(refresh=True)

    async def trigger_build(self, request: BuildRequest) -> Build:
        builder_id = await self._builder_id(request.project)
        scheduler = await self._scheduler_for(request.project)
        params: dict[str, Any] = {"builderid": str(builder_id), **request.parameters}
        if request.reason:
            params["reason"] = request.reason
        if request.branch:
            params["branch"] = request.branch
        if request.commit:
            params["revision"] = request.commit
        result = await self._client.control(
            f"/forceschedulers/{scheduler}", "force", params, f"trigger {request.project}"
        )
        _, request_ids = result
        request_id = str(next(iter(request_ids.values())))
        return await self._request(request_id)

    async def get_build(self, build_id: str) -> Build:
        return await self._resolve(build_id)

    async def list_builds(
        self, *, project: str | None, status: BuildStatus | None, limit: int
    ) -> list[Build]:
        params: dict[str, Any] = {"order": "-buildid", "limit": limit}
        if project:
            params["builderid"] = await self._builder_id(project)
        if status is BuildStatus.FAILED:
            # Failures and exceptions are both "failed" here; filter after fetching.
            params.update(complete="true", limit=limit * 4)
        elif status is BuildStatus.SUCCEEDED:
            params.update(complete="true", limit=limit * 4)
        elif status in (BuildStatus.RUNNING, BuildStatus.QUEUED):
            params["complete"] = "false"
        elif status is BuildStatus.CANCELLED:
            params["results"] = 6
        raws = await self._client.get_list("/builds", "builds", "list builds", **params)
        builds = [await self._build(raw) for raw in raws]
        if status is not None:
            builds = [build for build in builds if build.status is status]
        return builds[:limit]

    async def cancel_build(self, build_id: str) -> Build:
        build = await self._resolve(build_id)
        if build.status.finished:
            return build
        if build.id.startswith(_REQUEST_PREFIX):
            await self._client.control(
                f"/buildrequests/{build.id.removeprefix(_REQUEST_PREFIX)}",
                "cancel",
                {"reason": "cancelled through Developer Mesh"},
                f"cancel {build_id}",
            )
        else:
            await self._client.control(
                f"/builds/{build.id}",
                "stop",
                {"reason": "cancelled through Developer Mesh"},
                f"cancel {build_id}",
            )
        # Buildbot answers before the build has stopped; wait a little for it.
        deadline = time.monotonic() + _CANCEL_WAIT
        while not build.status.finished and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
            build = await self._resolve(build.id)
        return build

    async def retry_build(self, build_id: str) -> Build:
        build = await self._resolve(build_id)
        if build.id.startswith(_REQUEST_PREFIX):
            raise UpstreamInvalidArgument(
                f"build {build_id} has not started yet; there is nothing to retry"
            )
        result = await self._client.control(
            f"/builds/{build.id}", "rebuild", {}, f"retry {build_id}"
        )
        _, request_ids = result
        return await self._request(str(next(iter(request_ids.values()))))

    async def read_log_lines(self, build_id: str, *, failed_only: bool) -> list[LogLine]:
        build = await self._resolve(build_id)
        if build.id.startswith(_REQUEST_PREFIX):
            return []
        steps = await self._client.get_list(
            f"/builds/{build.id}/steps", "steps", f"steps of build {build_id}"
        )
        if failed_only:
            failed = [s for s in steps if s.get("results") not in (None, 0, 1, 3)]
            steps = failed or steps
        lines: list[LogLine] = []
        budget = self._config.max_log_lines
        for step in steps:
            logs = await self._client.get_list(
                f"/steps/{step['stepid']}/logs", "logs", f"logs of build {build_id}"
            )
            for log in logs:
                if log.get("type") != "s" or budget <= 0:
                    continue
                # The newest lines are what matters in a long log: read the end.
                count = int(log.get("num_lines") or 0)
                offset = max(0, count - budget)
                chunks = await self._client.get_list(
                    f"/logs/{log['logid']}/contents",
                    "logchunks",
                    f"log of build {build_id}",
                    offset=offset,
                    limit=budget,
                )
                for chunk in chunks:
                    for raw_line in chunk["content"].splitlines():
                        prefix, text = raw_line[:1], raw_line[1:]
                        lines.append(
                            LogLine(
                                number=len(lines) + 1,
                                step=step["name"],
                                stream=_STREAMS.get(prefix, "stdout"),
                                text=text,
                            )
                        )
                budget -= min(count, budget)
        return lines
