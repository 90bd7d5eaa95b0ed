"""Input limits: nothing a caller sends is stored, forwarded or echoed back unbounded.

Each test sends one oversized thing to the running app, over REST or over MCP
(the SDK client in process), and checks it is refused with a short answer naming
the field, and that nothing was stored.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from mcp import Client

from devmesh.app import Services
from devmesh.domain import limits
from devmesh.domain.models import Tenant
from devmesh.mcp.errors import error_payload
from devmesh.mcp.server import Context, build_server
from tests.support.http import bearer

pytestmark = pytest.mark.anyio

# Nobody listens on port 9 of loopback (discard); nothing in these tests may get that far.
CI = {"name": "ci", "provider": "buildbot", "base_url": "http://127.0.0.1:9"}


async def tenant_with_ci(
    client: httpx.AsyncClient, services: Services
) -> tuple[Tenant, str, dict[str, Any]]:
    tenant, key = await services.tenants.create_tenant("acme")
    created = await client.post("/api/v1/tools", json=CI, headers=bearer(key))
    assert created.status_code == 201, created.text
    return tenant, key, created.json()


@asynccontextmanager
async def mcp_as(
    services: Services, tenant: Tenant, upstream_token: str | None = None
) -> AsyncIterator[Client]:
    async def caller(ctx: Context) -> tuple[Tenant, str | None]:
        return tenant, upstream_token

    async with Client(build_server(services.tools, caller)) as client:
        yield client


# --- stored: config and credentials -------------------------------------------------


async def test_a_config_over_the_size_limit_is_422_naming_config_and_not_stored(
    client: httpx.AsyncClient, services: Services
) -> None:
    _, key = await services.tenants.create_tenant("acme")
    big = {"scheduler": "x" * (limits.MAX_CONFIG_BYTES + 1)}
    refused = await client.post("/api/v1/tools", json={**CI, "config": big}, headers=bearer(key))
    listed = await client.get("/api/v1/tools", headers=bearer(key))
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["field"] == "config"
    assert len(refused.content) < 2_000
    assert listed.json() == []


async def test_a_config_nested_too_deep_is_422_on_patch(
    client: httpx.AsyncClient, services: Services
) -> None:
    _, key, tool = await tenant_with_ci(client, services)
    deep: dict[str, Any] = {}
    for _ in range(limits.MAX_DEPTH + 1):
        deep = {"a": deep}
    refused = await client.patch("/api/v1/tools/ci", json={"config": deep}, headers=bearer(key))
    shown = await client.get("/api/v1/tools/ci", headers=bearer(key))
    assert refused.status_code == 422
    assert "nested deeper" in refused.json()["detail"]
    assert shown.json()["config"] == tool["config"]


async def test_a_credential_token_over_the_limit_is_422_and_not_stored(
    client: httpx.AsyncClient, services: Services
) -> None:
    _, key, _ = await tenant_with_ci(client, services)
    token = "t" * (limits.MAX_CREDENTIAL_FIELD + 1)
    refused = await client.put(
        "/api/v1/tools/ci/credentials",
        json={"credentials": {"type": "bearer", "token": token}},
        headers=bearer(key),
    )
    shown = await client.get("/api/v1/tools/ci", headers=bearer(key))
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["field"] == "credentials.token"
    assert token not in refused.text
    assert shown.json()["has_credentials"] is False


async def test_an_api_key_name_over_the_limit_is_422(
    client: httpx.AsyncClient, services: Services
) -> None:
    _, key = await services.tenants.create_tenant("acme")
    refused = await client.post(
        "/api/v1/keys", json={"name": "k" * (limits.MAX_KEY_NAME + 1)}, headers=bearer(key)
    )
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["field"] == "name"


# --- forwarded: operation arguments and the upstream token ---------------------------


async def test_an_operation_string_argument_over_the_limit_is_422_before_any_upstream_call(
    client: httpx.AsyncClient, services: Services
) -> None:
    _, key, _ = await tenant_with_ci(client, services)
    refused = await client.post(
        "/api/v1/tools/ci/operations/trigger_build",
        json={"project": "p" * (limits.MAX_ARGUMENT_STRING + 1)},
        headers=bearer(key),
    )
    assert refused.status_code == 422
    body = refused.json()
    assert (body["code"], body["details"]["field"]) == ("invalid_input", "arguments")
    assert "project" in body["detail"]


async def test_a_string_nested_in_build_parameters_is_bounded_too(
    client: httpx.AsyncClient, services: Services
) -> None:
    _, key, _ = await tenant_with_ci(client, services)
    refused = await client.post(
        "/api/v1/tools/ci/operations/trigger_build",
        json={"project": "p", "parameters": {"notes": "n" * (limits.MAX_ARGUMENT_STRING + 1)}},
        headers=bearer(key),
    )
    assert refused.status_code == 422
    assert "parameters.notes" in refused.json()["detail"]


async def test_an_upstream_token_over_the_limit_is_422_on_rest(
    client: httpx.AsyncClient, services: Services
) -> None:
    _, key, _ = await tenant_with_ci(client, services)
    refused = await client.post(
        "/api/v1/tools/ci/operations/list_builds",
        json={},
        headers={**bearer(key), "X-Upstream-Token": "u" * (limits.MAX_UPSTREAM_TOKEN + 1)},
    )
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["field"] == "header.X-Upstream-Token"


async def test_an_upstream_token_over_the_limit_is_an_invalid_input_result_on_mcp(
    client: httpx.AsyncClient, services: Services
) -> None:
    tenant, _, _ = await tenant_with_ci(client, services)
    token = "u" * (limits.MAX_UPSTREAM_TOKEN + 1)
    async with mcp_as(services, tenant, upstream_token=token) as mcp:
        result = await mcp.call_tool("ci.list_builds", {})
    payload = error_payload(result)
    assert result.is_error
    assert (payload["error"], payload["details"]["field"]) == ("invalid_input", "X-Upstream-Token")


async def test_an_idempotency_key_over_the_limit_is_422(
    client: httpx.AsyncClient, services: Services
) -> None:
    _, key, _ = await tenant_with_ci(client, services)
    refused = await client.post(
        "/api/v1/tools/ci/operations/trigger_build",
        json={"project": "p"},
        headers={**bearer(key), "Idempotency-Key": "k" * (limits.MAX_IDEMPOTENCY_KEY + 1)},
    )
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["field"] == "header.Idempotency-Key"


# --- echoed: validation errors --------------------------------------------------------


async def test_an_mcp_call_with_100000_unknown_keys_gets_a_short_answer(
    client: httpx.AsyncClient, services: Services
) -> None:
    tenant, _, _ = await tenant_with_ci(client, services)
    arguments = {f"k{i}": 1 for i in range(100_000)}
    async with mcp_as(services, tenant) as mcp:
        result = await mcp.call_tool("ci.list_builds", arguments)
    assert result.is_error
    assert error_payload(result)["error"] == "invalid_input"
    assert len(result.model_dump_json()) < 2_000


async def test_an_mcp_call_with_many_bad_arguments_lists_only_the_first_few(
    client: httpx.AsyncClient, services: Services
) -> None:
    tenant, _, _ = await tenant_with_ci(client, services)
    arguments = {f"unknown_{i}": 1 for i in range(limits.MAX_VALIDATION_ERRORS + 20)}
    async with mcp_as(services, tenant) as mcp:
        result = await mcp.call_tool("ci.list_builds", arguments)
    message = error_payload(result)["message"]
    assert message.count("unknown_") == limits.MAX_VALIDATION_ERRORS
    assert message.endswith("and 20 more")


async def test_a_rest_body_with_many_unknown_fields_lists_only_the_first_few_errors(
    client: httpx.AsyncClient, services: Services
) -> None:
    _, key = await services.tenants.create_tenant("acme")
    body = {**CI, **{f"x{i}": 1 for i in range(10_000)}}
    refused = await client.post("/api/v1/tools", json=body, headers=bearer(key))
    problem = refused.json()
    assert refused.status_code == 422
    assert len(problem["errors"]) == limits.MAX_VALIDATION_ERRORS
    assert problem["more_errors"] == 10_000 - limits.MAX_VALIDATION_ERRORS
    assert len(refused.content) < 2_000


async def test_a_huge_unknown_field_name_is_not_echoed_whole(
    client: httpx.AsyncClient, services: Services
) -> None:
    _, key = await services.tenants.create_tenant("acme")
    name = "n" * 100_000
    refused = await client.post("/api/v1/tools", json={**CI, name: 1}, headers=bearer(key))
    assert refused.status_code == 422
    assert len(refused.content) < 2_000
