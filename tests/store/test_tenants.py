"""Tenant and key storage, run on SQLite and on PostgreSQL with the same migrations."""

import pytest
from sqlalchemy import func, select

from devmesh.domain.errors import Conflict, InvalidInput, NotFound, Unauthorized
from devmesh.security.tenants import TenantService
from devmesh.store.db import Database
from devmesh.store.rows import TenantRow

pytestmark = pytest.mark.anyio


@pytest.mark.empty_database
async def test_migrations_bring_a_new_database_to_head(database: Database) -> None:
    assert await database.current_revision() == Database.head_revision()
    await database.ping()


async def test_a_tests_database_is_a_migrated_copy_holding_nothing_from_other_tests(
    database: Database,
) -> None:
    # The fixture copies one migrated database per test; writes of the test before
    # (test_tenants creates "acme" in most of them) must not show in the next.
    assert await database.current_revision() == Database.head_revision()
    async with database.session() as session:
        assert (await session.execute(select(func.count()).select_from(TenantRow))).scalar() == 0
    await TenantService(database).create_tenant("acme")


async def test_a_new_tenant_key_authenticates_as_that_tenant(database: Database) -> None:
    tenants = TenantService(database)
    acme, key = await tenants.create_tenant("acme")
    assert await tenants.authenticate(key) == acme


async def test_tenant_names_are_unique(database: Database) -> None:
    tenants = TenantService(database)
    await tenants.create_tenant("acme")
    with pytest.raises(Conflict, match="exists already"):
        await tenants.create_tenant("acme")


async def test_a_tenant_name_with_spaces_is_invalid_input(database: Database) -> None:
    with pytest.raises(InvalidInput) as caught:
        await TenantService(database).create_tenant("acme corp")
    assert caught.value.field == "name"


async def test_each_key_authenticates_only_its_own_tenant(database: Database) -> None:
    tenants = TenantService(database)
    acme, acme_key = await tenants.create_tenant("acme")
    globex, globex_key = await tenants.create_tenant("globex")
    assert (await tenants.authenticate(acme_key)).id == acme.id
    assert (await tenants.authenticate(globex_key)).id == globex.id


async def test_a_revoked_key_no_longer_authenticates(database: Database) -> None:
    tenants = TenantService(database)
    acme, key = await tenants.create_tenant("acme")
    [stored] = await tenants.list_keys(acme.id)
    revoked = await tenants.revoke_key(stored.prefix)
    assert revoked.revoked_at is not None
    with pytest.raises(Unauthorized, match="revoked"):
        await tenants.authenticate(key)


async def test_a_second_key_works_beside_the_first(database: Database) -> None:
    tenants = TenantService(database)
    acme, first = await tenants.create_tenant("acme")
    _, second = await tenants.create_key("acme", name="ci")
    assert first != second
    assert await tenants.authenticate(second) == acme
    assert [k.name for k in await tenants.list_keys("acme")] == ["default", "ci"]


async def test_a_key_with_the_right_prefix_but_wrong_secret_is_refused(database: Database) -> None:
    tenants = TenantService(database)
    _, key = await tenants.create_tenant("acme")
    with pytest.raises(Unauthorized):
        await tenants.authenticate(key[:-2] + "xx")


async def test_revoking_another_tenants_key_is_not_found(database: Database) -> None:
    tenants = TenantService(database)
    acme, _ = await tenants.create_tenant("acme")
    globex, _ = await tenants.create_tenant("globex")
    [acme_key] = await tenants.list_keys(acme.id)
    with pytest.raises(NotFound):
        await tenants.revoke_key(acme_key.id, tenant_id=globex.id)


async def test_tenants_are_found_by_id_or_name(database: Database) -> None:
    tenants = TenantService(database)
    acme, _ = await tenants.create_tenant("acme")
    assert await tenants.get_tenant(acme.id) == await tenants.get_tenant("acme") == acme
    with pytest.raises(NotFound):
        await tenants.get_tenant("nobody")
