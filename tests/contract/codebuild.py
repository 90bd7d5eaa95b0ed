"""CodeBuild under contract: moto's server with the stand-in's build runner
(``tests/standins/codebuild``) in a process of its own, builds really running their
buildspec commands.

Three projects, one per behaviour (``app`` succeeds and uploads a file to S3,
``broken`` fails in its BUILD phase, ``slow`` runs for a minute), one IAM user's
access key, moto's IAM authentication on.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from devmesh.domain.models import BuildRequest, Credentials
from tests.contract.target import ProviderTarget, Server
from tests.standins.codebuild.fixture import REGION, run_codebuild

__all__ = ["CODEBUILD"]

_ERROR = "AssertionError: expected 2, got 3"


@asynccontextmanager
async def _serve(scratch: Path) -> AsyncIterator[Server]:
    async with run_codebuild() as aws:
        await aws.add_bucket("contract-artifacts")
        await aws.add_project(
            "app",
            commands={
                "build": [
                    "echo compiling for $GREETING",
                    "mkdir -p dist && printf 'the app, built\\n%.0s' {1..20} > dist/app.txt",
                ]
            },
            artifacts=["dist/*"],
            bucket="contract-artifacts",
        )
        await aws.add_project(
            "broken",
            commands={
                "pre_build": ["echo collected 12 items"],
                "build": [f"echo '{_ERROR}' && exit 1", "echo never"],
            },
        )
        await aws.add_project("slow", commands={"build": ["echo working", "sleep 60"]})
        yield Server(
            base_url=aws.base_url,
            credentials=Credentials(
                type="aws_keys", username=aws.access_key, password=aws.secret_key
            ),
        )


CODEBUILD = ProviderTarget(
    provider="codebuild",
    serve=_serve,
    config={"region": REGION},
    succeeds=BuildRequest(project="app", parameters={"GREETING": "contract"}),
    fails=BuildRequest(project="broken"),
    error_line=_ERROR,
    runs_long=BuildRequest(project="slow"),
    unknown_project="no-such-project",
    unknown_build_ids=("app:00000000-0000-4000-8000-000000000000",),
    bad_credentials=Credentials(
        type="aws_keys", username="AKIANOTAREALKEY00000", password="not-the-secret-key"
    ),
    unknown_artifact_id="no/such/file.txt",
    # AWS's JSON protocol POSTs every call to "/", naming it in X-Amz-Target.
    reads={"header": "X-Amz-Target", "matches": r"\.(BatchGetBuilds|ListBuilds)"},
    triggers={"header": "X-Amz-Target", "matches": r"\.StartBuild$"},
    # SigV4 signs the Host header: a proxy that rewrote it would break every signature.
    proxy_keeps_host=True,
)
