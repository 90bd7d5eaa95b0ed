"""Webhooks in from AWS CodeBuild through an EventBridge API destination: the tool's
secret rides in the connection's API key header, and is never kept."""

from __future__ import annotations

import json
import secrets

import httpx
import pytest
from sqlalchemy import select

from devmesh.app import Services
from devmesh.store.rows import WebhookDeliveryRow
from tests.api.test_webhooks_rest import bearer, events, stored

pytestmark = pytest.mark.anyio

CODEBUILD = {"name": "cb", "provider": "codebuild", "base_url": "https://amazonaws.com"}
SECRET = f"eventbridge-api-key-{secrets.token_hex(8)}"
HEADER = "X-DevMesh-Webhook-Secret"
ARN = "arn:aws:codebuild:eu-west-2:123456789012:build/app:8745a7a9-c340-456a-9166-edf953571bec"
# EventBridge's envelope around CodeBuild's state change (CodeBuild user guide,
# "Build notifications input format"), shortened.
FAILED = {
    "version": "0",
    "id": "bfdc1220-60ff-44ad-9d2f-8bd6d0d5c1e1",
    "detail-type": "CodeBuild Build State Change",
    "source": "aws.codebuild",
    "account": "123456789012",
    "time": "2026-11-30T12:03:30Z",
    "region": "eu-west-2",
    "resources": [ARN],
    "detail": {
        "build-status": "FAILED",
        "project-name": "app",
        "build-id": ARN,
        "current-phase": "COMPLETED",
        "additional-information": {
            "build-complete": True,
            "build-start-time": "Nov 30, 2026 12:00:00 PM",
            "phases": [
                {"phase-type": "BUILD", "phase-status": "FAILED",
                 "end-time": "Nov 30, 2026 12:03:30 PM", "phase-context": ["exit status 2"]},
            ],
        },
    },
}  # fmt: skip


async def codebuild_tool(client: httpx.AsyncClient, services: Services) -> tuple[str, str]:
    _, key = await services.tenants.create_tenant("acme")
    created = await client.post("/api/v1/tools", json=CODEBUILD, headers=bearer(key))
    assert created.status_code == 201, created.text
    tool: str = created.json()["id"]
    put = await client.put(
        f"/api/v1/tools/{tool}/webhook", json={"secret": SECRET}, headers=bearer(key)
    )
    assert put.status_code == 200, put.text
    return key, tool


async def test_a_state_change_with_the_secret_header_becomes_an_event_and_keeps_no_secret(
    client: httpx.AsyncClient, services: Services
) -> None:
    key, tool = await codebuild_tool(client, services)

    answer = await client.post(f"/api/v1/webhooks/{tool}", json=FAILED, headers={HEADER: SECRET})

    assert answer.status_code == 200, answer.text
    [event] = await events(client, key)
    assert (event["type"], event["subject"]) == ("build.failed", ARN.split("build/")[1])
    assert event["payload"]["metadata"]["failed_stage"] == "BUILD"
    async with services.db.session() as session:
        row = await session.scalar(select(WebhookDeliveryRow))
    assert row is not None
    assert SECRET not in json.dumps(row.headers) + row.body.decode()


async def test_a_state_change_with_a_wrong_or_no_secret_is_401_and_stores_nothing(
    client: httpx.AsyncClient, services: Services
) -> None:
    _, tool = await codebuild_tool(client, services)

    wrong = await client.post(
        f"/api/v1/webhooks/{tool}", json=FAILED, headers={HEADER: SECRET[:-1]}
    )
    none = await client.post(f"/api/v1/webhooks/{tool}", json=FAILED)

    assert (wrong.status_code, none.status_code) == (401, 401)
    assert await stored(services) == (0, 0)
