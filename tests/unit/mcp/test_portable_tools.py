"""Every tool the MCP server lists, for every registered provider, suits every dialect.

The server runs in process over the SDK's memory transport, on the real
ToolService; no upstream is called (tools/list only, and calls that fail before one).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from mcp import Client

from devmesh.app import Services
from devmesh.domain.models import Tenant
from devmesh.mcp.dialects import check, check_output
from devmesh.mcp.errors import error_payload
from devmesh.mcp.server import Context, build_server
from devmesh.tools.models import ToolCreate
from devmesh.tools.naming import Separator

pytestmark = pytest.mark.anyio

DESCRIPTION = {
    "openapi": "3.0.3",
    "info": {"title": "builds", "version": "1"},
    "paths": {
        "/builds/{id}": {
            "get": {
                "operationId": "getBuild",
                "parameters": [
                    {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
                ],
                "responses": {"200": {"description": "the build"}},
            }
        }
    },
}


async def tenant_with_every_provider(services: Services, *names: str) -> Tenant:
    """A tenant with one tool per registered provider (per name given, default 'ci')."""
    tenant, _ = await services.tenants.create_tenant(f"t-{uuid.uuid4().hex[:8]}")
    for provider in services.registry.names():
        for name in names or ("ci",):
            await services.tools.register_tool(
                tenant,
                ToolCreate(
                    # Clipped so that '<name>-<provider>' keeps to the 64 characters a
                    # tool name may have, however long the provider's name.
                    name=name
                    if provider == "buildbot"
                    else f"{name[: 63 - len(provider)]}-{provider}",
                    provider=provider,
                    base_url="http://ci.internal:8010",  # type: ignore[arg-type]
                    # A provider whose operations come from a description gets a small one.
                    spec=DESCRIPTION if services.registry.get(provider).document else None,  # type: ignore[union-attr]
                ),
            )
    return tenant


@asynccontextmanager
async def serving(
    services: Services, tenant: Tenant, separator: Separator = "_"
) -> AsyncIterator[Client]:
    async def caller(_ctx: Context) -> tuple[Tenant, str | None]:
        return tenant, None

    async with Client(build_server(services.tools, caller, separator=separator)) as client:
        yield client


async def test_every_listed_tool_passes_the_claude_openai_and_gemini_rules(
    services: Services,
) -> None:
    tenant = await tenant_with_every_provider(services)
    async with serving(services, tenant) as client:
        tools = (await client.list_tools()).tools
    violations = [
        str(violation)
        for tool in tools
        for violation in check(tool.name, tool.input_schema)
        + check_output(tool.name, tool.output_schema or {"type": "object", "properties": {}})
    ]
    assert len(tools) >= len(services.registry.names())
    assert violations == []


async def test_the_listed_names_are_the_instance_and_operation_joined_by_the_separator(
    services: Services,
) -> None:
    tenant = await tenant_with_every_provider(services)
    async with serving(services, tenant) as client:
        names = {tool.name for tool in (await client.list_tools()).tools}
    async with serving(services, tenant, separator=".") as client:
        dotted = {tool.name for tool in (await client.list_tools()).tools}
    assert {"ci_trigger_build", "ci_get_build_logs", "ci_list_failed_builds"} <= names
    assert {"ci.trigger_build", "ci.get_build_logs"} <= dotted


async def test_a_long_instance_name_is_shortened_and_the_title_keeps_it_whole(
    services: Services,
) -> None:
    # As long as a tool name may be once the longest provider name is appended to it.
    room = 64 - len("build-") - len("-") - max(len(p) for p in services.registry.names())
    long = "build-" + "x" * room
    tenant = await tenant_with_every_provider(services, long)
    async with serving(services, tenant) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    # One tool per provider: the buildbot one is named `long` itself, the others `long-<provider>`.
    [download] = [
        tool
        for tool in tools.values()
        if tool.title and tool.title.startswith(f"{long}: ") and "download_artifact" in tool.title
    ]
    assert all(len(name) <= 64 for name in tools)
    assert download.name != f"{long}_download_artifact"
    assert download.title == f"{long}: download artifact ({long}.download_artifact)"


@pytest.mark.parametrize("name", ["ci_list_builds_nope", "nope_list_builds", "ci"])
async def test_calling_an_unknown_exposed_name_is_an_unknown_tool_error(
    services: Services, name: str
) -> None:
    tenant = await tenant_with_every_provider(services)
    async with serving(services, tenant) as client:
        result = await client.call_tool(name, {})
    assert result.is_error is True
    assert error_payload(result)["error"] == "unknown_tool"


@pytest.mark.parametrize("name", ["ci_get_build_status", "ci.get_build_status"])
async def test_a_call_by_exposed_or_dotted_name_reaches_the_operation(
    services: Services, name: str
) -> None:
    tenant = await tenant_with_every_provider(services)
    async with serving(services, tenant) as client:
        # Missing arguments fail in the operation's own validation: it was found.
        result = await client.call_tool(name, {})
    assert result.is_error is True
    assert error_payload(result)["error"] == "invalid_input"
    assert "build_id" in error_payload(result)["message"]


async def test_instances_whose_names_contain_the_separator_are_each_reachable(
    services: Services,
) -> None:
    tenant, _ = await services.tenants.create_tenant(f"t-{uuid.uuid4().hex[:8]}")
    for name in ("ci", "ci_get"):
        await services.tools.register_tool(
            tenant,
            ToolCreate(name=name, provider="buildbot", base_url="http://ci.internal:8010"),  # type: ignore[arg-type]
        )
    async with serving(services, tenant) as client:
        names = [tool.name for tool in (await client.list_tools()).tools]
        result = await client.call_tool("ci_get_build_status", {})
    assert len(names) == len(set(names))
    assert "ci_get_build_status" in names
    assert "ci_get_build_logs" in names
    assert error_payload(result)["error"] == "invalid_input"
