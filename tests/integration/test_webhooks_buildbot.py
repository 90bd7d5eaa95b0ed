"""Webhooks in from a real Buildbot master: HttpStatusPush posts each build's state
change to a live service whose build watcher polls the same builds; between them, each
state change is one event about the build, whichever source saw it first."""

from __future__ import annotations

import base64
import json
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from sqlalchemy import select

from devmesh.store.rows import BuildWatchRow, WebhookDeliveryRow
from tests.support.buildbot.server import BuildbotServer
from tests.support.live import LiveService, mcp_client, run_service, structured
from tests.support.pushing import PushingTool, move_tool, pushing_master, register_pushed_tool

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

DEADLINE = 90.0
# The watcher polls often, so it races the master's pushes.
FAST = {"events": {"watcher": {"interval": 0.3}, "claim_idle": 5}}
FINAL = {"build.completed", "build.failed", "build.cancelled"}


@dataclass(frozen=True)
class Hooked:
    live: LiveService
    buildbot: BuildbotServer
    key: str
    tool_id: str
    secret: str

    def bearer(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


@pytest.fixture(scope="module")
async def live(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[LiveService]:
    async with run_service(tmp_path_factory.mktemp("devmesh"), **FAST) as service:
        yield service


@pytest.fixture(scope="module")
async def registered(live: LiveService) -> PushingTool:
    return await register_pushed_tool(live)


@pytest.fixture(scope="module")
def buildbot(
    tmp_path_factory: pytest.TempPathFactory, live: LiveService, registered: PushingTool
) -> Iterator[BuildbotServer]:
    with pushing_master(Path(tmp_path_factory.mktemp("buildbot")), live, registered) as server:
        yield server


@pytest.fixture(scope="module")
async def hooked(live: LiveService, registered: PushingTool, buildbot: BuildbotServer) -> Hooked:
    await move_tool(live, registered, buildbot)
    return Hooked(
        live=live,
        buildbot=buildbot,
        key=registered.key,
        tool_id=registered.tool_id,
        secret=registered.secret,
    )


async def trigger(hooked: Hooked, **parameters: Any) -> str:
    """Trigger runtests as an agent does, through MCP; the build's id (``br-<n>``)."""
    async with mcp_client(hooked.live.mcp_url, hooked.key) as client:
        build = structured(
            await client.call_tool(
                "ci_trigger_build", {"project": "runtests", "parameters": parameters}
            )
        )
    subject: str = build["id"]
    return subject


async def events_about(hooked: Hooked, subject: str) -> list[dict[str, Any]]:
    """What ``GET /api/v1/events`` lists about the build, from any source, in order."""
    async with httpx.AsyncClient(base_url=hooked.live.base_url) as http:
        listed = await http.get(
            "/api/v1/events",
            params={"tool": "ci", "subject": subject, "limit": "200"},
            headers=hooked.bearer(),
        )
    assert listed.status_code == 200, listed.text
    events: list[dict[str, Any]] = listed.json()["events"]
    return events


async def settled(hooked: Hooked, subject: str) -> Counter[str]:
    """The build's events once it is final and its watch is over, and a few more of the
    watcher's polls (and the master's pushes) would have happened."""
    deadline = time.monotonic() + DEADLINE
    while True:
        types = Counter(event["type"] for event in await events_about(hooked, subject))
        async with hooked.live.services.db.session() as session:
            watch = await session.scalar(
                select(BuildWatchRow.state).where(BuildWatchRow.subject == subject)
            )
        if types.keys() & FINAL and watch not in (None, "watching"):
            await anyio.sleep(1.5)
            return Counter(event["type"] for event in await events_about(hooked, subject))
        assert time.monotonic() < deadline, f"build {subject}: only {dict(types)}, {watch}"
        await anyio.sleep(0.2)


async def pushed(hooked: Hooked, subject: str) -> int:
    """How many of the master's deliveries were about the build."""
    request = int(subject.removeprefix("br-"))
    async with hooked.live.services.db.session() as session:
        bodies = await session.scalars(
            select(WebhookDeliveryRow.body).where(WebhookDeliveryRow.tool_id == hooked.tool_id)
        )
        return sum(json.loads(body).get("buildrequestid") == request for body in bodies)


async def test_a_passing_build_is_triggered_started_and_completed_once_each_from_both_sources(
    hooked: Hooked,
) -> None:
    subject = await trigger(hooked, sleep="1")

    types = await settled(hooked, subject)

    assert types == Counter({"build.triggered": 1, "build.started": 1, "build.completed": 1})
    # Both sources were on: the master pushed the start and the end, and the watcher
    # polled the build to its end.
    assert await pushed(hooked, subject) >= 2
    assert all(e["subject"] == subject for e in await events_about(hooked, subject))


async def test_a_failing_build_is_reported_failed_once_from_both_sources(
    hooked: Hooked,
) -> None:
    subject = await trigger(hooked, fail=True)

    types = await settled(hooked, subject)

    assert types == Counter({"build.triggered": 1, "build.started": 1, "build.failed": 1})
    assert await pushed(hooked, subject) >= 2


async def test_redelivering_what_the_master_sent_changes_nothing(hooked: Hooked) -> None:
    subject = await trigger(hooked)
    before = await settled(hooked, subject)
    async with hooked.live.services.db.session() as session:
        delivered = list(
            await session.scalars(
                select(WebhookDeliveryRow).where(WebhookDeliveryRow.tool_id == hooked.tool_id)
            )
        )
    password = base64.b64encode(f"devmesh:{hooked.secret}".encode()).decode()

    async with httpx.AsyncClient(base_url=hooked.live.base_url) as http:
        again = await http.post(
            f"/api/v1/webhooks/{hooked.tool_id}",
            content=delivered[-1].body,
            headers={"Authorization": f"Basic {password}", "Content-Type": "application/json"},
        )
        wrong = await http.post(
            f"/api/v1/webhooks/{hooked.tool_id}",
            content=delivered[-1].body,
            headers={"Authorization": "Basic " + base64.b64encode(b"devmesh:x").decode()},
        )

    assert again.status_code == 200
    assert again.json()["duplicate"] is True
    assert wrong.status_code == 401
    assert Counter(e["type"] for e in await events_about(hooked, subject)) == before
