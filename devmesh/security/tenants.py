"""Tenants and their API keys: create, list, revoke, and authenticate a request."""

from __future__ import annotations

import hashlib
import re
import uuid
from dataclasses import dataclass

from cachetools import TTLCache
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from devmesh.domain.errors import Conflict, InvalidInput, NotFound, Unauthorized
from devmesh.domain.models import ApiKey, Tenant
from devmesh.security.apikeys import generate_key, split_key, verify_secret
from devmesh.store.db import Database
from devmesh.store.rows import ApiKeyRow, TenantRow, utcnow

__all__ = ["Caller", "TenantService"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def _tenant(row: TenantRow) -> Tenant:
    return Tenant(id=row.id, name=row.name, created_at=row.created_at)


def _key(row: ApiKeyRow) -> ApiKey:
    return ApiKey(
        id=row.id,
        tenant_id=row.tenant_id,
        name=row.name,
        prefix=row.prefix,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
        read_only=row.read_only,
    )


_CACHE_SIZE = 10_000


@dataclass(frozen=True, slots=True)
class Caller:
    """Who presented a key: its tenant, and whether the key is read-only."""

    tenant: Tenant
    read_only: bool = False


class TenantService:
    def __init__(self, db: Database, *, cache_ttl: float = 0.0) -> None:
        """``cache_ttl`` > 0 remembers authenticated keys that long, saving a query and a
        hash per request. A key revoked here is forgotten at once; other replicas may
        accept it until their entry expires."""
        self._db = db
        # Keyed by a digest of the presented key, so the plaintext is not kept around.
        self._known: TTLCache[str, tuple[Caller, str]] | None = (
            TTLCache(maxsize=_CACHE_SIZE, ttl=cache_ttl) if cache_ttl > 0 else None
        )

    async def create_tenant(self, name: str) -> tuple[Tenant, str]:
        """A new tenant and its first API key; the key's plaintext is returned once."""
        if not _NAME.match(name):
            raise InvalidInput(
                "tenant name must be 1-64 letters, digits, '.', '_' or '-', "
                "starting with a letter or digit",
                field="name",
            )
        tenant_row = TenantRow(id=str(uuid.uuid4()), name=name, created_at=utcnow())
        try:
            async with self._db.session() as session:
                session.add(tenant_row)
                await session.flush()
                key_row, plaintext = _new_key_row(tenant_row.id, name="default")
                session.add(key_row)
        except IntegrityError as exc:
            raise Conflict(f"tenant {name!r} exists already", details={"name": name}) from exc
        return _tenant(tenant_row), plaintext

    async def list_tenants(self) -> list[Tenant]:
        async with self._db.session() as session:
            rows = await session.scalars(select(TenantRow).order_by(TenantRow.created_at))
            return [_tenant(row) for row in rows]

    async def get_tenant(self, ref: str) -> Tenant:
        """By id or name."""
        async with self._db.session() as session:
            return _tenant(await _find_tenant(session, ref))

    async def create_key(
        self, tenant_ref: str, *, name: str = "default", read_only: bool = False
    ) -> tuple[ApiKey, str]:
        """A new key; ``read_only`` keys list and run only read-only operations."""
        async with self._db.session() as session:
            tenant = await _find_tenant(session, tenant_ref)
            row, plaintext = _new_key_row(tenant.id, name=name, read_only=read_only)
            session.add(row)
        return _key(row), plaintext

    async def list_keys(self, tenant_ref: str) -> list[ApiKey]:
        async with self._db.session() as session:
            tenant = await _find_tenant(session, tenant_ref)
            rows = await session.scalars(
                select(ApiKeyRow)
                .where(ApiKeyRow.tenant_id == tenant.id)
                .order_by(ApiKeyRow.created_at)
            )
            return [_key(row) for row in rows]

    async def revoke_key(self, key_ref: str, *, tenant_id: str | None = None) -> ApiKey:
        """Revoke by key id or prefix. Revoking twice is not an error.

        With ``tenant_id``, another tenant's key is reported as not found.
        """
        async with self._db.session() as session:
            query = select(ApiKeyRow).where(
                (ApiKeyRow.id == key_ref) | (ApiKeyRow.prefix == key_ref)
            )
            if tenant_id is not None:
                query = query.where(ApiKeyRow.tenant_id == tenant_id)
            row = await session.scalar(query)
            if row is None:
                raise NotFound(f"no API key {key_ref!r}")
            if row.revoked_at is None:
                row.revoked_at = utcnow()
            revoked = _key(row)
        if self._known is not None:
            for digest, (_, prefix) in list(self._known.items()):
                if prefix == revoked.prefix:
                    self._known.pop(digest, None)
        return revoked

    async def authenticate(self, raw_key: str) -> Tenant:
        """The tenant a presented key belongs to; ``Unauthorized`` for anything else."""
        return (await self.identify(raw_key)).tenant

    async def identify(self, raw_key: str) -> Caller:
        """The tenant a presented key belongs to and what the key may do;
        ``Unauthorized`` for anything else."""
        digest = hashlib.sha256(raw_key.encode()).hexdigest()
        if self._known is not None and (known := self._known.get(digest)) is not None:
            return known[0]
        parts = split_key(raw_key)
        if parts is None:
            raise Unauthorized("invalid API key")
        prefix, secret = parts
        async with self._db.session() as session:
            found = (
                await session.execute(
                    select(ApiKeyRow, TenantRow)
                    .join(TenantRow, TenantRow.id == ApiKeyRow.tenant_id)
                    .where(ApiKeyRow.prefix == prefix)
                )
            ).first()
        if found is None:
            raise Unauthorized("invalid API key")
        key_row, tenant_row = found
        if not verify_secret(secret, salt=key_row.salt, expected=key_row.secret_hash):
            raise Unauthorized("invalid API key")
        if key_row.revoked_at is not None:
            raise Unauthorized("API key has been revoked")
        caller = Caller(tenant=_tenant(tenant_row), read_only=key_row.read_only)
        if self._known is not None:
            self._known[digest] = (caller, prefix)
        return caller


def _new_key_row(tenant_id: str, *, name: str, read_only: bool = False) -> tuple[ApiKeyRow, str]:
    generated = generate_key()
    row = ApiKeyRow(
        id=str(uuid.uuid4()),
        tenant_id=tenant_id,
        name=name,
        prefix=generated.prefix,
        salt=generated.salt,
        secret_hash=generated.secret_hash,
        created_at=utcnow(),
        read_only=read_only,
    )
    return row, generated.plaintext


async def _find_tenant(session: AsyncSession, ref: str) -> TenantRow:
    row = await session.scalar(
        select(TenantRow).where((TenantRow.id == ref) | (TenantRow.name == ref))
    )
    if row is None:
        raise NotFound(f"no tenant {ref!r}")
    return row
