"""Changing and removing tool instances over REST: PATCH and DELETE /api/v1/tools/{tool}."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx
import pytest

from devmesh.app import Services
from tests.support.http import bearer

pytestmark = pytest.mark.anyio

CI = {"name": "ci", "provider": "buildbot", "base_url": "http://buildbot.internal:8010"}


async def tenant_with_ci(
    client: httpx.AsyncClient, services: Services, name: str
) -> tuple[str, dict[str, Any]]:
    """A new tenant's key, and the Buildbot tool 'ci' it registered."""
    _, key = await services.tenants.create_tenant(name)
    created = await client.post("/api/v1/tools", json=CI, headers=bearer(key))
    assert created.status_code == 201, created.text
    tool: dict[str, Any] = created.json()
    return key, tool


async def test_patch_changes_base_url_and_config_and_get_shows_them(
    client: httpx.AsyncClient, services: Services
) -> None:
    key, tool = await tenant_with_ci(client, services, "acme")
    changed = await client.patch(
        "/api/v1/tools/ci",
        json={"base_url": "https://ci.example.com/", "config": {"scheduler": "force"}},
        headers=bearer(key),
    )
    shown = await client.get("/api/v1/tools/ci", headers=bearer(key))
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert (body["id"], body["base_url"], body["config"]) == (
        tool["id"],
        "https://ci.example.com",
        {"scheduler": "force"},
    )
    assert datetime.fromisoformat(body["updated_at"]) >= datetime.fromisoformat(tool["updated_at"])
    assert body.pop("credentials_cleared") is False
    assert shown.json() == body


async def test_patch_leaves_fields_it_does_not_name_alone(
    client: httpx.AsyncClient, services: Services
) -> None:
    key, _ = await tenant_with_ci(client, services, "acme")
    await client.patch(
        "/api/v1/tools/ci", json={"config": {"request_timeout": 5}}, headers=bearer(key)
    )
    changed = await client.patch(
        "/api/v1/tools/ci", json={"credential_mode": "stored"}, headers=bearer(key)
    )
    body = changed.json()
    assert (body["base_url"], body["config"], body["credential_mode"]) == (
        CI["base_url"],
        {"request_timeout": 5.0},
        "stored",
    )


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({"schedular": "force"}, "config.schedular"),
        ({"request_timeout": "soon"}, "config.request_timeout"),
        ({"max_log_lines": 5}, "config.max_log_lines"),
    ],
)
async def test_patch_with_a_bad_config_field_is_422_naming_it(
    client: httpx.AsyncClient, services: Services, config: dict[str, Any], field: str
) -> None:
    key, tool = await tenant_with_ci(client, services, "acme")
    response = await client.patch("/api/v1/tools/ci", json={"config": config}, headers=bearer(key))
    unchanged = await client.get("/api/v1/tools/ci", headers=bearer(key))
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["code"] == "invalid_input"
    assert problem["details"]["field"] == field
    assert field in problem["detail"]
    assert unchanged.json()["config"] == tool["config"]


@pytest.mark.parametrize(
    ("body", "field"),
    [({"base_url": "not a url"}, "base_url"), ({"provider": "jenkins"}, "provider")],
)
async def test_patch_with_a_bad_or_unchangeable_field_is_422_naming_it(
    client: httpx.AsyncClient, services: Services, body: dict[str, Any], field: str
) -> None:
    key, _ = await tenant_with_ci(client, services, "acme")
    response = await client.patch("/api/v1/tools/ci", json=body, headers=bearer(key))
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["errors"][0]["field"] == field


async def test_patch_finds_the_tool_by_id_as_well_as_by_name(
    client: httpx.AsyncClient, services: Services
) -> None:
    key, tool = await tenant_with_ci(client, services, "acme")
    by_id = await client.patch(
        f"/api/v1/tools/{tool['id']}",
        json={"base_url": "http://by-id.internal:8010"},
        headers=bearer(key),
    )
    by_name = await client.patch(
        "/api/v1/tools/ci", json={"config": {"request_timeout": 9}}, headers=bearer(key)
    )
    assert by_id.status_code == 200, by_id.text
    assert by_id.json()["base_url"] == "http://by-id.internal:8010"
    assert by_name.status_code == 200, by_name.text
    assert (by_name.json()["id"], by_name.json()["base_url"]) == (
        tool["id"],
        "http://by-id.internal:8010",
    )


