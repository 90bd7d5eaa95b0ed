"""The CodeBuild adapter: a project is a CodeBuild project, a build one of its builds.

``trigger_build`` is ``StartBuild`` (``commit`` or ``branch`` as ``sourceVersion``,
``parameters`` as plain-text ``environmentVariablesOverride``); builds are read with
``BatchGetBuilds`` and listed with ``ListBuildsForProject`` (newest first);
``cancel_build`` is ``StopBuild``; ``retry_build`` is ``RetryBuild``. Logs are the
build's CloudWatch Logs stream (its end, at most ``max_log_lines`` events);
artifacts are the objects at the build's S3 artifact location, read in byte ranges.

Pipelines are not offered: CodeBuild has none (CodePipeline is another service).
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from typing import Any

from devmesh.adapters.registry import Connection
from devmesh.domain.errors import UpstreamInvalidArgument, UpstreamNotFound
from devmesh.domain.models import Artifact, ArtifactChunk, Build, BuildRequest, BuildStatus, LogLine
from devmesh.providers.codebuild.builds import build_of
from devmesh.providers.codebuild.client import AwsClients
from devmesh.providers.codebuild.logs import log_lines
from devmesh.providers.codebuild.models import (
    CodeBuildConfig,
    checked_build_id,
    checked_project,
)

__all__ = ["CodeBuildAdapter"]

# BatchGetBuilds takes at most 100 ids; one page of a project's builds is enough.
_MAX_LISTED = 100
_MAX_ARTIFACTS = 200
# Below the default attempt timeout (10 s), so a cancel through the gateway can wait it out.
_WAIT_S = 8.0
_POLL_S = 0.2
_VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,254}")
# Names CodeBuild reserves for itself (the Environment variables page).
_RESERVED = "CODEBUILD_"


class CodeBuildAdapter:
    """CI and artifact operations on the CodeBuild projects of one account and region."""

    def __init__(self, connection: Connection) -> None:
        if not isinstance(connection.config, CodeBuildConfig):
            raise TypeError(f"expected a CodeBuildConfig, got {type(connection.config).__name__}")
        self._config = connection.config
        self._aws = AwsClients(
            base_url=connection.base_url,
            region=self._config.region,
            credentials=connection.credentials,
            timeout=self._config.request_timeout,
            verify_tls=connection.policy.verify_tls,
        )

    # --- CIAdapter -------------------------------------------------------------------

    async def ping(self) -> None:
        await self._aws.call("codebuild", "list_projects", what="list CodeBuild projects")

    async def trigger_build(self, request: BuildRequest) -> Build:
        project = checked_project(request.project)
        if request.branch and request.commit:
            raise UpstreamInvalidArgument(
                "CodeBuild builds one source version: pass commit or branch, not both",
                details={"field": "branch"},
            )
        kwargs: dict[str, Any] = {"projectName": project}
        version = request.commit or request.branch
        if version:
            kwargs["sourceVersion"] = version
        variables = _variables(request.parameters)
        if variables:
            kwargs["environmentVariablesOverride"] = variables
        answer = await self._aws.call(
            "codebuild",
            "start_build",
            what=f"start a build of {project}",
            field="project",
            **kwargs,
        )
        return build_of(answer["build"], region=self._aws.region)

    async def get_build(self, build_id: str) -> Build:
        return build_of(await self._wire(checked_build_id(build_id)), region=self._aws.region)

    async def list_builds(
        self, *, project: str | None, status: BuildStatus | None, limit: int
    ) -> list[Build]:
        if project:
            name = checked_project(project)
            answer = await self._aws.call(
                "codebuild",
                "list_builds_for_project",
                what=f"list builds of {name}",
                field="project",
                projectName=name,
                sortOrder="DESCENDING",
            )
        else:
            answer = await self._aws.call(
                "codebuild", "list_builds", what="list builds", sortOrder="DESCENDING"
            )
        wanted = min(_MAX_LISTED, limit if status is None else _MAX_LISTED)
        ids = [str(i) for i in answer.get("ids") or []][:wanted]
        if not ids:
            return []
        found = await self._aws.call("codebuild", "batch_get_builds", what="read builds", ids=ids)
        by_id = {str(b.get("id")): b for b in found.get("builds") or []}
        builds = [build_of(by_id[i], region=self._aws.region) for i in ids if i in by_id]
        return [b for b in builds if status is None or b.status is status][:limit]

    async def cancel_build(self, build_id: str) -> Build:
        checked = checked_build_id(build_id)
        build = await self.get_build(checked)
        if build.status.finished:
            return build
        await self._aws.call("codebuild", "stop_build", what=f"stop build {checked}", id=checked)
        # StopBuild answers while the build winds down; wait a little for the outcome.
        deadline = time.monotonic() + _WAIT_S
        build = await self.get_build(checked)
        while not build.status.finished and time.monotonic() < deadline:
            await asyncio.sleep(_POLL_S)
            build = await self.get_build(checked)
        return build

    async def retry_build(self, build_id: str) -> Build:
        original = await self.get_build(build_id)
        if not original.status.finished:
            raise UpstreamInvalidArgument(
                f"build {build_id} is {original.status_text}; retry_build reruns a build "
                "that finished, so wait for it (or cancel it first)",
                details={"field": "build_id"},
            )
        answer = await self._aws.call(
            "codebuild",
            "retry_build",
            what=f"retry build {original.id}",
            field="build_id",
            id=original.id,
            # The same token within 5 minutes starts no second build (RetryBuild).
            idempotencyToken=str(uuid.uuid4()),
        )
        retried = build_of(answer["build"], region=self._aws.region)
        retried.metadata["retry_of"] = original.id
        return retried

    async def read_log_lines(self, build_id: str, *, failed_only: bool) -> list[LogLine]:
        wire = await self._wire(checked_build_id(build_id))
        build = build_of(wire, region=self._aws.region)
        group = build.metadata.get("log_group")
        stream = build.metadata.get("log_stream")
        if not group or not stream:
            return []  # not started yet, or the project sends no logs to CloudWatch
        try:
            answer = await self._aws.call(
                "logs",
                "get_log_events",
                what=f"read the log of {build.id}",
                logGroupName=group,
                logStreamName=stream,
                # The newest events: the end of the log is where a failure shows.
                startFromHead=False,
                limit=self._config.max_log_lines,
            )
        except UpstreamNotFound:
            return []  # the stream is made when the build first writes to it
        return log_lines(
            [str(event.get("message") or "") for event in answer.get("events") or []],
            failed_stage=build.metadata.get("failed_stage") if failed_only else None,
            failed=build.status is BuildStatus.FAILED,
            failed_only=failed_only,
        )

    # --- ArtifactAdapter --------------------------------------------------------------

    async def list_artifacts(self, build_id: str) -> list[Artifact]:
        checked = checked_build_id(build_id)
        place = _location(await self._wire(checked))
        if place is None:
            return []
        bucket, prefix = place
        answer = await self._aws.call(
            "s3",
            "list_objects_v2",
            what=f"list the artifacts of {checked}",
            Bucket=bucket,
            Prefix=prefix,
            MaxKeys=_MAX_ARTIFACTS,
        )
        return [
            Artifact(
                id=str(item["Key"]),
                name=str(item["Key"]).removeprefix(prefix).lstrip("/") or str(item["Key"]),
                build_id=checked,
                kind="file",
                size=int(item.get("Size") or 0),
                url=f"s3://{bucket}/{item['Key']}",
                downloadable=True,
                metadata={"bucket": bucket},
            )
            for item in answer.get("Contents") or []
        ]

    async def read_artifact(
        self, build_id: str, artifact_id: str, *, offset: int, limit: int
    ) -> ArtifactChunk:
        checked = checked_build_id(build_id)
        place = _location(await self._wire(checked))
        if place is None or not artifact_id.startswith(place[1]) or ".." in artifact_id:
            raise UpstreamNotFound(
                f"build {checked} has no artifact {artifact_id[:80]!r}; use an id "
                "get_artifacts shows",
                details={"field": "artifact_id"},
            )
        bucket = place[0]
        answer = await self._aws.call(
            "s3",
            "get_object",
            what=f"read artifact {artifact_id} of {checked}",
            field="artifact_id",
            Bucket=bucket,
            Key=artifact_id,
            Range=f"bytes={offset}-{offset + max(limit, 1) - 1}",
        )
        body = answer["Body"]
        try:
            data: bytes = await asyncio.to_thread(body.read, limit)
        finally:
            body.close()
        size = _total(str(answer.get("ContentRange") or ""))
        return ArtifactChunk(
            data=data,
            offset=offset,
            size=size,
            more=size is not None and offset + len(data) < size,
            content_type=answer.get("ContentType"),
        )

    # --- helpers ----------------------------------------------------------------------

    async def _wire(self, build_id: str) -> dict[str, Any]:
        answer = await self._aws.call(
            "codebuild",
            "batch_get_builds",
            what=f"read build {build_id}",
            field="build_id",
            ids=[build_id],
        )
        for build in answer.get("builds") or []:
            if build.get("id") == build_id:
                return dict(build)
        raise UpstreamNotFound(
            f"CodeBuild has no build {build_id} in this account and region",
            details={"field": "build_id"},
        )


def _variables(parameters: dict[str, Any]) -> list[dict[str, str]]:
    variables: list[dict[str, str]] = []
    for name, value in parameters.items():
        field = f"parameters.{name}"
        if not _VARIABLE.fullmatch(name) or name.upper().startswith(_RESERVED):
            raise UpstreamInvalidArgument(
                f"{field}: a parameter is an environment variable for the build: a name of "
                "letters, digits and '_' not starting with a digit nor with CODEBUILD_",
                details={"field": field},
            )
        if isinstance(value, dict | list):
            raise UpstreamInvalidArgument(
                f"{field} must be a string, number or boolean", details={"field": field}
            )
        text = (
            "" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
        )
        variables.append({"name": name, "value": text, "type": "PLAINTEXT"})
    return variables


def _location(build: dict[str, Any]) -> tuple[str, str] | None:
    """``(bucket, key prefix)`` of the build's S3 artifacts (``arn:aws:s3:::b/p``)."""
    location = str((build.get("artifacts") or {}).get("location") or "")
    if not location.startswith("arn:") or ":::" not in location:
        return None
    bucket, _, prefix = location.split(":::", 1)[1].partition("/")
    return (bucket, prefix) if bucket else None


def _total(content_range: str) -> int | None:
    """The whole object's size from ``Content-Range: bytes 0-63/1200``."""
    _, _, total = content_range.rpartition("/")
    return int(total) if total.isdigit() else None
