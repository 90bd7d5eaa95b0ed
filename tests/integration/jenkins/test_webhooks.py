"""Webhooks in from the Jenkins stand-in's Notification plugin: each phase it posts to a
live service (the tool's secret in the URL) becomes the event of its build state."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import anyio
import httpx
import pytest

from tests.standins.jenkins.fixture import JenkinsStandin, run_jenkins
from tests.support.live import LiveService, run_service

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

USER, TOKEN = "hooks", "11webhooktestsonly0000000000000000"
DEADLINE_S = 60.0


@pytest.fixture(scope="module")
async def live(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[LiveService]:
    async with run_service(tmp_path_factory.mktemp("devmesh")) as service:
        yield service


@pytest.fixture(scope="module")
async def jenkins() -> AsyncIterator[JenkinsStandin]:
    async with run_jenkins() as standin:
        yield standin


async def hooked(live: LiveService, jenkins: JenkinsStandin) -> dict[str, str]:
    """A tenant's Jenkins tool with a generated webhook secret, and the stand-in posting
    its notifications to it; the tenant's auth headers."""
    _, key = await live.services.tenants.create_tenant(f"t-{uuid.uuid4().hex[:8]}")
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=live.base_url, headers=headers) as http:
        tool = (
            await http.post(
                "/api/v1/tools",
                json={"name": "ci", "provider": "jenkins", "base_url": jenkins.base_url},
            )
        ).json()["id"]
        stored = await http.put(
            "/api/v1/tools/ci/credentials",
            json={"credentials": {"type": "api_token", "username": USER, "password": TOKEN}},
        )
        assert stored.status_code == 204, stored.text
        secret = (await http.put(f"/api/v1/tools/{tool}/webhook", json={})).json()["secret"]
    await jenkins.reset(
        users={USER: TOKEN},
        quiet_period_s=0.1,
        notify_url=f"{live.base_url}/api/v1/webhooks/{tool}?token={secret}",
    )
    return headers


async def events_until_final(live: LiveService, headers: dict[str, str]) -> list[Any]:
    deadline = time.monotonic() + DEADLINE_S
    async with httpx.AsyncClient(base_url=live.base_url, headers=headers) as http:
        while True:
            listed = (await http.get("/api/v1/events", params={"limit": "50"})).json()["events"]
            # COMPLETED makes no build event (FINALIZED does), only webhook.received. The
            # QUEUED phase's build.triggered is the trigger call's own (one per subject),
            # and the watcher may report a state before the webhook does: once each.
            found = [e for e in listed if e["type"].startswith("build.")]
            if any(e["type"] in ("build.completed", "build.failed") for e in found):
                return found
            assert time.monotonic() < deadline, [e["type"] for e in found]
            await anyio.sleep(0.2)


async def test_a_failing_build_is_triggered_started_then_failed_each_once(
    live: LiveService, jenkins: JenkinsStandin
) -> None:
    headers = await hooked(live, jenkins)
    await jenkins.add_job("team/app", steps=["echo nope; exit 1"])
    async with httpx.AsyncClient(base_url=live.base_url, headers=headers) as http:
        queued = (
            await http.post(
                "/api/v1/tools/ci/operations/trigger_build", json={"project": "team/app"}
            )
        ).json()

    found = await events_until_final(live, headers)

    about_build = [e["type"] for e in found if e["subject"] == "team/app#1"]
    # The trigger call answers with the queue item or, past the quiet period, the build
    # itself: build.triggered names whichever it saw, and the webhook's QUEUED phase
    # the queue item; the build's own states come once each.
    queue_item = f"team/app#queue-{queued['metadata']['queue_id']}"
    triggered = {e["subject"] for e in found if e["type"] == "build.triggered"}
    assert [t for t in about_build if t != "build.triggered"] == ["build.started", "build.failed"]
    assert triggered and triggered <= {queue_item, "team/app#1"}
    assert found[-1]["payload"]["metadata"]["jenkins_result"] == "FAILURE"
