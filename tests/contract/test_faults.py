"""Contract: injected faults between Developer Mesh and the provider, seen by an MCP agent.

The fault-injecting proxy (``tests.upstream``) stands in front of the provider's test
server: it answers 5xx, 429 with Retry-After, hangs past the attempt timeout or drops
the connection when told to, and forwards everything else. Faults are chosen by
what the target says its reads and triggers look like (``ProviderTarget.reads``,
``triggers``): by method for most HTTP providers, by a header for AWS.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import anyio
import httpx
import pytest
from mcp import Client

from devmesh.mcp.errors import error_payload
from tests.contract.agent import trigger_arguments
from tests.contract.conftest import ToolAt
from tests.contract.target import ProviderTarget, Server
from tests.support.live import LiveService, mcp_client
from tests.upstream import Upstream, run_upstream

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

FAST_RETRIES = {"backoff_initial": 0.05, "backoff_max": 0.2}


@pytest.fixture(scope="module")
async def proxy_process(server: Server, target: ProviderTarget) -> AsyncIterator[Upstream]:
    # One process per provider for the module (starting one takes ~0.5 s).
    async with run_upstream(target=server.base_url, keep_host=target.proxy_keeps_host) as upstream:
        yield upstream


@pytest.fixture
async def proxy(proxy_process: Upstream) -> Upstream:
    """The proxy with no faults in force and its counts at zero."""
    await proxy_process.clear()
    await proxy_process.reset_stats()
    return proxy_process


@pytest.fixture
def agent(tenant_at: ToolAt, proxy: Upstream) -> ToolAt:
    """A new tenant whose tool 'ci' reaches the server through the proxy; its key."""

    async def register(**resilience: Any) -> str:
        return await tenant_at(proxy.base_url, **FAST_RETRIES, **resilience)

    return register


async def list_builds(client: Client, target: ProviderTarget) -> Any:
    # With a project: some providers (GitLab) list per project only.
    return await client.call_tool(
        "ci_list_builds", {"project": target.succeeds.project, "limit": 1}
    )


async def metric(live: LiveService, line: str) -> float:
    async with httpx.AsyncClient(base_url=live.base_url) as http:
        text = (await http.get("/metrics")).text
    for row in text.splitlines():
        if row.startswith(line + " "):
            return float(row.rsplit(" ", 1)[1])
    return 0.0


# One test for the four, not a parametrisation: pytest would interleave those with
# the package's provider parameter and restart each provider's server between them.
TRANSIENT: list[dict[str, Any]] = [
    {"kind": "status", "status": 503},
    {"kind": "status", "status": 502},
    {"kind": "status", "status": 504},
    {"kind": "drop"},
]


async def test_a_read_is_retried_through_transient_faults_and_succeeds(
    live: LiveService, proxy: Upstream, agent: ToolAt, target: ProviderTarget
) -> None:
    key = await agent()
    async with mcp_client(live.mcp_url, key) as client:
        for fault in TRANSIENT:
            await proxy.reset_stats()
            await proxy.inject(**fault, count=2, **target.reads)
            result = await list_builds(client, target)
            assert result.is_error is False, (fault, result.content)
            assert (await proxy.stats()).faulted == 2, fault


async def test_a_read_waits_out_a_429_retry_after_and_succeeds(
    live: LiveService, proxy: Upstream, agent: ToolAt, target: ProviderTarget
) -> None:
    key = await agent()
    await proxy.inject("status", status=429, retry_after="1", count=1, **target.reads)

    async with mcp_client(live.mcp_url, key) as client:
        started = time.monotonic()
        result = await list_builds(client, target)
        waited = time.monotonic() - started

    assert result.is_error is False, result.content
    assert waited >= 1.0


async def test_an_attempt_that_hangs_past_its_timeout_is_abandoned_and_retried(
    live: LiveService, proxy: Upstream, agent: ToolAt, target: ProviderTarget
) -> None:
    key = await agent(attempt_timeout=1.0)
    await proxy.inject("hang", seconds=20, count=1, **target.reads)

    async with mcp_client(live.mcp_url, key) as client:
        result = await list_builds(client, target)

    assert result.is_error is False, result.content
    assert (await proxy.stats()).faulted == 1


async def test_a_trigger_is_not_retried_after_an_error_that_may_have_acted(
    live: LiveService, proxy: Upstream, agent: ToolAt, target: ProviderTarget
) -> None:
    key = await agent()
    await proxy.inject("status", status=503, **target.triggers)

    async with mcp_client(live.mcp_url, key) as client:
        result = await client.call_tool("ci_trigger_build", trigger_arguments(target, "succeeds"))

    assert result.is_error is True
    assert error_payload(result)["error"] == "upstream_unavailable"
    stats = await proxy.stats()
    assert stats.faulted == 1


async def test_the_breaker_opens_fails_fast_then_half_opens_and_closes_on_recovery(
    live: LiveService, proxy: Upstream, agent: ToolAt, target: ProviderTarget
) -> None:
    key = await agent(max_retries=0, max_failures=3, reset_timeout=1.0)
    await proxy.inject("status", status=503, **target.reads)
    opened = f'devmesh_circuit_breakers_open{{provider="{target.provider}"}}'
    open_before = await metric(live, opened)

    async with mcp_client(live.mcp_url, key) as client:
        failures = [error_payload(await list_builds(client, target))["error"] for _ in range(3)]
        seen_by_upstream = (await proxy.stats()).total
        fast = await list_builds(client, target)
        assert (await proxy.stats()).total == seen_by_upstream
        assert await metric(live, opened) == open_before + 1

        await proxy.clear()
        await anyio.sleep(1.2)
        probe = await list_builds(client, target)
        after = await list_builds(client, target)

    assert failures == ["upstream_unavailable"] * 3
    payload = error_payload(fast)
    assert payload["error"] == "circuit_open"
    assert payload["retriable"] is True
    assert "ci is unavailable" in payload["message"] and "retry after" in payload["message"]
    assert probe.is_error is False and after.is_error is False
    assert await metric(live, opened) == open_before
