"""The tenant-wide MCP tools search_contexts, get_context and store_context, called by
the official SDK client over Streamable HTTP on a live service."""

from __future__ import annotations

import uuid

import pytest

from devmesh.mcp.dialects import check, check_output
from devmesh.mcp.errors import error_payload
from tests.support.live import LiveService, mcp_client, structured

pytestmark = pytest.mark.anyio

TENANT_WIDE = [
    "search_contexts",
    "get_context",
    "store_context",
    "analyze_failure",
    "record_resolution",
]


async def _key(live: LiveService) -> str:
    _, key = await live.services.tenants.create_tenant(f"t-{uuid.uuid4().hex[:8]}")
    return key


async def test_every_tenant_lists_the_tenant_wide_tools_and_they_suit_every_dialect(
    live: LiveService,
) -> None:
    async with mcp_client(live.mcp_url, await _key(live)) as client:
        tools = (await client.list_tools()).tools
    listed = [tool for tool in tools if tool.name in TENANT_WIDE]
    violations = [
        str(violation)
        for tool in listed
        for violation in check(tool.name, tool.input_schema)
        + check_output(tool.name, tool.output_schema or {})
    ]
    assert [tool.name for tool in listed] == TENANT_WIDE
    assert violations == []


async def test_a_stored_context_is_found_and_read_back_over_mcp(live: LiveService) -> None:
    async with mcp_client(live.mcp_url, await _key(live)) as client:
        stored = structured(
            await client.call_tool(
                "store_context",
                {
                    "key": "failure-analysis-7",
                    "type": "failure_analysis",
                    "subject": "7",
                    "data": {"class": "flaky test", "resolution": "rerun"},
                },
            )
        )
        found = structured(await client.call_tool("search_contexts", {"query": "flaky test"}))
        got = structured(await client.call_tool("get_context", {"key": "failure-analysis-7"}))
    assert got == stored
    [hit] = found["results"]
    assert (hit["key"], hit["build_id"], hit["resolution"]) == ("failure-analysis-7", "7", "rerun")


async def test_another_tenants_context_is_an_error_result_not_found(live: LiveService) -> None:
    async with mcp_client(live.mcp_url, await _key(live)) as client:
        await client.call_tool("store_context", {"key": "secret-1", "type": "note", "data": {}})
    async with mcp_client(live.mcp_url, await _key(live)) as client:
        got = await client.call_tool("get_context", {"key": "secret-1"})
        found = structured(await client.call_tool("search_contexts", {"query": "secret"}))
    assert got.is_error is True
    assert error_payload(got)["error"] == "not_found"
    assert found["results"] == []


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"query": ""}, "query"),
        ({"query": "x", "limit": 1000}, "limit"),
        ({"query": "x", "since": "yesterday-ish"}, "since"),
        ({"query": "x", "flavour": "any"}, "flavour"),
    ],
)
async def test_bad_search_arguments_are_an_error_result_naming_the_field(
    live: LiveService, arguments: dict[str, object], field: str
) -> None:
    async with mcp_client(live.mcp_url, await _key(live)) as client:
        result = await client.call_tool("search_contexts", arguments)
    assert result.is_error is True
    payload = error_payload(result)
    assert (payload["error"], payload["details"]["field"]) == ("invalid_input", field)
