"""Injected faults between Developer Mesh and a real Buildbot, seen by an MCP agent.

The fault-injecting proxy (tests/upstream/) stands in front of a real master:
it answers 5xx, 429 with Retry-After, hangs past the attempt timeout or drops the
connection when told to, and forwards everything else to Buildbot.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import anyio
import httpx
import pytest
from mcp import Client

from devmesh.mcp.errors import error_payload
from tests.support.buildbot import BuildbotServer
from tests.support.canary import CANARY
from tests.support.live import LiveService, mcp_client
from tests.upstream import Upstream, run_upstream

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

BUILDS = "^/api/v2/builds$"
FAST_RETRIES = {"backoff_initial": 0.05, "backoff_max": 0.2}


@pytest.fixture
async def proxy(buildbot: BuildbotServer) -> AsyncIterator[Upstream]:
    async with run_upstream(target=buildbot.base_url) as upstream:
        yield upstream


async def agent(live: LiveService, proxy: Upstream, **resilience: Any) -> tuple[str, str]:
    """A tenant whose tool 'ci' reaches Buildbot through the proxy; its key and tool id."""
    _, key = await live.services.tenants.create_tenant(f"t-{uuid.uuid4().hex[:8]}")
    auth = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=live.base_url, headers=auth) as http:
        created = await http.post(
            "/api/v1/tools",
            json={
                "name": "ci",
                "provider": "buildbot",
                "base_url": proxy.base_url,
                "resilience": {**FAST_RETRIES, **resilience},
            },
        )
        assert created.status_code == 201, created.text
    return key, created.json()["id"]


async def list_builds(client: Client) -> Any:
    return await client.call_tool("ci.list_builds", {"limit": 1})


async def metric(live: LiveService, line: str) -> float:
    async with httpx.AsyncClient(base_url=live.base_url) as http:
        text = (await http.get("/metrics")).text
    for row in text.splitlines():
        if row.startswith(line + " "):
            return float(row.rsplit(" ", 1)[1])
    return 0.0


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param({"kind": "status", "status": 503}, id="503"),
        pytest.param({"kind": "status", "status": 502}, id="502"),
        pytest.param({"kind": "status", "status": 504}, id="504"),
        pytest.param({"kind": "drop"}, id="dropped-connection"),
    ],
)
async def test_a_read_is_retried_through_transient_faults_and_succeeds(
    live: LiveService, proxy: Upstream, fault: dict[str, Any]
) -> None:
    key, _ = await agent(live, proxy)
    await proxy.inject(**fault, count=2, path=BUILDS)

    async with mcp_client(live.mcp_url, key, upstream_token=CANARY) as client:
        result = await list_builds(client)

    assert result.is_error is False, result.content
    assert (await proxy.stats()).faulted == 2


async def test_a_read_waits_out_a_429_retry_after_and_succeeds(
    live: LiveService, proxy: Upstream
) -> None:
    key, _ = await agent(live, proxy)
    await proxy.inject("status", status=429, retry_after="1", count=1, path=BUILDS)

    async with mcp_client(live.mcp_url, key) as client:
        started = time.monotonic()
        result = await list_builds(client)
        waited = time.monotonic() - started

    assert result.is_error is False, result.content
    assert waited >= 1.0


async def test_an_attempt_that_hangs_past_its_timeout_is_abandoned_and_retried(
    live: LiveService, proxy: Upstream
) -> None:
    key, _ = await agent(live, proxy, attempt_timeout=1.0)
    await proxy.inject("hang", seconds=20, count=1, path=BUILDS)

    async with mcp_client(live.mcp_url, key) as client:
        result = await list_builds(client)

    assert result.is_error is False, result.content
    assert (await proxy.stats()).faulted == 1


async def test_a_trigger_is_not_retried_after_an_error_that_may_have_acted(
    live: LiveService, proxy: Upstream
) -> None:
    key, _ = await agent(live, proxy)
    await proxy.inject("status", status=503, method="POST", path="/forceschedulers/")

    async with mcp_client(live.mcp_url, key) as client:
        result = await client.call_tool("ci.trigger_build", {"project": "runtests"})

    assert result.is_error is True
    assert error_payload(result)["error"] == "upstream_unavailable"
    stats = await proxy.stats()
    assert stats.faulted == 1


async def test_the_breaker_opens_fails_fast_then_half_opens_and_closes_on_recovery(
    live: LiveService, proxy: Upstream
) -> None:
    key, _ = await agent(live, proxy, max_retries=0, max_failures=3, reset_timeout=1.0)
    await proxy.inject("status", status=503, path=BUILDS)
    opened = 'devmesh_circuit_breakers_open{provider="buildbot"}'
    open_before = await metric(live, opened)

    async with mcp_client(live.mcp_url, key) as client:
        failures = [error_payload(await list_builds(client))["error"] for _ in range(3)]
        seen_by_upstream = (await proxy.stats()).total
        fast = await list_builds(client)
        assert (await proxy.stats()).total == seen_by_upstream
        assert await metric(live, opened) == open_before + 1

        await proxy.clear()
        await anyio.sleep(1.2)
        probe = await list_builds(client)
        after = await list_builds(client)

    assert failures == ["upstream_unavailable"] * 3
    payload = error_payload(fast)
    assert payload["error"] == "circuit_open"
    assert payload["retriable"] is True
    assert "ci is unavailable" in payload["message"] and "retry after" in payload["message"]
    assert probe.is_error is False and after.is_error is False
    assert await metric(live, opened) == open_before
