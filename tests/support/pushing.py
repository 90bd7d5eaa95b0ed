"""A tenant's Buildbot tool whose real master pushes its builds to a live service
(HttpStatusPush to ``/api/v1/webhooks/{tool}``), for the tests of what follows a push.

The master's hook needs the tool's id and secret before it starts, and the tool needs
the master's address after: the tool is registered first at a placeholder address and
moved once the master runs.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from devmesh.domain.models import Tenant
from tests.support.buildbot.server import BuildbotServer, run_buildbot
from tests.support.live import LiveService

__all__ = ["PushingTool", "move_tool", "pushing_master", "register_pushed_tool"]


@dataclass(frozen=True)
class PushingTool:
    """A tenant (and its key) with a Buildbot tool ``ci`` and its webhook secret."""

    tenant: Tenant
    key: str
    tool_id: str
    secret: str

    def bearer(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


async def register_pushed_tool(live: LiveService) -> PushingTool:
    tenant, key = await live.services.tenants.create_tenant(f"t-{uuid.uuid4().hex[:8]}")
    async with httpx.AsyncClient(
        base_url=live.base_url, headers={"Authorization": f"Bearer {key}"}
    ) as http:
        created = await http.post(
            "/api/v1/tools",
            json={"name": "ci", "provider": "buildbot", "base_url": "http://127.0.0.1:9"},
        )
        assert created.status_code == 201, created.text
        tool_id = created.json()["id"]
        hook = await http.put(f"/api/v1/tools/{tool_id}/webhook", json={})
        assert hook.status_code == 200, hook.text
    return PushingTool(tenant, key, tool_id, hook.json()["secret"])


@contextmanager
def pushing_master(
    directory: Path, live: LiveService, tool: PushingTool
) -> Iterator[BuildbotServer]:
    """A real master and worker whose builds' state changes are pushed to ``tool``."""
    with run_buildbot(
        directory,
        hook_url=f"{live.base_url}/api/v1/webhooks/{tool.tool_id}",
        hook_password=tool.secret,
    ) as server:
        yield server


async def move_tool(live: LiveService, tool: PushingTool, buildbot: BuildbotServer) -> None:
    """Point the tool at the running master."""
    async with httpx.AsyncClient(base_url=live.base_url, headers=tool.bearer()) as http:
        moved = await http.patch(
            f"/api/v1/tools/{tool.tool_id}", json={"base_url": buildbot.base_url}
        )
    assert moved.status_code == 200, moved.text
