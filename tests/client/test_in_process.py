"""The client over httpx's ASGI transport: the app in process, no port."""

from __future__ import annotations

import httpx
import pytest
from devops_mcp import MCPClient, ToolError
from fastapi import FastAPI

from devmesh.app import Services

pytestmark = pytest.mark.anyio


async def test_the_client_drives_an_app_in_process_through_a_transport(
    app: FastAPI, services: Services
) -> None:
    _, key = await services.tenants.create_tenant("in-process")
    async with MCPClient(
        base_url="http://devmesh.test/api/v1", api_key=key, transport=httpx.ASGITransport(app=app)
    ) as mcp:
        assert await mcp.list_tools() == []
        with pytest.raises(ToolError) as caught:
            await mcp.execute_tool("ci.trigger_build", {"project": "runtests"})
    assert (caught.value.status, caught.value.code) == (404, "unknown_tool")
