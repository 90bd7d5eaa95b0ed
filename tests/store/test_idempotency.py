"""Idempotency keys on both backends: one run per key, tenant and request."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from devmesh.domain.errors import Conflict, InvalidInput
from devmesh.domain.models import Tenant
from devmesh.security.tenants import TenantService
from devmesh.store.db import Database
from devmesh.store.rows import IdempotencyKeyRow, utcnow
from devmesh.tools.idempotency import IdempotencyStore, request_hash

pytestmark = pytest.mark.anyio

TRIGGER = request_hash(tool="t1", operation="trigger_build", arguments={"project": "runtests"})
OTHER = request_hash(tool="t1", operation="trigger_build", arguments={"project": "lint"})


@pytest.fixture
async def tenant(database: Database) -> Tenant:
    created, _ = await TenantService(database).create_tenant("acme")
    return created


async def test_a_new_key_is_claimed_and_a_repeat_gets_the_first_result(
    database: Database, tenant: Tenant
) -> None:
    store = IdempotencyStore(database)
    assert await store.claim(tenant, "k1", TRIGGER) is None
    await store.complete(tenant, "k1", {"id": "br-7"})

    assert await store.claim(tenant, "k1", TRIGGER) == {"id": "br-7"}


async def test_a_repeat_while_the_first_call_runs_is_a_conflict(
    database: Database, tenant: Tenant
) -> None:
    store = IdempotencyStore(database)
    await store.claim(tenant, "k1", TRIGGER)

    with pytest.raises(Conflict, match="still running"):
        await store.claim(tenant, "k1", TRIGGER)


async def test_the_same_key_for_a_different_request_is_refused(
    database: Database, tenant: Tenant
) -> None:
    store = IdempotencyStore(database)
    await store.claim(tenant, "k1", TRIGGER)
    await store.complete(tenant, "k1", {"id": "br-7"})

    with pytest.raises(InvalidInput, match="different request") as refused:
        await store.claim(tenant, "k1", OTHER)
    assert refused.value.field == "idempotency_key"


async def test_a_released_key_can_be_used_again(database: Database, tenant: Tenant) -> None:
    store = IdempotencyStore(database)
    await store.claim(tenant, "k1", TRIGGER)
    await store.release(tenant, "k1")

    assert await store.claim(tenant, "k1", TRIGGER) is None


async def test_keys_are_per_tenant(database: Database, tenant: Tenant) -> None:
    other, _ = await TenantService(database).create_tenant("globex")
    store = IdempotencyStore(database)
    await store.claim(tenant, "k1", TRIGGER)
    await store.complete(tenant, "k1", {"id": "br-7"})

    assert await store.claim(other, "k1", OTHER) is None


async def test_a_key_expires_after_24_hours(database: Database, tenant: Tenant) -> None:
    store = IdempotencyStore(database)
    await store.claim(tenant, "k1", TRIGGER)
    await store.complete(tenant, "k1", {"id": "br-7"})
    async with database.session() as session:
        await session.execute(
            update(IdempotencyKeyRow).values(expires_at=utcnow() - timedelta(seconds=1))
        )

    assert await store.claim(tenant, "k1", OTHER) is None
