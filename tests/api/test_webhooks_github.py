"""GitHub deliveries at ``POST /api/v1/webhooks/{tool id}``: signed workflow runs become
build events, redeliveries are dropped by ``X-GitHub-Delivery``, pings are answered."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from devmesh.app import Services
from devmesh.providers.github_actions.webhooks import signature
from tests.api.test_webhooks_rest import events, tool_with_webhook
from tests.standins.github.spec import examples
from tests.support.canary import CANARY

pytestmark = pytest.mark.anyio

HUB = {"name": "hub", "provider": "github_actions"}


def payload(event: str, action: str) -> bytes:
    entry = next(e for e in examples() if e["name"] == event)
    chosen: dict[str, Any] = next(p for p in entry["examples"] if p.get("action") == action)
    return json.dumps(chosen).encode()


def signed(
    event: str, body: bytes, *, delivery: str = "guid-1", secret: str = CANARY
) -> dict[str, str]:
    return {
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery,
        "X-Hub-Signature-256": signature(secret, body),
        "Content-Type": "application/json",
    }


async def test_a_signed_workflow_run_delivery_becomes_a_build_event_once(
    client: httpx.AsyncClient, services: Services
) -> None:
    key, tool = await tool_with_webhook(client, services, spec=HUB)
    body = payload("workflow_run", "completed")
    first = await client.post(f"/api/v1/webhooks/{tool}", content=body,
                              headers=signed("workflow_run", body))  # fmt: skip
    again = await client.post(f"/api/v1/webhooks/{tool}", content=body,
                              headers=signed("workflow_run", body))  # fmt: skip
    assert first.status_code == 200, first.text
    assert again.json()["duplicate"] is True
    assert [e["type"] for e in await events(client, key)] == first.json()["events"]
    assert first.json()["events"][0].startswith("build.")


async def test_a_delivery_signed_with_another_secret_is_401(
    client: httpx.AsyncClient, services: Services
) -> None:
    _, tool = await tool_with_webhook(client, services, spec=HUB)
    body = payload("workflow_run", "completed")
    answer = await client.post(
        f"/api/v1/webhooks/{tool}", content=body,
        headers=signed("workflow_run", body, secret="not the secret"),
    )  # fmt: skip
    assert answer.status_code == 401


async def test_a_ping_is_answered_and_recorded_as_received(
    client: httpx.AsyncClient, services: Services
) -> None:
    _, tool = await tool_with_webhook(client, services, spec=HUB)
    entry = next(e for e in examples() if e["name"] == "ping")
    body = json.dumps(entry["examples"][0]).encode()
    answer = await client.post(f"/api/v1/webhooks/{tool}", content=body,
                               headers=signed("ping", body, delivery="guid-ping"))  # fmt: skip
    assert answer.status_code == 200, answer.text
    assert answer.json()["events"] == ["webhook.received"]
