"""Subscriptions: who gets which events, at which URL, signed with which secret.

The secret (``whsec_`` + base64 of 24 random bytes, as Standard Webhooks has it) is
made here, returned once by ``create`` and stored sealed by the vault, bound to the
subscription's row and to its URL's origin: it can only be unsealed to sign a message
for that origin.
"""

from __future__ import annotations

import base64
import secrets
import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from devmesh.adapters.egress import EgressDenied, EgressPolicy, origin_of
from devmesh.domain.errors import InvalidInput, NotFound
from devmesh.security.vault import Vault
from devmesh.store.db import Database
from devmesh.store.rows import (
    NotificationAttemptRow,
    NotificationRow,
    SubscriptionRow,
    utcnow,
)

__all__ = ["Attempt", "Notification", "Subscription", "SubscriptionService", "bound_to"]

MAX_PAGE = 100


class Subscription(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    url: str
    event_types: list[str]
    description: str | None
    status: Literal["active", "disabled"]
    disabled_reason: str | None
    consecutive_failures: int
    created_at: datetime
    updated_at: datetime


class Attempt(BaseModel):
    model_config = ConfigDict(frozen=True)

    attempt: int
    status_code: int | None
    duration_ms: int
    error: str | None
    attempted_at: datetime


class Notification(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    event_id: str
    event_type: str
    status: Literal["pending", "delivered", "failed"]
    attempts: list[Attempt]
    next_attempt_at: datetime | None
    created_at: datetime


def bound_to(subscription_id: str) -> str:
    """What the vault binds a subscription's secret to."""
    return f"subscription:{subscription_id}"


def _subscription(row: SubscriptionRow) -> Subscription:
    return Subscription.model_validate(
        {
            "id": row.id,
            "url": row.url,
            "event_types": list(row.event_types),
            "description": row.description,
            "status": row.status,
            "disabled_reason": row.disabled_reason,
            "consecutive_failures": row.consecutive_failures,
            "created_at": row.created_at,
            "updated_at": row.updated_at,
        }
    )


class SubscriptionService:
    def __init__(self, *, db: Database, vault: Vault, egress: EgressPolicy) -> None:
        self._db = db
        self._vault = vault
        self._egress = egress

    async def create(
        self, tenant_id: str, *, url: str, event_types: list[str], description: str | None
    ) -> tuple[Subscription, str]:
        """The new subscription and its signing secret, which is never shown again."""
        await self._check_url(url)
        secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
        subscription_id = str(uuid.uuid4())
        origin = origin_of(url)
        key_id, sealed = self._vault.encrypt(
            secret.encode(), tenant_id=tenant_id, bound_to=bound_to(subscription_id), origin=origin
        )
        now = utcnow()
        row = SubscriptionRow(
            id=subscription_id,
            tenant_id=tenant_id,
            url=url,
            event_types=sorted(set(event_types)),
            description=description,
            status="active",
            disabled_reason=None,
            consecutive_failures=0,
            secret_key_id=key_id,
            secret_sealed=sealed,
            secret_origin=origin,
            created_at=now,
            updated_at=now,
        )
        async with self._db.session() as session:
            session.add(row)
        return _subscription(row), secret

    async def list_for(self, tenant_id: str) -> list[Subscription]:
        async with self._db.session() as session:
            rows = await session.scalars(
                select(SubscriptionRow)
                .where(SubscriptionRow.tenant_id == tenant_id)
                .order_by(SubscriptionRow.created_at, SubscriptionRow.id)
            )
            return [_subscription(row) for row in rows]

    async def get(self, tenant_id: str, subscription_id: str) -> Subscription:
        async with self._db.session() as session:
            return _subscription(await _own(session, tenant_id, subscription_id))

    async def delete(self, tenant_id: str, subscription_id: str) -> None:
        async with self._db.session() as session:
            await _own(session, tenant_id, subscription_id)
            await session.execute(
                delete(SubscriptionRow).where(SubscriptionRow.id == subscription_id)
            )

    async def set_status(
        self, tenant_id: str, subscription_id: str, *, status: Literal["active", "disabled"]
    ) -> Subscription:
        """Re-enable (the failure count starts again) or pause a subscription."""
        async with self._db.session() as session:
            row = await _own(session, tenant_id, subscription_id)
            if row.status != status:
                row.status = status
                row.disabled_reason = None if status == "active" else "disabled by the tenant"
                row.consecutive_failures = 0
                row.updated_at = utcnow()
            return _subscription(row)

    async def notifications(
        self, tenant_id: str, subscription_id: str, *, limit: int = MAX_PAGE
    ) -> list[Notification]:
        """The subscription's notifications, newest first, each with its attempts."""
        async with self._db.session() as session:
            await _own(session, tenant_id, subscription_id)
            rows = list(
                await session.scalars(
                    select(NotificationRow)
                    .where(NotificationRow.subscription_id == subscription_id)
                    .order_by(NotificationRow.created_at.desc(), NotificationRow.id)
                    .limit(limit)
                )
            )
            attempts: dict[str, list[Attempt]] = {row.id: [] for row in rows}
            if rows:
                for attempt in await session.scalars(
                    select(NotificationAttemptRow)
                    .where(NotificationAttemptRow.notification_id.in_(list(attempts)))
                    .order_by(NotificationAttemptRow.id)
                ):
                    attempts[attempt.notification_id].append(
                        Attempt(
                            attempt=attempt.attempt,
                            status_code=attempt.status_code,
                            duration_ms=attempt.duration_ms,
                            error=attempt.error,
                            attempted_at=attempt.attempted_at,
                        )
                    )
            return [
                Notification.model_validate(
                    {
                        "id": row.id,
                        "event_id": row.event_id,
                        "event_type": row.event_type,
                        "status": row.status,
                        "attempts": attempts[row.id],
                        "next_attempt_at": row.available_at if row.status == "pending" else None,
                        "created_at": row.created_at,
                    }
                )
                for row in rows
            ]

    async def _check_url(self, url: str) -> None:
        try:
            await self._egress.check_url(url)
        except EgressDenied as exc:
            raise InvalidInput(f"url is refused: {exc.message}", field="url") from None


async def _own(session: AsyncSession, tenant_id: str, subscription_id: str) -> SubscriptionRow:
    row = await session.get(SubscriptionRow, subscription_id)
    # Another tenant's subscription does not exist, as far as this tenant can tell.
    if row is None or row.tenant_id != tenant_id:
        raise NotFound(f"no subscription {subscription_id!r}")
    return row
