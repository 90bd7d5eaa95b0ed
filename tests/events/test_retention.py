"""Retention: what has aged out is deleted; what is still owed to a handler or a
subscriber stays however old."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from devmesh.config import RetentionSettings
from devmesh.domain.events import Event
from devmesh.events.retention import Pruner
from devmesh.security.tenants import TenantService
from devmesh.store.db import Database
from devmesh.store.rows import (
    EventDeliveryRow,
    EventRow,
    HandledEventRow,
    NotificationAttemptRow,
    NotificationRow,
    SubscriptionRow,
    ToolCallRow,
    WebhookDeliveryRow,
    utcnow,
)
from tests.events.support import an_event, publish

pytestmark = pytest.mark.anyio

OLD = utcnow() - timedelta(days=40)


async def aged(db: Database, event: Event, *, dispatched: bool = True) -> None:
    """Make ``event`` 40 days old (and dispatched, unless told otherwise)."""
    async with db.session() as session:
        await session.execute(
            update(EventRow)
            .where(EventRow.id == event.id)
            .values(created_at=OLD, dispatched_at=OLD if dispatched else None)
        )


def delivery(event: Event, status: str) -> EventDeliveryRow:
    return EventDeliveryRow(
        event_id=event.id, handler="h", status=status, available_at=OLD, created_at=OLD
    )


def notification(event: Event, subscription: str, status: str) -> NotificationRow:
    return NotificationRow(
        id=str(uuid.uuid4()),
        subscription_id=subscription,
        event_id=event.id,
        event_type=event.type,
        body="{}",
        status=status,
        available_at=OLD,
        created_at=OLD,
        updated_at=OLD,
    )


async def test_rows_older_than_the_retention_go_and_recent_or_still_owed_ones_stay(
    database: Database,
) -> None:
    tenant, _ = await TenantService(database).create_tenant("acme")
    handled, undispatched, queued, dead, notified, recent = (
        an_event(tenant.id, subject=str(n)) for n in range(6)
    )
    await publish(database, [handled, undispatched, queued, dead, notified, recent])
    for event in (handled, queued, dead, notified):
        await aged(database, event)
    await aged(database, undispatched, dispatched=False)
    subscription = str(uuid.uuid4())
    async with database.session() as session:
        session.add_all(
            [
                HandledEventRow(handler="h", event_id=handled.id, handled_at=OLD),
                HandledEventRow(handler="h", event_id=recent.id),
                delivery(queued, "pending"),
                delivery(dead, "dead"),
                SubscriptionRow(
                    id=subscription,
                    tenant_id=tenant.id,
                    url="https://hooks.example.com/",
                    secret_key_id="k",
                    secret_sealed=b"x",
                    secret_origin="https://hooks.example.com",
                ),
            ]
        )
        await session.flush()
        sent = notification(handled, subscription, "delivered")
        session.add_all([sent, notification(notified, subscription, "pending")])
        await session.flush()
        session.add(
            NotificationAttemptRow(
                notification_id=sent.id, attempt=1, duration_ms=5, attempted_at=OLD
            )
        )
        for when in (OLD, utcnow()):
            session.add(
                ToolCallRow(
                    id=str(uuid.uuid4()),
                    tenant_id=tenant.id,
                    tool_id="t",
                    tool_name="ci",
                    operation="trigger_build",
                    event_id=str(uuid.uuid4()),
                    created_at=when,
                )
            )
            session.add(
                WebhookDeliveryRow(
                    id=str(uuid.uuid4()),
                    tenant_id=tenant.id,
                    tool_id="t",
                    delivery_id=str(uuid.uuid4()),
                    body=b"{}",
                    received_at=when,
                )
            )

    pruned = await Pruner(db=database, settings=RetentionSettings(days=30)).run_once()

    assert pruned.counts == {
        "events": 1,
        "handled_events": 1,
        "tool_calls": 1,
        "webhook_deliveries": 1,
        "notifications": 1,
    }
    async with database.session() as session:
        events = set(await session.scalars(select(EventRow.id)))
        marks = set(await session.scalars(select(HandledEventRow.event_id)))
        calls = list(await session.scalars(select(ToolCallRow.created_at)))
        hooks = list(await session.scalars(select(WebhookDeliveryRow.received_at)))
        notes = list(await session.scalars(select(NotificationRow.status)))
        attempts = list(await session.scalars(select(NotificationAttemptRow.id)))
    assert events == {e.id for e in (undispatched, queued, dead, notified, recent)}
    assert marks == {recent.id}
    assert all(when > OLD for when in calls + hooks) and len(calls) == len(hooks) == 1
    assert (notes, attempts) == (["pending"], [])


async def test_a_retention_of_zero_days_keeps_everything(database: Database) -> None:
    tenant, _ = await TenantService(database).create_tenant("acme")
    event = an_event(tenant.id)
    await publish(database, [event])
    await aged(database, event)

    pruned = await Pruner(db=database, settings=RetentionSettings(days=0)).run_once()

    assert pruned.counts == {}
    async with database.session() as session:
        assert await session.scalar(select(EventRow.id)) == event.id


async def test_a_run_deletes_in_batches_until_nothing_old_is_left(database: Database) -> None:
    tenant, _ = await TenantService(database).create_tenant("acme")
    events = [an_event(tenant.id, subject=str(n)) for n in range(5)]
    await publish(database, events)
    for event in events:
        await aged(database, event)

    pruned = await Pruner(db=database, settings=RetentionSettings(batch_size=2)).run_once()

    assert pruned.counts == {"events": 5}
