"""GitLab under contract: the GitLab API v4 stand-in (``tests/standins/gitlab``) in a
process of its own, on the wall clock with short job durations.

Three projects, one per behaviour (``group/app`` succeeds and leaves an artifact,
``group/broken`` fails in its test stage, ``group/slow`` runs for a minute), one token
that sees them all, and a pipeline schedule on ``group/app`` as the pipeline.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from devmesh.domain.models import BuildRequest, Credentials, PipelineRequest
from tests.contract.target import ProviderTarget, Server
from tests.standins.gitlab.fixture import run_gitlab

__all__ = ["GITLAB"]

_TOKEN = "glpat-contract-tests-only"
_ERROR = "AssertionError: expected 2, got 3"
_PIPELINE = "group/app#schedule-1"  # the first schedule of a fresh stand-in


def _script(*, fails: bool = False, duration_s: float = 0.1) -> dict[str, Any]:
    # Short waits keep the suite fast; the stand-in still goes through every state.
    return {
        "stages": ["build", "test"],
        "created_s": 0.02,
        "jobs": [
            {
                "name": "compile",
                "stage": "build",
                "queued_s": 0.05,
                "duration_s": duration_s,
                "script": ["$ make", "compiling", "compiled ok"],
                "artifacts": {"dist/app.txt": "the app, built\n" * 20},
            },
            {
                "name": "unit",
                "stage": "test",
                "queued_s": 0.05,
                "duration_s": 0.1,
                "fails": fails,
                "script": ["$ pytest", "collected 12 items", _ERROR if fails else "12 passed"],
            },
        ],
    }


@asynccontextmanager
async def _serve(scratch: Path) -> AsyncIterator[Server]:
    async with run_gitlab() as gitlab:
        app = await gitlab.seed(path="group/app", token=_TOKEN, script=_script())
        await gitlab.add_project("group/broken", script=_script(fails=True))
        await gitlab.add_project("group/slow", script=_script(duration_s=60.0))
        schedule = await gitlab.add_schedule(project=app["id"], description="nightly", ref="main")
        assert f"group/app#schedule-{schedule}" == _PIPELINE
        yield Server(
            base_url=gitlab.base_url,
            credentials=Credentials(type="private_token", token=_TOKEN),
        )


GITLAB = ProviderTarget(
    provider="gitlab",
    serve=_serve,
    config={"projects": ["group/app"]},
    succeeds=BuildRequest(project="group/app", branch="main", reason="contract"),
    fails=BuildRequest(project="group/broken"),
    error_line=_ERROR,
    runs_long=BuildRequest(project="group/slow"),
    unknown_project="group/no-such-project",
    unknown_build_ids=("group/app#999999", "group/no-such-project#1"),
    bad_credentials=Credentials(type="private_token", token="glpat-not-a-valid-token"),
    pipeline=PipelineRequest(pipeline=_PIPELINE),
    unknown_pipeline="group/app#schedule-999999",
    unknown_artifact_id="job-999999",
)
