"""The ids this provider hands out, and the project references it takes.

GitLab's API reaches a pipeline only through its project, so a build id carries both:

* ``<project>#<pipeline id>``: a pipeline, e.g. ``group/app#1234`` (the project as the
  caller named it: a path or a numeric id). A pipeline's web URL, or its path
  (``group/app/-/pipelines/1234``), is accepted too.
* ``<project>#schedule-<id>``: a pipeline schedule, as ``list_pipelines`` shows it.
* ``<project>#schedule-<id>-after-<pipeline id>``: a run of a schedule that GitLab
  has not made into a pipeline yet (``play`` answers before the pipeline exists); it
  reads as queued until the schedule's last pipeline is newer than the one named.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import httpx

from devmesh.domain.errors import UpstreamInvalidArgument

__all__ = [
    "PipelineRef",
    "ScheduleRef",
    "checked_project",
    "is_schedule_id",
    "parse_build_id",
    "parse_schedule_id",
]

# GitLab paths: letters, digits, '_', '-', '.' per segment; up to 20 nested groups.
_PROJECT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*(/[A-Za-z0-9_][A-Za-z0-9_.\-]*){0,20}")
_BUILD = re.compile(r"(?P<project>[^#]+)#(?P<id>[0-9]{1,18})")
_WEB = re.compile(r"(?P<project>[^#]+?)/-/pipelines/(?P<id>[0-9]{1,18})/?")
_SCHEDULE = re.compile(
    r"(?P<project>[^#]+)#schedule-(?P<id>[0-9]{1,18})(-after-(?P<after>[0-9]{1,18}))?"
)
_MAX_PROJECT = 255


@dataclass(frozen=True)
class PipelineRef:
    project: str
    pipeline_id: int

    def __str__(self) -> str:
        return f"{self.project}#{self.pipeline_id}"


@dataclass(frozen=True)
class ScheduleRef:
    project: str
    schedule_id: int
    after: int | None = None  # a pending run: the schedule's last pipeline before it

    def __str__(self) -> str:
        tail = "" if self.after is None else f"-after-{self.after}"
        return f"{self.project}#schedule-{self.schedule_id}{tail}"


def checked_project(project: str, *, field: str = "project") -> str:
    """A project path (``group/app``) or numeric id, or an error naming ``field``."""
    value = project.strip().strip("/")
    if len(value) > _MAX_PROJECT or not _PROJECT.fullmatch(value):
        raise UpstreamInvalidArgument(
            f"{field} must be a GitLab project path like 'group/app' or a numeric project id",
            details={"field": field},
        )
    if any(part in (".", "..") or part.endswith((".git", ".atom")) for part in value.split("/")):
        raise UpstreamInvalidArgument(
            f"{field} must name a project as 'group/app', without '..' or a .git suffix",
            details={"field": field},
        )
    return value


def parse_build_id(build_id: str) -> PipelineRef:
    """The pipeline a build id names; an error naming ``build_id`` if it names none."""
    text = build_id.strip()
    if "://" in text and _is_url(text):
        # A pasted web URL of GitLab at its host's root (gitlab.com, most installs).
        text = httpx.URL(text).path.lstrip("/")
    match = _BUILD.fullmatch(text) or _WEB.fullmatch(text)
    if match is None:
        raise UpstreamInvalidArgument(
            f"build_id {build_id[:80]!r} is not a GitLab build id; use the id trigger_build "
            "or list_builds returned, like 'group/app#1234'",
            details={"field": "build_id"},
        )
    project = checked_project(match.group("project"), field="build_id")
    return PipelineRef(project, int(match.group("id")))


def parse_schedule_id(value: str, *, field: str) -> ScheduleRef:
    match = _SCHEDULE.fullmatch(value.strip())
    if match is None:
        raise UpstreamInvalidArgument(
            f"{field} {value[:80]!r} is not a GitLab pipeline schedule; use an id "
            "list_pipelines shows, like 'group/app#schedule-12'",
            details={"field": field},
        )
    after = match.group("after")
    return ScheduleRef(
        checked_project(match.group("project"), field=field),
        int(match.group("id")),
        int(after) if after is not None else None,
    )


def is_schedule_id(value: str) -> bool:
    return _SCHEDULE.fullmatch(value.strip()) is not None


def _is_url(text: str) -> bool:
    try:
        return bool(httpx.URL(text).host)
    except httpx.InvalidURL:
        return False
