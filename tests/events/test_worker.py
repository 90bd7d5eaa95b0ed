"""The worker over every bus: at least once, effects once, retries, DLQ, replay, sharing."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import pytest

from devmesh.config import EventsSettings, HandlerGroupSettings, RetryPolicySettings
from devmesh.domain.errors import NotFound
from devmesh.domain.models import Tenant
from devmesh.events.handlers import backoff_delay
from devmesh.events.worker import Worker
from tests.events.conftest import CLAIM_IDLE, Backend
from tests.events.support import Recorder, an_event, effects, publish

pytestmark = pytest.mark.anyio

_DEADLINE = 20.0


async def until(condition: Callable[[], Awaitable[bool]], *, work: Worker | None = None) -> None:
    """Run ``work`` cycles (or just wait) until ``condition`` holds; bounded."""
    deadline = time.monotonic() + _DEADLINE
    while not await condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        if work is not None and await work.run_once():
            continue
        await asyncio.sleep(0.02)


async def test_every_published_event_reaches_its_handler_once(
    backend: Backend, tenant: Tenant
) -> None:
    recorder = Recorder()
    worker, _ = await backend.worker(recorder)
    events = [an_event(tenant.id, subject=str(n)) for n in range(5)]
    await publish(backend.db, events)

    async def all_handled() -> bool:
        return len(await effects(backend.db)) == 5

    await until(all_handled, work=worker)
    assert sorted(await effects(backend.db)) == sorted(e.id for e in events)
    assert sorted(recorder.calls) == sorted(e.id for e in events)


async def test_a_handler_only_gets_the_types_it_asked_for(backend: Backend, tenant: Tenant) -> None:
    failures = Recorder("failures", types=["build.failed"])
    worker, _ = await backend.worker(failures)
    wanted = an_event(tenant.id, subject="1", type="build.failed")
    await publish(backend.db, [an_event(tenant.id, subject="1"), wanted])

    async def handled() -> bool:
        return len(await effects(backend.db)) == 1

    await until(handled, work=worker)
    assert await worker.run_once() == 0
    assert await effects(backend.db) == [wanted.id]


async def test_a_delivery_already_handled_is_acknowledged_without_running_the_handler(
    backend: Backend, tenant: Tenant
) -> None:
    recorder = Recorder()
    worker, bus = await backend.worker(recorder)
    await publish(backend.db, [an_event(tenant.id)])
    await bus.dispatch(limit=10)
    [delivery] = await bus.claim(limit=10)

    await worker.deliver(delivery)
    await worker.deliver(delivery)

    assert len(recorder.calls) == 1
    assert len(await effects(backend.db)) == 1


async def test_a_worker_that_dies_mid_handler_leaves_the_event_to_another_and_it_lands_once(
    backend: Backend, tenant: Tenant
) -> None:
    dying = Recorder()
    dying.hang = True
    first, _ = await backend.worker(dying)
    event = an_event(tenant.id)
    await publish(backend.db, [event])
    cycle = asyncio.create_task(first.run_once())
    await asyncio.wait_for(dying.hanging.wait(), _DEADLINE)
    cycle.cancel()  # the process dies: its transaction rolls back, nothing is acked
    with pytest.raises(asyncio.CancelledError):
        await cycle
    assert await effects(backend.db) == []

    survivor = Recorder()
    second, _ = await backend.worker(survivor)
    assert await second.run_once() == 0  # still claimed by the dead worker

    async def handled() -> bool:
        return len(await effects(backend.db)) == 1

    await until(handled, work=second)
    assert survivor.calls == [event.id]
    assert await effects(backend.db) == [event.id]


async def test_a_claim_not_settled_within_claim_idle_is_taken_over_by_another_consumer(
    backend: Backend, tenant: Tenant
) -> None:
    recorder = Recorder()
    _, first = await backend.worker(recorder)
    _, second = await backend.worker(recorder)
    await publish(backend.db, [an_event(tenant.id, subject=str(n)) for n in range(3)])
    await first.dispatch(limit=10)
    held = await first.claim(limit=10)
    assert len(held) == 3

    assert await second.claim(limit=10) == []
    await asyncio.sleep(CLAIM_IDLE + 0.2)
    taken = await second.claim(limit=10)

    assert sorted(d.event.id for d in taken) == sorted(d.event.id for d in held)


async def test_a_failing_handler_is_retried_then_dead_lettered_and_a_replay_delivers_it(
    backend: Backend, tenant: Tenant
) -> None:
    policy = RetryPolicySettings(max_attempts=2, initial_delay=0.05, max_delay=0.1)
    flaky = Recorder(failures=2, retry_policy=policy)
    worker, bus = await backend.worker(flaky)
    event = an_event(tenant.id)
    await publish(backend.db, [event])

    async def dead() -> bool:
        return bool(await bus.dead_letters(tenant_id=tenant.id, limit=10))

    await until(dead, work=worker)
    [letter] = await bus.dead_letters(tenant_id=tenant.id, limit=10)
    assert (letter.event_id, letter.handler, letter.attempts) == (event.id, "recorder", 2)
    assert letter.error == "RuntimeError: recorder failed on purpose"
    assert len(flaky.calls) == 2
    assert await effects(backend.db) == []  # each failed attempt rolled back its effect
    assert (await bus.stats()).dead == 1

    replayed = await bus.replay(letter.id, tenant_id=tenant.id)
    assert replayed.event_id == event.id

    async def handled() -> bool:
        return len(await effects(backend.db)) == 1

    await until(handled, work=worker)
    assert await bus.dead_letters(tenant_id=tenant.id, limit=10) == []
    assert len(flaky.calls) == 3


async def test_a_dead_letter_is_not_replayed_for_another_tenant(
    backend: Backend, tenant: Tenant
) -> None:
    policy = RetryPolicySettings(max_attempts=1)
    worker, bus = await backend.worker(Recorder(failures=1, retry_policy=policy))
    await publish(backend.db, [an_event(tenant.id)])

    async def dead() -> bool:
        return bool(await bus.dead_letters(tenant_id=None, limit=10))

    await until(dead, work=worker)
    [letter] = await bus.dead_letters(tenant_id=None, limit=10)
    assert await bus.dead_letters(tenant_id="someone-else", limit=10) == []
    with pytest.raises(NotFound):
        await bus.replay(letter.id, tenant_id="someone-else")
    with pytest.raises(NotFound):
        await bus.replay("no-such-letter", tenant_id=None)


async def test_two_workers_share_the_work_and_no_event_takes_effect_twice(
    backend: Backend, tenant: Tenant
) -> None:
    settings = EventsSettings(claim_idle=5, poll_interval=0.02, batch_size=10)
    left, right = Recorder(), Recorder()
    first, _ = await backend.worker(left, settings=settings)
    second, _ = await backend.worker(right, settings=settings)
    events = [an_event(tenant.id, subject=str(n)) for n in range(200)]
    await publish(backend.db, events)
    stop = asyncio.Event()
    runs = [asyncio.create_task(w.run(stop)) for w in (first, second)]
    try:

        async def all_handled() -> bool:
            return len(await effects(backend.db)) >= 200

        await until(all_handled)
    finally:
        stop.set()
        await asyncio.gather(*runs)
    handled = await effects(backend.db)
    assert sorted(handled) == sorted(e.id for e in events)
    assert left.calls and right.calls
    assert not set(left.calls) & set(right.calls)


async def test_events_of_a_provider_whose_handling_is_off_go_to_no_handler(
    backend: Backend, tenant: Tenant
) -> None:
    settings = EventsSettings(handlers={"buildbot": HandlerGroupSettings(enabled=False)})
    worker, bus = await backend.worker(Recorder(), settings=settings)
    await publish(backend.db, [an_event(tenant.id)])
    assert await worker.run_once() == 1  # dispatched, to nobody
    assert await worker.run_once() == 0
    assert (await bus.stats()).depth == 0


async def test_one_subjects_events_are_handled_in_the_order_they_were_recorded(
    backend: Backend, tenant: Tenant
) -> None:
    recorder = Recorder()
    worker, _ = await backend.worker(recorder)
    kinds = ["build.triggered", "build.started", "build.completed"]
    events = [an_event(tenant.id, subject="42", type=kind) for kind in kinds]
    await publish(backend.db, events)

    async def handled() -> bool:
        return len(recorder.calls) == 3

    await until(handled, work=worker)
    assert recorder.calls == [e.id for e in events]


async def test_stats_count_undispatched_events_in_the_depth(
    backend: Backend, tenant: Tenant
) -> None:
    _, bus = await backend.worker(Recorder())
    await publish(backend.db, [an_event(tenant.id, subject=str(n)) for n in range(3)])
    stats = await bus.stats()
    assert stats.depth == 3
    assert stats.oldest_age >= 0


def test_exponential_backoff_doubles_up_to_the_maximum() -> None:
    policy = RetryPolicySettings(initial_delay=1, max_delay=5)
    assert [backoff_delay(policy, n) for n in (1, 2, 3, 4)] == [1, 2, 4, 5]
    constant = RetryPolicySettings(backoff="constant", initial_delay=2)
    assert [backoff_delay(constant, n) for n in (1, 5)] == [2, 2]
