"""The outbox: an event is written in the same transaction as what caused it.

Nothing here talks to the bus. The worker's ``dispatch`` moves committed outbox
rows onto it, so a crash can never leave a call without its event, nor an event
for a call that rolled back.

Each thing happens once. The store holds at most one event of a type about one
subject of a tool (a unique index): a webhook, a call and the watcher that all see a
build finish record one ``build.completed``. The first to commit wins; the others'
events are dropped in their own transaction, which goes on without them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from devmesh.domain.events import Event, EventSource, EventType, ToolRef, new_event
from devmesh.store.rows import EventRow

__all__ = ["Outbox", "call_event"]

# What each mutating standard operation emits; its subject is the result's ``id``.
_CALL_EVENTS = {
    "trigger_build": EventType.BUILD_TRIGGERED,
    "cancel_build": EventType.BUILD_CANCELLED,
    "retry_build": EventType.BUILD_RETRIED,
    "trigger_pipeline": EventType.PIPELINE_TRIGGERED,
}


class Outbox:
    def __init__(self, *, on_commit: Callable[[], None] | None = None) -> None:
        """``on_commit`` is called after a transaction holding events commits, to wake
        an in-process worker at once instead of at its next poll."""
        self._on_commit = on_commit

    async def add(self, session: AsyncSession, event: Event) -> bool:
        """Write ``event`` in ``session``'s transaction: it exists iff that commits.

        False when the store already holds an event of its type about its subject
        (from this source or another): then nothing is written, and the transaction
        carries on."""
        dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
        written = await session.scalar(
            dialect.insert(EventRow)
            .values(
                id=event.id,
                tenant_id=event.tenant_id,
                tool_id=event.tool.id,
                tool_name=event.tool.name,
                provider=event.provider,
                type=event.type,
                source=event.source.value,
                subject=event.subject,
                occurred_at=event.occurred_at,
                payload=event.payload,
            )
            .on_conflict_do_nothing()
            .returning(EventRow.seq)
        )
        return written is not None

    def committed(self) -> None:
        if self._on_commit is not None:
            self._on_commit()


def call_event(
    *,
    tenant_id: str,
    tool: ToolRef,
    provider: str,
    operation: str,
    result: Mapping[str, Any],
    build_subject: Callable[[Mapping[str, Any]], str | None] | None = None,
) -> Event:
    """The event a successful mutating call emits: its payload is the call's result
    (the normalised build or pipeline run), which never holds credentials. A build's
    subject is ``build_subject(result)`` when given (the provider's lasting name for
    the build), else the result's ``id``."""
    event_type = _CALL_EVENTS.get(operation)
    if event_type is None:
        return new_event(
            tenant_id=tenant_id,
            tool=tool,
            provider=provider,
            type=EventType.TOOL_CALLED,
            source=EventSource.TOOL_CALL,
            payload={"operation": operation, "result": dict(result)},
        )
    subject = result.get("id")
    if build_subject is not None and event_type.startswith("build."):
        subject = build_subject(result)
    return new_event(
        tenant_id=tenant_id,
        tool=tool,
        provider=provider,
        type=event_type,
        source=EventSource.TOOL_CALL,
        subject=str(subject) if subject is not None else None,
        payload=dict(result),
    )
