"""The build watcher: follows builds until they are final, for tools without webhooks.

Two halves. The ``build_watch`` handler starts a watch (a ``build_watches`` row) for
every non-final build event, in the handler's transaction, so a redelivered event
starts nothing new; a final build event from any source (a webhook, a cancel call)
ends the watch. The ``BuildWatcher`` loop runs beside the event worker (``devmesh
serve`` or ``devmesh worker``): it claims due watches (``SKIP LOCKED`` on
PostgreSQL, so several workers share them), asks the tool for the build's status
through ``ToolService`` (the tool's stored credentials, the same resilience), and
writes the state-change events through the outbox together with the watch's new
state, in one transaction guarded by the watch's ``version``: each of
``build.started`` and the final event is emitted once, however many pollers race.

Why a loop and not a bus-driven re-check: a re-check scheduled on the bus would be
a delivery per poll (thousands of rows for one long build, and retries and DLQ
semantics that do not fit "not final yet"); a due-time column claimed like the SQL
bus's queue costs one row per build and survives restarts by being in the database.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import structlog
from sqlalchemy import or_, select, update

from devmesh.config import EventsSettings
from devmesh.domain.errors import DevMeshError, NotFound
from devmesh.domain.events import EventSource, EventType, ToolRef, new_event
from devmesh.domain.models import BuildStatus, Tenant
from devmesh.events.background import pause
from devmesh.events.handlers import HandlerContext
from devmesh.events.outbox import Outbox
from devmesh.store.db import Database
from devmesh.store.rows import BuildWatchRow, EventRow, TenantRow, ToolRow, utcnow
from devmesh.tools.service import ToolService

__all__ = ["BuildWatcher", "WatchBuilds", "build_watch"]

_log = structlog.get_logger(__name__)

WATCHING, DONE, GAVE_UP, SKIPPED = "watching", "done", "gave_up", "skipped"

_FINAL_TYPES = frozenset(
    {EventType.BUILD_COMPLETED, EventType.BUILD_FAILED, EventType.BUILD_CANCELLED}
)
_START_TYPES = frozenset(
    {EventType.BUILD_TRIGGERED, EventType.BUILD_RETRIED, EventType.BUILD_STARTED}
)
_FINAL_OF = {
    BuildStatus.SUCCEEDED: EventType.BUILD_COMPLETED,
    BuildStatus.FAILED: EventType.BUILD_FAILED,
    BuildStatus.CANCELLED: EventType.BUILD_CANCELLED,
}


class WatchBuilds:
    """Starts a watch for a non-final build event; ends it on a final one."""

    name = "build_watch"
    types = frozenset(_START_TYPES | _FINAL_TYPES)
    retry_policy = None

    async def handle(self, context: HandlerContext) -> None:
        event = context.event
        if event.subject is None:
            return
        session = context.session
        now = utcnow()
        # A final event may name the build by its current id (a cancel call after the
        # build started), the watch by the id the trigger returned.
        watch = await session.scalar(
            select(BuildWatchRow).where(
                BuildWatchRow.tenant_id == event.tenant_id,
                BuildWatchRow.tool_id == event.tool.id,
                or_(
                    BuildWatchRow.subject == event.subject,
                    BuildWatchRow.build_id == event.subject,
                ),
            )
        )
        if event.type in _FINAL_TYPES:
            if watch is not None and watch.state == WATCHING:
                watch.state = DONE
                watch.reason = f"{event.type} from {event.source}"
                watch.version += 1
                watch.updated_at = now
            return
        if watch is not None or event.source == EventSource.POLL:
            return
        current = event.payload.get("id")
        session.add(
            BuildWatchRow(
                id=str(uuid.uuid4()),
                tenant_id=event.tenant_id,
                tool_id=event.tool.id,
                subject=event.subject,
                build_id=str(current) if current is not None else event.subject,
                state=WATCHING,
                version=0,
                polls=0,
                next_poll_at=now,
                created_at=now,
                updated_at=now,
            )
        )


build_watch = WatchBuilds()


class BuildWatcher:
    def __init__(
        self, *, db: Database, tools: ToolService, outbox: Outbox, settings: EventsSettings
    ) -> None:
        self._db = db
        self._tools = tools
        self._outbox = outbox
        self._settings = settings.watcher
        self._lease = timedelta(seconds=settings.claim_idle)

    async def run(self, stop: asyncio.Event) -> None:
        """Poll until ``stop`` is set; a failing cycle (database down) is logged and
        tried again after a pause, and never ends the loop."""
        _log.info("watcher_started", interval=self._settings.interval)
        while not stop.is_set():
            try:
                busy = await self.run_once()
            except Exception:
                _log.exception("watcher_cycle_failed")
                busy = 0
            if not busy:
                await pause(stop, min(1.0, self._settings.interval))
        _log.info("watcher_stopped")

    async def run_once(self) -> int:
        """Claim the due watches and poll each once; returns how many."""
        claimed = await self._claim()
        async with asyncio.TaskGroup() as tasks:
            for watch in claimed:
                tasks.create_task(self._poll(watch))
        return len(claimed)

    async def _claim(self) -> list[BuildWatchRow]:
        # A claim pushes next_poll_at one lease ahead: a watcher that dies mid-poll
        # lets it lapse and another polls the build.
        now = utcnow()
        due = (
            select(BuildWatchRow.id)
            .where(BuildWatchRow.state == WATCHING, BuildWatchRow.next_poll_at <= now)
            .order_by(BuildWatchRow.next_poll_at)
            .limit(self._settings.batch_size)
            .with_for_update(skip_locked=True)
        )
        async with self._db.session() as session:
            ids = (
                await session.scalars(
                    update(BuildWatchRow)
                    .where(BuildWatchRow.id.in_(due.scalar_subquery()))
                    .values(next_poll_at=now + self._lease)
                    .returning(BuildWatchRow.id)
                    .execution_options(synchronize_session=False)
                )
            ).all()
            if not ids:
                return []
            rows = list(
                await session.scalars(select(BuildWatchRow).where(BuildWatchRow.id.in_(ids)))
            )
            session.expunge_all()
        return rows

    async def _poll(self, watch: BuildWatchRow) -> None:
        try:
            await self._poll_one(watch)
        except Exception:
            # One build's trouble must not stop the others; its lease lapses and it
            # is polled again.
            _log.exception("watch_poll_failed", watch_id=watch.id)

    async def _poll_one(self, watch: BuildWatchRow) -> None:
        interval = self._settings.interval
        if utcnow() - watch.created_at > timedelta(seconds=self._settings.deadline):
            await self._stop(watch, GAVE_UP, "deadline passed before the build was final")
            return
        async with self._db.session() as session:
            tool = await session.get(ToolRow, watch.tool_id)
            tenant_row = await session.get(TenantRow, watch.tenant_id)
        if tool is None or tenant_row is None or tool.tenant_id != watch.tenant_id:
            await self._stop(watch, SKIPPED, "the tool was deleted")
            return
        if tool.credential_mode == "passthrough":
            # At poll time there is no caller, so no caller's token: only stored
            # credentials can be used.
            await self._stop(
                watch, SKIPPED, "passthrough-only tool: no stored credentials to poll with"
            )
            return
        tenant = Tenant(id=tenant_row.id, name=tenant_row.name, created_at=tenant_row.created_at)
        try:
            build = await self._tools.execute(
                tenant, tool.id, "get_build_status", {"build_id": watch.build_id}
            )
        except NotFound as exc:
            # The tool lost the operation or the build: nothing more to learn.
            await self._stop(watch, SKIPPED, f"{exc.code}: the build cannot be read")
            return
        except DevMeshError as exc:
            # The call's own retries are behind us (resilience): poll again after an
            # interval, or later when Retry-After (or an open circuit's) says so.
            retry_after = getattr(exc, "retry_after", None)
            wait = max(interval, float(retry_after or 0.0))
            _log.info("watch_poll_deferred", watch_id=watch.id, error=exc.code, retry_in=wait)
            await self._reschedule(watch, wait)
            return
        await self._advance(watch, tool, build)

    async def _advance(self, watch: BuildWatchRow, tool: ToolRow, build: dict[str, Any]) -> None:
        """Record what the poll saw, and its events, in one transaction guarded by the
        watch's version: a concurrent poller's or handler's change wins, and this
        poll emits nothing."""
        try:
            status = BuildStatus(str(build.get("status")))
        except ValueError:
            await self._reschedule(watch, self._settings.interval)
            return
        wanted: list[str] = []
        if status is not BuildStatus.QUEUED:
            wanted.append(EventType.BUILD_STARTED)
        # A final state is reported when a second poll still sees it: the call that
        # caused it (a cancel through Developer Mesh) or a webhook about it records
        # its own event a moment after the CI shows it, and that event wins.
        confirmed = status.finished and watch.last_status == status.value
        if confirmed:
            wanted.append(_FINAL_OF[status])
        now = utcnow()
        current = str(build.get("id") or watch.build_id)
        emitted = False
        async with self._db.session() as session:
            recorded = set(
                await session.scalars(
                    select(EventRow.type).where(
                        EventRow.tenant_id == watch.tenant_id,
                        EventRow.tool_id == watch.tool_id,
                        EventRow.subject.in_({watch.subject, watch.build_id, current}),
                        EventRow.type.in_([EventType.BUILD_STARTED, *_FINAL_TYPES]),
                    )
                )
            )
            final_known = bool(recorded & _FINAL_TYPES)
            done = confirmed or final_known
            changed = await session.execute(
                update(BuildWatchRow)
                .where(BuildWatchRow.id == watch.id, BuildWatchRow.version == watch.version)
                .values(
                    version=watch.version + 1,
                    polls=watch.polls + 1,
                    build_id=current,
                    last_status=status.value,
                    state=DONE if done else WATCHING,
                    reason="final state recorded by another source"
                    if final_known
                    else ("final state polled" if done else None),
                    next_poll_at=now + timedelta(seconds=self._settings.interval),
                    updated_at=now,
                )
                .execution_options(synchronize_session=False)
            )
            if changed.rowcount != 1:  # type: ignore[attr-defined]
                return
            if not final_known:
                for event_type in wanted:
                    if event_type in recorded:
                        continue
                    added = await self._outbox.add(
                        session,
                        new_event(
                            tenant_id=watch.tenant_id,
                            tool=ToolRef(id=tool.id, name=tool.name),
                            provider=tool.provider,
                            type=event_type,
                            source=EventSource.POLL,
                            subject=watch.subject,
                            payload=build,
                        ),
                    )
                    emitted = emitted or added
        if emitted:
            self._outbox.committed()

    async def _reschedule(self, watch: BuildWatchRow, seconds: float) -> None:
        async with self._db.session() as session:
            await session.execute(
                update(BuildWatchRow)
                .where(BuildWatchRow.id == watch.id, BuildWatchRow.version == watch.version)
                .values(
                    version=watch.version + 1,
                    polls=watch.polls + 1,
                    next_poll_at=utcnow() + timedelta(seconds=seconds),
                    updated_at=utcnow(),
                )
                .execution_options(synchronize_session=False)
            )

    async def _stop(self, watch: BuildWatchRow, state: str, reason: str) -> None:
        _log.info("watch_stopped", watch_id=watch.id, state=state, reason=reason)
        async with self._db.session() as session:
            await session.execute(
                update(BuildWatchRow)
                .where(BuildWatchRow.id == watch.id, BuildWatchRow.version == watch.version)
                .values(version=watch.version + 1, state=state, reason=reason, updated_at=utcnow())
                .execution_options(synchronize_session=False)
            )
