"""The build watcher follows builds on a real Buildbot, with no webhook, to their end.

Builds are triggered through the REST API; what the watcher made of them is read back
through ``GET /api/v1/events``, as a client would.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from devmesh.domain.events import EventSource, ToolRef, new_event
from devmesh.events.outbox import Outbox
from devmesh.store.rows import BuildWatchRow
from tests.support.buildbot.server import BuildbotServer
from tests.support.live import LiveService, run_service

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

WAIT = 90.0
# Polled often, so a build's life takes seconds here.
FAST = {"events": {"watcher": {"interval": 0.3}, "claim_idle": 5}}
FINAL = {"build.completed", "build.failed", "build.cancelled"}


@pytest.fixture(scope="module")
async def watched(tmp_path_factory: pytest.TempPathFactory) -> Any:
    async with run_service(tmp_path_factory.mktemp("devmesh"), **FAST) as service:
        yield service


async def tenant_with_ci(live: LiveService, buildbot: BuildbotServer) -> str:
    _, key = await live.services.tenants.create_tenant(f"t-{uuid.uuid4().hex[:8]}")
    async with httpx.AsyncClient(base_url=live.base_url) as http:
        created = await http.post(
            "/api/v1/tools",
            headers={"Authorization": f"Bearer {key}"},
            json={"name": "ci", "provider": "buildbot", "base_url": buildbot.base_url},
        )
    assert created.status_code == 201, created.text
    return key


async def call(live: LiveService, key: str, operation: str, body: dict[str, Any]) -> Any:
    async with httpx.AsyncClient(base_url=live.base_url, timeout=60) as http:
        answer = await http.post(
            f"/api/v1/tools/ci/operations/{operation}",
            headers={"Authorization": f"Bearer {key}"},
            json=body,
        )
    assert answer.status_code == 200, answer.text
    return answer.json()


async def trigger(live: LiveService, key: str, **parameters: Any) -> str:
    build = await call(
        live, key, "trigger_build", {"project": "runtests", "parameters": parameters}
    )
    return str(build["id"])


async def events_of(live: LiveService, key: str, subject: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=live.base_url) as http:
        answer = await http.get(
            "/api/v1/events",
            headers={"Authorization": f"Bearer {key}"},
            params={"subject": subject, "limit": 100},
        )
    assert answer.status_code == 200, answer.text
    events: list[dict[str, Any]] = answer.json()["events"]
    return events


async def wait_for(live: LiveService, key: str, subject: str, wanted: set[str]) -> Counter[str]:
    deadline = time.monotonic() + WAIT
    while True:
        types = Counter(e["type"] for e in await events_of(live, key, subject))
        if wanted & set(types):
            return types
        assert time.monotonic() < deadline, f"build {subject}: only {dict(types)}"
        await asyncio.sleep(0.2)


async def watch_of(live: LiveService, subject: str) -> BuildWatchRow:
    """The build's watch, once the handler of its trigger event has started it."""
    deadline = time.monotonic() + WAIT
    while True:
        async with live.services.db.session() as session:
            row = await session.scalar(
                select(BuildWatchRow).where(BuildWatchRow.subject == subject)
            )
        if row is not None:
            return row
        assert time.monotonic() < deadline, f"no watch for build {subject}"
        await asyncio.sleep(0.1)


async def settled(live: LiveService, key: str, subject: str) -> Counter[str]:
    """The events once the watch has ended and a few more polls would have happened."""
    deadline = time.monotonic() + WAIT
    while (await watch_of(live, subject)).state == "watching":
        assert time.monotonic() < deadline
        await asyncio.sleep(0.2)
    await asyncio.sleep(1.0)
    return Counter(e["type"] for e in await events_of(live, key, subject))


