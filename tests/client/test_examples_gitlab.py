"""The guide's programs (``examples/``), run as processes against a real Developer Mesh
whose tool ``gitlab`` is the GitLab stand-in: a passing build followed to its end, a
failed one's logs and the similar failures the service remembers, and the assistant's
commands."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest
from devops_mcp import MCPClient

from tests.client.examples import run_example
from tests.client.support import TOKEN, api_url, gitlab_tenant
from tests.standins.gitlab.fixture import GitLabStandin
from tests.support.live import LiveService, run_service

pytestmark = [pytest.mark.integration, pytest.mark.anyio]


@pytest.fixture(scope="module")
async def live(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[LiveService]:
    # GitLab has no webhook here: the watcher finds a build's final state, so it polls
    # fast enough for the service to learn from a failure within the test.
    fast = {"events": {"watcher": {"interval": 0.3}}}
    async with run_service(tmp_path_factory.mktemp("devmesh"), **fast) as service:
        yield service


FAILING: dict[str, Any] = {
    "stages": ["build", "test"],
    "jobs": [
        {"name": "compile", "stage": "build", "script": ["$ make", "compiled ok"]},
        {
            "name": "unit",
            "stage": "test",
            "fails": True,
            "script": ["$ pytest", "E   AssertionError: expected 2, got 3"],
        },
    ],
}


async def test_the_integration_example_follows_a_passing_build_to_its_end(
    live: LiveService, gitlab_standin: GitLabStandin
) -> None:
    await gitlab_standin.seed(path="group/app", token=TOKEN)
    key = await gitlab_tenant(live, gitlab_standin)
    run = await run_example(
        "gitlab_integration.py", "group/app", "main", url=api_url(live), api_key=key
    )
    assert run.returncode == 0, run.stderr
    assert re.search(r"^Build triggered: group/app#\d+$", run.stdout, re.M)
    assert re.search(r"^URL: http://127\.0\.0\.1:\d+/group/app/-/pipelines/\d+$", run.stdout, re.M)
    assert "Status: succeeded" in run.stdout
    assert "Build completed with status: succeeded" in run.stdout
    assert re.search(r"^Duration: \d+(\.\d+)?$", run.stdout, re.M)


async def test_the_integration_example_prints_the_logs_of_a_failed_build(
    live: LiveService, gitlab_standin: GitLabStandin
) -> None:
    await gitlab_standin.seed(path="group/app", token=TOKEN, script=FAILING)
    key = await gitlab_tenant(live, gitlab_standin)
    run = await run_example(
        "gitlab_integration.py", "group/app", "main", url=api_url(live), api_key=key
    )
    assert run.returncode == 0, run.stderr
    assert "Status: failed" in run.stdout
    logs = run.stdout.split("Build failed. Last 500 lines of logs:\n", 1)[1]
    assert "E   AssertionError: expected 2, got 3" in logs
    assert "Build completed with status: failed" in run.stdout


async def test_the_integration_example_lists_an_earlier_failure_as_similar(
    live: LiveService, gitlab_standin: GitLabStandin
) -> None:
    await gitlab_standin.seed(path="group/app", token=TOKEN, script=FAILING)
    key = await gitlab_tenant(live, gitlab_standin)
    first = await _failed_build(live, key)
    async with MCPClient(base_url=api_url(live), api_key=key) as mcp:
        give_up = time.monotonic() + 60
        while not any(
            hit["build_id"] == first
            for hit in await mcp.search_contexts(query="AssertionError", type="gitlab_build")
        ):
            assert time.monotonic() < give_up, f"{first} was not learned from"
            await anyio.sleep(0.3)

    run = await run_example(
        "gitlab_integration.py", "group/app", "main", url=api_url(live), api_key=key
    )

    assert run.returncode == 0, run.stderr
    similar = run.stdout.split("Similar failures found:\n", 1)[1]
    assert f"- {first}: None" in similar


async def _failed_build(live: LiveService, key: str) -> str:
    async with MCPClient(base_url=api_url(live), api_key=key) as mcp:
        build = await mcp.execute_tool("gitlab.trigger_build", {"project": "group/app"})
        build_id: str = build["build_id"]
        give_up = time.monotonic() + 30
        while True:
            status = await mcp.execute_tool("gitlab.get_build_status", {"build_id": build_id})
            if status["status"] == "failed":
                return build_id
            assert time.monotonic() < give_up, status
            await anyio.sleep(0.2)


async def test_the_assistant_lists_failed_builds_with_where_and_why(
    live: LiveService, gitlab_standin: GitLabStandin
) -> None:
    await gitlab_standin.seed(path="group/app", token=TOKEN, script=FAILING)
    key = await gitlab_tenant(live, gitlab_standin)
    build_id = await _failed_build(live, key)
    run = await run_example(
        "devops_assistant.py", "show failed builds for group/app", url=api_url(live), api_key=key
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("Recent failed builds:\n")
    assert f"\n- {build_id}: script_failure\n  Failed at: test\n" in run.stdout


async def test_the_assistant_starts_a_deployment(
    live: LiveService, gitlab_standin: GitLabStandin
) -> None:
    await gitlab_standin.seed(
        path="group/app-deploy", token=TOKEN, branches={"main": "a" * 40, "staging": "b" * 40}
    )
    key = await gitlab_tenant(live, gitlab_standin)
    run = await run_example(
        "devops_assistant.py", "deploy group/app to staging", url=api_url(live), api_key=key
    )
    assert run.returncode == 0, run.stderr
    assert re.match(
        r"Deployment started for group/app to staging\. Monitor at: http://\S+/pipelines/\d+$",
        run.stdout.strip(),
    )
