"""The client's knowledge methods against a real Developer Mesh that learned from a failed
GitLab pipeline (the stand-in): search, read, analyse and record how it was fixed."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest
from devops_mcp import MCPClient, ToolError

from tests.client.support import TOKEN, api_url, gitlab_tenant
from tests.client.test_examples_gitlab import FAILING
from tests.standins.gitlab.fixture import GitLabStandin
from tests.support.live import LiveService, run_service

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

LEARNED_WITHIN_S = 60.0


@pytest.fixture(scope="module")
async def live(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[LiveService]:
    # GitLab has no webhook here: the watcher finds the final state, so it polls fast.
    fast = {"events": {"watcher": {"interval": 0.3}}}
    async with run_service(tmp_path_factory.mktemp("devmesh"), **fast) as service:
        yield service


@pytest.fixture
async def mcp(live: LiveService, gitlab_standin: GitLabStandin) -> AsyncIterator[MCPClient]:
    await gitlab_standin.seed(path="group/app", token=TOKEN, script=FAILING)
    key = await gitlab_tenant(live, gitlab_standin)
    async with MCPClient(base_url=api_url(live), api_key=key, deadline=20) as client:
        yield client


async def learned_failure(mcp: MCPClient) -> dict[str, Any]:
    """A failed pipeline's search hit (type gitlab_build), once the worker stored it."""
    build = await mcp.execute_tool("gitlab.trigger_build", {"project": "group/app"})
    deadline = time.monotonic() + LEARNED_WITHIN_S
    while True:
        hits = await mcp.search_contexts(
            {"query": "AssertionError expected 2 got 3", "type": "gitlab_build", "limit": 10}
        )
        mine = [hit for hit in hits if hit["build_id"] == build["build_id"]]
        if mine:
            return mine[0]
        assert time.monotonic() < deadline, f"{build['build_id']} was not learned from"
        await anyio.sleep(0.3)


async def test_search_contexts_finds_a_failed_build_by_its_error(mcp: MCPClient) -> None:
    hit = await learned_failure(mcp)

    assert hit["type"] == "gitlab_build"
    assert hit["status"] == "failed"
    assert hit["project"] == "group/app"
    assert hit["resolution"] is None


async def test_get_context_reads_the_stored_build_by_the_key_a_hit_names(mcp: MCPClient) -> None:
    hit = await learned_failure(mcp)

    context = await mcp.get_context(hit["key"], tool="gitlab")

    assert context["data"]["build_id"] == hit["build_id"]
    assert context["data"]["failed_stage"] == "test"


async def test_analyze_failure_explains_the_failure_with_its_line(mcp: MCPClient) -> None:
    hit = await learned_failure(mcp)

    report = await mcp.analyze_failure(hit["build_id"], tool="gitlab")

    assert report["category"] == "test"
    assert any("AssertionError: expected 2, got 3" in line["text"] for line in report["excerpt"])
    assert report["error_pattern"]


async def test_a_recorded_resolution_comes_back_on_the_builds_search_hit(
    mcp: MCPClient,
) -> None:
    hit = await learned_failure(mcp)

    await mcp.record_resolution(hit["build_id"], "pinned the fixture's clock", tool="gitlab")
    again = await mcp.search_contexts(
        query="AssertionError expected 2 got 3", type="gitlab_build", limit=10
    )

    mine = next(h for h in again if h["build_id"] == hit["build_id"])
    assert mine["resolution"]["note"] == "pinned the fixture's clock"


async def test_an_empty_query_is_refused_before_any_request(mcp: MCPClient) -> None:
    with pytest.raises(ValueError, match="query"):
        await mcp.search_contexts({"type": "gitlab_build"})


async def test_an_unknown_context_is_a_404_tool_error(mcp: MCPClient) -> None:
    with pytest.raises(ToolError) as caught:
        await mcp.get_context("build-nothing-here")
    assert caught.value.status == 404
