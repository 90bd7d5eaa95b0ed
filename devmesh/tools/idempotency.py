"""Idempotency keys: the same key from the same tenant within 24 h runs once.

The first call with a key claims it (a row with the request's hash and no result)
before anything runs, so two concurrent calls cannot both run: the second sees the
claim and is told to wait. The result is stored when the call succeeds; a failed
call releases the key so the caller can try again with it.
"""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from devmesh.domain.errors import Conflict, InvalidInput
from devmesh.domain.limits import MAX_IDEMPOTENCY_KEY
from devmesh.domain.models import Tenant
from devmesh.store.db import Database
from devmesh.store.rows import IdempotencyKeyRow, utcnow

__all__ = ["IdempotencyStore", "request_hash"]

KEY_TTL = timedelta(hours=24)
MAX_KEY_LENGTH = MAX_IDEMPOTENCY_KEY


def request_hash(**request: Any) -> str:
    canonical = json.dumps(request, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def check_key(key: str) -> str:
    key = key.strip()
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise InvalidInput(
            f"an idempotency key is 1 to {MAX_KEY_LENGTH} printable characters",
            field="idempotency_key",
        )
    return key


class IdempotencyStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def claim(self, tenant: Tenant, key: str, fingerprint: str) -> dict[str, Any] | None:
        """Claim ``key`` for a new call, or return the result of the call that made it.

        Raises ``InvalidInput`` when the key was used for a different request and
        ``Conflict`` while the first call with it is still running.
        """
        now = utcnow()
        async with self._db.session() as session:
            await session.execute(
                delete(IdempotencyKeyRow).where(
                    IdempotencyKeyRow.tenant_id == tenant.id, IdempotencyKeyRow.expires_at <= now
                )
            )
        try:
            async with self._db.session() as session:
                session.add(
                    IdempotencyKeyRow(
                        tenant_id=tenant.id,
                        key=key,
                        request_hash=fingerprint,
                        created_at=now,
                        expires_at=now + KEY_TTL,
                    )
                )
            return None
        except IntegrityError:
            pass
        async with self._db.session() as session:
            row = await session.scalar(
                select(IdempotencyKeyRow).where(
                    IdempotencyKeyRow.tenant_id == tenant.id, IdempotencyKeyRow.key == key
                )
            )
        if row is None:
            # Released between our insert and this read: the caller may simply retry.
            raise Conflict(
                "the first request with this idempotency key just failed; send it again",
                details={"idempotency_key": key},
            )
        if row.request_hash != fingerprint:
            raise InvalidInput(
                "this idempotency key was used for a different request in the last 24 hours; "
                "use a new key for a new request",
                field="idempotency_key",
            )
        if row.response is None:
            raise Conflict(
                "a request with this idempotency key is still running; ask again shortly",
                details={"idempotency_key": key},
            )
        return row.response

    async def complete(self, tenant: Tenant, key: str, response: dict[str, Any]) -> None:
        async with self._db.session() as session:
            row = await session.get(IdempotencyKeyRow, (tenant.id, key))
            if row is not None:
                row.response = response

    async def release(self, tenant: Tenant, key: str) -> None:
        async with self._db.session() as session:
            await session.execute(
                delete(IdempotencyKeyRow).where(
                    IdempotencyKeyRow.tenant_id == tenant.id,
                    IdempotencyKeyRow.key == key,
                    IdempotencyKeyRow.response.is_(None),
                )
            )
