"""Jenkins under contract: the Jenkins stand-in (``tests/standins/jenkins``) in a process
of its own, its jobs' shell steps really running.

Three jobs in a folder, one per behaviour (``team/app`` succeeds and archives a file,
``team/broken`` fails in its second step, ``team/slow`` runs for a minute), one user
with an API token, CSRF crumbs on.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from devmesh.domain.models import BuildRequest, Credentials
from tests.contract.target import ProviderTarget, Server
from tests.standins.jenkins.fixture import run_jenkins

__all__ = ["JENKINS"]

_USER = "contract"
_TOKEN = "11c0ntract0nly0000000000000000000a"
_ERROR = "AssertionError: expected 2, got 3"


@asynccontextmanager
async def _serve(scratch: Path) -> AsyncIterator[Server]:
    async with run_jenkins() as jenkins:
        await jenkins.reset(users={_USER: _TOKEN}, crumbs=True, quiet_period_s=0.2)
        await jenkins.add_job(
            "team/app",
            steps=[
                "echo compiling",
                "mkdir -p dist && printf 'the app, built\\n%.0s' {1..20} > dist/app.txt",
            ],
            parameters={"GREETING": "hello"},
            artifacts="dist/*",
        )
        await jenkins.add_job(
            "team/broken",
            steps=["echo collected 12 items", f"echo '{_ERROR}' && exit 1", "echo never"],
        )
        await jenkins.add_job("team/slow", steps=["echo working", "sleep 60"])
        yield Server(
            base_url=jenkins.base_url,
            credentials=Credentials(type="api_token", username=_USER, password=_TOKEN),
        )


JENKINS = ProviderTarget(
    provider="jenkins",
    serve=_serve,
    succeeds=BuildRequest(project="team/app", parameters={"GREETING": "contract"}),
    fails=BuildRequest(project="team/broken"),
    error_line=_ERROR,
    runs_long=BuildRequest(project="team/slow"),
    unknown_project="team/no-such-job",
    unknown_build_ids=("team/app#999999", "team/app#queue-999999", "team/no-such-job#1"),
    bad_credentials=Credentials(type="api_token", username=_USER, password="11notthetoken"),
    unknown_artifact_id="artifact/no/such/file.txt",
)
