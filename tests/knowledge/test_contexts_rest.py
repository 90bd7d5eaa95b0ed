"""The contexts REST face: PUT/GET/DELETE /api/v1/contexts/{key}, POST /contexts/search."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from devmesh.app import Services
from tests.support.http import bearer

pytestmark = pytest.mark.anyio

BUILD = {
    "type": "build",
    "subject": "42",
    "project": "shop",
    "status": "failed",
    "data": {"error": "pytest: AssertionError in test_checkout", "resolution": "fixed fixture"},
}


async def _tenant(services: Services, name: str) -> dict[str, str]:
    _, key = await services.tenants.create_tenant(name)
    return bearer(key)


async def test_a_context_put_is_read_back_and_found_by_search(
    client: httpx.AsyncClient, services: Services
) -> None:
    acme = await _tenant(services, "acme")
    put = await client.put("/api/v1/contexts/build-42", json=BUILD, headers=acme)
    got = await client.get("/api/v1/contexts/build-42", headers=acme)
    found = await client.post(
        "/api/v1/contexts/search", json={"query": "AssertionError checkout"}, headers=acme
    )
    assert put.status_code == 200, put.text
    assert got.json() == put.json()
    assert (got.json()["key"], got.json()["data"]) == ("build-42", BUILD["data"])
    [hit] = found.json()["results"]
    assert {k: hit[k] for k in ("key", "build_id", "resolution", "lines")} == {
        "key": "build-42",
        "build_id": "42",
        "resolution": "fixed fixture",
        "lines": None,
    }


async def test_a_deleted_context_answers_404(client: httpx.AsyncClient, services: Services) -> None:
    acme = await _tenant(services, "acme")
    await client.put("/api/v1/contexts/build-42", json=BUILD, headers=acme)
    deleted = await client.delete("/api/v1/contexts/build-42", headers=acme)
    again = await client.get("/api/v1/contexts/build-42", headers=acme)
    assert deleted.status_code == 204
    assert again.status_code == 404
    assert again.headers["content-type"] == "application/problem+json"


async def test_another_tenant_neither_reads_nor_finds_a_context(
    client: httpx.AsyncClient, services: Services
) -> None:
    acme = await _tenant(services, "acme")
    globex = await _tenant(services, "globex")
    await client.put("/api/v1/contexts/build-42", json=BUILD, headers=acme)
    got = await client.get("/api/v1/contexts/build-42", headers=globex)
    found = await client.post(
        "/api/v1/contexts/search", json={"query": "AssertionError checkout"}, headers=globex
    )
    assert got.status_code == 404
    assert found.json()["results"] == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"query": "   "}, "query"),
        ({"query": "x", "limit": 1000}, "limit"),
        ({"query": "x", "colour": "red"}, "colour"),
        ({"query": "x", "since": "last tuesday"}, "since"),
        ({"query": "x", "type": "Not A Type!"}, "type"),
        ({"query": "x", "tool": "nope"}, "tool"),
    ],
)
async def test_bad_search_input_is_a_422_naming_the_field(
    client: httpx.AsyncClient, services: Services, body: dict[str, Any], field: str
) -> None:
    acme = await _tenant(services, "acme")
    answer = await client.post("/api/v1/contexts/search", json=body, headers=acme)
    assert answer.status_code == 422, answer.text
    assert field in answer.text


async def test_a_type_never_stored_finds_nothing_and_the_hint_lists_the_stored_types(
    client: httpx.AsyncClient, services: Services
) -> None:
    acme = await _tenant(services, "acme")
    await client.put("/api/v1/contexts/build-42", json=BUILD, headers=acme)
    found = await client.post(
        "/api/v1/contexts/search", json={"query": "x", "type": "resolution"}, headers=acme
    )
    assert found.status_code == 200
    assert found.json() == {
        "results": [],
        "hint": "no contexts of type 'resolution'; types stored: build",
    }


async def test_data_over_256_kib_is_a_422_naming_data(
    client: httpx.AsyncClient, services: Services
) -> None:
    acme = await _tenant(services, "acme")
    body = {"type": "note", "data": {"blob": "x" * (256 * 1024)}}
    answer = await client.put("/api/v1/contexts/big", json=body, headers=acme)
    assert answer.status_code == 422
    assert answer.json()["details"]["field"] == "data"


async def test_a_key_under_two_tools_is_a_409_listing_them_until_tool_is_given(
    client: httpx.AsyncClient, services: Services
) -> None:
    acme = await _tenant(services, "acme")
    for name in ("ci-a", "ci-b"):
        tool = {"name": name, "provider": "buildbot", "base_url": "http://buildbot.internal:8010"}
        assert (await client.post("/api/v1/tools", json=tool, headers=acme)).status_code == 201
        body = {**BUILD, "tool": name}
        await client.put("/api/v1/contexts/build-42", json=body, headers=acme)
    ambiguous = await client.get("/api/v1/contexts/build-42", headers=acme)
    chosen = await client.get("/api/v1/contexts/build-42?tool=ci-b", headers=acme)
    assert ambiguous.status_code == 409
    assert ambiguous.json()["details"]["tools"] == ["ci-a", "ci-b"]
    assert chosen.json()["tool"] == "ci-b"
