"""``devmesh mcp`` (stdio) lists what its settings and its key say.

The official SDK's client launches ``devmesh mcp`` as an IDE would, with the
settings in its environment, against the database the test's service uses.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters, stdio_client

from devmesh.app import Services
from devmesh.config import Settings
from devmesh.tools.models import ToolCreate

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

DEVMESH = str(Path(sys.executable).parent / "devmesh")
KNOWLEDGE = {"search_contexts", "get_context", "store_context"}
META = {"search_tools", "call_tool", "list_toolsets"}


async def listed(settings: Settings, key: str, *args: str, **env: str) -> set[str]:
    environment = {
        "PATH": os.environ["PATH"],
        "DEVMESH_DATA_DIR": str(settings.data_dir),
        "DEVMESH_DATABASE_URL": settings.resolved_database_url,
        "DEVMESH_API_KEY": key,
        "DEVMESH_LOGGING__LEVEL": "warning",
        **env,
    }
    parameters = StdioServerParameters(command=DEVMESH, args=["mcp", *args], env=environment)
    async with Client(stdio_client(parameters)) as client:
        return {tool.name for tool in (await client.list_tools()).tools}


async def tenant_key(services: Services, *, read_only: bool = False) -> str:
    tenant, key = await services.tenants.create_tenant("acme")
    await services.tools.register_tool(
        tenant,
        ToolCreate(name="ci", provider="buildbot", base_url="http://ci.internal:8010"),  # type: ignore[arg-type]
    )
    if read_only:
        _, key = await services.tenants.create_key(tenant.id, name="viewer", read_only=True)
    return key


async def test_stdio_lists_the_toolsets_of_devmesh_toolsets(
    services: Services, settings: Settings
) -> None:
    key = await tenant_key(services)
    names = await listed(settings, key, DEVMESH_TOOLSETS="builds")
    assert {"ci_trigger_build", "ci_list_builds"} <= names
    assert not names & ({"ci_get_build_logs"} | KNOWLEDGE | META)


async def test_stdio_in_search_mode_lists_only_the_meta_tools(
    services: Services, settings: Settings
) -> None:
    key = await tenant_key(services)
    assert await listed(settings, key, DEVMESH_MCP_MODE="search") == META


async def test_stdio_with_a_read_only_key_lists_no_mutating_operation(
    services: Services, settings: Settings
) -> None:
    key = await tenant_key(services, read_only=True)
    names = await listed(settings, key, DEVMESH_TOOLSETS="all")
    assert {"ci_get_build_status", "search_contexts"} <= names
    assert not names & {"ci_trigger_build", "ci_cancel_build", "store_context"}