@pytest.mark.parametrize("ref", ["name", "id"])
async def test_delete_is_204_and_then_the_tool_is_gone(
    client: httpx.AsyncClient, services: Services, ref: str
) -> None:
    key, tool = await tenant_with_ci(client, services, "acme")
    path = f"/api/v1/tools/{tool[ref]}"
    deleted = await client.delete(path, headers=bearer(key))
    assert deleted.status_code == 204
    assert deleted.content == b""
    for method in ("GET", "PATCH", "DELETE"):
        again = await client.request(method, path, headers=bearer(key), json={})
        assert again.status_code == 404, (method, again.text)
        assert again.headers["content-type"] == "application/problem+json"
    assert (await client.get("/api/v1/tools", headers=bearer(key))).json() == []


async def test_a_deleted_tools_name_can_be_registered_again(
    client: httpx.AsyncClient, services: Services
) -> None:
    key, tool = await tenant_with_ci(client, services, "acme")
    await client.delete("/api/v1/tools/ci", headers=bearer(key))
    again = await client.post("/api/v1/tools", json=CI, headers=bearer(key))
    assert again.status_code == 201, again.text
    assert again.json()["id"] != tool["id"]


@pytest.mark.parametrize("ref", ["name", "id"])
async def test_another_tenants_tool_is_404_on_patch_and_delete_and_stays_unchanged(
    client: httpx.AsyncClient, services: Services, ref: str
) -> None:
    owner, tool = await tenant_with_ci(client, services, "acme")
    _, stranger = await services.tenants.create_tenant("globex")
    path = f"/api/v1/tools/{tool[ref]}"
    patched = await client.patch(
        path, json={"base_url": "http://evil.example:8010"}, headers=bearer(stranger)
    )
    deleted = await client.delete(path, headers=bearer(stranger))
    for response in (patched, deleted):
        assert response.status_code == 404, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] == "unknown_tool"
    kept = await client.get("/api/v1/tools/ci", headers=bearer(owner))
    assert kept.status_code == 200
    assert kept.json() == tool


async def test_deleting_a_tool_leaves_another_tenants_tool_of_the_same_name(
    client: httpx.AsyncClient, services: Services
) -> None:
    first, first_tool = await tenant_with_ci(client, services, "acme")
    second, second_tool = await tenant_with_ci(client, services, "globex")
    deleted = await client.delete("/api/v1/tools/ci", headers=bearer(second))
    kept = await client.get("/api/v1/tools/ci", headers=bearer(first))
    assert first_tool["id"] != second_tool["id"]
    assert deleted.status_code == 204
    assert (kept.status_code, kept.json()["id"]) == (200, first_tool["id"])


async def test_a_deleted_tool_cannot_be_called_even_just_after_a_call_was_cached(
    client: httpx.AsyncClient, services: Services
) -> None:
    key, _ = await tenant_with_ci(client, services, "acme")
    call = "/api/v1/tools/ci/operations/get_build_status"
    # The first call caches the tool's row (its upstream does not exist: a 503).
    assert (await client.post(call, json={"build_id": "1"}, headers=bearer(key))).status_code
    assert (await client.delete("/api/v1/tools/ci", headers=bearer(key))).status_code == 204

    gone = await client.post(call, json={"build_id": "1"}, headers=bearer(key))

    assert gone.status_code == 404
    assert gone.json()["code"] == "unknown_tool"


async def test_a_revoked_key_is_refused_at_once_though_it_was_just_used(
    client: httpx.AsyncClient, services: Services
) -> None:
    _, key = await services.tenants.create_tenant("acme")
    assert (await client.get("/api/v1/tenant", headers=bearer(key))).status_code == 200
    await services.tenants.revoke_key(key.split("_")[1])

    refused = await client.get("/api/v1/tenant", headers=bearer(key))

    assert refused.status_code == 401
