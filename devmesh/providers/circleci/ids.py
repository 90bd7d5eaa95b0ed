"""The project slugs this provider takes and the build ids it hands out.

A project is a CircleCI project slug, ``<vcs>/<org>/<repo>``: ``gh/org/repo`` (GitHub
OAuth), ``bb/org/repo`` (Bitbucket) or ``circleci/<org id>/<project id>`` (GitLab and
the GitHub App). It is sent ``%2F``-encoded as one path segment, as API v2 expects.

A build is a pipeline, so its id is the pipeline's id (a UUID): it names the
pipeline alone (no project needed to read it) and never changes, unlike the pipeline
number, which counts per project. Rerunning a workflow makes a new workflow in the
same pipeline, so the build ``retry_build`` returns is
``<pipeline id>/<workflow id>[,<workflow id>…]``: that pipeline's rerun workflows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote

from devmesh.domain.errors import UpstreamInvalidArgument

__all__ = ["BuildRef", "checked_slug", "encoded", "parse_build_id", "v1_path"]

_UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_SLUG = re.compile(
    r"(?P<vcs>gh|github|bb|bitbucket|circleci)/(?P<org>[\w.-]{1,100})/(?P<repo>[\w.-]{1,100})"
)
_BUILD = re.compile(rf"(?P<pipeline>{_UUID})(?:/(?P<workflows>{_UUID}(?:,{_UUID}){{0,19}}))?")
_V1_VCS = {"gh": "github", "github": "github", "bb": "bitbucket", "bitbucket": "bitbucket"}


@dataclass(frozen=True)
class BuildRef:
    pipeline: str
    # The rerun workflows this build is; empty: the pipeline's own (first) workflows.
    workflows: tuple[str, ...] = ()

    def __str__(self) -> str:
        return self.pipeline + (f"/{','.join(self.workflows)}" if self.workflows else "")


def checked_slug(project: str, *, field: str = "project") -> str:
    value = project.strip().strip("/")
    match = _SLUG.fullmatch(value)
    if match is None or ".." in value:
        raise UpstreamInvalidArgument(
            f"{field} must be a CircleCI project slug, '<vcs>/<org>/<repo>', like "
            "'gh/org/repo', 'bb/org/repo' or 'circleci/<org id>/<project id>'",
            details={"field": field},
        )
    return value


def encoded(slug: str) -> str:
    """The slug as one path segment: ``gh%2Forg%2Frepo``."""
    return quote(slug, safe="")


def v1_path(slug: str) -> str:
    """``github/org/repo``: API v1.1 names the VCS in full."""
    vcs, org, repo = slug.split("/")
    return "/".join(quote(part, safe="") for part in (_V1_VCS.get(vcs, vcs), org, repo))


def parse_build_id(build_id: str) -> BuildRef:
    match = _BUILD.fullmatch(build_id.strip())
    if match is None:
        raise UpstreamInvalidArgument(
            f"build_id {build_id[:80]!r} is not a CircleCI build id; use the id trigger_build "
            "or list_builds returned: a pipeline id (a UUID), or '<pipeline id>/<workflow "
            "id>' for a rerun",
            details={"field": "build_id"},
        )
    workflows = match.group("workflows")
    return BuildRef(
        match.group("pipeline").lower(),
        tuple(w.lower() for w in workflows.split(",")) if workflows else (),
    )
