"""The inbound limit: each API key gets its share, on REST and MCP alike."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from devmesh.app import Services, create_app
from devmesh.config import RateLimitSettings, Settings

pytestmark = pytest.mark.anyio

MCP_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
PING = {"jsonrpc": "2.0", "id": 1, "method": "ping"}


@pytest.fixture
async def limited_app(settings: Settings) -> AsyncIterator[FastAPI]:
    limited = settings.model_copy(update={"rate_limit": RateLimitSettings(requests_per_minute=3)})
    application = create_app(limited)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def limited(limited_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=limited_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
        yield http


async def test_a_key_over_its_limit_gets_429_problem_json_with_retry_after(
    limited: httpx.AsyncClient, limited_app: FastAPI
) -> None:
    services: Services = limited_app.state.services
    _, key = await services.tenants.create_tenant("acme")
    auth = {"Authorization": f"Bearer {key}"}
    for _ in range(3):
        assert (await limited.get("/api/v1/tenant", headers=auth)).status_code == 200

    refused = await limited.get("/api/v1/tenant", headers=auth)

    assert refused.status_code == 429
    assert refused.headers["content-type"] == "application/problem+json"
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert refused.json()["code"] == "rate_limited"
    assert "retry after" in refused.json()["detail"]


async def test_rest_and_mcp_count_against_the_same_key(
    limited: httpx.AsyncClient, limited_app: FastAPI
) -> None:
    services: Services = limited_app.state.services
    _, key = await services.tenants.create_tenant("acme")
    auth = {"Authorization": f"Bearer {key}"}
    for _ in range(3):
        assert (await limited.get("/api/v1/tenant", headers=auth)).status_code == 200

    refused = await limited.post("/mcp", json=PING, headers={**auth, **MCP_HEADERS})

    assert refused.status_code == 429
    assert refused.headers["content-type"] == "application/problem+json"
    assert int(refused.headers["retry-after"]) >= 1


async def test_one_key_over_its_limit_leaves_other_keys_alone(
    limited: httpx.AsyncClient, limited_app: FastAPI
) -> None:
    services: Services = limited_app.state.services
    _, busy = await services.tenants.create_tenant("acme")
    _, quiet = await services.tenants.create_tenant("globex")
    for _ in range(4):
        await limited.get("/api/v1/tenant", headers={"Authorization": f"Bearer {busy}"})

    answer = await limited.get("/api/v1/tenant", headers={"Authorization": f"Bearer {quiet}"})

    assert answer.status_code == 200


async def test_requests_with_a_wrong_key_are_401_not_counted(
    limited: httpx.AsyncClient, limited_app: FastAPI
) -> None:
    services: Services = limited_app.state.services
    _, key = await services.tenants.create_tenant("acme")
    wrong = key[:-4] + "xxxx"
    for _ in range(5):
        response = await limited.get("/api/v1/tenant", headers={"Authorization": f"Bearer {wrong}"})
        assert response.status_code == 401

    assert (
        await limited.get("/api/v1/tenant", headers={"Authorization": f"Bearer {key}"})
    ).status_code == 200
