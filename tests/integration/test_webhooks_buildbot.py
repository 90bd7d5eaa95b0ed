"""Webhooks in from a real Buildbot master: HttpStatusPush posts each build's state
change to a live service, which turns it into exactly one event per change."""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from sqlalchemy import select

from devmesh.store.rows import WebhookDeliveryRow
from tests.support.buildbot.server import BuildbotServer, run_buildbot
from tests.support.live import LiveService, run_service

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

DEADLINE = 90.0


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
    async with run_service(tmp_path_factory.mktemp("devmesh")) as service:
        yield service


@pytest.fixture(scope="module")
async def registered(live: LiveService) -> tuple[str, str, str]:
    """A tenant's key, its Buildbot tool's id and the tool's generated webhook secret."""
    _, key = await live.services.tenants.create_tenant(f"t-{uuid.uuid4().hex[:8]}")
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=live.base_url) as http:
        created = await http.post(
            "/api/v1/tools",
            headers=headers,
            # The master's address is known once it runs; its hook needs the tool id first.
            json={"name": "ci", "provider": "buildbot", "base_url": "http://127.0.0.1:9"},
        )
        assert created.status_code == 201, created.text
        tool_id = created.json()["id"]
        hook = await http.put(f"/api/v1/tools/{tool_id}/webhook", json={}, headers=headers)
        assert hook.status_code == 200, hook.text
    return key, tool_id, hook.json()["secret"]


@pytest.fixture(scope="module")
def buildbot(
    tmp_path_factory: pytest.TempPathFactory, live: LiveService, registered: tuple[str, str, str]
) -> Iterator[BuildbotServer]:
    _, tool_id, secret = registered
    with run_buildbot(
        Path(tmp_path_factory.mktemp("buildbot")),
        hook_url=f"{live.base_url}/api/v1/webhooks/{tool_id}",
        hook_password=secret,
    ) as server:
        yield server


@pytest.fixture(scope="module")
async def hooked(
    live: LiveService, registered: tuple[str, str, str], buildbot: BuildbotServer
) -> Hooked:
    key, tool_id, secret = registered
    async with httpx.AsyncClient(base_url=live.base_url) as http:
        moved = await http.patch(
            f"/api/v1/tools/{tool_id}",
            json={"base_url": buildbot.base_url},
            headers={"Authorization": f"Bearer {key}"},
        )
    assert moved.status_code == 200, moved.text
    return Hooked(live=live, buildbot=buildbot, key=key, tool_id=tool_id, secret=secret)


async def trigger(hooked: Hooked, **parameters: Any) -> int:
    """Trigger runtests through the service; the build request's number."""
    async with httpx.AsyncClient(base_url=hooked.live.base_url) as http:
        called = await http.post(
            "/api/v1/tools/ci/operations/trigger_build",
            json={"project": "runtests", "parameters": parameters},
            headers=hooked.bearer(),
        )
    assert called.status_code == 200, called.text
    build: dict[str, Any] = called.json()
    request: int = build["metadata"]["buildrequestid"]
    return request


async def webhook_events(hooked: Hooked, request: int) -> list[dict[str, Any]]:
    """The webhook events about the build of build request ``request``, in order."""
    async with httpx.AsyncClient(base_url=hooked.live.base_url) as http:
        listed = await http.get(
            "/api/v1/events", params={"tool": "ci", "limit": "200"}, headers=hooked.bearer()
        )
    assert listed.status_code == 200, listed.text
    return [
        event
        for event in listed.json()["events"]
        if event["source"] == "webhook"
        and event["payload"].get("metadata", {}).get("buildrequestid") == request
    ]


async def wait_for_end(hooked: Hooked, request: int) -> list[str]:
    deadline = time.monotonic() + DEADLINE
    while True:
        types = [event["type"] for event in await webhook_events(hooked, request)]
        if any(kind != "build.started" for kind in types):
            # Give a duplicate time to show, if one were coming.
            await anyio.sleep(1.0)
            return [event["type"] for event in await webhook_events(hooked, request)]
        assert time.monotonic() < deadline, f"build request {request} sent only {types}"
        await anyio.sleep(0.2)


async def test_a_passing_build_is_started_then_completed_each_exactly_once(
    hooked: Hooked,
) -> None:
    request = await trigger(hooked)

    assert await wait_for_end(hooked, request) == ["build.started", "build.completed"]
    events = await webhook_events(hooked, request)
    assert {event["subject"] for event in events} == {str(events[0]["payload"]["id"])}


async def test_a_failing_build_is_started_then_failed_each_exactly_once(hooked: Hooked) -> None:
    request = await trigger(hooked, fail=True)

    assert await wait_for_end(hooked, request) == ["build.started", "build.failed"]


async def test_redelivering_what_the_master_sent_changes_nothing(hooked: Hooked) -> None:
    request = await trigger(hooked)
    before = await wait_for_end(hooked, request)
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
    assert [event["type"] for event in await webhook_events(hooked, request)] == before
