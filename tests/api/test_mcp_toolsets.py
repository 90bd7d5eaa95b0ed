"""What an MCP connection sees: toolsets, search mode and read-only, over HTTP.

The official SDK's client talks Streamable HTTP to the app in process (an ASGI
transport), so the query string and headers reach the server as a client sends
them. No upstream is called: calls stop at argument validation or a refusal.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import httpx2
import mcp_types as types
import pytest
from fastapi import FastAPI
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from devmesh.app import Services
from devmesh.mcp.dialects import check
from devmesh.mcp.errors import error_payload
from tests.support.http import bearer

pytestmark = pytest.mark.anyio

TOOLS = [
    {"name": "ci", "provider": "buildbot", "base_url": "http://buildbot.internal:8010"},
    {"name": "gl", "provider": "gitlab", "base_url": "http://gitlab.internal"},
]
META = {"search_tools", "call_tool", "list_toolsets"}
KNOWLEDGE = {
    "search_contexts",
    "get_context",
    "store_context",
    "analyze_failure",
    "record_resolution",
}


async def tenant_with_tools(client: httpx.AsyncClient, services: Services, name: str) -> str:
    _, key = await services.tenants.create_tenant(name)
    for tool in TOOLS:
        created = await client.post("/api/v1/tools", json=tool, headers=bearer(key))
        assert created.status_code == 201, created.text
    return key


@asynccontextmanager
async def connected(
    app: FastAPI, key: str, query: str = "", headers: dict[str, str] | None = None
) -> AsyncIterator[Client]:
    async with (
        httpx2.AsyncClient(
            transport=httpx2.ASGITransport(app=app),
            headers={**bearer(key), **(headers or {})},
            timeout=30,
        ) as http,
        Client(
            streamable_http_client(f"http://127.0.0.1/mcp{query}", http_client=http)  # type: ignore[arg-type]
        ) as mcp,
    ):
        yield mcp


async def names(app: FastAPI, key: str, query: str = "", **headers: str) -> set[str]:
    async with connected(app, key, query, headers) as mcp:
        return {tool.name for tool in (await mcp.list_tools()).tools}


def answer(result: types.CallToolResult) -> dict[str, Any]:
    assert result.is_error is not True, result.content
    block = result.content[0]
    assert isinstance(block, types.TextContent)
    parsed: dict[str, Any] = json.loads(block.text)
    return parsed


async def test_a_connection_naming_no_toolsets_lists_the_defaults_and_the_meta_tools(
    app: FastAPI, client: httpx.AsyncClient, services: Services
) -> None:
    key = await tenant_with_tools(client, services, "acme")
    assert await names(app, key) == META | KNOWLEDGE


async def test_toolsets_in_the_query_list_those_sets_of_every_instance_and_nothing_else(
    app: FastAPI, client: httpx.AsyncClient, services: Services
) -> None:
    key = await tenant_with_tools(client, services, "acme")
    listed = await names(app, key, "?toolsets=builds,logs")
    assert {"ci_trigger_build", "gl_trigger_build", "ci_get_build_logs"} <= listed
    assert not listed & (META | KNOWLEDGE | {"ci_get_artifacts", "gl_list_pipelines"})


async def test_the_toolsets_header_chooses_as_the_query_does(
    app: FastAPI, client: httpx.AsyncClient, services: Services
) -> None:
    key = await tenant_with_tools(client, services, "acme")
    by_header = await names(app, key, **{"X-Devmesh-Toolsets": "pipelines"})
    assert by_header == await names(app, key, "?toolsets=pipelines")
    assert by_header == {
        f"{i}_{op}"
        for i in ("ci", "gl")
        for op in ("list_pipelines", "trigger_pipeline", "get_pipeline")
    }


async def test_toolsets_all_lists_every_operation_without_the_meta_tools(
    app: FastAPI, client: httpx.AsyncClient, services: Services
) -> None:
    key = await tenant_with_tools(client, services, "acme")
    listed = await names(app, key, "?toolsets=all")
    catalog = await services.tools.catalog(await services.tenants.authenticate(key))
    assert listed == KNOWLEDGE | {f"{e.tool}_{e.operation.name}" for e in catalog}


async def test_search_mode_lists_only_the_meta_tools_and_they_suit_every_dialect(
    app: FastAPI, client: httpx.AsyncClient, services: Services
) -> None:
    key = await tenant_with_tools(client, services, "acme")
    async with connected(app, key, "?mode=search") as mcp:
        tools = (await mcp.list_tools()).tools
    assert {tool.name for tool in tools} == META
    assert [v for tool in tools for v in check(tool.name, tool.input_schema)] == []


async def test_search_tools_puts_the_named_instances_trigger_build_first_with_its_schema(
    app: FastAPI, client: httpx.AsyncClient, services: Services
) -> None:
    key = await tenant_with_tools(client, services, "acme")
    async with connected(app, key, "?mode=search") as mcp:
        found = answer(
            await mcp.call_tool(
                "search_tools", {"query": "trigger a build of runtests on ci", "limit": 3}
            )
        )["tools"]
    assert found[0]["name"] == "ci_trigger_build"
    assert "project" in found[0]["input_schema"]["properties"]
    assert found[0]["input_schema"]["required"] == ["project"]
    assert len(found) <= 3


async def test_call_tool_runs_the_operation_it_names_with_its_arguments(
    app: FastAPI, client: httpx.AsyncClient, services: Services
) -> None:
    key = await tenant_with_tools(client, services, "acme")
    async with connected(app, key, "?mode=search") as mcp:
        result = await mcp.call_tool(
            "call_tool", {"name": "ci_get_build_status", "arguments": {"build_id": ""}}
        )
    # The operation's own validation answered: the call reached ci.get_build_status.
    assert result.is_error is True
    assert error_payload(result)["details"]["field"] == "build_id"


async def test_search_tools_with_a_limit_out_of_range_is_invalid_input_naming_it(
    app: FastAPI, client: httpx.AsyncClient, services: Services
) -> None:
    key = await tenant_with_tools(client, services, "acme")
    async with connected(app, key, "?mode=search") as mcp:
        result = await mcp.call_tool("search_tools", {"query": "logs", "limit": 500})
    assert result.is_error is True
    assert error_payload(result)["details"]["field"] == "limit"


async def test_list_toolsets_counts_each_sets_operations_and_marks_the_defaults(
    app: FastAPI, client: httpx.AsyncClient, services: Services
) -> None:
    key = await tenant_with_tools(client, services, "acme")
    async with connected(app, key, "?mode=search") as mcp:
        sets = answer(await mcp.call_tool("list_toolsets", {}))["toolsets"]
    counts = {s["name"]: (s["operations"], s["default"]) for s in sets}
    assert counts == {
        "artifacts": (4, False),
        "builds": (12, False),
        "knowledge": (5, True),
        "logs": (4, False),
        "pipelines": (6, False),
    }


async def test_an_unknown_mode_is_invalid_input_naming_it(
    app: FastAPI, client: httpx.AsyncClient, services: Services
) -> None:
    key = await tenant_with_tools(client, services, "acme")
    async with connected(app, key, "?mode=everything") as mcp:
        result = await mcp.call_tool("ci_get_build_status", {"build_id": "1"})
    assert result.is_error is True
    assert error_payload(result)["details"]["field"] == "mode"


async def test_a_read_only_connection_lists_only_read_only_operations(
    app: FastAPI, client: httpx.AsyncClient, services: Services
) -> None:
    key = await tenant_with_tools(client, services, "acme")
    listed = await names(app, key, "?toolsets=all&read_only=true")
    assert {"ci_get_build_status", "ci_get_build_logs", "search_contexts"} <= listed
    assert not listed & {
        "ci_trigger_build",
        "ci_cancel_build",
        "gl_trigger_pipeline",
        "store_context",
        "record_resolution",
    }


async def test_a_read_only_connection_refuses_a_mutating_call_as_forbidden(
    app: FastAPI, client: httpx.AsyncClient, services: Services
) -> None:
    key = await tenant_with_tools(client, services, "acme")
    async with connected(app, key, headers={"X-Devmesh-Read-Only": "true"}) as mcp:
        direct = await mcp.call_tool("ci_trigger_build", {"project": "runtests"})
        wide = await mcp.call_tool("store_context", {"key": "k", "content": "c"})
        via_meta = await mcp.call_tool(
            "call_tool", {"name": "ci.cancel_build", "arguments": {"build_id": "1"}}
        )
    for result in (direct, wide, via_meta):
        assert result.is_error is True
        assert error_payload(result)["error"] == "forbidden"
        assert error_payload(result)["details"]["read_only"] is True


async def test_search_on_a_read_only_connection_finds_no_mutating_operation(
    app: FastAPI, client: httpx.AsyncClient, services: Services
) -> None:
    key = await tenant_with_tools(client, services, "acme")
    async with connected(app, key, "?mode=search&read_only=1") as mcp:
        found = answer(await mcp.call_tool("search_tools", {"query": "trigger build", "limit": 20}))
    assert found["tools"]
    assert not any("trigger" in tool["name"] for tool in found["tools"])


async def read_only_key(client: httpx.AsyncClient, key: str) -> str:
    created = await client.post(
        "/api/v1/keys", json={"name": "viewer", "read_only": True}, headers=bearer(key)
    )
    assert created.status_code == 201, created.text
    assert created.json()["read_only"] is True
    plaintext: str = created.json()["api_key"]
    return plaintext


async def test_a_read_only_key_is_read_only_on_mcp_whatever_the_connection_asks(
    app: FastAPI, client: httpx.AsyncClient, services: Services
) -> None:
    viewer = await read_only_key(client, await tenant_with_tools(client, services, "acme"))
    listed = await names(app, viewer, "?toolsets=all&read_only=false")
    async with connected(app, viewer, "?toolsets=all&read_only=false") as mcp:
        result = await mcp.call_tool("ci_trigger_build", {"project": "runtests"})
    assert "ci_get_build_status" in listed
    assert "ci_trigger_build" not in listed
    assert error_payload(result)["error"] == "forbidden"


async def test_a_read_only_key_running_a_mutating_operation_on_rest_is_403_naming_it(
    client: httpx.AsyncClient, services: Services
) -> None:
    viewer = await read_only_key(client, await tenant_with_tools(client, services, "acme"))
    response = await client.post(
        "/api/v1/tools/ci/operations/trigger_build",
        json={"project": "runtests"},
        headers=bearer(viewer),
    )
    assert response.status_code == 403
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["code"] == "forbidden"
    assert "ci.trigger_build" in problem["detail"]
    assert "read-only" in problem["detail"]


async def test_a_read_only_key_may_run_a_read_only_operation_on_rest(
    client: httpx.AsyncClient, services: Services
) -> None:
    viewer = await read_only_key(client, await tenant_with_tools(client, services, "acme"))
    response = await client.post(
        "/api/v1/tools/ci/operations/get_build_status", json={}, headers=bearer(viewer)
    )
    # Past the gate and the read-only check: the operation's validation answers.
    assert response.status_code == 422
    assert response.json()["details"]["field"] == "build_id"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/api/v1/tools"),
        ("DELETE", "/api/v1/tools/ci"),
        ("PUT", "/api/v1/tools/ci/credentials"),
        ("POST", "/api/v1/keys"),
    ],
)
async def test_a_read_only_key_is_refused_every_change_on_rest_with_403(
    client: httpx.AsyncClient, services: Services, method: str, path: str
) -> None:
    key = await tenant_with_tools(client, services, "acme")
    viewer = await read_only_key(client, key)
    response = await client.request(method, path, json={}, headers=bearer(viewer))
    still_there = await client.get("/api/v1/tools/ci", headers=bearer(viewer))
    assert response.status_code == 403
    assert response.json()["code"] == "forbidden"
    assert still_there.status_code == 200


async def test_a_tools_own_default_toolsets_are_listed_to_a_connection_naming_none(
    app: FastAPI, client: httpx.AsyncClient, services: Services
) -> None:
    key = await tenant_with_tools(client, services, "acme")
    changed = await client.patch(
        "/api/v1/tools/ci", json={"toolsets": ["builds", "Logs"]}, headers=bearer(key)
    )
    listed = await names(app, key)
    chosen = await names(app, key, "?toolsets=pipelines")
    assert changed.status_code == 200, changed.text
    assert changed.json()["toolsets"] == ["builds", "logs"]
    assert {"ci_trigger_build", "ci_get_build_logs"} | META | KNOWLEDGE <= listed
    assert not listed & {"ci_get_artifacts", "gl_trigger_build"}
    # A connection that names toolsets gets those, whatever the instance's defaults.
    assert "ci_trigger_build" not in chosen


async def test_setting_a_tools_toolsets_to_null_returns_it_to_the_default(
    app: FastAPI, client: httpx.AsyncClient, services: Services
) -> None:
    key = await tenant_with_tools(client, services, "acme")
    await client.patch("/api/v1/tools/ci", json={"toolsets": ["builds"]}, headers=bearer(key))
    reset = await client.patch("/api/v1/tools/ci", json={"toolsets": None}, headers=bearer(key))
    assert reset.json()["toolsets"] is None
    assert await names(app, key) == META | KNOWLEDGE


async def test_a_malformed_toolset_name_is_422_naming_the_field(
    client: httpx.AsyncClient, services: Services
) -> None:
    _, key = await services.tenants.create_tenant("acme")
    response = await client.post(
        "/api/v1/tools", json={**TOOLS[0], "toolsets": ["builds", "no spaces"]}, headers=bearer(key)
    )
    assert response.status_code == 422
    assert "toolsets" in response.text


async def test_search_results_carry_portable_schemas_without_references(
    app: FastAPI, client: httpx.AsyncClient, services: Services
) -> None:
    key = await tenant_with_tools(client, services, "acme")
    async with connected(app, key, "?mode=search") as mcp:
        found = answer(
            await mcp.call_tool("search_tools", {"query": "list builds by status", "limit": 20})
        )["tools"]
    schemas = {tool["name"]: tool["input_schema"] for tool in found}
    status = schemas["ci_list_builds"]["properties"]["status"]
    assert "$ref" not in json.dumps(schemas)
    assert status["enum"] == ["queued", "running", "succeeded", "failed", "cancelled"]


async def test_listing_with_an_unknown_mode_is_an_invalid_params_error_naming_it(
    app: FastAPI, client: httpx.AsyncClient, services: Services
) -> None:
    key = await tenant_with_tools(client, services, "acme")
    async with connected(app, key, "?mode=everything") as mcp:
        with pytest.raises(MCPError) as raised:
            await mcp.list_tools()
    assert raised.value.error.code == types.INVALID_PARAMS
    assert raised.value.error.data == {"field": "mode"}


async def test_search_tools_finds_an_operation_by_a_paraphrase_through_the_embedder(
    app: FastAPI, client: httpx.AsyncClient, services: Services
) -> None:
    key = await tenant_with_tools(client, services, "acme")
    async with connected(app, key, "?mode=search") as mcp:
        found = answer(await mcp.call_tool("search_tools", {"query": "rerun the job"}))["tools"]
    # No word of the query is in retry_build's name, summary or parameters.
    assert found[0]["name"].endswith("_retry_build")
