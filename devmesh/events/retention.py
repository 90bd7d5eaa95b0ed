"""Retention: the event system's records are deleted once older than ``events.retention``.

Events, the handlers' "handled" marks, tool call records, webhook deliveries and settled
notifications (with their attempts) grow with every call and delivery; the pruner runs
beside the worker and deletes what has aged out, a bounded batch per statement, so it
never holds a long lock or a large transaction.

What stays however old: an event not yet on the bus (``dispatched_at`` empty), one with
a delivery still queued or in the dead-letter queue (SQL bus), one a pending
notification will still send, and a handled mark whose event stays (dropping it would
let a redelivery run the handler again). With Redis the queue's entries carry the whole
event, so deleting the row loses no delivery.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import delete, exists, select

from devmesh.config import RetentionSettings
from devmesh.events.background import pause
from devmesh.store.db import Database
from devmesh.store.rows import (
    EventDeliveryRow,
    EventRow,
    HandledEventRow,
    NotificationRow,
    ToolCallRow,
    WebhookDeliveryRow,
    utcnow,
)

__all__ = ["Pruned", "Pruner"]

_log = structlog.get_logger(__name__)

# Batches per table and run: a run ends even if rows keep arriving faster than it deletes.
_MAX_BATCHES = 100
_SETTLED = ("delivered", "failed")
_FIRST_RUN_AFTER = 60.0


@dataclass
class Pruned:
    """Rows one run deleted, by table."""

    counts: dict[str, int] = field(default_factory=dict)

    def add(self, table: str, rows: int) -> None:
        self.counts[table] = self.counts.get(table, 0) + rows


class Pruner:
    def __init__(self, *, db: Database, settings: RetentionSettings) -> None:
        self._db = db
        self._settings = settings

    async def run(self, stop: asyncio.Event) -> None:
        """Prune every ``interval`` until ``stop`` is set; a failing run (database down)
        is logged and tried again at the next one."""
        if self._settings.days <= 0:
            return
        # Not at once: a worker that starts (or restarts) gets its queue going first.
        await pause(stop, min(_FIRST_RUN_AFTER, self._settings.interval))
        while not stop.is_set():
            try:
                pruned = await self.run_once()
                if pruned.counts:
                    _log.info("retention_pruned", **pruned.counts)
            except Exception:
                _log.exception("retention_failed")
            await pause(stop, self._settings.interval)

    async def run_once(self, *, now: datetime | None = None) -> Pruned:
        pruned = Pruned()
        if self._settings.days <= 0:
            return pruned
        cutoff = (now or utcnow()) - timedelta(days=self._settings.days)
        pending_notification = exists().where(
            NotificationRow.event_id == EventRow.id, NotificationRow.status.not_in(_SETTLED)
        )
        queued = exists().where(EventDeliveryRow.event_id == EventRow.id)
        await self._batches(
            pruned,
            "events",
            EventRow.seq,
            select(EventRow.seq).where(
                EventRow.created_at < cutoff,
                EventRow.dispatched_at.is_not(None),
                ~queued,
                ~pending_notification,
            ),
        )
        # Marks whose event is gone: just deleted, or before this ran.
        await self._batches(
            pruned,
            "handled_events",
            HandledEventRow.event_id,
            select(HandledEventRow.event_id).where(
                HandledEventRow.handled_at < cutoff,
                ~exists().where(EventRow.id == HandledEventRow.event_id),
            ),
        )
        await self._batches(
            pruned,
            "tool_calls",
            ToolCallRow.id,
            select(ToolCallRow.id).where(ToolCallRow.created_at < cutoff),
        )
        await self._batches(
            pruned,
            "webhook_deliveries",
            WebhookDeliveryRow.id,
            select(WebhookDeliveryRow.id).where(WebhookDeliveryRow.received_at < cutoff),
        )
        # Their attempts go with them (ON DELETE CASCADE).
        await self._batches(
            pruned,
            "notifications",
            NotificationRow.id,
            select(NotificationRow.id).where(
                NotificationRow.updated_at < cutoff, NotificationRow.status.in_(_SETTLED)
            ),
        )
        return pruned

    async def _batches(self, pruned: Pruned, table: str, key: Any, query: Any) -> None:
        """Delete the rows ``query`` selects (by ``key``), a batch per transaction."""
        size = self._settings.batch_size
        for _ in range(_MAX_BATCHES):
            async with self._db.session() as session:
                keys = list(await session.scalars(query.limit(size)))
                if not keys:
                    return
                deleted = await session.execute(
                    delete(key.class_)
                    .where(key.in_(keys))
                    .execution_options(synchronize_session=False)
                )
            pruned.add(table, deleted.rowcount)  # type: ignore[attr-defined]
            if len(keys) < size:
                return
