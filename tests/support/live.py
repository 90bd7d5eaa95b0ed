"""The service on a real loopback port, and an official-SDK MCP client for it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import httpx2
import uvicorn
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from devmesh.app import Services, create_app
from devmesh.config import Settings
from tests.support.backends import free_port
from tests.support.canary import watch

__all__ = ["LiveService", "mcp_client", "run_service", "structured", "tenant_with_tool"]


@dataclass(frozen=True)
class LiveService:
    base_url: str
    services: Services

    @property
    def mcp_url(self) -> str:
        return f"{self.base_url}/mcp"

    @property
    def mcp_url_all(self) -> str:
        """``/mcp`` listing every operation (``toolsets=all``), for tests of the whole
        catalog; ``/mcp`` alone lists the default toolsets and the search meta-tools."""
        return f"{self.base_url}/mcp?toolsets=all"


@asynccontextmanager
async def run_service(data_dir: Path, **settings: object) -> AsyncIterator[LiveService]:
    config = Settings.model_validate({"data_dir": data_dir, "host": "127.0.0.1", **settings})
    app = create_app(config)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on")
    )
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(30):
            while not server.started:
                if task.done():
                    task.result()
                await asyncio.sleep(0.02)
        yield LiveService(base_url=f"http://127.0.0.1:{port}", services=app.state.services)
        watch("live service metrics", app.state.services.metrics.render())
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, timeout=30)


@asynccontextmanager
async def mcp_client(
    url: str, api_key: str, *, upstream_token: str | None = None, mode: str = "auto"
) -> AsyncIterator[Client]:
    headers = {"Authorization": f"Bearer {api_key}"}
    if upstream_token:
        headers["X-Upstream-Token"] = upstream_token

    async def inspect(response: httpx2.Response) -> None:
        # JSON answers only: reading an event stream here would wait for its end.
        if response.headers.get("content-type", "").startswith("application/json"):
            watch(f"MCP response to {response.request.method}", await response.aread())

    async with (
        httpx2.AsyncClient(
            headers=headers, timeout=60, event_hooks={"response": [inspect]}
        ) as http,
        Client(streamable_http_client(url, http_client=http), mode=mode) as client,  # type: ignore[arg-type]
    ):
        yield client


async def tenant_with_tool(live: LiveService, tool: Mapping[str, Any]) -> tuple[str, str]:
    """A new tenant with ``tool`` (a ``POST /api/v1/tools`` body) registered: key and tool id."""
    _, key = await live.services.tenants.create_tenant(f"t-{uuid.uuid4().hex[:8]}")
    async with httpx.AsyncClient(base_url=live.base_url) as http:
        created = await http.post(
            "/api/v1/tools", headers={"Authorization": f"Bearer {key}"}, json=dict(tool)
        )
    assert created.status_code == 201, created.text
    tool_id: str = created.json()["id"]
    return key, tool_id


def structured(result: Any) -> dict[str, Any]:
    """The structured content of a tool result that must have succeeded."""
    assert result.is_error is False, result.content
    payload: dict[str, Any] = result.structured_content
    return payload
