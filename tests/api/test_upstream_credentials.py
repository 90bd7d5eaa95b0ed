"""Credentials against a hostile upstream: what an echo shows, and where credentials go."""

from __future__ import annotations

import base64
import os
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import update

from devmesh.app import Services
from devmesh.security.keyfile import load_master_key
from devmesh.security.vault import key_id_of
from devmesh.store.rows import ToolRow
from tests.support.canary import CANARY
from tests.support.http import bearer
from tests.upstream import Upstream

pytestmark = pytest.mark.anyio

LIST_BUILDS = "/api/v1/tools/ci/operations/list_builds"
BEARER = {"type": "bearer", "token": CANARY}
BASIC = {"type": "basic", "username": "admin", "password": CANARY}
NO_RETRIES = {"max_retries": 0}


async def tool(
    client: httpx.AsyncClient,
    services: Services,
    base_url: str,
    credentials: dict[str, Any] | None = None,
) -> str:
    """A new tenant's key, with the Buildbot tool 'ci' at ``base_url``."""
    _, key = await services.tenants.create_tenant("acme")
    body = {"name": "ci", "provider": "buildbot", "base_url": base_url, "resilience": NO_RETRIES}
    created = await client.post("/api/v1/tools", json=body, headers=bearer(key))
    assert created.status_code == 201, created.text
    if credentials is not None:
        stored = await client.put(
            "/api/v1/tools/ci/credentials", json={"credentials": credentials}, headers=bearer(key)
        )
        assert stored.status_code == 204, stored.text
    return key


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


# --- upstream text -----------------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 400, 503])
async def test_a_stored_token_echoed_by_the_upstream_is_redacted_from_the_error(
    client: httpx.AsyncClient, services: Services, upstream: Upstream, status: int
) -> None:
    key = await tool(client, services, upstream.base_url, BEARER)
    await upstream.inject("status", status=status, echo=True, path="^/api/v2")

    response = await client.post(LIST_BUILDS, json={}, headers=bearer(key))

    assert response.status_code >= 400
    detail = response.json()["detail"]
    assert "proxy saw authorization" in detail
    assert CANARY not in response.text
    assert "[redacted]" in detail


async def test_a_stored_token_echoed_again_on_a_later_call_is_redacted_again(
    client: httpx.AsyncClient, services: Services, upstream: Upstream
) -> None:
    key = await tool(client, services, upstream.base_url, BEARER)
    await upstream.inject("status", status=500, echo=True, path="^/api/v2")

    first = await client.post(LIST_BUILDS, json={}, headers=bearer(key))
    second = await client.post(LIST_BUILDS, json={}, headers=bearer(key))

    for response in (first, second):
        assert "[redacted]" in response.json()["detail"]
        assert CANARY not in response.text


@pytest.mark.parametrize("status", [401, 403])
async def test_a_refusal_relays_none_of_the_upstream_text(
    client: httpx.AsyncClient, services: Services, upstream: Upstream, status: int
) -> None:
    key = await tool(client, services, upstream.base_url, BEARER)
    await upstream.inject("status", status=status, echo=True, path="^/api/v2")

    response = await client.post(LIST_BUILDS, json={}, headers=bearer(key))

    assert response.json()["code"] == "upstream_auth_failed"
    assert "proxy saw" not in response.text
    assert CANARY not in response.text


async def test_the_callers_own_upstream_token_echoed_by_the_upstream_is_redacted(
    client: httpx.AsyncClient, services: Services, upstream: Upstream
) -> None:
    key = await tool(client, services, upstream.base_url)
    await upstream.inject("status", status=500, echo=True, path="^/api/v2")

    response = await client.post(
        LIST_BUILDS, json={}, headers={**bearer(key), "X-Upstream-Token": CANARY}
    )

    assert "proxy saw authorization" in response.json()["detail"]
    assert CANARY not in response.text


async def test_basic_credentials_echoed_in_base64_by_the_login_are_redacted(
    client: httpx.AsyncClient, services: Services, upstream: Upstream
) -> None:
    key = await tool(client, services, upstream.base_url, BASIC)
    await upstream.inject("status", status=500, echo=True, path="^/auth/login")

    response = await client.post(LIST_BUILDS, json={}, headers=bearer(key))

    assert "proxy saw authorization" in response.json()["detail"]
    assert b64(f"admin:{CANARY}") not in response.text
    assert CANARY not in response.text


