"""The worker: dispatches the outbox, claims deliveries and runs their handlers.

Each delivery runs in one database transaction that first records ``(handler,
event id)`` in ``handled_events`` and then lets the handler write its effects. A
delivery whose mark exists already (a redelivery after a crash, or a lapsed claim
another worker finished) is acknowledged without running the handler: effects
happen once, however often an event is delivered.

Within one claimed batch, deliveries for the same handler and subject run one
after another in the order they were dispatched; different subjects run
concurrently, up to ``events.workers`` at once (and a provider's ``workers``).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable

import structlog
from sqlalchemy.exc import IntegrityError

from devmesh.config import EventsSettings, RetryPolicySettings
from devmesh.domain.events import Event
from devmesh.events.background import pause
from devmesh.events.bus import Delivery, EventBus
from devmesh.events.handlers import (
    Handler,
    HandlerContext,
    HandlerRegistry,
    PreparingHandler,
    backoff_delay,
)
from devmesh.observability.metrics import Metrics
from devmesh.store.db import Database
from devmesh.store.rows import HandledEventRow, utcnow

__all__ = ["Worker", "route_for"]

_log = structlog.get_logger(__name__)
_STATS_EVERY = 5.0


def route_for(handlers: HandlerRegistry, settings: EventsSettings) -> Callable[[Event], list[str]]:
    """Which handlers get an event: those that want its type, unless its provider's
    handling is turned off (``events.handlers.<provider>.enabled: false``)."""

    def route(event: Event) -> list[str]:
        group = settings.handlers.get(event.provider)
        if group is not None and not group.enabled:
            return []
        return [handler.name for handler in handlers.for_event(event.type)]

    return route


class Worker:
    def __init__(
        self,
        *,
        db: Database,
        bus: EventBus,
        handlers: HandlerRegistry,
        settings: EventsSettings,
        metrics: Metrics,
    ) -> None:
        self._db = db
        self._bus = bus
        self._handlers = handlers
        self._settings = settings
        self._metrics = metrics
        self._slots = asyncio.Semaphore(settings.workers)
        self._provider_slots = {
            name: asyncio.Semaphore(group.workers)
            for name, group in settings.handlers.items()
            if group.workers is not None
        }
        self._wake = asyncio.Event()
        self._stats_at = 0.0

    def wake(self) -> None:
        """Look for work now (an in-process outbox calls this after a commit)."""
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Work until ``stop`` is set. A failing bus (database or Redis down) is logged
        and tried again after a pause; it never ends the loop."""
        _log.info("worker_started", handlers=self._handlers.names())
        while not stop.is_set():
            try:
                busy = await self.run_once()
            except Exception:
                _log.exception("worker_cycle_failed")
                busy = 0
                await pause(stop, self._settings.poll_interval * 4)
            if not busy:
                await _wait_any(stop, self._wake, self._settings.poll_interval)
                self._wake.clear()
        _log.info("worker_stopped")

    async def run_once(self) -> int:
        """One cycle: dispatch, claim, handle. Returns how much work it found."""
        dispatched = await self._bus.dispatch(limit=self._settings.batch_size)
        deliveries = await self._bus.claim(limit=self._settings.batch_size)
        groups: dict[tuple[str, str], list[Delivery]] = defaultdict(list)
        for delivery in deliveries:
            groups[(delivery.handler, delivery.event.subject or delivery.event.id)].append(delivery)
        async with asyncio.TaskGroup() as tasks:
            for group in groups.values():
                tasks.create_task(self._in_order(group))
        await self._record_stats()
        return dispatched + len(deliveries)

    async def _in_order(self, group: list[Delivery]) -> None:
        for delivery in group:
            async with self._slots, self._provider_slot(delivery.event.provider):
                await self.deliver(delivery)

    def _provider_slot(self, provider: str) -> contextlib.AbstractAsyncContextManager[object]:
        slot = self._provider_slots.get(provider)
        return slot if slot is not None else contextlib.nullcontext()

    async def deliver(self, delivery: Delivery) -> None:
        """Run one delivery to its end: acknowledged, retried later, or dead-lettered."""
        event = delivery.event
        handler = self._handlers.get(delivery.handler)
        labels = {"type": event.type, "handler": delivery.handler}
        if handler is None:
            await self._bus.dead_letter(
                delivery, error=f"no handler named {delivery.handler!r} is installed"
            )
            self._metrics.events_handled.labels(**labels, outcome="dead_lettered").inc()
            return
        started = time.perf_counter()
        try:
            ran = await self._handle(handler, delivery)
        except Exception as exc:
            self._metrics.event_handler_duration.labels(handler=handler.name).observe(
                time.perf_counter() - started
            )
            await self._failed(handler, delivery, exc)
            return
        if ran:
            self._metrics.event_handler_duration.labels(handler=handler.name).observe(
                time.perf_counter() - started
            )
        await self._bus.ack(delivery)
        self._metrics.events_handled.labels(
            **labels, outcome="handled" if ran else "duplicate"
        ).inc()

    async def _handle(self, handler: Handler, delivery: Delivery) -> bool:
        """True when the handler ran; False when the event was handled before."""
        event = delivery.event
        prepared: object = None
        if isinstance(handler, PreparingHandler):
            async with self._db.session() as session:
                if await session.get(HandledEventRow, (handler.name, event.id)) is not None:
                    return False
            prepared = await handler.prepare(event)
        try:
            async with self._db.session() as session:
                if await session.get(HandledEventRow, (handler.name, event.id)) is not None:
                    return False
                session.add(
                    HandledEventRow(handler=handler.name, event_id=event.id, handled_at=utcnow())
                )
                try:
                    await session.flush()
                except IntegrityError:
                    raise _AlreadyHandled from None
                await handler.handle(
                    HandlerContext(
                        event=event, session=session, attempt=delivery.attempt, prepared=prepared
                    )
                )
        except _AlreadyHandled:
            return False
        return True

    async def _failed(self, handler: Handler, delivery: Delivery, exc: Exception) -> None:
        policy = self._policy(handler, delivery.event.provider)
        error = f"{type(exc).__name__}: {exc}"
        labels = {"type": delivery.event.type, "handler": handler.name}
        if delivery.attempt >= policy.max_attempts:
            await self._bus.dead_letter(delivery, error=error)
            self._metrics.events_handled.labels(**labels, outcome="dead_lettered").inc()
            _log.warning(
                "event_dead_lettered",
                handler=handler.name,
                event_id=delivery.event.id,
                event_type=delivery.event.type,
                attempts=delivery.attempt,
                error_type=type(exc).__name__,
            )
            return
        delay = backoff_delay(policy, delivery.attempt)
        await self._bus.retry(delivery, error=error, delay=delay)
        self._metrics.events_handled.labels(**labels, outcome="failed").inc()
        _log.info(
            "event_handler_failed",
            handler=handler.name,
            event_id=delivery.event.id,
            attempt=delivery.attempt,
            retry_in=delay,
            error_type=type(exc).__name__,
        )

    def _policy(self, handler: Handler, provider: str) -> RetryPolicySettings:
        # Configuration beats code: the provider's policy, else the handler's own,
        # else the default.
        group = self._settings.handlers.get(provider)
        if group is not None and group.retry_policy is not None:
            return group.retry_policy
        return handler.retry_policy or self._settings.retry_policy

    async def _record_stats(self) -> None:
        now = time.monotonic()
        if now - self._stats_at < _STATS_EVERY:
            return
        self._stats_at = now
        stats = await self._bus.stats()
        self._metrics.events_queue_depth.set(stats.depth)
        self._metrics.events_lag.set(stats.oldest_age)
        self._metrics.events_dead.set(stats.dead)


class _AlreadyHandled(Exception):
    """The handled mark was written by someone else meanwhile."""


async def _wait_any(stop: asyncio.Event, wake: asyncio.Event, seconds: float) -> None:
    waiters: list[Awaitable[object]] = [stop.wait(), wake.wait()]
    tasks = [asyncio.ensure_future(w) for w in waiters]
    try:
        await asyncio.wait(tasks, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
