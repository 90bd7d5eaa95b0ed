"""Credentials at rest: AES-256-GCM under a per-tenant key derived from the master key.

Each tenant's key is HKDF(master, info=tenant id), so one tenant's ciphertext is
useless under another's key; the associated data binds a ciphertext to its row,
so a blob copied to another tool or tenant fails to decrypt instead of leaking.
Since version 2 the associated data also names the *origin* (``scheme://host:port``)
the credentials were stored for, so they cannot follow the tool to another host: a
tool whose ``base_url`` now points elsewhere cannot decrypt them. Blobs sealed before
(``origin=None``) keep the version 1 associated data and still read.
Each ciphertext is stored beside the id of the master key that made it, so the
master key can be rotated: new writes use the primary key, old ones still read.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from devmesh.domain.errors import Unavailable

__all__ = ["Vault", "key_id_of"]

_NONCE_BYTES = 12
_SALT = b"devmesh-vault-v1"


def key_id_of(master_key: bytes) -> str:
    """A short public name for a master key (not secret: a hash prefix)."""
    return hashlib.sha256(b"devmesh-key-id" + master_key).hexdigest()[:16]


class Vault:
    def __init__(self, primary: bytes, *, previous: Iterable[bytes] = ()) -> None:
        self._primary_id = key_id_of(primary)
        self._keys = {key_id_of(key): key for key in (*previous, primary)}

    @property
    def primary_key_id(self) -> str:
        return self._primary_id

    def _tenant_key(self, key_id: str, tenant_id: str) -> AESGCM:
        master = self._keys.get(key_id)
        if master is None:
            raise Unavailable(
                f"credentials were encrypted with key {key_id}, which is not configured"
            )
        derived = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=_SALT, info=tenant_id.encode()
        ).derive(master)
        return AESGCM(derived)

    def encrypt(
        self, plaintext: bytes, *, tenant_id: str, bound_to: str, origin: str
    ) -> tuple[str, bytes]:
        """``(key_id, nonce + ciphertext)``; ``bound_to`` names the row it belongs to and
        ``origin`` the only place the plaintext may be sent."""
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._tenant_key(self._primary_id, tenant_id).encrypt(
            nonce, plaintext, _aad(tenant_id, bound_to, origin)
        )
        return self._primary_id, nonce + sealed

    def decrypt(
        self, blob: bytes, *, key_id: str, tenant_id: str, bound_to: str, origin: str | None
    ) -> bytes:
        """``origin`` is where the plaintext is about to go; ``None`` only for a blob
        sealed before origins were bound (version 1)."""
        nonce, sealed = blob[:_NONCE_BYTES], blob[_NONCE_BYTES:]
        try:
            return self._tenant_key(key_id, tenant_id).decrypt(
                nonce, sealed, _aad(tenant_id, bound_to, origin)
            )
        except InvalidTag as exc:
            raise Unavailable("stored credentials cannot be decrypted; store them again") from exc


def _aad(tenant_id: str, bound_to: str, origin: str | None) -> bytes:
    if origin is None:
        return f"{tenant_id}\x00{bound_to}".encode()
    return f"v2\x00{tenant_id}\x00{bound_to}\x00{origin}".encode()
