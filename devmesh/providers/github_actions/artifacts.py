"""A run's artifacts: its artifact zips, the files inside them, and its jobs' logs.

* ``artifact-<id>``: the artifact as GitHub stores it, a zip
  (``GET …/actions/artifacts/<id>/zip``, a redirect to a signed URL);
* ``artifact-<id>/<path>``: one file inside the zip. GitHub has no API for a zip's
  contents, so the zip is downloaded (spooled, at most ``max_archive_bytes``) and
  opened; ``get_artifacts`` lists the entries of the first few small zips, and any
  entry can be read by its path;
* ``log-<job id>``: a job's raw log, timestamps and all (``GET …/jobs/<id>/logs``).

Every read is a window (``offset``, ``limit``). An artifact or job is checked against
the run, so one build's id cannot read another's files.
"""

from __future__ import annotations

import asyncio
import re
import zipfile
from typing import IO

from devmesh.adapters.concurrency import gather_bounded
from devmesh.domain.errors import UpstreamInvalidArgument, UpstreamNotFound
from devmesh.domain.models import Artifact, ArtifactChunk
from devmesh.providers.github_actions.builds import ordered
from devmesh.providers.github_actions.client import GitHubClient
from devmesh.providers.github_actions.ids import RunRef
from devmesh.providers.github_actions.models import WireArtifact, WireJob

__all__ = ["list_artifacts", "read_artifact"]

_ID = re.compile(r"(?P<kind>artifact|log)-(?P<id>[0-9]{1,18})(?:/(?P<path>.+))?")
_MAX_PATH = 1024
_LISTED_ZIPS = 5  # zips whose entries get_artifacts lists
_LISTED_ZIP_BYTES = 8 * 1024 * 1024
_MAX_ENTRIES = 200
_CHUNK = 64 * 1024


async def list_artifacts(
    client: GitHubClient,
    ref: RunRef,
    artifacts: list[WireArtifact],
    jobs: list[WireJob],
    *,
    max_archive_bytes: int,
) -> list[Artifact]:
    live = [artifact for artifact in artifacts if not artifact.expired]
    small = [a for a in live if a.size_in_bytes <= min(_LISTED_ZIP_BYTES, max_archive_bytes)]
    entries = await gather_bounded(
        _entries(client, ref, artifact, max_archive_bytes) for artifact in small[:_LISTED_ZIPS]
    )
    listed = dict(zip((a.id for a in small), entries, strict=False))
    found: list[Artifact] = []
    for artifact in live:
        found.append(
            Artifact(
                id=f"artifact-{artifact.id}",
                name=f"{artifact.name}.zip",
                build_id=str(ref),
                kind="file",
                size=artifact.size_in_bytes,
                content_type="application/zip",
                url=artifact.archive_download_url,
                downloadable=True,
                metadata={
                    "artifact_id": artifact.id,
                    "entries": f"artifact-{artifact.id}/<path in the zip>",
                    **({"expires_at": artifact.expires_at.isoformat()}
                       if artifact.expires_at else {}),
                },
            )
        )  # fmt: skip
        found.extend(listed.get(artifact.id, []))
    for job in ordered(jobs):
        if job.status == "queued":
            continue
        found.append(
            Artifact(
                id=f"log-{job.id}", name=f"{job.name}.log", build_id=str(ref), kind="log",
                content_type="text/plain", url=job.html_url, downloadable=True, step=job.name,
                metadata={"job_id": job.id},
            )
        )  # fmt: skip
    return found


async def _entries(
    client: GitHubClient, ref: RunRef, artifact: WireArtifact, max_archive_bytes: int
) -> list[Artifact]:
    spool = await client.archive(ref.repo, artifact.id, max_bytes=max_archive_bytes)
    try:
        infos = await asyncio.to_thread(_infos, spool)
    finally:
        spool.close()
    return [
        Artifact(
            id=f"artifact-{artifact.id}/{info.filename}",
            name=f"{artifact.name}/{info.filename}",
            build_id=str(ref),
            kind="file",
            size=info.file_size,
            downloadable=True,
            metadata={"artifact_id": artifact.id, "compressed_size": info.compress_size},
        )
        for info in infos[:_MAX_ENTRIES]
    ]


