"""The egress policy over REST: refused tool addresses at registration, and at connect time."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from devmesh.app import Services, create_app
from devmesh.config import EgressSettings, Settings
from devmesh.domain.models import Tenant
from devmesh.store.rows import ToolRow, utcnow
from tests.support.canary import watch
from tests.support.http import bearer
from tests.upstream import Upstream

pytestmark = pytest.mark.anyio

LIST_BUILDS = "/api/v1/tools/ci/operations/list_builds"
# 169.254.169.254 written as one integer.
METADATA_AS_INTEGER = "http://2852039166/latest/meta-data"


@pytest.fixture
async def strict_app(settings: Settings) -> AsyncIterator[FastAPI]:
    """The app under a production egress policy: no loopback, no private ranges."""
    strict = settings.model_copy(
        update={"egress": EgressSettings(allow_loopback=False, allow_private=False)}
    )
    application = create_app(strict)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def strict_client(strict_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async def inspect(response: httpx.Response) -> None:
        watch(f"response to {response.request.method} {response.url.path}", await response.aread())

    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=strict_app),
        base_url="http://devmesh.test",
        event_hooks={"response": [inspect]},
    ) as http:
        yield http


async def register(client: httpx.AsyncClient, key: str, base_url: str) -> httpx.Response:
    body = {"name": "ci", "provider": "buildbot", "base_url": base_url}
    return await client.post("/api/v1/tools", json=body, headers=bearer(key))


async def insert_tool(services: Services, tenant: Tenant, base_url: str) -> None:
    """A tool row written past the API's checks: registered under a laxer policy, or
    a name that resolved elsewhere when it was registered."""
    now = utcnow()
    async with services.db.session() as session:
        session.add(
            ToolRow(
                id=str(uuid.uuid4()),
                tenant_id=tenant.id,
                name="ci",
                provider="buildbot",
                base_url=base_url,
                config={},
                credential_mode="either",
                resilience={"backoff_initial": 0.01, "backoff_max": 0.02},
                created_at=now,
                updated_at=now,
            )
        )


def assert_refused_base_url(response: httpx.Response, reason: str) -> None:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["details"]["field"] == "base_url"
    assert reason in problem["detail"]


@pytest.mark.parametrize(
    ("base_url", "reason"),
    [
        ("http://169.254.169.254/latest/meta-data", "link-local or cloud metadata"),
        ("http://[fd00:ec2::254]/latest", "link-local or cloud metadata"),
        ("http://[::ffff:169.254.169.254]/", "link-local or cloud metadata"),
        (METADATA_AS_INTEGER, "link-local or cloud metadata"),
        ("http://[fe80::1]:8010", "link-local or cloud metadata"),
        ("http://metadata.google.internal/computeMetadata/v1", "cloud metadata service"),
        ("http://0.0.0.0:8010", "not a unicast destination"),
    ],
)
async def test_a_tool_on_a_metadata_or_link_local_address_is_422_naming_base_url(
    client: httpx.AsyncClient, services: Services, base_url: str, reason: str
) -> None:
    _, key = await services.tenants.create_tenant("acme")
    assert_refused_base_url(await register(client, key, base_url), reason)
    assert (await client.get("/api/v1/tools", headers=bearer(key))).json() == []


async def test_patching_base_url_to_a_metadata_address_is_422_and_leaves_the_tool_alone(
    client: httpx.AsyncClient, services: Services
) -> None:
    _, key = await services.tenants.create_tenant("acme")
    created = await register(client, key, "http://buildbot.internal:8010")
    patched = await client.patch(
        "/api/v1/tools/ci", json={"base_url": METADATA_AS_INTEGER}, headers=bearer(key)
    )
    assert_refused_base_url(patched, "link-local or cloud metadata")
    shown = await client.get("/api/v1/tools/ci", headers=bearer(key))
    assert shown.json()["base_url"] == created.json()["base_url"]


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
async def test_the_service_itself_is_refused_as_a_tool_address(
    client: httpx.AsyncClient, services: Services, host: str
) -> None:
    _, key = await services.tenants.create_tenant("acme")
    port = services.settings.port
    assert_refused_base_url(await register(client, key, f"http://{host}:{port}"), "service itself")


@pytest.mark.parametrize(
    ("base_url", "reason"),
    [
        ("http://127.0.0.1:8010", "loopback"),
        ("http://localhost:8010", "loopback"),
        ("http://10.1.2.3:8010", "private address"),
        ("http://[fd12:3456::1]:8010", "private address"),
    ],
)
async def test_a_production_policy_refuses_loopback_and_private_addresses(
    strict_client: httpx.AsyncClient, strict_app: FastAPI, base_url: str, reason: str
) -> None:
    _, key = await strict_app.state.services.tenants.create_tenant("acme")
    assert_refused_base_url(await register(strict_client, key, base_url), reason)


async def test_the_embedded_default_allows_a_ci_server_on_loopback_or_the_local_network(
    client: httpx.AsyncClient, services: Services
) -> None:
    _, key = await services.tenants.create_tenant("acme")
    for base_url in ("http://127.0.0.1:8010", "http://10.1.2.3:8010"):
        created = await register(client, key, base_url)
        assert created.status_code == 201, created.text
        await client.delete("/api/v1/tools/ci", headers=bearer(key))


async def test_a_refused_address_is_stopped_at_connect_time_without_a_retry(
    strict_client: httpx.AsyncClient, strict_app: FastAPI, upstream: Upstream
) -> None:
    services: Services = strict_app.state.services
    tenant, key = await services.tenants.create_tenant("acme")
    await insert_tool(services, tenant, upstream.base_url)

    response = await strict_client.post(LIST_BUILDS, json={}, headers=bearer(key))

    assert response.status_code == 502, response.text
    problem = response.json()
    assert (problem["code"], problem["retriable"]) == ("egress_denied", False)
    assert "loopback" in problem["detail"]
    assert (await upstream.stats()).total == 0


@pytest.mark.parametrize(
    "base_url",
    [
        "http://admin:secret@buildbot.internal:8010",
        "http://buildbot.internal:8010/x?token=abc",
        "http://buildbot.internal:8010/#/builders",
    ],
)
@pytest.mark.parametrize("method", ["POST", "PATCH"])
async def test_a_base_url_with_userinfo_query_or_fragment_is_422_naming_base_url(
    client: httpx.AsyncClient, services: Services, base_url: str, method: str
) -> None:
    _, key = await services.tenants.create_tenant("acme")
    body: dict[str, Any] = {"name": "ci", "provider": "buildbot", "base_url": base_url}
    if method == "PATCH":
        assert (await register(client, key, "http://buildbot.internal:8010")).status_code == 201
        response = await client.patch(
            "/api/v1/tools/ci", json={"base_url": base_url}, headers=bearer(key)
        )
    else:
        response = await client.post("/api/v1/tools", json=body, headers=bearer(key))
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == "base_url"
    assert "secret" not in response.text
    listed = await client.get("/api/v1/tools", headers=bearer(key))
    assert "secret" not in listed.text and "token=abc" not in listed.text


async def test_an_upstream_retry_after_is_clamped_to_a_sane_maximum(
    client: httpx.AsyncClient, services: Services, upstream: Upstream
) -> None:
    _, key = await services.tenants.create_tenant("acme")
    assert (await register(client, key, upstream.base_url)).status_code == 201
    await upstream.inject("status", status=429, retry_after="99999999", path="^/api/v2")

    response = await client.post(LIST_BUILDS, json={}, headers=bearer(key))

    assert response.status_code == 429, response.text
    assert response.headers["Retry-After"] == "300"
    assert "99999999" not in response.text
    assert response.json()["details"]["retry_after"] == 300


async def test_the_http_client_libraries_do_not_log_each_upstream_request(
    client: httpx.AsyncClient,
    services: Services,
    upstream: Upstream,
    caplog: pytest.LogCaptureFixture,
) -> None:
    _, key = await services.tenants.create_tenant("acme")
    assert (await register(client, key, upstream.base_url)).status_code == 201
    with caplog.at_level(logging.DEBUG):
        assert (await client.post(LIST_BUILDS, json={}, headers=bearer(key))).status_code == 200
    assert [r for r in caplog.records if r.name.split(".")[0] in ("httpx", "httpcore")] == []
