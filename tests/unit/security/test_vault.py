import os

import pytest

from devmesh.domain.errors import Unavailable
from devmesh.security.vault import Vault

MASTER = os.urandom(32)
ORIGIN = "http://ci.internal:8010"


def test_sealed_credentials_open_for_their_own_tenant_and_row() -> None:
    vault = Vault(MASTER)
    key_id, sealed = vault.encrypt(b"token-123", tenant_id="t1", bound_to="tool-a", origin=ORIGIN)
    assert b"token-123" not in sealed
    assert (
        vault.decrypt(sealed, key_id=key_id, tenant_id="t1", bound_to="tool-a", origin=ORIGIN)
        == b"token-123"
    )


def test_another_tenant_cannot_open_them() -> None:
    vault = Vault(MASTER)
    key_id, sealed = vault.encrypt(b"token-123", tenant_id="t1", bound_to="tool-a", origin=ORIGIN)
    with pytest.raises(Unavailable, match="cannot be decrypted"):
        vault.decrypt(sealed, key_id=key_id, tenant_id="t2", bound_to="tool-a", origin=ORIGIN)


def test_a_blob_copied_to_another_row_does_not_open() -> None:
    vault = Vault(MASTER)
    key_id, sealed = vault.encrypt(b"token-123", tenant_id="t1", bound_to="tool-a", origin=ORIGIN)
    with pytest.raises(Unavailable):
        vault.decrypt(sealed, key_id=key_id, tenant_id="t1", bound_to="tool-b", origin=ORIGIN)


def test_after_rotation_old_blobs_still_open_and_new_ones_use_the_new_key() -> None:
    old_vault = Vault(MASTER)
    old_id, old_blob = old_vault.encrypt(b"old", tenant_id="t1", bound_to="x", origin=ORIGIN)
    rotated = Vault(os.urandom(32), previous=[MASTER])
    assert (
        rotated.decrypt(old_blob, key_id=old_id, tenant_id="t1", bound_to="x", origin=ORIGIN)
        == b"old"
    )
    new_id, _ = rotated.encrypt(b"new", tenant_id="t1", bound_to="x", origin=ORIGIN)
    assert new_id == rotated.primary_key_id != old_id


def test_a_blob_under_an_unknown_key_names_the_key_id() -> None:
    _, blob = Vault(MASTER).encrypt(b"x", tenant_id="t1", bound_to="x", origin=ORIGIN)
    with pytest.raises(Unavailable, match="deadbeef"):
        Vault(os.urandom(32)).decrypt(
            blob, key_id="deadbeef", tenant_id="t1", bound_to="x", origin=ORIGIN
        )


def test_credentials_sealed_for_one_origin_do_not_open_for_another() -> None:
    vault = Vault(MASTER)
    key_id, sealed = vault.encrypt(b"token-123", tenant_id="t1", bound_to="tool-a", origin=ORIGIN)
    with pytest.raises(Unavailable, match="cannot be decrypted"):
        vault.decrypt(
            sealed, key_id=key_id, tenant_id="t1", bound_to="tool-a", origin="http://evil:8010"
        )
    with pytest.raises(Unavailable):
        vault.decrypt(sealed, key_id=key_id, tenant_id="t1", bound_to="tool-a", origin=None)
