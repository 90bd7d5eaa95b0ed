"""The outbox: a mutating tool call, its record and its event commit together or not at all."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from opentelemetry.sdk.trace import TracerProvider
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from devmesh.adapters.clients import HttpClients
from devmesh.adapters.egress import EgressPolicy
from devmesh.adapters.operations import CI_OPERATIONS
from devmesh.adapters.registry import Connection, Provider, ProviderRegistry
from devmesh.adapters.resilience import Resilience
from devmesh.app import Services, create_app
from devmesh.config import Settings
from devmesh.domain.events import Event
from devmesh.domain.models import Build, BuildRequest, BuildStatus, Tenant
from devmesh.events.handlers import HandlerRegistry
from devmesh.events.outbox import Outbox
from devmesh.observability.metrics import Metrics
from devmesh.security.vault import Vault
from devmesh.store.rows import EventRow, IdempotencyKeyRow, ToolCallRow
from devmesh.tools.models import ToolCreate
from devmesh.tools.service import ToolService
from tests.events.conftest import Backend
from tests.events.support import an_event

pytestmark = pytest.mark.anyio


class FakeCI:
    """A CI that always takes the build: the outbox is what is under test."""

    def __init__(self, _connection: Connection) -> None:
        self.triggered = 0

    async def ping(self) -> None:
        return None

    async def trigger_build(self, request: BuildRequest) -> Build:
        return Build(id="b-7", project=request.project, status=BuildStatus.QUEUED)

    async def cancel_build(self, build_id: str) -> Build:
        return Build(id=build_id, project="app", status=BuildStatus.CANCELLED)

    async def get_build(self, build_id: str) -> Build:
        return Build(id=build_id, project="app", status=BuildStatus.RUNNING)


# Only the operations whose adapter methods FakeCI has: the registry refuses the rest.
FAKE = Provider(
    name="fake",
    title="Fake CI",
    create_adapter=FakeCI,
    operations=tuple(
        op for op in CI_OPERATIONS if all(hasattr(FakeCI, method) for method in op.requires)
    ),
)
TOOL = {"name": "ci", "provider": "fake", "base_url": "http://127.0.0.1:9"}


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(
        settings, registry=ProviderRegistry([FAKE]), handlers=HandlerRegistry(), run_worker=False
    )
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://devmesh.test"
    ) as http:
        yield http


async def _count(services: Services, row: type[Any]) -> int:
    async with services.db.session() as session:
        return int(await session.scalar(select(func.count()).select_from(row)) or 0)


async def test_a_triggered_build_records_the_call_and_its_build_triggered_event(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    services: Services = app.state.services
    _, key = await services.tenants.create_tenant("acme")
    auth = {"Authorization": f"Bearer {key}"}
    tool = (await client.post("/api/v1/tools", json=TOOL, headers=auth)).json()

    called = await client.post(
        "/api/v1/tools/ci/operations/trigger_build", json={"project": "app"}, headers=auth
    )
    listed = await client.get("/api/v1/events", headers=auth)

    assert called.status_code == 200, called.text
    [event] = listed.json()["events"]
    assert (event["type"], event["subject"], event["source"]) == (
        "build.triggered",
        "b-7",
        "tool_call",
    )
    assert event["tool"] == {"id": tool["id"], "name": "ci"}
    assert event["payload"]["project"] == "app"
    async with services.db.session() as session:
        call = await session.scalar(select(ToolCallRow))
    assert call is not None
    assert (call.operation, call.event_id, call.subject) == ("trigger_build", event["id"], "b-7")


async def test_a_cancel_emits_build_cancelled_and_a_read_emits_nothing(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    services: Services = app.state.services
    _, key = await services.tenants.create_tenant("acme")
    auth = {"Authorization": f"Bearer {key}"}
    await client.post("/api/v1/tools", json=TOOL, headers=auth)

    await client.post(
        "/api/v1/tools/ci/operations/get_build_status", json={"build_id": "9"}, headers=auth
    )
    await client.post(
        "/api/v1/tools/ci/operations/cancel_build", json={"build_id": "9"}, headers=auth
    )

    events = (await client.get("/api/v1/events", headers=auth)).json()["events"]
    assert [(e["type"], e["subject"]) for e in events] == [("build.cancelled", "9")]


class BrokenOutbox(Outbox):
    """Writes the event, then fails: as a crash between the two writes would."""

    async def add(self, session: AsyncSession, event: Event) -> None:
        await super().add(session, event)
        raise RuntimeError("the disk is full")


async def test_when_the_event_cannot_be_written_the_call_record_and_key_roll_back_with_it(
    app: FastAPI,
) -> None:
    services: Services = app.state.services
    resilience = Resilience(metrics=Metrics(), tracer=TracerProvider().get_tracer("test"))
    await resilience.start()
    egress = EgressPolicy.own(host="127.0.0.1", port=1, allow_loopback=True, allow_private=True)
    clients = HttpClients(egress)
    try:
        tools = ToolService(
            db=services.db,
            registry=ProviderRegistry([FAKE]),
            vault=Vault(b"k" * 32),
            clients=clients,
            egress=egress,
            resilience=resilience,
            outbox=BrokenOutbox(),
        )
        tenant: Tenant
        tenant, _ = await services.tenants.create_tenant("acme")
        await tools.register_tool(tenant, ToolCreate.model_validate(TOOL))

        with pytest.raises(RuntimeError, match="disk is full"):
            await tools.execute(
                tenant, "ci", "trigger_build", {"project": "app"}, idempotency_key="k-1"
            )
    finally:
        await clients.aclose()
        await resilience.close()

    assert await _count(services, ToolCallRow) == 0
    assert await _count(services, EventRow) == 0
    # The key is free again, so the caller's retry runs (and records) the call.
    assert await _count(services, IdempotencyKeyRow) == 0
    replayed = await services.tools.execute(
        tenant, "ci", "trigger_build", {"project": "app"}, idempotency_key="k-1"
    )
    assert replayed["id"] == "b-7"
    assert await _count(services, ToolCallRow) == 1
    assert await _count(services, EventRow) == 1


async def test_a_replayed_idempotency_key_emits_no_second_event(app: FastAPI) -> None:
    services: Services = app.state.services
    tenant, _ = await services.tenants.create_tenant("acme")
    await services.tools.register_tool(tenant, ToolCreate.model_validate(TOOL))
    for _ in range(2):
        await services.tools.execute(
            tenant, "ci", "trigger_build", {"project": "app"}, idempotency_key="k-1"
        )
    assert await _count(services, EventRow) == 1
    assert await _count(services, ToolCallRow) == 1


async def test_the_store_keeps_one_event_of_a_type_per_subject_and_the_transaction_goes_on(
    backend: Backend, tenant: Tenant
) -> None:
    # As a webhook and the watcher would, each seeing the build finish.
    first = an_event(tenant.id, subject="br-1", type="build.completed")
    again = an_event(tenant.id, subject="br-1", type="build.completed")
    started = an_event(tenant.id, subject="br-1", type="build.started")
    outbox = Outbox()

    async with backend.db.session() as session:
        added = [await outbox.add(session, event) for event in (first, again, started)]

    assert added == [True, False, True]
    async with backend.db.session() as session:
        kept = set(await session.scalars(select(EventRow.id)))
    assert kept == {first.id, started.id}
