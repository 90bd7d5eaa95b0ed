"""``SqlEventBus``: the queue is a table in the service's own database.

The embedded default (SQLite, one process) and PostgreSQL without Redis. A claim
is one ``UPDATE ... WHERE id IN (SELECT ... LIMIT n) RETURNING``: on PostgreSQL
the inner select takes ``FOR UPDATE SKIP LOCKED``, so any number of worker
processes share the table without waiting for each other or taking the same row;
on SQLite the statement is atomic by itself (one writer at a time). Claiming
pushes ``available_at`` one lease (the claim idle time) ahead: a worker that dies
holding a delivery simply lets the lease lapse, and another claims it again.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from devmesh.domain.errors import NotFound
from devmesh.events.bus import DeadLetter, Delivery, QueueStats, Router, event_of
from devmesh.store.db import Database
from devmesh.store.group_commit import GroupCommit
from devmesh.store.rows import EventDeliveryRow, EventRow, utcnow

__all__ = ["SqlEventBus"]

_PENDING, _DEAD = "pending", "dead"
_MAX_ERROR = 2000


class SqlEventBus:
    def __init__(self, db: Database, *, router: Router, claim_idle: float) -> None:
        self._db = db
        self._router = router
        self._lease = timedelta(seconds=claim_idle)
        # Acks of deliveries settled at once share a commit (see store/group_commit.py).
        self._acks = GroupCommit(db)

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def dispatch(self, *, limit: int) -> int:
        now = utcnow()
        async with self._db.session() as session:
            # SQLite ignores FOR UPDATE; it has one writer at a time anyway.
            seqs = (
                select(EventRow.seq)
                .where(EventRow.dispatched_at.is_(None))
                .order_by(EventRow.seq)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
            rows = (
                await session.scalars(
                    select(EventRow).where(EventRow.seq.in_(seqs.scalar_subquery()))
                )
            ).all()
            for row in sorted(rows, key=lambda r: r.seq):
                for handler in self._router(event_of(row)):
                    session.add(
                        EventDeliveryRow(
                            event_id=row.id,
                            handler=handler,
                            status=_PENDING,
                            failures=0,
                            claims=0,
                            available_at=now,
                            created_at=now,
                            updated_at=now,
                        )
                    )
                row.dispatched_at = now
            return len(rows)

    async def claim(self, *, limit: int) -> list[Delivery]:
        now = utcnow()
        due = (
            select(EventDeliveryRow.id)
            .where(EventDeliveryRow.status == _PENDING, EventDeliveryRow.available_at <= now)
            .order_by(EventDeliveryRow.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        async with self._db.session() as session:
            claimed = (
                await session.execute(
                    update(EventDeliveryRow)
                    .where(EventDeliveryRow.id.in_(due.scalar_subquery()))
                    .values(
                        available_at=now + self._lease,
                        claims=EventDeliveryRow.claims + 1,
                        updated_at=now,
                    )
                    .returning(
                        EventDeliveryRow.id,
                        EventDeliveryRow.event_id,
                        EventDeliveryRow.handler,
                        EventDeliveryRow.failures,
                    )
                    .execution_options(synchronize_session=False)
                )
            ).all()
            if not claimed:
                return []
            events = {
                row.id: event_of(row)
                for row in await session.scalars(
                    select(EventRow).where(EventRow.id.in_({c.event_id for c in claimed}))
                )
            }
        deliveries = [
            Delivery(
                id=str(c.id), event=events[c.event_id], handler=c.handler, attempt=c.failures + 1
            )
            for c in claimed
            if c.event_id in events
        ]
        deliveries.sort(key=lambda d: int(d.id))
        return deliveries

    async def ack(self, delivery: Delivery) -> None:
        # The handled_events row is the lasting record; the queue keeps only what is due.
        statement = delete(EventDeliveryRow).where(EventDeliveryRow.id == int(delivery.id))

        async def write(session: AsyncSession) -> None:
            await session.execute(statement)

        await self._acks.run(write)

    async def retry(self, delivery: Delivery, *, error: str, delay: float) -> None:
        now = utcnow()
        async with self._db.session() as session:
            await session.execute(
                update(EventDeliveryRow)
                .where(EventDeliveryRow.id == int(delivery.id))
                .values(
                    failures=delivery.attempt,
                    available_at=now + timedelta(seconds=delay),
                    last_error=error[:_MAX_ERROR],
                    updated_at=now,
                )
            )

    async def dead_letter(self, delivery: Delivery, *, error: str) -> None:
        now = utcnow()
        async with self._db.session() as session:
            await session.execute(
                update(EventDeliveryRow)
                .where(EventDeliveryRow.id == int(delivery.id))
                .values(
                    status=_DEAD,
                    failures=delivery.attempt,
                    last_error=error[:_MAX_ERROR],
                    updated_at=now,
                )
            )

    def _dead(self, tenant_id: str | None) -> Any:
        query = (
            select(EventDeliveryRow, EventRow)
            .join(EventRow, EventRow.id == EventDeliveryRow.event_id)
            .where(EventDeliveryRow.status == _DEAD)
        )
        if tenant_id is not None:
            query = query.where(EventRow.tenant_id == tenant_id)
        return query

    async def dead_letters(self, *, tenant_id: str | None, limit: int) -> list[DeadLetter]:
        async with self._db.session() as session:
            rows = (
                await session.execute(
                    self._dead(tenant_id).order_by(EventDeliveryRow.id.desc()).limit(limit)
                )
            ).all()
        return [_dead_letter(delivery, event) for delivery, event in rows]

    async def replay(self, dead_letter_id: str, *, tenant_id: str | None) -> DeadLetter:
        if not (dead_letter_id.isascii() and dead_letter_id.isdigit()) or len(dead_letter_id) > 18:
            raise NotFound(f"no dead letter {dead_letter_id!r}")
        now = utcnow()
        async with self._db.session() as session:
            found = (
                await session.execute(
                    self._dead(tenant_id).where(EventDeliveryRow.id == int(dead_letter_id))
                )
            ).first()
            if found is None:
                raise NotFound(f"no dead letter {dead_letter_id!r}")
            delivery, event = found
            letter = _dead_letter(delivery, event)
            delivery.status, delivery.failures = _PENDING, 0
            delivery.available_at = delivery.updated_at = now
        return letter

    async def stats(self) -> QueueStats:
        now = utcnow()
        async with self._db.session() as session:
            pending, oldest_delivery = (
                await session.execute(
                    select(func.count(), func.min(EventDeliveryRow.created_at)).where(
                        EventDeliveryRow.status == _PENDING
                    )
                )
            ).one()
            undispatched, oldest_event = (
                await session.execute(
                    select(func.count(), func.min(EventRow.created_at)).where(
                        EventRow.dispatched_at.is_(None)
                    )
                )
            ).one()
            dead = await session.scalar(
                select(func.count()).where(EventDeliveryRow.status == _DEAD)
            )
        oldest = [t for t in (oldest_delivery, oldest_event) if t is not None]
        age = (now - min(oldest)).total_seconds() if oldest else 0.0
        return QueueStats(depth=pending + undispatched, oldest_age=max(age, 0.0), dead=dead or 0)


def _dead_letter(delivery: EventDeliveryRow, event: EventRow) -> DeadLetter:
    return DeadLetter(
        id=str(delivery.id),
        event_id=event.id,
        tenant_id=event.tenant_id,
        event_type=event.type,
        handler=delivery.handler,
        attempts=delivery.failures,
        error=delivery.last_error,
        dead_at=delivery.updated_at,
    )
