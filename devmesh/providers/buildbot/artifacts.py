"""Artifacts. Buildbot keeps no artifact store, but a build leaves three kinds of things:

* blobs steps stored with ``setBuildData`` (files, id ``data-<name>``, read from
  ``/builds/<id>/data/<name>/value``);
* its steps' logs (id ``log-<logid>``, read from ``/logs/<logid>/raw``: the text
  without stream prefixes, after a three-line header naming builder, build number and
  worker);
* URLs steps published (id ``link-<stepid>-<n>``), which point elsewhere and are
  listed, never fetched.
"""

from __future__ import annotations

import asyncio
import re

from devmesh.adapters.concurrency import gather_bounded
from devmesh.domain.errors import UpstreamInvalidArgument, UpstreamNotFound
from devmesh.domain.models import Artifact, ArtifactChunk
from devmesh.providers.buildbot.builds import Builds
from devmesh.providers.buildbot.client import BuildbotClient
from devmesh.providers.buildbot.models import WireBuildData

__all__ = ["ArtifactOperations"]

_LOG_ARTIFACT = re.compile(r"log-([0-9]{1,18})")
_LINK_ARTIFACT = re.compile(r"link-([0-9]{1,18})-([0-9]{1,9})")
_DATA_PREFIX = "data-"
# Names Buildbot's URL router can address (buildbot.util.pathmatch's identifier).
_ROUTABLE_NAME = re.compile(r"[a-zA-Z_-][.a-zA-Z0-9_-]*")
_LOG_TYPES = {"s": "text/plain", "t": "text/plain", "h": "text/html"}


class ArtifactOperations:
    """``ArtifactAdapter``'s methods, mixed into ``BuildbotAdapter``."""

    _client: BuildbotClient
    _builds: Builds

    async def list_artifacts(self, build_id: str) -> list[Artifact]:
        found = await self._builds.find(build_id)
        if found.buildid is None:
            return []
        buildid, shown_id = found.buildid, found.build.id
        steps, stored = await asyncio.gather(
            self._client.steps(buildid), self._client.build_data(buildid)
        )
        logs = await gather_bounded(self._client.logs(step.stepid) for step in steps)
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
        found = await self._builds.find(build_id)
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
