"""Webhooks in over REST: a tool's deliveries are verified, stored once and turned into
events; anything unverified leaves no trace."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from devmesh.adapters.standard_webhooks import sign
from devmesh.app import Services, create_app
from devmesh.config import Settings
from devmesh.store.rows import EventRow, WebhookDeliveryRow
from tests.support.canary import CANARY

pytestmark = pytest.mark.anyio

CI = {"name": "ci", "provider": "buildbot", "base_url": "http://buildbot.internal:8010"}
LAB = {"name": "lab", "provider": "gitlab", "base_url": "https://gitlab.internal"}
STANDARD_SECRET = "whsec_" + base64.b64encode(b"s" * 32).decode()


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def basic(password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"devmesh:{password}".encode()).decode()}


def build(*, complete: bool = False, results: int | None = None) -> bytes:
    return json.dumps(
        {
            "buildid": 42,
            "builderid": 3,
            "buildrequestid": 7,
            "number": 5,
            "complete": complete,
            "results": results,
            "started_at": 1_700_000_000,
            "complete_at": 1_700_000_060 if complete else None,
            "builder": {"name": "runtests"},
        }
    ).encode()


def standard(body: bytes, *, msg_id: str = "msg_1", stamp: int | None = None) -> dict[str, str]:
    stamp = int(time.time()) if stamp is None else stamp
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(stamp),
        "webhook-signature": sign(
            secret=STANDARD_SECRET, msg_id=msg_id, timestamp=stamp, body=body
        ),
    }


async def tool_with_webhook(
    client: httpx.AsyncClient,
    services: Services,
    *,
    tenant: str = "acme",
    spec: dict[str, Any] = CI,
    **webhook: Any,
) -> tuple[str, str]:
    """A new tenant's key and its tool's id, with a webhook set as ``webhook`` says."""
    _, key = await services.tenants.create_tenant(tenant)
    created = await client.post("/api/v1/tools", json=spec, headers=bearer(key))
    assert created.status_code == 201, created.text
    tool_id: str = created.json()["id"]
    body = {"secret": CANARY, **webhook}
    put = await client.put(f"/api/v1/tools/{tool_id}/webhook", json=body, headers=bearer(key))
    assert put.status_code == 200, put.text
    return key, tool_id


async def events(client: httpx.AsyncClient, key: str) -> list[dict[str, Any]]:
    response = await client.get("/api/v1/events", headers=bearer(key))
    assert response.status_code == 200, response.text
    listed: list[dict[str, Any]] = response.json()["events"]
    return listed


async def stored(services: Services) -> tuple[int, int]:
    """How many deliveries and events there are."""
    async with services.db.session() as session:
        deliveries = await session.scalar(select(func.count()).select_from(WebhookDeliveryRow))
        rows = await session.scalar(select(func.count()).select_from(EventRow))
    return deliveries or 0, rows or 0


async def test_a_buildbot_delivery_with_the_secret_becomes_one_build_event(
    client: httpx.AsyncClient, services: Services
) -> None:
    key, tool = await tool_with_webhook(client, services)

    answer = await client.post(f"/api/v1/webhooks/{tool}", content=build(), headers=basic(CANARY))

    assert answer.status_code == 200, answer.text
    assert answer.json()["events"] == ["build.started"]
    [event] = await events(client, key)
    # The subject is the build request's id, as trigger_build returned it.
    assert (event["type"], event["subject"], event["source"]) == (
        "build.started",
        "br-7",
        "webhook",
    )
    assert event["payload"]["id"] == "42"


async def test_a_second_delivery_of_a_state_already_recorded_is_stored_but_raises_no_event(
    client: httpx.AsyncClient, services: Services
) -> None:
    key, tool = await tool_with_webhook(client, services)
    await client.post(f"/api/v1/webhooks/{tool}", content=build(), headers=basic(CANARY))
    # Another body (a new delivery id) about the same build's same state.
    again = json.dumps({**json.loads(build()), "state_string": "building"}).encode()

    answer = await client.post(f"/api/v1/webhooks/{tool}", content=again, headers=basic(CANARY))

    assert (answer.json()["duplicate"], answer.json()["events"]) == (False, [])
    assert [e["type"] for e in await events(client, key)] == ["build.started"]
    assert await stored(services) == (2, 1)


async def test_a_redelivery_answers_200_and_changes_nothing(
    client: httpx.AsyncClient, services: Services
) -> None:
    key, tool = await tool_with_webhook(client, services)
    body = build(complete=True, results=2)
    first = await client.post(f"/api/v1/webhooks/{tool}", content=body, headers=basic(CANARY))

    again = await client.post(f"/api/v1/webhooks/{tool}", content=body, headers=basic(CANARY))

    assert (first.json()["duplicate"], again.json()["duplicate"]) == (False, True)
    assert again.status_code == 200
    assert [e["type"] for e in await events(client, key)] == ["build.failed"]
    assert await stored(services) == (1, 1)


async def test_one_delivery_sent_many_times_at_once_is_stored_once(
    client: httpx.AsyncClient, services: Services
) -> None:
    key, tool = await tool_with_webhook(client, services)
    body = build(complete=True, results=2)

    answers = await asyncio.gather(
        *(
            client.post(f"/api/v1/webhooks/{tool}", content=body, headers=basic(CANARY))
            for _ in range(8)
        )
    )

    assert [a.status_code for a in answers] == [200] * 8
    assert sorted(a.json()["duplicate"] for a in answers) == [False] + [True] * 7
    assert [e["type"] for e in await events(client, key)] == ["build.failed"]
    assert await stored(services) == (1, 1)


@pytest.mark.parametrize(
    "headers",
    [{}, basic("wrong"), bearer(CANARY)],
    ids=["missing", "wrong", "bearer instead of basic"],
)
async def test_a_delivery_without_the_secret_is_401_and_stores_nothing(
    client: httpx.AsyncClient, services: Services, headers: dict[str, str]
) -> None:
    _, tool = await tool_with_webhook(client, services)

    answer = await client.post(f"/api/v1/webhooks/{tool}", content=build(), headers=headers)

    assert answer.status_code == 401
    assert answer.headers["content-type"] == "application/problem+json"
    assert await stored(services) == (0, 0)


async def test_an_unknown_tool_and_a_tool_without_a_webhook_are_the_same_404(
    client: httpx.AsyncClient, services: Services
) -> None:
    _, key = await services.tenants.create_tenant("acme")
    created = await client.post("/api/v1/tools", json=CI, headers=bearer(key))
    bare = created.json()["id"]
    unknown = "00000000-0000-4000-8000-000000000000"

    answers = [
        await client.post(f"/api/v1/webhooks/{tool}", content=build(), headers=basic(CANARY))
        for tool in (bare, unknown, "not-an-id")
    ]

    assert [a.status_code for a in answers] == [404, 404, 404]
    assert {a.json()["code"] for a in answers} == {"unknown_tool"}
    assert await stored(services) == (0, 0)


async def test_another_tenants_tool_cannot_be_given_a_webhook_and_looks_unknown(
    client: httpx.AsyncClient, services: Services
) -> None:
    _, theirs = await tool_with_webhook(client, services, tenant="globex")
    _, key = await services.tenants.create_tenant("acme")
    unknown = "00000000-0000-4000-8000-000000000000"

    answers = [
        await client.put(f"/api/v1/tools/{tool}/webhook", json={}, headers=bearer(key))
        for tool in (theirs, unknown)
    ]

    assert [a.status_code for a in answers] == [404, 404]
    assert answers[0].json()["detail"].replace(theirs, unknown) == answers[1].json()["detail"]


async def test_a_generated_secret_is_returned_once_and_verifies(
    client: httpx.AsyncClient, services: Services
) -> None:
    _, key = await services.tenants.create_tenant("acme")
    tool = (await client.post("/api/v1/tools", json=CI, headers=bearer(key))).json()["id"]

    put = await client.put(f"/api/v1/tools/{tool}/webhook", json={}, headers=bearer(key))
    shown = await client.get(f"/api/v1/tools/{tool}/webhook", headers=bearer(key))
    secret = put.json()["secret"]
    answer = await client.post(f"/api/v1/webhooks/{tool}", content=build(), headers=basic(secret))

    assert len(secret) >= 32
    assert put.json()["url_path"] == f"/api/v1/webhooks/{tool}"
    assert shown.json()["secret"] is None
    assert answer.status_code == 200


async def test_a_rotated_secret_keeps_the_old_one_working_only_during_the_grace(
    client: httpx.AsyncClient, services: Services
) -> None:
    key, tool = await tool_with_webhook(client, services)
    url = f"/api/v1/tools/{tool}/webhook"

    graced = await client.put(
        url, json={"secret": "new-one", "grace_seconds": 600}, headers=bearer(key)
    )
    old_in_grace = await client.post(
        f"/api/v1/webhooks/{tool}", content=build(), headers=basic(CANARY)
    )
    await client.put(url, json={"secret": "newer-one"}, headers=bearer(key))
    old_after = await client.post(
        f"/api/v1/webhooks/{tool}",
        content=build(complete=True, results=0),
        headers=basic("new-one"),
    )
    current = await client.post(
        f"/api/v1/webhooks/{tool}",
        content=build(complete=True, results=0),
        headers=basic("newer-one"),
    )

    assert graced.json()["previous_secret_valid_until"] is not None
    assert graced.json()["secret"] is None
    assert (old_in_grace.status_code, old_after.status_code, current.status_code) == (200, 401, 200)


async def test_a_verified_delivery_that_is_not_json_is_kept_and_reported(
    client: httpx.AsyncClient, services: Services
) -> None:
    key, tool = await tool_with_webhook(client, services)

    answer = await client.post(
        f"/api/v1/webhooks/{tool}", content=b"{not json", headers=basic(CANARY)
    )

    assert answer.status_code == 200
    [event] = await events(client, key)
    assert event["type"] == "webhook.received"
    assert event["payload"]["error"].startswith("the body is not JSON")
    assert await stored(services) == (1, 1)


async def test_events_not_allowed_for_the_tool_are_left_out_but_the_delivery_is_kept(
    client: httpx.AsyncClient, services: Services
) -> None:
    key, tool = await tool_with_webhook(client, services, allowed_events=["build.failed"])

    await client.post(f"/api/v1/webhooks/{tool}", content=build(), headers=basic(CANARY))
    await client.post(
        f"/api/v1/webhooks/{tool}", content=build(complete=True, results=2), headers=basic(CANARY)
    )

    assert [e["type"] for e in await events(client, key)] == ["webhook.received", "build.failed"]
    assert (await stored(services))[0] == 2


async def test_a_standard_webhooks_delivery_verifies_and_its_id_deduplicates(
    client: httpx.AsyncClient, services: Services
) -> None:
    key, tool = await tool_with_webhook(client, services, scheme="standard", secret=STANDARD_SECRET)
    body = build(complete=True, results=0)

    first = await client.post(f"/api/v1/webhooks/{tool}", content=body, headers=standard(body))
    replayed = await client.post(f"/api/v1/webhooks/{tool}", content=body, headers=standard(body))

    assert (first.status_code, replayed.status_code) == (200, 200)
    assert (first.json()["delivery_id"], replayed.json()["duplicate"]) == ("msg_1", True)
    assert [e["type"] for e in await events(client, key)] == ["build.completed"]


async def test_a_stale_standard_webhooks_timestamp_is_401_and_stores_nothing(
    client: httpx.AsyncClient, services: Services
) -> None:
    _, tool = await tool_with_webhook(client, services, scheme="standard", secret=STANDARD_SECRET)
    body = build()

    stale = standard(body, stamp=int(time.time()) - 301)
    answer = await client.post(f"/api/v1/webhooks/{tool}", content=body, headers=stale)

    assert answer.status_code == 401
    assert await stored(services) == (0, 0)


async def test_a_standard_webhooks_secret_must_be_whsec_and_base64(
    client: httpx.AsyncClient, services: Services
) -> None:
    _, key = await services.tenants.create_tenant("acme")
    tool = (await client.post("/api/v1/tools", json=CI, headers=bearer(key))).json()["id"]

    answer = await client.put(
        f"/api/v1/tools/{tool}/webhook",
        json={"scheme": "standard", "secret": "plain"},
        headers=bearer(key),
    )

    assert answer.status_code == 422
    assert answer.json()["details"]["field"] == "secret"


async def test_a_gitlab_pipeline_hook_with_its_token_becomes_a_build_event(
    client: httpx.AsyncClient, services: Services
) -> None:
    key, tool = await tool_with_webhook(client, services, spec=LAB)
    hook = {
        "object_kind": "pipeline",
        "object_attributes": {"id": 31, "iid": 4, "status": "failed", "ref": "main"},
        "project": {"id": 9, "path_with_namespace": "group/app"},
        "builds": [{"id": 1, "name": "test", "stage": "test", "status": "failed"}],
    }
    headers = {"X-Gitlab-Token": CANARY, "X-Gitlab-Event-UUID": "uuid-1"}

    answer = await client.post(f"/api/v1/webhooks/{tool}", json=hook, headers=headers)

    assert answer.status_code == 200, answer.text
    [event] = await events(client, key)
    assert event["type"] == "build.failed"
    async with services.db.session() as session:
        row = await session.scalar(select(WebhookDeliveryRow))
    assert row is not None
    assert row.delivery_id == "uuid-1"
    assert "x-gitlab-token" not in row.headers


async def test_an_oversized_delivery_is_413_and_stores_nothing(
    client: httpx.AsyncClient, services: Services
) -> None:
    _, tool = await tool_with_webhook(client, services)
    big = b"x" * (services.settings.http.max_body_bytes + 1)

    answer = await client.post(f"/api/v1/webhooks/{tool}", content=big, headers=basic(CANARY))

    assert answer.status_code == 413
    assert await stored(services) == (0, 0)


@pytest.fixture
async def strict_app(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings.model_validate(
        {"data_dir": tmp_path / "strict", "rate_limit": {"failed_auth_per_address": 2}}
    )
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://devmesh.test") as http:
            yield http


async def test_failed_deliveries_count_against_the_client_address(
    strict_app: httpx.AsyncClient,
) -> None:
    unknown = "/api/v1/webhooks/00000000-0000-4000-8000-000000000000"

    statuses = [(await strict_app.post(unknown, content=b"{}")).status_code for _ in range(3)]

    assert statuses == [404, 404, 429]


async def test_a_deleted_webhook_refuses_deliveries_as_a_tool_without_one_does(
    client: httpx.AsyncClient, services: Services
) -> None:
    key, tool = await tool_with_webhook(client, services)

    deleted = await client.delete(f"/api/v1/tools/{tool}/webhook", headers=bearer(key))

    assert deleted.status_code == 204
    refused = await client.post(f"/api/v1/webhooks/{tool}", content=build(), headers=basic(CANARY))
    assert (refused.status_code, refused.json()["code"]) == (404, "unknown_tool")
    shown = await client.get(f"/api/v1/tools/{tool}/webhook", headers=bearer(key))
    again = await client.delete(f"/api/v1/tools/{tool}/webhook", headers=bearer(key))
    assert (shown.status_code, again.status_code) == (404, 404)


async def test_another_tenant_cannot_delete_a_tools_webhook(
    client: httpx.AsyncClient, services: Services
) -> None:
    _, tool = await tool_with_webhook(client, services)
    _, other = await services.tenants.create_tenant("globex")

    deleted = await client.delete(f"/api/v1/tools/{tool}/webhook", headers=bearer(other))

    assert deleted.status_code == 404
    kept = await client.post(f"/api/v1/webhooks/{tool}", content=build(), headers=basic(CANARY))
    assert kept.status_code == 200


async def test_deliveries_are_counted_by_provider_and_outcome_never_by_tool_or_secret(
    client: httpx.AsyncClient, services: Services
) -> None:
    _, tool = await tool_with_webhook(client, services)
    url = f"/api/v1/webhooks/{tool}"
    await client.post(url, content=build(), headers=basic(CANARY))
    await client.post(url, content=build(), headers=basic(CANARY))
    await client.post(url, content=b"not json", headers=basic(CANARY))
    await client.post(url, content=build(complete=True), headers=basic("wrong"))
    await client.post("/api/v1/webhooks/00000000-0000-4000-8000-000000000000", content=b"{}")
    await client.post(url, content=b"x" * (services.settings.http.max_body_bytes + 1))

    def counted(provider: str, outcome: str) -> float | None:
        return services.metrics.registry.get_sample_value(
            "devmesh_webhook_deliveries_total", {"provider": provider, "outcome": outcome}
        )

    assert [
        counted("buildbot", "accepted"),
        counted("buildbot", "duplicate"),
        counted("buildbot", "unparseable"),
        counted("buildbot", "unverified"),
        counted("unknown", "unknown_tool"),
        counted("unknown", "too_large"),
    ] == [1, 1, 1, 1, 1, 1]
    rendered = services.metrics.render().decode()
    assert tool not in rendered and CANARY not in rendered


async def test_a_webhook_deleted_after_a_delivery_refuses_the_next_at_once(
    client: httpx.AsyncClient, services: Services
) -> None:
    # The first delivery puts the webhook in this process's cache; removing it here
    # must not wait for the cache to lapse.
    key, tool = await tool_with_webhook(client, services)
    first = await client.post(f"/api/v1/webhooks/{tool}", content=build(), headers=basic(CANARY))

    await client.delete(f"/api/v1/tools/{tool}/webhook", headers=bearer(key))
    after = await client.post(
        f"/api/v1/webhooks/{tool}", content=build(complete=True, results=0), headers=basic(CANARY)
    )

    assert (first.status_code, after.status_code, after.json()["code"]) == (
        200,
        404,
        "unknown_tool",
    )


async def test_a_tool_deleted_after_a_delivery_is_an_unknown_tool_and_stores_nothing_more(
    client: httpx.AsyncClient, services: Services
) -> None:
    key, tool = await tool_with_webhook(client, services)
    await client.post(f"/api/v1/webhooks/{tool}", content=build(), headers=basic(CANARY))
    deleted = await client.delete(f"/api/v1/tools/{tool}", headers=bearer(key))
    assert deleted.status_code == 204, deleted.text

    after = await client.post(
        f"/api/v1/webhooks/{tool}", content=build(complete=True, results=0), headers=basic(CANARY)
    )

    assert (after.status_code, after.json()["code"]) == (404, "unknown_tool")
    async with services.db.session() as session:
        kept = await session.scalar(
            select(func.count())
            .select_from(WebhookDeliveryRow)
            .where(WebhookDeliveryRow.tool_id == tool)
        )
    assert kept == 1  # the delivery before the deletion, kept until retention
