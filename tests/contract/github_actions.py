"""GitHub Actions under contract: the GitHub stand-in (``tests/standins/github``) in a
process of its own, every request and answer checked against GitHub's OpenAPI
description, on the wall clock with short job durations.

Three repositories with one workflow each (``octo/app`` succeeds and uploads an
artifact, ``octo/broken`` fails in its test job, ``octo/slow`` runs for a minute) and
one token that sees them all. Pipelines are not offered.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from devmesh.domain.models import BuildRequest, Credentials
from tests.contract.target import ProviderTarget, Server
from tests.standins.github import run_github

__all__ = ["GITHUB_ACTIONS"]

_TOKEN = "ghp_contractTestsOnly0000000000000000000"
_ERROR = "AssertionError: expected 2, got 3"


def _jobs(*, fails: bool = False, duration_s: float = 0.1) -> list[dict[str, Any]]:
    return [
        {
            "name": "build",
            "duration_s": duration_s,
            "lines": ["$ make", "compiling", "compiled ok"],
            "artifacts": {"dist": {"app.txt": "the app, built\n" * 20}},
        },
        {
            "name": "test",
            "fails": fails,
            "lines": ["$ pytest", "collected 12 items", _ERROR if fails else "12 passed"],
        },
    ]


@asynccontextmanager
async def _serve(scratch: Path) -> AsyncIterator[Server]:
    async with run_github() as github:
        await github.add_token(_TOKEN)
        await github.add_repo("octo/app", {"ci.yml": _jobs()})
        await github.add_repo("octo/broken", {"ci.yml": _jobs(fails=True)})
        await github.add_repo("octo/slow", {"ci.yml": _jobs(duration_s=60.0)})
        yield Server(base_url=github.base_url, credentials=Credentials(type="bearer", token=_TOKEN))


GITHUB_ACTIONS = ProviderTarget(
    provider="github_actions",
    serve=_serve,
    succeeds=BuildRequest(project="octo/app", branch="main", reason="contract"),
    fails=BuildRequest(project="octo/broken"),
    error_line=_ERROR,
    runs_long=BuildRequest(project="octo/slow"),
    unknown_project="octo/no-such-repo",
    unknown_build_ids=("octo/app#999999", "octo/no-such-repo#1"),
    bad_credentials=Credentials(type="bearer", token="ghp_notAValidToken000000000000000000000"),
    unknown_artifact_id="artifact-999999",
)