async def test_a_session_cookie_echoed_by_the_upstream_is_redacted(
    client: httpx.AsyncClient, services: Services, upstream: Upstream
) -> None:
    key = await tool(client, services, upstream.base_url, BASIC)
    await upstream.inject("status", status=500, echo=True, path="^/api/v2")

    response = await client.post(LIST_BUILDS, json={}, headers=bearer(key))

    assert "proxy saw cookie" in response.json()["detail"]
    assert "session-of-admin" not in response.text


# --- credentials bound to their origin ------------------------------------------------------


async def test_moving_base_url_to_another_origin_drops_the_stored_credentials_and_says_so(
    client: httpx.AsyncClient, services: Services, upstream: Upstream
) -> None:
    key = await tool(client, services, "http://buildbot.internal:8010", BEARER)

    patched = await client.patch(
        "/api/v1/tools/ci", json={"base_url": upstream.base_url}, headers=bearer(key)
    )
    called = await client.post(LIST_BUILDS, json={}, headers=bearer(key))

    assert patched.status_code == 200, patched.text
    assert (patched.json()["credentials_cleared"], patched.json()["has_credentials"]) == (
        True,
        False,
    )
    assert called.status_code == 200, called.text
    assert (await upstream.stats()).authorized == 0


async def test_moving_base_url_with_new_credentials_stores_them_for_the_new_origin(
    client: httpx.AsyncClient, services: Services, upstream: Upstream
) -> None:
    key = await tool(client, services, "http://buildbot.internal:8010", BEARER)

    patched = await client.patch(
        "/api/v1/tools/ci",
        json={"base_url": upstream.base_url, "credentials": BEARER},
        headers=bearer(key),
    )
    called = await client.post(LIST_BUILDS, json={}, headers=bearer(key))

    assert (patched.json()["credentials_cleared"], patched.json()["has_credentials"]) == (
        False,
        True,
    )
    assert called.status_code == 200, called.text
    assert (await upstream.stats()).authorized > 0


async def test_a_new_path_on_the_same_origin_keeps_the_stored_credentials(
    client: httpx.AsyncClient, services: Services
) -> None:
    key = await tool(client, services, "http://buildbot.internal:8010", BEARER)

    patched = await client.patch(
        "/api/v1/tools/ci",
        json={"base_url": "http://BUILDBOT.internal:8010/buildbot/"},
        headers=bearer(key),
    )

    assert (patched.json()["credentials_cleared"], patched.json()["has_credentials"]) == (
        False,
        True,
    )


async def test_credentials_sealed_for_another_origin_are_not_decrypted_for_this_one(
    client: httpx.AsyncClient, services: Services, upstream: Upstream
) -> None:
    key = await tool(client, services, upstream.base_url, BEARER)
    # The same server under another origin, changed behind the API's back.
    elsewhere = upstream.base_url.replace("127.0.0.1", "localhost")
    async with services.db.session() as session:
        await session.execute(update(ToolRow).values(base_url=elsewhere))

    response = await client.post(LIST_BUILDS, json={}, headers=bearer(key))

    assert response.status_code == 503, response.text
    assert "cannot be decrypted" in response.json()["detail"]
    assert (await upstream.stats()).total == 0


async def test_credentials_stored_before_origins_were_bound_still_work(
    client: httpx.AsyncClient, services: Services, upstream: Upstream
) -> None:
    key = await tool(client, services, upstream.base_url)
    async with services.db.session() as session:
        row = await session.scalar(ToolRow.__table__.select().with_only_columns(ToolRow.id))
    master = load_master_key(None, data_dir=services.settings.data_dir)
    tenant_id = (await services.tenants.authenticate(key)).id
    # Sealed as version 1 did: the associated data names tenant and row, no origin.
    derived = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=b"devmesh-vault-v1", info=tenant_id.encode()
    ).derive(master)
    nonce = os.urandom(12)
    sealed = AESGCM(derived).encrypt(
        nonce, b'{"type":"bearer","token":"legacy-token"}', f"{tenant_id}\x00{row}".encode()
    )
    async with services.db.session() as session:
        await session.execute(
            update(ToolRow).values(
                credentials_key_id=key_id_of(master), credentials_sealed=nonce + sealed
            )
        )

    response = await client.post(LIST_BUILDS, json={}, headers=bearer(key))

    assert response.status_code == 200, response.text
    assert (await upstream.stats()).authorized > 0
