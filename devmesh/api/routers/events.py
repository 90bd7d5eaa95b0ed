"""Events of this tenant's tools, and its dead letters: a thin face over the event log
and the bus."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from pydantic import AwareDatetime, BaseModel, Field

from devmesh.api.deps import Bus, CurrentTenant, Events
from devmesh.domain.events import Event, EventSource, ToolRef
from devmesh.events.bus import DeadLetter
from devmesh.events.log import MAX_PAGE

router = APIRouter(prefix="/api/v1/events", tags=["events"])


class EventRead(BaseModel):
    id: str
    type: str
    tool: ToolRef
    provider: str
    source: EventSource
    subject: str | None
    occurred_at: datetime
    payload: dict[str, Any]

    @classmethod
    def of(cls, event: Event) -> EventRead:
        return cls.model_validate(event.model_dump(exclude={"tenant_id"}))


class EventList(BaseModel):
    events: list[EventRead]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the events recorded after these; given on the "
        "last page too, so you can poll for new events with it."
    )


class DeadLetterRead(BaseModel):
    id: str = Field(description="Pass to POST /api/v1/events/dlq/{id}/replay.")
    event_id: str
    event_type: str
    handler: str
    attempts: int
    error: str | None
    dead_at: datetime

    @classmethod
    def of(cls, letter: DeadLetter) -> DeadLetterRead:
        return cls(
            id=letter.id,
            event_id=letter.event_id,
            event_type=letter.event_type,
            handler=letter.handler,
            attempts=letter.attempts,
            error=letter.error,
            dead_at=letter.dead_at,
        )


@router.get("", response_model=EventList, summary="This tenant's events, oldest first")
async def list_events(
    tenant: CurrentTenant,
    events: Events,
    type: Annotated[
        str | None, Query(max_length=64, description="Only this type, e.g. build.failed.")
    ] = None,
    tool: Annotated[
        str | None, Query(max_length=64, description="Only this tool (name or id).")
    ] = None,
    subject: Annotated[
        str | None, Query(max_length=255, description="Only about this build or pipeline run.")
    ] = None,
    since: Annotated[
        AwareDatetime | None, Query(description="Only events that occurred at or after this.")
    ] = None,
    until: Annotated[
        AwareDatetime | None, Query(description="Only events that occurred before this.")
    ] = None,
    cursor: Annotated[
        str | None, Query(max_length=32, description="The next_cursor of a previous page.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
) -> EventList:
    page = await events.list(
        tenant_id=tenant.id,
        type=type,
        tool=tool,
        subject=subject,
        since=since,
        until=until,
        cursor=cursor,
        limit=limit,
    )
    return EventList(
        events=[EventRead.of(event) for event in page.events], next_cursor=page.next_cursor
    )


@router.get(
    "/dlq",
    response_model=list[DeadLetterRead],
    summary="Deliveries of this tenant's events that failed every attempt, newest first",
)
async def list_dead_letters(
    tenant: CurrentTenant, bus: Bus, limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100
) -> list[DeadLetterRead]:
    letters = await bus.dead_letters(tenant_id=tenant.id, limit=limit)
    return [DeadLetterRead.of(letter) for letter in letters]


@router.post(
    "/dlq/{dead_letter}/replay",
    response_model=DeadLetterRead,
    summary="Deliver a dead letter again, with a fresh attempt count",
)
async def replay_dead_letter(
    dead_letter: Annotated[str, Path(max_length=64)], tenant: CurrentTenant, bus: Bus
) -> DeadLetterRead:
    return DeadLetterRead.of(await bus.replay(dead_letter, tenant_id=tenant.id))


@router.get("/{event}", response_model=EventRead, summary="One event, by id")
async def get_event(
    event: Annotated[str, Path(max_length=64)], tenant: CurrentTenant, events: Events
) -> EventRead:
    return EventRead.of(await events.get(event, tenant_id=tenant.id))
