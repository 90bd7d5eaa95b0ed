"""Resilience through the running service, against a real Buildbot and real backends.

Idempotent triggers are checked on Buildbot itself; pacing is checked over real
HTTP; replicas on PostgreSQL + Redis share breaker state. Injected upstream faults
(5xx, 429, hangs, dropped connections) are in test_faults.py.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from devmesh.mcp.errors import error_payload
from tests.support.app import fresh_postgres_database
from tests.support.buildbot import BuildbotServer
from tests.support.canary import CANARY
from tests.support.live import LiveService, mcp_client, run_service

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

CLOSED = "http://127.0.0.1:1"


async def register(
    base_url: str, key: str, upstream: str, *, name: str = "ci", **resilience: Any
) -> None:
    """A Buildbot tool with the canary stored as its credentials (Buildbot ignores them)."""
    auth = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=base_url, headers=auth) as http:
        tool = {"name": name, "provider": "buildbot", "base_url": upstream}
        if resilience:
            tool["resilience"] = resilience
        created = await http.post("/api/v1/tools", json=tool)
        assert created.status_code == 201, created.text
        stored = await http.put(
            f"/api/v1/tools/{name}/credentials",
            json={"credentials": {"type": "bearer", "token": CANARY}},
        )
        assert stored.status_code == 204, stored.text


async def new_tenant(live: LiveService) -> str:
    _, key = await live.services.tenants.create_tenant(f"t-{uuid.uuid4().hex[:8]}")
    return key


async def build_requests(buildbot: BuildbotServer) -> int:
    async with httpx.AsyncClient(base_url=buildbot.base_url) as http:
        answer = await http.get("/api/v2/buildrequests", params={"limit": 1000})
    return len(answer.json()["buildrequests"])


async def test_a_trigger_sent_twice_with_one_idempotency_key_makes_one_build(
    live: LiveService, buildbot: BuildbotServer
) -> None:
    key = await new_tenant(live)
    await register(live.base_url, key, buildbot.base_url)
    before = await build_requests(buildbot)
    headers = {"Authorization": f"Bearer {key}", "Idempotency-Key": f"deploy-{uuid.uuid4()}"}
    async with httpx.AsyncClient(base_url=live.base_url, headers=headers) as http:
        url = "/api/v1/tools/ci/operations/trigger_build"
        first = await http.post(url, json={"project": "runtests", "reason": "once"})
        second = await http.post(url, json={"project": "runtests", "reason": "once"})
        other = await http.post(url, json={"project": "lint", "reason": "once"})

    assert first.status_code == second.status_code == 200, first.text
    assert second.json() == first.json()
    assert await build_requests(buildbot) == before + 1
    assert other.status_code == 422
    assert other.headers["content-type"] == "application/problem+json"
    assert other.json()["details"]["field"] == "idempotency_key"
    assert "different request" in other.json()["detail"]


async def test_an_mcp_trigger_with_an_idempotency_key_runs_once(
    live: LiveService, buildbot: BuildbotServer
) -> None:
    key = await new_tenant(live)
    await register(live.base_url, key, buildbot.base_url)
    before = await build_requests(buildbot)
    arguments = {"project": "runtests", "idempotency_key": f"k-{uuid.uuid4()}"}
    async with mcp_client(live.mcp_url_all, key, upstream_token=CANARY) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        first = await client.call_tool("ci.trigger_build", arguments)
        second = await client.call_tool("ci.trigger_build", arguments)
        changed = await client.call_tool("ci.trigger_build", {**arguments, "project": "lint"})

    assert "idempotency_key" in tools["ci_trigger_build"].input_schema["properties"]
    assert "idempotency_key" not in tools["ci_get_build_status"].input_schema["properties"]
    assert first.is_error is False and second.is_error is False
    assert second.structured_content == first.structured_content
    assert await build_requests(buildbot) == before + 1
    assert changed.is_error is True
    assert error_payload(changed)["details"]["field"] == "idempotency_key"


async def test_a_hundred_calls_to_a_tool_limited_to_10_rps_are_paced_not_failed(
    live: LiveService, buildbot: BuildbotServer
) -> None:
    key = await new_tenant(live)
    await register(live.base_url, key, buildbot.base_url, requests_per_second=10)
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=live.base_url, headers=headers, timeout=60) as http:
        started = time.monotonic()
        answers = await asyncio.gather(
            *(
                http.post("/api/v1/tools/ci/operations/list_builds", json={"limit": 1})
                for _ in range(100)
            )
        )
        elapsed = time.monotonic() - started
        metrics = (await http.get("/metrics")).text

    assert [a.status_code for a in answers] == [200] * 100
    # Ten may go at once; the other ninety wait their turn at ten a second.
    assert elapsed >= 9.0
    assert 'devmesh_rate_limited_total{direction="outbound",scope="buildbot"}' in metrics


@pytest.fixture
async def replicas(
    tmp_path: Path, postgres_url: str, redis_url: str
) -> AsyncIterator[tuple[LiveService, LiveService]]:
    """Two replicas of the service on one PostgreSQL database and one Redis."""
    async with (
        fresh_postgres_database(postgres_url) as database_url,
        run_service(tmp_path, database_url=database_url, redis_url=redis_url) as first,
        run_service(tmp_path, database_url=database_url, redis_url=redis_url) as second,
    ):
        yield first, second


async def test_replicas_on_redis_share_one_circuit_breaker(
    replicas: tuple[LiveService, LiveService],
) -> None:
    first, second = replicas
    key = await new_tenant(first)
    await register(first.base_url, key, CLOSED, max_retries=0, max_failures=2, reset_timeout=60)
    auth = {"Authorization": f"Bearer {key}"}
    call = {"url": "/api/v1/tools/ci/operations/get_build_status", "json": {"build_id": "1"}}
    async with httpx.AsyncClient(base_url=first.base_url, headers=auth) as http:
        failures = [(await http.post(**call)).json()["code"] for _ in range(2)]
    async with httpx.AsyncClient(base_url=second.base_url, headers=auth) as http:
        refused = await http.post(**call)

    assert failures == ["upstream_unavailable"] * 2
    assert refused.status_code == 503
    assert refused.json()["code"] == "circuit_open"
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert "retry after" in refused.json()["detail"]


async def test_replicas_on_redis_share_one_inbound_rate_limit(
    tmp_path: Path, postgres_url: str, redis_url: str
) -> None:
    limit = {"rate_limit": {"requests_per_minute": 4}}
    async with (
        fresh_postgres_database(postgres_url) as database_url,
        run_service(tmp_path, database_url=database_url, redis_url=redis_url, **limit) as first,
        run_service(tmp_path, database_url=database_url, redis_url=redis_url, **limit) as second,
    ):
        key = await new_tenant(first)
        auth = {"Authorization": f"Bearer {key}"}
        statuses = []
        for replica in (first, second, first, second, first):
            async with httpx.AsyncClient(base_url=replica.base_url, headers=auth) as http:
                statuses.append((await http.get("/api/v1/tenant")).status_code)

    assert statuses == [200, 200, 200, 200, 429]


async def test_replicas_on_redis_share_one_outbound_rate_limit(
    replicas: tuple[LiveService, LiveService], buildbot: BuildbotServer
) -> None:
    first, second = replicas
    key = await new_tenant(first)
    await register(first.base_url, key, buildbot.base_url, requests_per_second=5)
    auth = {"Authorization": f"Bearer {key}"}
    call = {"url": "/api/v1/tools/ci/operations/list_builds", "json": {"limit": 1}}
    async with (
        httpx.AsyncClient(base_url=first.base_url, headers=auth, timeout=60) as a,
        httpx.AsyncClient(base_url=second.base_url, headers=auth, timeout=60) as b,
    ):
        started = time.monotonic()
        answers = await asyncio.gather(*(http.post(**call) for http in [a, b] * 10))
        elapsed = time.monotonic() - started

    assert [answer.status_code for answer in answers] == [200] * 20
    # Five a second between them: 20 calls need 3 s; each replica alone would take 1 s.
    assert elapsed >= 2.5
