"""Buildbot under contract: a real master and worker (``tests/support/buildbot``).

The master asks for a login on its control endpoints, so the suite's tools work
only with the stored basic credentials, and wrong ones are refused.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from devmesh.domain.models import BuildRequest, Credentials, PipelineRequest
from tests.contract.target import ProviderTarget, Server
from tests.support.buildbot import run_buildbot

__all__ = ["BUILDBOT"]

_LOGIN = ("admin", "pw-for-contract-tests")


@asynccontextmanager
async def _serve(scratch: Path) -> AsyncIterator[Server]:
    with run_buildbot(scratch, auth=_LOGIN) as master:
        user, password = _LOGIN
        yield Server(
            base_url=master.base_url,
            credentials=Credentials(type="basic", username=user, password=password),
        )


BUILDBOT = ProviderTarget(
    provider="buildbot",
    serve=_serve,
    succeeds=BuildRequest(project="runtests", reason="contract"),
    fails=BuildRequest(project="runtests", parameters={"fail": True}),
    error_line="failing on purpose",
    runs_long=BuildRequest(project="runtests", parameters={"sleep": "60"}),
    unknown_project="no-such-builder",
    unknown_build_ids=("999999", "br-999999", "not-a-build"),
    bad_credentials=Credentials(type="basic", username="admin", password="not-the-password"),
    pipeline=PipelineRequest(pipeline="release"),
    unknown_pipeline="no-such-pipeline",
    unknown_artifact_id="log-999999",
)
