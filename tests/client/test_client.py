"""The client against a real Developer Mesh on loopback, its tool ``gitlab`` on the GitLab
stand-in: results, names, errors, retries, passthrough and idempotency.

The knowledge methods (``search_contexts``, ``get_context``, ``analyze_failure``) call
routes that are not in the service yet; their tests come with those routes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from devops_mcp import CallTimeout, MCPClient, ServiceUnreachable, ToolError

from tests.client.support import TOKEN, api_url, gitlab_tenant
from tests.standins.gitlab.fixture import GitLabStandin
from tests.support.backends import free_port
from tests.support.live import LiveService

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

TRIGGER = {"project": "group/app", "branch": "main", "parameters": {"RUN_TESTS": "true"}}
PIPELINE_POSTS = r"/projects/[^/]+/pipeline$"


@pytest.fixture
async def key(live: LiveService, gitlab_standin: GitLabStandin) -> str:
    await gitlab_standin.seed(path="group/app", token=TOKEN)
    return await gitlab_tenant(live, gitlab_standin)


@pytest.fixture
async def mcp(live: LiveService, key: str) -> AsyncIterator[MCPClient]:
    async with MCPClient(base_url=api_url(live), api_key=key, deadline=20) as client:
        yield client


async def _pipeline_posts(gitlab: GitLabStandin) -> int:
    return sum(
        1
        for seen in await gitlab.requests()
        if seen.get("method") == "POST" and str(seen.get("path", "")).endswith("/pipeline")
    )


async def test_execute_tool_returns_the_operation_result_as_a_dict(mcp: MCPClient) -> None:
    build = await mcp.execute_tool("gitlab.trigger_build", TRIGGER)
    assert build["build_id"] == build["id"]
    assert build["build_id"].startswith("group/app#")
    assert build["url"]
    assert build["status"] in {"queued", "running"}


async def test_the_mcp_form_of_a_name_runs_the_same_operation(mcp: MCPClient) -> None:
    build = await mcp.execute_tool("gitlab.trigger_build", TRIGGER)
    status = await mcp.execute_tool("gitlab_get_build_status", {"build_id": build["build_id"]})
    assert status["id"] == build["id"]


async def test_list_tools_names_each_operation_tool_dot_operation(mcp: MCPClient) -> None:
    tools = {tool["name"]: tool for tool in await mcp.list_tools()}
    assert {"gitlab.trigger_build", "gitlab.get_build_logs", "gitlab.list_failed_builds"} <= set(
        tools
    )
    logs = tools["gitlab.get_build_logs"]
    assert (logs["tool"], logs["operation"], logs["provider"]) == (
        "gitlab",
        "get_build_logs",
        "gitlab",
    )
    assert "lines" in logs["input_schema"]["properties"]
    assert logs["read_only"] is True


async def test_the_api_key_comes_from_DEVMESH_API_KEY_when_not_given(
    live: LiveService, key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEVMESH_API_KEY", key)
    # Without `async with`: each call opens and closes its own connection.
    mcp = MCPClient(base_url=api_url(live))
    assert "gitlab.trigger_build" in [t["name"] for t in await mcp.list_tools()]
    assert key not in repr(mcp)


async def test_a_bad_argument_is_a_tool_error_naming_the_field(mcp: MCPClient) -> None:
    with pytest.raises(ToolError) as caught:
        await mcp.execute_tool("gitlab.get_build_logs", {"build_id": "group/app#1", "lines": 0})
    error = caught.value
    assert (error.status, error.code, error.field) == (422, "invalid_input", "lines")
    assert error.retriable is False
    assert "lines" in error.detail


async def test_an_unknown_operation_is_a_not_found_tool_error(mcp: MCPClient) -> None:
    with pytest.raises(ToolError) as caught:
        await mcp.execute_tool("gitlab.no_such_thing", {})
    assert caught.value.status == 404
    assert caught.value.code == "unknown_tool"


async def test_a_wrong_api_key_is_a_401_tool_error(live: LiveService, key: str) -> None:
    async with MCPClient(base_url=api_url(live), api_key="dmk_wrong") as mcp:
        with pytest.raises(ToolError) as caught:
            await mcp.list_tools()
    assert caught.value.status == 401
    assert "dmk_wrong" not in str(caught.value)


async def test_a_429_is_asked_again_after_its_retry_after(
    mcp: MCPClient, gitlab_standin: GitLabStandin
) -> None:
    await gitlab_standin.inject(429, path=PIPELINE_POSTS, method="POST", retry_after=1)
    build = await mcp.execute_tool("gitlab.trigger_build", TRIGGER)
    assert build["build_id"].startswith("group/app#")
    assert await _pipeline_posts(gitlab_standin) == 2


async def test_a_503_is_asked_again_after_its_retry_after(
    mcp: MCPClient, gitlab_standin: GitLabStandin
) -> None:
    await gitlab_standin.inject(503, path=PIPELINE_POSTS, method="POST", retry_after=1)
    build = await mcp.execute_tool("gitlab.trigger_build", TRIGGER)
    assert build["build_id"].startswith("group/app#")
    assert await _pipeline_posts(gitlab_standin) == 2


async def test_a_retry_after_past_the_deadline_is_raised_at_once(
    mcp: MCPClient, gitlab_standin: GitLabStandin
) -> None:
    await gitlab_standin.inject(429, path=PIPELINE_POSTS, method="POST", retry_after=120)
    with pytest.raises(ToolError) as caught:
        await mcp.execute_tool("gitlab.trigger_build", TRIGGER, deadline=5)
    error = caught.value
    assert (error.status, error.retriable, error.retry_after) == (429, True, 120)
    assert await _pipeline_posts(gitlab_standin) == 1


async def test_an_idempotency_key_makes_a_repeated_trigger_run_once(
    mcp: MCPClient, gitlab_standin: GitLabStandin
) -> None:
    first = await mcp.execute_tool("gitlab.trigger_build", TRIGGER, idempotency_key="rel-42")
    again = await mcp.execute_tool("gitlab.trigger_build", TRIGGER, idempotency_key="rel-42")
    assert again["build_id"] == first["build_id"]
    assert await _pipeline_posts(gitlab_standin) == 1


async def test_an_upstream_token_is_used_instead_of_stored_credentials(
    live: LiveService, gitlab_standin: GitLabStandin
) -> None:
    await gitlab_standin.seed(path="group/app", token=TOKEN)
    key = await gitlab_tenant(live, gitlab_standin, token=None)
    async with MCPClient(base_url=api_url(live), api_key=key, upstream_token=TOKEN) as mcp:
        build = await mcp.execute_tool("gitlab.trigger_build", TRIGGER)
        with pytest.raises(ToolError) as caught:
            await mcp.execute_tool(
                "gitlab.get_build_status",
                {"build_id": build["build_id"]},
                upstream_token="glpat-not-a-real-one",
            )
    assert caught.value.status in {401, 403, 502}
    assert "glpat-not-a-real-one" not in str(caught.value.problem)


async def test_a_refused_connection_names_the_url() -> None:
    url = f"http://127.0.0.1:{free_port()}/api/v1"
    async with MCPClient(base_url=url, api_key="dmk_x", deadline=5) as mcp:
        with pytest.raises(ServiceUnreachable) as caught:
            await mcp.list_tools()
    assert f"{url}/tools" in str(caught.value)
    assert caught.value.url == f"{url}/tools"


async def test_a_service_that_never_answers_is_a_call_timeout() -> None:
    writers: list[asyncio.StreamWriter] = []
    release = asyncio.Event()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        await reader.read(65536)  # take the request, answer nothing
        await release.wait()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        url = f"http://127.0.0.1:{port}/api/v1"
        async with MCPClient(base_url=url, api_key="dmk_x", timeout=0.3) as mcp:
            with pytest.raises(CallTimeout) as caught:
                await mcp.list_tools()
        assert url in str(caught.value)
    finally:
        release.set()
        for writer in writers:
            writer.close()
            await writer.wait_closed()
        server.close()
        await server.wait_closed()
