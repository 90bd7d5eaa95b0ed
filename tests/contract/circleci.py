"""CircleCI under contract: the CircleCI stand-in (``tests/standins/circleci``) in a
process of its own, every API v2 exchange checked against CircleCI's OpenAPI
description, its jobs' steps really running.

One project per behaviour (``gh/devmesh/app`` succeeds and stores an artifact,
``gh/devmesh/broken`` fails in its second step, ``gh/devmesh/slow`` runs for a
minute), one user with a personal API token.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from devmesh.domain.models import BuildRequest, Credentials
from tests.contract.target import ProviderTarget, Server
from tests.standins.circleci.fixture import run_circleci

__all__ = ["CIRCLECI"]

_TOKEN = "CCIPAT_contract0nly0000000000000000000000"
_ERROR = "AssertionError: expected 2, got 3"


@asynccontextmanager
async def _serve(scratch: Path) -> AsyncIterator[Server]:
    async with run_circleci() as circleci:
        await circleci.reset(tokens={_TOKEN: "contract"}, quiet_period_s=0.2)
        await circleci.add_project(
            "gh/devmesh/app",
            workflows={
                "build": [
                    {
                        "name": "build",
                        "steps": [
                            "echo compiling for $PARAM_GREETING",
                            "mkdir -p dist",
                            "printf 'the app, built\\n%.0s' {1..20} > dist/app.txt",
                        ],
                        "artifacts": "dist/*",
                    }
                ]
            },
            parameters={"greeting": "hello"},
        )
        await circleci.add_project(
            "gh/devmesh/broken",
            workflows={
                "test": [
                    {
                        "name": "unit",
                        "steps": [
                            "echo collected 12 items",
                            f"echo '{_ERROR}' && exit 1",
                            "echo never",
                        ],
                    }
                ]
            },
        )
        await circleci.add_project(
            "gh/devmesh/slow",
            workflows={"soak": [{"name": "soak", "steps": ["echo working", "sleep 60"]}]},
        )
        yield Server(
            base_url=circleci.base_url,
            credentials=Credentials(type="circle_token", token=_TOKEN),
        )


CIRCLECI = ProviderTarget(
    provider="circleci",
    serve=_serve,
    succeeds=BuildRequest(
        project="gh/devmesh/app", branch="main", parameters={"greeting": "contract"}
    ),
    fails=BuildRequest(project="gh/devmesh/broken", branch="main"),
    error_line=_ERROR,
    runs_long=BuildRequest(project="gh/devmesh/slow", branch="main"),
    unknown_project="gh/devmesh/no-such-project",
    unknown_build_ids=(
        "5034460f-c7c4-4c43-9457-de07e2029e7b",
        "5034460f-c7c4-4c43-9457-de07e2029e7b/0e53027b-521a-4c40-9042-47e72b3c63a3",
    ),
    bad_credentials=Credentials(type="circle_token", token="CCIPAT_notthetoken"),
    unknown_artifact_id="1/no/such/file.txt",
)
