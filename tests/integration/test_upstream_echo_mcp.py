"""What an MCP agent reads when the upstream echoes credentials back: never the credentials."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.support.canary import CANARY
from tests.support.live import LiveService, mcp_client
from tests.upstream import Upstream, run_upstream

pytestmark = [pytest.mark.integration, pytest.mark.anyio]


@pytest.fixture
async def echoing() -> AsyncIterator[Upstream]:
    async with run_upstream() as upstream:
        await upstream.inject("status", status=500, echo=True, path="^/api/v2")
        yield upstream


async def test_an_echoed_upstream_token_is_redacted_from_the_mcp_error_text(
    live: LiveService, echoing: Upstream
) -> None:
    _, key = await live.services.tenants.create_tenant(f"t-{uuid.uuid4().hex[:8]}")
    async with httpx.AsyncClient(
        base_url=live.base_url, headers={"Authorization": f"Bearer {key}"}
    ) as http:
        created = await http.post(
            "/api/v1/tools",
            json={
                "name": "ci",
                "provider": "buildbot",
                "base_url": echoing.base_url,
                "resilience": {"max_retries": 0},
            },
        )
        assert created.status_code == 201, created.text

    async with mcp_client(live.mcp_url, key, upstream_token=CANARY) as client:
        result = await client.call_tool("ci.list_builds", {"limit": 1})

    text = " ".join(getattr(block, "text", "") for block in result.content)
    assert result.is_error is True
    assert "proxy saw authorization" in text
    assert CANARY not in text
    assert "[redacted]" in text
