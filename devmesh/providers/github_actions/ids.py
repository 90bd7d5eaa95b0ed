"""The ids this provider hands out, and the projects it takes.

GitHub reaches a workflow run only through its repository, so a build id carries both:

* a project: ``owner/repo``, or ``owner/repo:<workflow>`` to name one workflow (its
  file name, ``ci.yml``, or its numeric id);
* a build: ``owner/repo#<run id>``, the run as it is now (its latest attempt), or
  ``owner/repo#<run id>.<attempt>`` for one attempt of it (what a re-run returns).
  A run's web URL (``https://github.com/owner/repo/actions/runs/<id>[/attempts/<n>]``)
  is accepted too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from devmesh.domain.errors import UpstreamInvalidArgument

__all__ = ["Project", "RunRef", "parse_build_id", "parse_project"]

# GitHub's rules: owners are letters, digits and single hyphens (39 at most); repository
# names letters, digits, '.', '_' and '-' (100 at most).
_OWNER = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})"
_REPO = r"[A-Za-z0-9._-]{1,100}"
_WORKFLOW = r"[A-Za-z0-9._-]{1,200}\.ya?ml|[0-9]{1,18}"
_PROJECT = re.compile(rf"(?P<repo>{_OWNER}/{_REPO})(?::(?P<workflow>{_WORKFLOW}))?")
_BUILD = re.compile(
    rf"(?P<repo>{_OWNER}/{_REPO})#(?P<run>[0-9]{{1,18}})(?:\.(?P<attempt>[0-9]{{1,6}}))?"
)
_WEB = re.compile(
    rf"https?://[^/]+/(?P<repo>{_OWNER}/{_REPO})/actions/runs/(?P<run>[0-9]{{1,18}})"
    r"(?:/attempts/(?P<attempt>[0-9]{1,6}))?/?"
)


@dataclass(frozen=True)
class Project:
    repo: str  # owner/repo
    workflow: str | None = None

    def __str__(self) -> str:
        return self.repo if self.workflow is None else f"{self.repo}:{self.workflow}"


@dataclass(frozen=True)
class RunRef:
    repo: str
    run_id: int
    attempt: int | None = None  # None: the run's latest attempt

    def __str__(self) -> str:
        tail = "" if self.attempt is None else f".{self.attempt}"
        return f"{self.repo}#{self.run_id}{tail}"


def parse_project(project: str, *, field: str = "project") -> Project:
    match = _PROJECT.fullmatch(project.strip())
    repo = match.group("repo") if match else ""
    if match is None or any(part in (".", "..") for part in repo.split("/")):
        raise UpstreamInvalidArgument(
            f"{field} must be a GitHub repository 'owner/repo', or 'owner/repo:ci.yml' to "
            "name one of its workflows (its file name or numeric id)",
            details={"field": field},
        )
    return Project(repo, match.group("workflow"))


def parse_build_id(build_id: str, *, field: str = "build_id") -> RunRef:
    text = build_id.strip()
    match = _BUILD.fullmatch(text) or _WEB.fullmatch(text)
    if match is None:
        raise UpstreamInvalidArgument(
            f"{field} {build_id[:80]!r} is not a GitHub Actions build id; use the id "
            "trigger_build or list_builds returned, like 'owner/repo#1234'",
            details={"field": field},
        )
    attempt = match.group("attempt")
    return RunRef(match.group("repo"), int(match.group("run")), int(attempt) if attempt else None)