async def test_a_succeeding_build_is_reported_triggered_started_and_completed_once_each(
    watched: LiveService, buildbot: BuildbotServer
) -> None:
    key = await tenant_with_ci(watched, buildbot)
    subject = await trigger(watched, key, sleep="1")
    await wait_for(watched, key, subject, FINAL)
    types = await settled(watched, key, subject)
    assert types == Counter({"build.triggered": 1, "build.started": 1, "build.completed": 1})
    events = await events_of(watched, key, subject)
    polled = [e for e in events if e["source"] == "poll"]
    assert all(e["subject"] == subject for e in polled)
    # The subject stays the id the trigger returned; the payload has the current one.
    assert polled[-1]["payload"]["status"] == "succeeded"
    assert (await watch_of(watched, subject)).state == "done"


async def test_a_failing_build_is_reported_failed_once(
    watched: LiveService, buildbot: BuildbotServer
) -> None:
    key = await tenant_with_ci(watched, buildbot)
    subject = await trigger(watched, key, fail=True)
    await wait_for(watched, key, subject, FINAL)
    types = await settled(watched, key, subject)
    assert types == Counter({"build.triggered": 1, "build.started": 1, "build.failed": 1})


async def test_a_cancelled_build_is_reported_cancelled_once(
    watched: LiveService, buildbot: BuildbotServer
) -> None:
    key = await tenant_with_ci(watched, buildbot)
    subject = await trigger(watched, key, sleep="30")
    await wait_for(watched, key, subject, {"build.started"})
    current = (await watch_of(watched, subject)).build_id
    await call(watched, key, "cancel_build", {"build_id": current})
    types = await settled(watched, key, subject)
    # The cancel call reports it (about the build's current id); the watcher, which
    # sees the same final state, stops without reporting it again.
    if current != subject:
        types += Counter(e["type"] for e in await events_of(watched, key, current))
    assert types == Counter({"build.triggered": 1, "build.started": 1, "build.cancelled": 1})


async def test_a_final_state_another_source_recorded_stops_the_watch_without_a_duplicate(
    watched: LiveService, buildbot: BuildbotServer
) -> None:
    key = await tenant_with_ci(watched, buildbot)
    subject = await trigger(watched, key, sleep="3")
    watch = await watch_of(watched, subject)
    tool = await watched.services.tools.get_tool(
        await watched.services.tenants.authenticate(key), "ci"
    )
    # As a webhook would: the final state arrives before the watcher saw it.
    async with watched.services.db.session() as session:
        await Outbox().add(
            session,
            new_event(
                tenant_id=watch.tenant_id,
                tool=ToolRef(id=tool.id, name=tool.name),
                provider="buildbot",
                type="build.completed",
                source=EventSource.WEBHOOK,
                subject=subject,
                payload={"id": subject, "status": "succeeded"},
            ),
        )
    watched.services.worker.wake()
    types = await settled(watched, key, subject)
    assert types["build.completed"] == 1
    await asyncio.sleep(4)
    types = Counter(e["type"] for e in await events_of(watched, key, subject))
    assert types["build.completed"] == 1
    assert not types.keys() & {"build.failed", "build.cancelled"}


async def test_a_watcher_restarted_mid_build_resumes_and_reports_each_state_once(
    tmp_path: Path, buildbot: BuildbotServer
) -> None:
    async with run_service(tmp_path, **FAST) as first:
        key = await tenant_with_ci(first, buildbot)
        subject = await trigger(first, key, sleep="4")
        await wait_for(first, key, subject, {"build.started"})
    async with run_service(tmp_path, **FAST) as second:
        await wait_for(second, key, subject, FINAL)
        types = await settled(second, key, subject)
    assert types == Counter({"build.triggered": 1, "build.started": 1, "build.completed": 1})


async def test_a_watch_past_its_deadline_gives_up_and_reports_nothing_more(
    tmp_path: Path, buildbot: BuildbotServer
) -> None:
    settings = {"events": {"watcher": {"interval": 0.3, "deadline": 1.0}}}
    async with run_service(tmp_path, **settings) as service:
        key = await tenant_with_ci(service, buildbot)
        subject = await trigger(service, key, sleep="3")
        types = await settled(service, key, subject)
        watch = await watch_of(service, subject)
    assert watch.state == "gave_up"
    assert not types.keys() & FINAL
