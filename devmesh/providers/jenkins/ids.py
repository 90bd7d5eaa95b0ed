"""The ids this provider hands out, and the job paths it takes.

A project is a job's full name, folders joined by ``/`` (``team/app``), which Jenkins
serves at ``/job/team/job/app/``. Build ids carry the job, because Jenkins numbers
builds per job:

* ``<job>#<number>``: a build, e.g. ``team/app#42``.
* ``<job>#queue-<id>``: a build Jenkins has queued but not started, as ``trigger_build``
  returns it (``buildWithParameters`` answers with a queue item, not a build). Every
  operation takes it: once the item has left the queue it stands for the build it
  became (the item's ``executable``, or after Jenkins forgot the item, the job's build
  whose ``queueId`` it is).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote

from devmesh.domain.errors import UpstreamInvalidArgument

__all__ = ["BuildRef", "QueueRef", "checked_job", "job_path", "parse_build_id"]

# Jenkins refuses these in item names (Jenkins.checkGoodName); '/' separates folders.
_BAD = re.compile(r"[\x00-\x1f\\:;|?*<>\[\]\"#%&^!@$]")
_BUILD = re.compile(r"(?P<job>[^#]+)#(?:(?P<number>[0-9]{1,12})|queue-(?P<queue>[0-9]{1,18}))")
_MAX_JOB = 512


@dataclass(frozen=True)
class BuildRef:
    job: str
    number: int

    def __str__(self) -> str:
        return f"{self.job}#{self.number}"


@dataclass(frozen=True)
class QueueRef:
    job: str
    queue_id: int

    def __str__(self) -> str:
        return f"{self.job}#queue-{self.queue_id}"


def checked_job(project: str, *, field: str = "project") -> str:
    """A job's full name (``team/app``), or an error naming ``field``."""
    value = project.strip().strip("/")
    parts = value.split("/")
    if (
        not value
        or len(value) > _MAX_JOB
        or _BAD.search(value)
        or any(part.strip() in ("", ".", "..") for part in parts)
    ):
        raise UpstreamInvalidArgument(
            f"{field} must be a Jenkins job's full name, folders joined by '/', like "
            "'team/app' (no '..', '#', '?' or other characters Jenkins refuses in names)",
            details={"field": field},
        )
    return value


def job_path(job: str) -> str:
    """``/job/team/job/app``: where Jenkins serves a job, each name URL-encoded."""
    return "".join(f"/job/{quote(part, safe='')}" for part in job.split("/"))


def parse_build_id(build_id: str) -> BuildRef | QueueRef:
    """The build (or queued build) an id names; an error naming ``build_id`` if none."""
    match = _BUILD.fullmatch(build_id.strip())
    if match is None:
        raise UpstreamInvalidArgument(
            f"build_id {build_id[:80]!r} is not a Jenkins build id; use the id trigger_build "
            "or list_builds returned, like 'team/app#42' or 'team/app#queue-17'",
            details={"field": "build_id"},
        )
    job = checked_job(match.group("job"), field="build_id")
    if match.group("number") is not None:
        return BuildRef(job, int(match.group("number")))
    return QueueRef(job, int(match.group("queue")))
