"""Webhooks in from the CircleCI stand-in: its signed ``workflow-completed`` deliveries to
a live service become the events of the pipeline's build; a resent delivery (same
``id``) changes nothing."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import anyio
import httpx
import pytest

from tests.standins.circleci.fixture import CircleCIStandin, run_circleci
from tests.support.live import LiveService, run_service

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

TOKEN = "CCIPAT_webhooktestsonly0000000000000000000"
DEADLINE_S = 60.0


@pytest.fixture(scope="module")
async def live(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[LiveService]:
    async with run_service(tmp_path_factory.mktemp("devmesh")) as service:
        yield service


@pytest.fixture(scope="module")
async def circleci() -> AsyncIterator[CircleCIStandin]:
    async with run_circleci() as standin:
        yield standin


async def hooked(live: LiveService, circleci: CircleCIStandin) -> tuple[dict[str, str], str, str]:
    """A tenant's CircleCI tool with a generated webhook secret, and the stand-in sending
    its webhooks to it; the tenant's auth headers, the webhook URL and the secret."""
    _, key = await live.services.tenants.create_tenant(f"t-{uuid.uuid4().hex[:8]}")
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=live.base_url, headers=headers) as http:
        tool = (
            await http.post(
                "/api/v1/tools",
                json={"name": "ci", "provider": "circleci", "base_url": circleci.base_url},
            )
        ).json()["id"]
        stored = await http.put(
            "/api/v1/tools/ci/credentials",
            json={"credentials": {"type": "circle_token", "token": TOKEN}},
        )
        assert stored.status_code == 204, stored.text
        secret = (await http.put(f"/api/v1/tools/{tool}/webhook", json={})).json()["secret"]
    url = f"{live.base_url}/api/v1/webhooks/{tool}"
    await circleci.reset(
        tokens={TOKEN: "hooks"}, quiet_period_s=0.1, webhook_url=url, signing_secret=secret
    )
    return headers, url, secret


async def build_events(live: LiveService, headers: dict[str, str]) -> list[Any]:
    deadline = time.monotonic() + DEADLINE_S
    async with httpx.AsyncClient(base_url=live.base_url, headers=headers) as http:
        while True:
            listed = (await http.get("/api/v1/events", params={"limit": "50"})).json()["events"]
            found = [
                e for e in listed if e["source"] == "webhook" and e["type"].startswith("build.")
            ]
            if found:
                return found
            assert time.monotonic() < deadline, listed
            await anyio.sleep(0.2)


async def test_a_failed_workflow_is_one_build_failed_event_and_its_resend_a_duplicate(
    live: LiveService, circleci: CircleCIStandin
) -> None:
    headers, url, secret = await hooked(live, circleci)
    await circleci.add_project(
        "gh/org/app", workflows={"test": [{"name": "unit", "steps": ["echo nope; exit 1"]}]}
    )
    async with httpx.AsyncClient(base_url=live.base_url, headers=headers) as http:
        triggered = (
            await http.post(
                "/api/v1/tools/ci/operations/trigger_build", json={"project": "gh/org/app"}
            )
        ).json()

    found = await build_events(live, headers)
    sent = await circleci.deliveries()
    # The same delivery again, its id kept (CircleCI's retries do this), re-timed.
    again = {**sent[-1], "happened_at": "2030-01-01T00:00:00.000Z"}
    body = json.dumps(again).encode()
    signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    async with httpx.AsyncClient() as http:
        resent = await http.post(
            url,
            content=body,
            headers={"content-type": "application/json", "circleci-signature": f"v1={signature}"},
        )
        forged = await http.post(
            url, content=body, headers={"circleci-signature": "v1=" + "0" * 64}
        )

    assert [(e["type"], e["subject"]) for e in found] == [("build.failed", triggered["id"])]
    assert [d["type"] for d in sent] == ["job-completed", "workflow-completed"]
    assert resent.status_code == 200 and resent.json()["duplicate"] is True
    assert resent.json()["delivery_id"] == sent[-1]["id"]
    assert forged.status_code == 401
