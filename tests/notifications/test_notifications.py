"""Notifications out, end to end: a real subscriber in its own process on loopback
verifies every message with the ``standardwebhooks`` verifier and records it."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from devmesh.adapters.registry import ProviderRegistry
from devmesh.app import Services, create_app
from devmesh.config import Settings
from devmesh.events.handlers import HandlerRegistry
from devmesh.notifications.handler import notify_subscribers
from devmesh.store.rows import HandledEventRow, SubscriptionRow
from tests.events.support import an_event, publish
from tests.events.test_outbox import FAKE, TOOL

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[2]
FAST_RETRIES = {"max_attempts": 3, "initial_delay": 0.05, "max_delay": 0.1}


@dataclass
class Receiver:
    url: str
    secret_file: Path
    record_file: Path

    def records(self) -> list[dict[str, Any]]:
        if not self.record_file.exists():
            return []
        return [json.loads(line) for line in self.record_file.read_text().splitlines()]


@pytest.fixture
def start_receiver(tmp_path: Path) -> Iterator[Callable[[str], Receiver]]:
    processes: list[subprocess.Popen[str]] = []

    def start(mode: str) -> Receiver:
        n = len(processes)
        secret_file, record_file = tmp_path / f"secret-{n}", tmp_path / f"record-{n}.jsonl"
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.notifications.receiver",
                str(secret_file),
                str(record_file),
                mode,
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        processes.append(process)
        assert process.stdout is not None
        port = int(process.stdout.readline())
        return Receiver(f"http://127.0.0.1:{port}/hook", secret_file, record_file)

    yield start
    for process in processes:
        process.terminate()
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()


@pytest.fixture
def make_app(tmp_path: Path, database_url: str) -> Callable[..., Any]:
    @asynccontextmanager
    async def make(**overrides: Any) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
        settings = Settings.model_validate(
            {
                "data_dir": tmp_path / "data",
                "database_url": database_url,
                "events": {"poll_interval": 0.05},
                "notifications": {
                    "allow_loopback": True,
                    "retry_policy": FAST_RETRIES,
                    "timeout": 5,
                },
                **overrides,
            }
        )
        app = create_app(
            settings,
            registry=ProviderRegistry([FAKE]),
            handlers=HandlerRegistry([notify_subscribers]),
            run_worker=True,
        )
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://devmesh.test"
            ) as client,
        ):
            yield app, client

    return make


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def eventually(check: Callable[[], Awaitable[bool]], *, seconds: float = 15.0) -> None:
    for _ in range(int(seconds / 0.05)):
        if await check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the condition did not come true in time")


async def subscribe(
    client: httpx.AsyncClient, key: str, receiver: Receiver, types: list[str]
) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/subscriptions",
        json={"url": receiver.url, "event_types": types},
        headers=bearer(key),
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    receiver.secret_file.write_text(created["secret"])
    return created


async def test_a_triggered_builds_event_reaches_the_subscriber_signed_and_once(
    make_app: Callable[..., Any], start_receiver: Callable[[str], Receiver]
) -> None:
    receiver = start_receiver("ok")
    async with make_app() as (app, client):
        services: Services = app.state.services
        _, key = await services.tenants.create_tenant("acme")
        subscription = await subscribe(client, key, receiver, ["build.*"])
        assert (await client.post("/api/v1/tools", json=TOOL, headers=bearer(key))).is_success

        triggered = await client.post(
            "/api/v1/tools/ci/operations/trigger_build",
            json={"project": "app"},
            headers=bearer(key),
        )
        assert triggered.status_code == 200, triggered.text

        async def delivered() -> bool:
            page = await client.get(
                f"/api/v1/subscriptions/{subscription['id']}/deliveries", headers=bearer(key)
            )
            return [n["status"] for n in page.json()] == ["delivered"]

        await eventually(delivered)
        [event] = (await client.get("/api/v1/events", headers=bearer(key))).json()["events"]
        [notification] = (
            await client.get(
                f"/api/v1/subscriptions/{subscription['id']}/deliveries", headers=bearer(key)
            )
        ).json()

    [record] = receiver.records()
    assert record["verified"] is True
    assert record["id"] == notification["id"]
    assert record["type"] == "build.triggered"
    assert record["data"]["id"] == event["id"] and record["data"]["subject"] == "b-7"
    assert "tenant_id" not in record["data"]
    assert [(a["attempt"], a["status_code"]) for a in notification["attempts"]] == [(1, 204)]


async def test_a_failing_subscriber_is_retried_then_disabled_and_can_be_enabled_again(
    make_app: Callable[..., Any], start_receiver: Callable[[str], Receiver]
) -> None:
    receiver = start_receiver("fail")
    async with make_app(
        notifications={
            "allow_loopback": True,
            "retry_policy": FAST_RETRIES,
            "disable_after": 3,
        }
    ) as (app, client):
        services: Services = app.state.services
        tenant, key = await services.tenants.create_tenant("acme")
        subscription = await subscribe(client, key, receiver, ["*"])
        url = f"/api/v1/subscriptions/{subscription['id']}"
        await publish(services.db, [an_event(tenant.id)])
        services.worker.wake()

        async def disabled() -> bool:
            return bool((await client.get(url, headers=bearer(key))).json()["status"] == "disabled")

        await eventually(disabled)
        shown = (await client.get(url, headers=bearer(key))).json()
        [notification] = (await client.get(f"{url}/deliveries", headers=bearer(key))).json()
        enabled = await client.patch(url, json={"status": "active"}, headers=bearer(key))

    assert shown["disabled_reason"].startswith("3 attempts in a row failed")
    assert "HTTP 500" in shown["disabled_reason"]
    assert notification["status"] == "failed"
    assert [(a["attempt"], a["status_code"]) for a in notification["attempts"]] == [
        (1, 500),
        (2, 500),
        (3, 500),
    ]
    records = receiver.records()
    # Every retry is the same message: one webhook-id, each signed afresh.
    assert len(records) == 3
    assert {r["id"] for r in records} == {notification["id"]}
    assert all(r["verified"] for r in records)
    assert enabled.status_code == 200
    assert (enabled.json()["status"], enabled.json()["consecutive_failures"]) == ("active", 0)


async def test_another_tenants_events_never_reach_a_subscriber(
    make_app: Callable[..., Any], start_receiver: Callable[[str], Receiver]
) -> None:
    receiver = start_receiver("ok")
    async with make_app() as (app, client):
        services: Services = app.state.services
        acme, acme_key = await services.tenants.create_tenant("acme")
        globex, _ = await services.tenants.create_tenant("globex")
        await subscribe(client, acme_key, receiver, ["*"])
        theirs, mine = an_event(globex.id, subject="1"), an_event(acme.id, subject="2")
        await publish(services.db, [theirs, mine])
        services.worker.wake()

        async def both_handled() -> bool:
            async with services.db.session() as session:
                marks = await session.scalars(select(HandledEventRow.event_id))
                return {theirs.id, mine.id} <= set(marks)

        await eventually(both_handled)
        await eventually(lambda: _arrived(receiver))
        # Nothing else is queued: one more round sends nothing.
        assert await services.notifier.run_once() == 0

    assert [r["data"]["id"] for r in receiver.records()] == [mine.id]


async def _arrived(receiver: Receiver) -> bool:
    return bool(receiver.records())


@pytest.mark.parametrize(
    ("overrides", "url"),
    [
        ({"egress": {"allow_loopback": False, "allow_private": False}}, "http://127.0.0.1:8080/"),
        ({"egress": {"allow_loopback": False, "allow_private": False}}, "http://10.1.2.3/hook"),
        # The tools' egress allows loopback (the embedded default); notifications do not
        # unless told so.
        ({"notifications": {}}, "http://127.0.0.1:8080/"),
        ({"notifications": {}}, "http://[::1]:8080/"),
    ],
)
async def test_a_loopback_or_private_url_is_refused_with_the_reason(
    make_app: Callable[..., Any], overrides: dict[str, Any], url: str
) -> None:
    async with make_app(**overrides) as (app, client):
        services: Services = app.state.services
        _, key = await services.tenants.create_tenant("acme")
        response = await client.post(
            "/api/v1/subscriptions", json={"url": url, "event_types": ["*"]}, headers=bearer(key)
        )
        listed = await client.get("/api/v1/subscriptions", headers=bearer(key))

    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["details"]["field"] == "url"
    assert "url is refused" in problem["detail"]
    assert listed.json() == []


async def test_another_tenants_subscription_is_not_found(
    make_app: Callable[..., Any], start_receiver: Callable[[str], Receiver]
) -> None:
    receiver = start_receiver("ok")
    async with make_app() as (app, client):
        services: Services = app.state.services
        _, acme_key = await services.tenants.create_tenant("acme")
        _, globex_key = await services.tenants.create_tenant("globex")
        url = f"/api/v1/subscriptions/{(await subscribe(client, acme_key, receiver, ['*']))['id']}"
        answers = [
            await client.get(url, headers=bearer(globex_key)),
            await client.get(f"{url}/deliveries", headers=bearer(globex_key)),
            await client.patch(url, json={"status": "disabled"}, headers=bearer(globex_key)),
            await client.delete(url, headers=bearer(globex_key)),
        ]
        listed = await client.get("/api/v1/subscriptions", headers=bearer(globex_key))
        still_there = await client.get(url, headers=bearer(acme_key))

    assert [a.status_code for a in answers] == [404, 404, 404, 404]
    assert listed.json() == []
    assert still_there.status_code == 200


async def test_the_secret_is_shown_once_and_stored_sealed(
    make_app: Callable[..., Any], start_receiver: Callable[[str], Receiver]
) -> None:
    receiver = start_receiver("ok")
    async with make_app() as (app, client):
        services: Services = app.state.services
        _, key = await services.tenants.create_tenant("acme")
        created = await subscribe(client, key, receiver, ["build.failed"])
        shown = await client.get(f"/api/v1/subscriptions/{created['id']}", headers=bearer(key))
        async with services.db.session() as session:
            row = await session.get(SubscriptionRow, created["id"])
            assert row is not None
            sealed = row.secret_sealed

    assert created["secret"].startswith("whsec_")
    assert "secret" not in shown.json()
    assert created["secret"].encode() not in sealed
    assert created["secret"][6:].encode() not in sealed
