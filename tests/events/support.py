"""Test handlers and helpers for the event tests.

The handlers write their effect as a row of ``test_effects`` through the delivery's
session, so "effects once" is a count the tests can make. ``crash_counter`` is also
registered through an entry point by the crash test, for ``devmesh worker``
subprocesses; it appends every invocation to ``$DEVMESH_TEST_INVOCATIONS`` (before
its transaction commits) so the test can tell redeliveries from effects.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence

from sqlalchemy import text

from devmesh.config import RetryPolicySettings
from devmesh.domain.events import Event, EventSource, ToolRef, new_event
from devmesh.events.handlers import HandlerContext
from devmesh.events.outbox import Outbox
from devmesh.store.db import Database

EFFECTS_TABLE = (
    "CREATE TABLE IF NOT EXISTS test_effects (handler VARCHAR(64), event_id VARCHAR(36))"
)


async def create_effects_table(db: Database) -> None:
    async with db.session() as session:
        await session.execute(text(EFFECTS_TABLE))


async def effects(db: Database, handler: str | None = None) -> list[str]:
    query = "SELECT event_id FROM test_effects"
    params = {}
    if handler is not None:
        query += " WHERE handler = :h"
        params["h"] = handler
    async with db.session() as session:
        return [row[0] for row in await session.execute(text(query), params)]


class Recorder:
    """Writes one effect per event; raises on its first ``failures`` invocations, and
    hangs (until cancelled) while ``hang`` is set, after writing its effect."""

    def __init__(
        self,
        name: str = "recorder",
        *,
        types: Sequence[str] = (),
        failures: int = 0,
        retry_policy: RetryPolicySettings | None = None,
    ) -> None:
        self.name = name
        self.types = frozenset(types)
        self.retry_policy = retry_policy
        self.failures = failures
        self.calls: list[str] = []
        self.hang = False
        self.hanging = asyncio.Event()

    async def handle(self, context: HandlerContext) -> None:
        self.calls.append(context.event.id)
        await context.session.execute(
            text("INSERT INTO test_effects (handler, event_id) VALUES (:h, :e)"),
            {"h": self.name, "e": context.event.id},
        )
        if self.hang:
            self.hanging.set()
            await asyncio.Event().wait()
        if len(self.calls) <= self.failures:
            raise RuntimeError(f"{self.name} failed on purpose")


class CrashCounter:
    name = "crash_counter"
    types: frozenset[str] = frozenset()
    retry_policy = None

    async def handle(self, context: HandlerContext) -> None:
        log = os.environ.get("DEVMESH_TEST_INVOCATIONS")
        if log:
            with open(log, "a") as out:  # noqa: ASYNC230 - a test's small append
                out.write(context.event.id + "\n")
        await context.session.execute(
            text("INSERT INTO test_effects (handler, event_id) VALUES (:h, :e)"),
            {"h": self.name, "e": context.event.id},
        )


crash_counter = CrashCounter()


def an_event(tenant_id: str, *, subject: str = "1", type: str = "build.triggered") -> Event:
    return new_event(
        tenant_id=tenant_id,
        tool=ToolRef(id="00000000-0000-4000-8000-000000000001", name="ci"),
        provider="buildbot",
        type=type,
        source=EventSource.TOOL_CALL,
        subject=subject,
        payload={"id": subject, "status": "queued"},
    )


async def publish(db: Database, events: Sequence[Event]) -> None:
    """Write events through the outbox, as a tool call does."""
    outbox = Outbox()
    async with db.session() as session:
        for event in events:
            await outbox.add(session, event)
