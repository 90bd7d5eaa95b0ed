"""The ``EventBus`` protocol, shared by ``SqlEventBus`` and ``RedisEventBus``.

Events enter the bus through the outbox (``events`` rows with ``dispatched_at``
NULL, written in the transaction of whatever caused them). ``dispatch`` moves
committed outbox rows onto the bus, one delivery per (event, handler); ``claim``
hands deliveries to a worker; each ends in ``ack``, ``retry`` (after a delay) or
``dead_letter``. A claimed delivery that is not settled within the claim idle time
(its worker died) is claimed again by another worker: delivery is at least once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from devmesh.domain.events import Event, EventSource, ToolRef
from devmesh.store.rows import EventRow

__all__ = [
    "DeadLetter",
    "Delivery",
    "EventBus",
    "QueueStats",
    "Router",
    "event_of",
]

# Which handlers an event goes to (by name); decided when it is dispatched.
Router = Callable[[Event], Sequence[str]]


@dataclass(frozen=True)
class Delivery:
    """One event for one handler. ``id`` is the bus's own (a row id, a stream entry id);
    ``attempt`` is 1 on the first try and counts handler failures, not crashes."""

    id: str
    event: Event
    handler: str
    attempt: int


@dataclass(frozen=True)
class DeadLetter:
    id: str
    event_id: str
    tenant_id: str
    event_type: str
    handler: str
    attempts: int
    error: str | None
    dead_at: datetime


@dataclass(frozen=True)
class QueueStats:
    depth: int
    """Deliveries not yet settled, plus events not yet dispatched."""
    oldest_age: float
    """Seconds since the oldest of them was written (0 when there are none)."""
    dead: int


class EventBus(Protocol):
    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def dispatch(self, *, limit: int) -> int:
        """Move up to ``limit`` committed outbox events onto the bus; how many moved."""
        ...

    async def claim(self, *, limit: int) -> list[Delivery]: ...

    async def ack(self, delivery: Delivery) -> None: ...

    async def retry(self, delivery: Delivery, *, error: str, delay: float) -> None: ...

    async def dead_letter(self, delivery: Delivery, *, error: str) -> None: ...

    async def dead_letters(self, *, tenant_id: str | None, limit: int) -> list[DeadLetter]:
        """Newest first; only ``tenant_id``'s when given."""
        ...

    async def replay(self, dead_letter_id: str, *, tenant_id: str | None) -> DeadLetter:
        """Put a dead letter back on the bus with a fresh attempt count.

        Raises ``NotFound`` for an unknown id or another tenant's."""
        ...

    async def stats(self) -> QueueStats: ...


def event_of(row: EventRow) -> Event:
    return Event(
        id=row.id,
        tenant_id=row.tenant_id,
        tool=ToolRef(id=row.tool_id, name=row.tool_name),
        provider=row.provider,
        type=row.type,
        occurred_at=row.occurred_at,
        source=EventSource(row.source),
        subject=row.subject,
        payload=dict(row.payload or {}),
    )
