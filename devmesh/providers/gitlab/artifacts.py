"""A pipeline's artifacts: its jobs' artifact archives, single files in them, and traces.

* ``job-<job id>``: the job's artifacts archive (``artifacts.zip``), read from
  ``GET /projects/:id/jobs/:job_id/artifacts``;
* ``job-<job id>/<path>``: one file inside it, by its path in the archive
  (``GET …/artifacts/<path>``); GitLab has no API listing an archive's files, so these
  are not listed: the path comes from the job's script (``artifacts:paths``);
* ``trace-<job id>``: the job's log, raw (``GET …/trace``).

Every read is a window (``offset``, ``limit``) the kit's ``read_window`` bounds. A job
id is checked against the pipeline, so one build's id cannot read another's files.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from devmesh.adapters.http import Window
from devmesh.domain.errors import UpstreamInvalidArgument, UpstreamNotFound
from devmesh.domain.models import Artifact, ArtifactChunk
from devmesh.providers.gitlab.builds import within_stages
from devmesh.providers.gitlab.client import GitLabClient
from devmesh.providers.gitlab.ids import PipelineRef
from devmesh.providers.gitlab.models import WireJob

__all__ = ["list_artifacts", "read_artifact"]

_ID = re.compile(r"(?P<kind>job|trace)-(?P<job>[0-9]{1,18})(?:/(?P<path>.+))?")
_MAX_PATH = 1024


def list_artifacts(ref: PipelineRef, jobs: Sequence[WireJob]) -> list[Artifact]:
    found: list[Artifact] = []
    for _, members in within_stages(jobs):
        for job in members:
            files = {entry.file_type: entry for entry in job.artifacts}
            step = f"{job.stage}/{job.name}"
            archive = files.get("archive")
            if archive is not None:
                reports = sorted(
                    kind for kind in files if kind not in ("archive", "metadata", "trace")
                )
                found.append(
                    Artifact(
                        id=f"job-{job.id}",
                        name=f"{step}/{archive.filename}",
                        build_id=str(ref),
                        kind="file",
                        size=archive.size,
                        content_type="application/zip",
                        url=f"{job.web_url}/artifacts/download" if job.web_url else None,
                        downloadable=True,
                        step=step,
                        metadata={
                            "job_id": job.id,
                            "single_files": f"job-{job.id}/<path in the archive>",
                            **({"reports": reports} if reports else {}),
                            **(
                                {"expires_at": job.artifacts_expire_at.isoformat()}
                                if job.artifacts_expire_at
                                else {}
                            ),
                        },
                    )
                )
            trace = files.get("trace")
            if trace is not None:
                found.append(
                    Artifact(
                        id=f"trace-{job.id}",
                        name=f"{step}/{trace.filename}",
                        build_id=str(ref),
                        kind="log",
                        size=trace.size,
                        content_type="text/plain",
                        url=f"{job.web_url}/raw" if job.web_url else None,
                        downloadable=True,
                        step=step,
                        metadata={"job_id": job.id},
                    )
                )
    return found


async def read_artifact(
    client: GitLabClient, ref: PipelineRef, artifact_id: str, *, offset: int, limit: int
) -> ArtifactChunk:
    match = _ID.fullmatch(artifact_id)
    if match is None or (match.group("kind") == "trace" and match.group("path")):
        raise UpstreamInvalidArgument(
            f"artifact_id {artifact_id[:80]!r} is not a GitLab artifact of this build; use "
            "an id get_artifacts shows ('job-<id>', 'trace-<id>'), or 'job-<id>/<path>' for "
            "one file of a job's archive",
            details={"field": "artifact_id"},
        )
    job_id = int(match.group("job"))
    path = _checked_path(match.group("path"))
    job = await client.job(ref.project, job_id)
    if job.pipeline is None or job.pipeline.id != ref.pipeline_id:
        raise UpstreamNotFound(
            f"job {job_id} is not a job of build {ref}; use an id get_artifacts shows",
            details={"field": "artifact_id"},
        )
    window: Window
    if match.group("kind") == "trace":
        window = await client.trace_window(ref.project, job_id, offset=offset, limit=limit)
    else:
        window = await client.artifact_window(ref.project, job_id, path, offset=offset, limit=limit)
    return ArtifactChunk(
        data=window.data,
        offset=offset,
        size=window.size,
        more=window.more,
        content_type=window.content_type,
    )


def _checked_path(path: str | None) -> str | None:
    if path is None:
        return None
    parts = path.split("/")
    if len(path) > _MAX_PATH or any(part in ("", ".", "..") for part in parts):
        raise UpstreamInvalidArgument(
            "the path in artifact_id must be relative, like 'job-12/reports/junit.xml', "
            "without empty, '.' or '..' parts",
            details={"field": "artifact_id"},
        )
    return path
