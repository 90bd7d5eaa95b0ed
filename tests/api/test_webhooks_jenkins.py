"""Webhooks in from Jenkins' Notification plugin, which signs nothing: the tool's secret
rides in the URL (``?token=``), and is never kept."""

from __future__ import annotations

import json
import logging
import secrets

import httpx
import pytest
from sqlalchemy import select

from devmesh.app import Services
from devmesh.store.rows import WebhookDeliveryRow
from tests.api.test_webhooks_rest import bearer, events, stored

pytestmark = pytest.mark.anyio

JENKINS = {"name": "jk", "provider": "jenkins", "base_url": "https://ci.example.com"}
# Not the suite's canary: the test's own client logs the URL it posts to, as Jenkins would.
SECRET = f"jenkins-url-token-{secrets.token_hex(8)}"
FINALIZED = {
    "name": "app",
    "url": "job/team/job/app/",
    "build": {"number": 7, "queue_id": 3, "phase": "FINALIZED", "status": "FAILURE",
              "full_url": "https://ci.example.com/job/team/job/app/7/"},
}  # fmt: skip


async def jenkins_tool(client: httpx.AsyncClient, services: Services) -> tuple[str, str]:
    _, key = await services.tenants.create_tenant("acme")
    created = await client.post("/api/v1/tools", json=JENKINS, headers=bearer(key))
    assert created.status_code == 201, created.text
    tool: str = created.json()["id"]
    put = await client.put(
        f"/api/v1/tools/{tool}/webhook", json={"secret": SECRET}, headers=bearer(key)
    )
    assert put.status_code == 200, put.text
    return key, tool


async def test_a_notification_with_the_token_in_its_url_becomes_an_event_and_keeps_no_token(
    client: httpx.AsyncClient, services: Services, caplog: pytest.LogCaptureFixture
) -> None:
    key, tool = await jenkins_tool(client, services)
    caplog.set_level(logging.DEBUG, logger="devmesh")

    answer = await client.post(f"/api/v1/webhooks/{tool}?token={SECRET}", json=FINALIZED)

    assert answer.status_code == 200, answer.text
    [event] = await events(client, key)
    assert (event["type"], event["subject"]) == ("build.failed", "team/app#7")
    async with services.db.session() as session:
        row = await session.scalar(select(WebhookDeliveryRow))
    assert row is not None
    assert SECRET not in json.dumps(row.headers) + row.body.decode()
    assert SECRET not in json.dumps(event)
    assert SECRET not in "".join(
        r.getMessage() for r in caplog.records if r.name.startswith("devmesh")
    )


async def test_a_notification_with_a_wrong_or_no_token_is_401_and_stores_nothing(
    client: httpx.AsyncClient, services: Services
) -> None:
    _, tool = await jenkins_tool(client, services)

    wrong = await client.post(f"/api/v1/webhooks/{tool}?token={SECRET[:-1]}", json=FINALIZED)
    none = await client.post(f"/api/v1/webhooks/{tool}", json=FINALIZED)

    assert (wrong.status_code, none.status_code) == (401, 401)
    assert await stored(services) == (0, 0)


async def test_the_same_notification_sent_twice_is_one_delivery(
    client: httpx.AsyncClient, services: Services
) -> None:
    key, tool = await jenkins_tool(client, services)

    first = await client.post(f"/api/v1/webhooks/{tool}?token={SECRET}", json=FINALIZED)
    again = await client.post(f"/api/v1/webhooks/{tool}?token={SECRET}", json=FINALIZED)

    assert (first.json()["duplicate"], again.json()["duplicate"]) == (False, True)
    assert len(await events(client, key)) == 1
