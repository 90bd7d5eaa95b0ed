"""The event model: something that happened to a tenant's tool. No I/O here.

Events are facts, written once and never changed. ``payload`` holds the normalised
build or pipeline (as the tool operations return them), never credentials.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Event", "EventSource", "EventType", "ToolRef", "new_event"]


class EventType(StrEnum):
    BUILD_TRIGGERED = "build.triggered"
    BUILD_STARTED = "build.started"
    BUILD_COMPLETED = "build.completed"
    BUILD_FAILED = "build.failed"
    BUILD_CANCELLED = "build.cancelled"
    BUILD_RETRIED = "build.retried"
    PIPELINE_TRIGGERED = "pipeline.triggered"
    PIPELINE_FINISHED = "pipeline.finished"
    WEBHOOK_RECEIVED = "webhook.received"
    # A mutating operation with no event type of its own (a provider's extra operation).
    TOOL_CALLED = "tool.called"


class EventSource(StrEnum):
    WEBHOOK = "webhook"
    TOOL_CALL = "tool_call"
    POLL = "poll"


class ToolRef(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    name: str


class Event(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str = Field(description="Unique and stable: handlers are idempotent by it.")
    tenant_id: str
    tool: ToolRef
    provider: str
    type: str = Field(description="An EventType value; providers may add their own.")
    occurred_at: datetime
    source: EventSource
    subject: str | None = Field(
        default=None, description="What the event is about: a build id or a pipeline run id."
    )
    payload: dict[str, Any] = Field(default_factory=dict)


def new_event(
    *,
    tenant_id: str,
    tool: ToolRef,
    provider: str,
    type: str,
    source: EventSource,
    subject: str | None = None,
    payload: dict[str, Any] | None = None,
    occurred_at: datetime | None = None,
) -> Event:
    return Event(
        id=str(uuid.uuid4()),
        tenant_id=tenant_id,
        tool=tool,
        provider=provider,
        type=type,
        occurred_at=occurred_at or datetime.now(UTC),
        source=source,
        subject=subject,
        payload=payload or {},
    )
