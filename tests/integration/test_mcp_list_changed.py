"""tools/list_changed: a listening MCP client hears of its own tenant's changes only.

The service runs on a loopback port; the official SDK's client opens a
``subscriptions/listen`` stream (2026-07-28) over Streamable HTTP while the tenant
registers and removes a tool over REST.
"""

from __future__ import annotations

import uuid

import anyio
import httpx
import pytest
from mcp.shared.subscriptions import ToolsListChanged

from tests.support.http import bearer
from tests.support.live import LiveService, mcp_client

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

EVENT_DEADLINE_S = 20.0
# Long enough for an event already published to cross loopback; only used to show
# that one did not come.
QUIET_S = 1.0


def ci(name: str) -> dict[str, str]:
    return {"name": name, "provider": "buildbot", "base_url": "http://buildbot.internal:8010"}


async def new_tenant(live: LiveService) -> str:
    _, key = await live.services.tenants.create_tenant(f"t-{uuid.uuid4().hex[:8]}")
    return key


async def test_a_listener_hears_its_tenant_register_and_remove_a_tool(live: LiveService) -> None:
    key = await new_tenant(live)
    async with (
        mcp_client(live.mcp_url_all, key) as client,
        client.listen(tools_list_changed=True) as changes,
        httpx.AsyncClient(base_url=live.base_url, headers=bearer(key)) as http,
    ):
        assert (await http.post("/api/v1/tools", json=ci("ci"))).status_code == 201
        with anyio.fail_after(EVENT_DEADLINE_S):
            registered = await anext(changes)
        listed = {tool.name for tool in (await client.list_tools()).tools}
        assert (await http.delete("/api/v1/tools/ci")).status_code == 204
        with anyio.fail_after(EVENT_DEADLINE_S):
            removed = await anext(changes)
    assert changes.honored.tools_list_changed is True
    assert isinstance(registered, ToolsListChanged)
    assert isinstance(removed, ToolsListChanged)
    assert "ci_trigger_build" in listed


async def test_another_tenants_change_is_not_announced(live: LiveService) -> None:
    mine, theirs = await new_tenant(live), await new_tenant(live)
    async with (
        mcp_client(live.mcp_url_all, mine) as client,
        client.listen(tools_list_changed=True) as changes,
        mcp_client(live.mcp_url_all, theirs) as other,
        other.listen(tools_list_changed=True) as their_changes,
        httpx.AsyncClient(base_url=live.base_url) as http,
    ):
        made = await http.post("/api/v1/tools", json=ci("ci"), headers=bearer(theirs))
        with anyio.fail_after(EVENT_DEADLINE_S):
            await anext(their_changes)
        # Their event has been delivered: one for us would be on its way already.
        with anyio.move_on_after(QUIET_S) as quiet:
            await anext(changes)
    assert made.status_code == 201
    assert quiet.cancelled_caught
