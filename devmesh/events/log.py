"""Reading events back: tenant-scoped queries for the REST API and the CLI."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select

from devmesh.domain.errors import InvalidInput, NotFound
from devmesh.domain.events import Event
from devmesh.events.bus import event_of
from devmesh.store.db import Database
from devmesh.store.rows import EventRow

__all__ = ["EventLog", "EventPage"]

MAX_PAGE = 500


@dataclass(frozen=True)
class EventPage:
    events: list[Event]
    next_cursor: str | None
    """Pass as ``cursor`` for the events after these; present even on the last page,
    so a client can poll for what comes next."""


class EventLog:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def list(
        self,
        *,
        tenant_id: str | None,
        type: str | None = None,
        tool: str | None = None,
        subject: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        cursor: str | None = None,
        limit: int = 100,
    ) -> EventPage:
        """Events in the order they were recorded, after ``cursor``; ``tenant_id`` None
        (the operator's CLI) means every tenant's."""
        after = _cursor(cursor)
        query = select(EventRow).where(EventRow.seq > after)
        if tenant_id is not None:
            query = query.where(EventRow.tenant_id == tenant_id)
        if type is not None:
            query = query.where(EventRow.type == type)
        if tool is not None:
            query = query.where(or_(EventRow.tool_name == tool, EventRow.tool_id == tool))
        if subject is not None:
            query = query.where(EventRow.subject == subject)
        if since is not None:
            query = query.where(EventRow.occurred_at >= since)
        if until is not None:
            query = query.where(EventRow.occurred_at < until)
        async with self._db.session() as session:
            rows = (
                await session.scalars(query.order_by(EventRow.seq).limit(min(limit, MAX_PAGE)))
            ).all()
        last = rows[-1].seq if rows else after
        return EventPage(
            events=[event_of(row) for row in rows], next_cursor=str(last) if last else cursor
        )

    async def get(self, event_id: str, *, tenant_id: str | None) -> Event:
        query = select(EventRow).where(EventRow.id == event_id)
        if tenant_id is not None:
            query = query.where(EventRow.tenant_id == tenant_id)
        async with self._db.session() as session:
            row = await session.scalar(query)
        if row is None:
            raise NotFound(f"no event {event_id!r}")
        return event_of(row)


def _cursor(cursor: str | None) -> int:
    if cursor is None:
        return 0
    if not (cursor.isascii() and cursor.isdigit()) or len(cursor) > 18:
        raise InvalidInput("cursor is not one this API returned", field="cursor")
    return int(cursor)
