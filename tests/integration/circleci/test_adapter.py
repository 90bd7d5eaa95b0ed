"""The CircleCI adapter against the CircleCI stand-in, in its own process, over HTTP.

What every provider does (trigger to succeeded, cancel a running build, refused
credentials, not-found ids, faults) is the contract suite's; these are CircleCI's own:
workflows and jobs, reruns from failed, pipeline parameters, the OpenAPI check.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from devmesh.adapters.registry import Connection
from devmesh.domain.errors import UpstreamInvalidArgument
from devmesh.domain.models import BuildRequest, BuildStatus, Credentials
from devmesh.providers.circleci import CircleCIAdapter, CircleCIConfig
from tests.standins.circleci.fixture import CircleCIStandin, SpecViolation, run_circleci
from tests.support.http import service_like_client
from tests.support.polling import settled

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

TOKEN = "CCIPAT_adaptertestsonly0000000000000000000"
ERROR = "E   assert 2 == 3"
TWO_JOBS = {
    "test": [
        {"name": "lint", "steps": ["echo lint is clean"]},
        {"name": "unit", "steps": ["echo collected 3 items", f"echo '{ERROR}'; exit 1"]},
    ]
}


@pytest.fixture(scope="module")
async def circleci_process() -> AsyncIterator[CircleCIStandin]:
    async with run_circleci() as standin:
        yield standin


@pytest.fixture
async def circleci(circleci_process: CircleCIStandin) -> CircleCIStandin:
    """The stand-in emptied, with one token; each test adds the projects it needs."""
    await circleci_process.reset(tokens={TOKEN: "agent"}, quiet_period_s=0.1)
    return circleci_process


@pytest.fixture
async def adapter(circleci: CircleCIStandin) -> AsyncIterator[CircleCIAdapter]:
    async with service_like_client() as http:
        yield CircleCIAdapter(
            Connection(
                base_url=circleci.base_url,
                config=CircleCIConfig(),
                credentials=Credentials(type="circle_token", token=TOKEN),
                http=http,
            )
        )


async def test_a_failed_build_names_its_failed_job_as_failed_stage(
    circleci: CircleCIStandin, adapter: CircleCIAdapter
) -> None:
    await circleci.add_project("gh/org/app", workflows=TWO_JOBS)
    done = await settled(
        adapter, (await adapter.trigger_build(BuildRequest(project="gh/org/app"))).id
    )
    assert done.status is BuildStatus.FAILED
    assert done.metadata["failed_stage"] == "unit"
    assert "job 'unit' failed" in done.metadata["failure_reason"]
    assert done.metadata["workflows"][0]["status"] == "failed"


async def test_each_log_line_names_its_job_and_step_and_failed_only_keeps_the_failed_step(
    circleci: CircleCIStandin, adapter: CircleCIAdapter
) -> None:
    await circleci.add_project("gh/org/app", workflows=TWO_JOBS)
    done = await settled(
        adapter, (await adapter.trigger_build(BuildRequest(project="gh/org/app"))).id
    )
    every = await adapter.read_log_lines(done.id, failed_only=False)
    failed = await adapter.read_log_lines(done.id, failed_only=True)
    assert ("lint: echo lint is clean", "lint is clean") in [
        (line.step, line.text) for line in every
    ]
    assert {line.step for line in failed} == {f"unit: echo '{ERROR}'; exit 1"}
    assert any(line.text == ERROR for line in failed)


async def test_a_retry_of_a_failed_build_reruns_only_its_failed_job_as_a_new_build(
    circleci: CircleCIStandin, adapter: CircleCIAdapter
) -> None:
    await circleci.add_project("gh/org/app", workflows=TWO_JOBS)
    first = await settled(
        adapter, (await adapter.trigger_build(BuildRequest(project="gh/org/app"))).id
    )

    retried = await adapter.retry_build(first.id)
    again = await settled(adapter, retried.id)
    lines = await adapter.read_log_lines(again.id, failed_only=False)

    assert retried.id.startswith(f"{first.id}/")
    assert retried.metadata["retry_of"] == first.id
    assert again.status is BuildStatus.FAILED
    assert {line.step.split(":")[0] for line in lines if line.step} == {"unit"}
    # The first build is still the pipeline's first run, not the rerun.
    assert (await adapter.get_build(first.id)).metadata["workflows"] == first.metadata["workflows"]


async def test_pipeline_parameters_reach_the_build_and_an_undeclared_one_is_refused(
    circleci: CircleCIStandin, adapter: CircleCIAdapter
) -> None:
    await circleci.add_project(
        "gh/org/app",
        workflows={"build": [{"name": "say", "steps": ["echo hello $PARAM_WHO"]}]},
        parameters={"who": "world"},
    )
    request = BuildRequest(project="gh/org/app", branch="feature/x", parameters={"who": "agent"})
    done = await settled(adapter, (await adapter.trigger_build(request)).id)
    lines = await adapter.read_log_lines(done.id, failed_only=False)
    with pytest.raises(UpstreamInvalidArgument) as caught:
        await adapter.trigger_build(BuildRequest(project="gh/org/app", parameters={"whom": "x"}))

    assert (done.status, done.branch) == (BuildStatus.SUCCEEDED, "feature/x")
    assert any(line.text == "hello agent" for line in lines)
    assert caught.value.details["field"] == "parameters"
    assert "whom" in caught.value.message


async def test_a_commit_is_refused_naming_commit(adapter: CircleCIAdapter) -> None:
    with pytest.raises(UpstreamInvalidArgument) as caught:
        await adapter.trigger_build(BuildRequest(project="gh/org/app", commit="c6d86dc7"))
    assert caught.value.details["field"] == "commit"


async def test_an_exchange_the_openapi_description_does_not_allow_fails_the_run_loudly() -> None:
    with pytest.raises(SpecViolation, match="branch"):
        async with run_circleci() as standin:
            await standin.reset(tokens={TOKEN: "agent"})
            await standin.add_project("gh/org/app", workflows=TWO_JOBS)
            async with httpx.AsyncClient(base_url=standin.base_url) as http:
                refused = await http.post(
                    "/api/v2/project/gh%2Forg%2Fapp/pipeline",
                    headers={"Circle-Token": TOKEN},
                    json={"branch": 7},
                )
            assert refused.status_code == 500
            assert "SPEC VIOLATION" in refused.text