def _infos(spool: IO[bytes]) -> list[zipfile.ZipInfo]:
    try:
        with zipfile.ZipFile(spool) as archive:
            return [info for info in archive.infolist() if not info.is_dir()]
    except zipfile.BadZipFile:
        return []


async def read_artifact(
    client: GitHubClient,
    ref: RunRef,
    artifact_id: str,
    *,
    offset: int,
    limit: int,
    max_archive_bytes: int,
) -> ArtifactChunk:
    match = _ID.fullmatch(artifact_id)
    if match is None or (match.group("kind") == "log" and match.group("path")):
        raise UpstreamInvalidArgument(
            f"artifact_id {artifact_id[:80]!r} is not a GitHub Actions artifact of this build; "
            "use an id get_artifacts shows ('artifact-<id>', 'artifact-<id>/<path>', "
            "'log-<job id>')",
            details={"field": "artifact_id"},
        )
    number = int(match.group("id"))
    if match.group("kind") == "log":
        job = await client.job(ref.repo, number)
        _same_run(ref, job.run_id, f"job {number}")
        window = await client.job_log_window(ref.repo, number, offset=offset, limit=limit)
        return ArtifactChunk(data=window.data, offset=offset, size=window.size,
                             more=window.more, content_type="text/plain")  # fmt: skip
    artifact = await client.artifact(ref.repo, number)
    _same_run(ref, artifact.workflow_run.id if artifact.workflow_run else None,
              f"artifact {number}")  # fmt: skip
    if artifact.expired:
        raise UpstreamNotFound(f"artifact {number} has expired", details={"field": "artifact_id"})
    path = _checked_path(match.group("path"))
    if path is None:
        window = await client.archive_window(ref.repo, number, offset=offset, limit=limit)
        return ArtifactChunk(data=window.data, offset=offset, size=window.size or
                             artifact.size_in_bytes, more=window.more,
                             content_type="application/zip")  # fmt: skip
    spool = await client.archive(ref.repo, number, max_bytes=max_archive_bytes)
    try:
        data, size, more = await asyncio.to_thread(_entry_window, spool, path, offset, limit)
    finally:
        spool.close()
    if data is None:
        raise UpstreamNotFound(
            f"artifact {number} has no file {path!r}; get_artifacts lists its files",
            details={"field": "artifact_id"},
        )
    return ArtifactChunk(data=data, offset=offset, size=size, more=more)


def _entry_window(
    spool: IO[bytes], path: str, offset: int, limit: int
) -> tuple[bytes | None, int, bool]:
    """At most ``limit`` bytes of one entry from ``offset``; ``None`` if it is not there."""
    try:
        with zipfile.ZipFile(spool) as archive:
            try:
                info = archive.getinfo(path)
            except KeyError:
                return None, 0, False
            with archive.open(info) as entry:
                skipped = 0
                while skipped < offset:
                    piece = entry.read(min(_CHUNK, offset - skipped))
                    if not piece:
                        break
                    skipped += len(piece)
                data = entry.read(limit + 1)
    except zipfile.BadZipFile:
        return None, 0, False
    return data[:limit], info.file_size, len(data) > limit


def _same_run(ref: RunRef, run_id: int | None, what: str) -> None:
    if run_id != ref.run_id:
        raise UpstreamNotFound(
            f"{what} is not part of build {ref}; use an id get_artifacts shows",
            details={"field": "artifact_id"},
        )


def _checked_path(path: str | None) -> str | None:
    if path is None:
        return None
    if len(path) > _MAX_PATH or any(part in ("", ".", "..") for part in path.split("/")):
        raise UpstreamInvalidArgument(
            "the path in artifact_id must be relative, like 'artifact-12/reports/junit.xml', "
            "without empty, '.' or '..' parts",
            details={"field": "artifact_id"},
        )
    return path
