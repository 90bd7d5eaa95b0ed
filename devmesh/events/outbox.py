"""The outbox: an event is written in the same transaction as what caused it.

Nothing here talks to the bus. The worker's ``dispatch`` moves committed outbox
rows onto it, so a crash can never leave a call without its event, nor an event
for a call that rolled back.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from devmesh.domain.events import Event, EventSource, EventType, ToolRef, new_event
from devmesh.events.bus import row_of

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

    async def add(self, session: AsyncSession, event: Event) -> None:
        """Write ``event`` in ``session``'s transaction: it exists iff that commits."""
        session.add(row_of(event))
        await session.flush()

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
) -> Event:
    """The event a successful mutating call emits: its payload is the call's result
    (the normalised build or pipeline run), which never holds credentials."""
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
    return new_event(
        tenant_id=tenant_id,
        tool=tool,
        provider=provider,
        type=event_type,
        source=EventSource.TOOL_CALL,
        subject=str(subject) if subject is not None else None,
        payload=dict(result),
    )
