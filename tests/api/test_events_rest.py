"""GET /api/v1/events and the DLQ over REST: tenant-scoped, filtered, paged by cursor."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import update

from devmesh.app import Services
from devmesh.store.rows import EventDeliveryRow
from tests.events.support import an_event, publish
from tests.support.http import bearer

pytestmark = pytest.mark.anyio


async def test_a_tenant_sees_only_its_own_events(
    client: httpx.AsyncClient, services: Services
) -> None:
    acme, acme_key = await services.tenants.create_tenant("acme")
    globex, _ = await services.tenants.create_tenant("globex")
    mine, theirs = an_event(acme.id, subject="1"), an_event(globex.id, subject="1")
    await publish(services.db, [mine, theirs])

    listed = await client.get("/api/v1/events", headers=bearer(acme_key))
    own = await client.get(f"/api/v1/events/{mine.id}", headers=bearer(acme_key))
    other = await client.get(f"/api/v1/events/{theirs.id}", headers=bearer(acme_key))

    assert [e["id"] for e in listed.json()["events"]] == [mine.id]
    assert "tenant_id" not in listed.json()["events"][0]
    assert own.status_code == 200
    assert other.status_code == 404
    assert other.headers["content-type"] == "application/problem+json"


async def test_filters_narrow_the_list_by_type_tool_subject_and_time(
    client: httpx.AsyncClient, services: Services
) -> None:
    tenant, key = await services.tenants.create_tenant("acme")
    triggered = an_event(tenant.id, subject="1")
    failed = an_event(tenant.id, subject="2", type="build.failed")
    await publish(services.db, [triggered, failed])
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()

    async def ids(**params: str) -> list[str]:
        response = await client.get("/api/v1/events", params=params, headers=bearer(key))
        assert response.status_code == 200, response.text
        return [e["id"] for e in response.json()["events"]]

    assert await ids(type="build.failed") == [failed.id]
    assert await ids(subject="1") == [triggered.id]
    assert await ids(tool="ci") == [triggered.id, failed.id]
    assert await ids(tool="other") == []
    assert await ids(since=later) == []
    assert await ids(until=later) == [triggered.id, failed.id]


async def test_the_cursor_pages_through_in_order_and_then_polls_for_new_events(
    client: httpx.AsyncClient, services: Services
) -> None:
    tenant, key = await services.tenants.create_tenant("acme")
    events = [an_event(tenant.id, subject=str(n)) for n in range(5)]
    await publish(services.db, events)

    seen: list[str] = []
    cursor = None
    for _ in range(4):
        params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/api/v1/events", params=params, headers=bearer(key))).json()
        seen += [e["id"] for e in page["events"]]
        cursor = page["next_cursor"]
    assert seen == [e.id for e in events]
    newer = an_event(tenant.id, subject="9")
    await publish(services.db, [newer])
    polled = await client.get("/api/v1/events", params={"cursor": cursor}, headers=bearer(key))
    assert [e["id"] for e in polled.json()["events"]] == [newer.id]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"since": "2026-01-01T00:00:00"}, "since"),
        ({"limit": "0"}, "limit"),
    ],
)
async def test_a_bad_query_is_422_naming_the_field(
    client: httpx.AsyncClient, services: Services, params: dict[str, str], field: str
) -> None:
    _, key = await services.tenants.create_tenant("acme")
    response = await client.get("/api/v1/events", params=params, headers=bearer(key))
    assert response.status_code == 422
    problem = response.json()
    named = problem.get("details", {}).get("field") or problem["errors"][0]["field"]
    assert named.endswith(field)


async def test_a_dead_letter_is_listed_and_replayed_only_by_its_tenant(
    client: httpx.AsyncClient, services: Services
) -> None:
    acme, acme_key = await services.tenants.create_tenant("acme")
    _, globex_key = await services.tenants.create_tenant("globex")
    event = an_event(acme.id)
    await publish(services.db, [event])
    # A delivery to a handler that is not installed any more is dead on arrival.
    async with services.db.session() as session:
        session.add(
            EventDeliveryRow(
                event_id=event.id,
                handler="gone",
                status="pending",
                failures=0,
                claims=0,
                available_at=datetime.now(UTC),
            )
        )
        await session.execute(update(EventDeliveryRow).values(status="dead", failures=3))
    letters = (await client.get("/api/v1/events/dlq", headers=bearer(acme_key))).json()
    assert [(d["event_id"], d["handler"], d["attempts"]) for d in letters] == [
        (event.id, "gone", 3)
    ]
    letter = letters[0]["id"]

    theirs = await client.get("/api/v1/events/dlq", headers=bearer(globex_key))
    stolen = await client.post(f"/api/v1/events/dlq/{letter}/replay", headers=bearer(globex_key))
    replayed = await client.post(f"/api/v1/events/dlq/{letter}/replay", headers=bearer(acme_key))

    assert theirs.json() == []
    assert stolen.status_code == 404
    assert replayed.status_code == 200, replayed.text
    assert replayed.json()["event_id"] == event.id
