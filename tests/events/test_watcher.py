"""The build watcher's choices that a real CI cannot be made to show on demand."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import select

from devmesh.adapters.operations import CI_OPERATIONS
from devmesh.adapters.registry import Connection, Provider, ProviderRegistry
from devmesh.app import Services, open_services
from devmesh.config import Settings
from devmesh.domain.errors import UpstreamRateLimited
from devmesh.domain.models import Build, BuildRequest, BuildStatus, Credentials, Tenant
from devmesh.events.handlers import HandlerRegistry
from devmesh.store.rows import BuildWatchRow, EventRow, utcnow
from devmesh.tools.models import ToolCreate
from devmesh.tools.watcher import build_watch

pytestmark = pytest.mark.anyio


class ScriptedCI:
    """Answers ``get_build`` with the class's ``status``, or raises ``error``."""

    status = BuildStatus.RUNNING
    error: Exception | None = None
    reads = 0

    def __init__(self, _connection: Connection) -> None:
        pass

    async def ping(self) -> None:
        return None

    async def trigger_build(self, request: BuildRequest) -> Build:
        return Build(id="br-1", project=request.project, status=BuildStatus.QUEUED)

    async def get_build(self, build_id: str) -> Build:
        ScriptedCI.reads += 1
        if ScriptedCI.error is not None:
            raise ScriptedCI.error
        return Build(id="17", project="app", status=ScriptedCI.status)


SCRIPTED = Provider(
    name="scripted",
    title="Scripted CI",
    create_adapter=ScriptedCI,
    operations=tuple(
        op for op in CI_OPERATIONS if all(hasattr(ScriptedCI, method) for method in op.requires)
    ),
)


@pytest.fixture
async def services(settings: Settings) -> AsyncIterator[Services]:
    ScriptedCI.status, ScriptedCI.error, ScriptedCI.reads = BuildStatus.RUNNING, None, 0
    settings.events.watcher.interval = 60.0
    async with open_services(
        settings,
        registry=ProviderRegistry([SCRIPTED]),
        handlers=HandlerRegistry([build_watch]),
    ) as built:
        yield built


async def triggered(services: Services, **tool: object) -> tuple[Tenant, str]:
    """A tenant whose tool triggered build br-1, with the build's watch started."""
    tenant, _ = await services.tenants.create_tenant("acme")
    spec = {
        "name": "ci",
        "provider": "scripted",
        "base_url": "http://127.0.0.1:9",
        "resilience": {"max_retries": 0},
        **tool,
    }
    await services.tools.register_tool(tenant, ToolCreate.model_validate(spec))
    await services.tools.execute(
        tenant, "ci", "trigger_build", {"project": "app"}, upstream_token="t"
    )
    await services.worker.run_once()
    return tenant, "br-1"


async def watch(services: Services) -> BuildWatchRow:
    async with services.db.session() as session:
        row = await session.scalar(select(BuildWatchRow))
    assert row is not None
    return row


async def make_due(services: Services) -> None:
    async with services.db.session() as session:
        row = await session.scalar(select(BuildWatchRow))
        assert row is not None
        row.next_poll_at = utcnow() - timedelta(seconds=1)


async def event_types(services: Services) -> Counter[str]:
    async with services.db.session() as session:
        return Counter(await session.scalars(select(EventRow.type)))


async def test_a_passthrough_only_tool_is_not_polled_and_its_watch_says_why(
    services: Services,
) -> None:
    await triggered(services, credential_mode="passthrough")
    await services.watcher.run_once()
    stopped = await watch(services)
    assert stopped.state == "skipped"
    assert stopped.reason is not None and "passthrough" in stopped.reason
    assert ScriptedCI.reads == 0


async def test_a_rate_limited_poll_waits_as_long_as_retry_after_says(
    services: Services,
) -> None:
    tenant, _ = await triggered(services)
    await services.tools.set_credentials(tenant, "ci", Credentials(token="stored"))
    ScriptedCI.error = UpstreamRateLimited("slow down", retry_after=600)
    await services.watcher.run_once()
    deferred = await watch(services)
    assert deferred.state == "watching"
    assert deferred.next_poll_at - utcnow() > timedelta(seconds=500)
    assert (await event_types(services))["build.started"] == 0


async def test_a_final_state_is_reported_on_its_second_sighting_and_then_polling_stops(
    services: Services,
) -> None:
    tenant, _ = await triggered(services)
    await services.tools.set_credentials(tenant, "ci", Credentials(token="stored"))
    ScriptedCI.status = BuildStatus.FAILED
    await services.watcher.run_once()
    assert (await event_types(services))["build.failed"] == 0
    await make_due(services)
    await services.watcher.run_once()
    await make_due(services)
    await services.watcher.run_once()
    types = await event_types(services)
    assert types["build.started"] == 1
    assert types["build.failed"] == 1
    assert (await watch(services)).state == "done"
    assert ScriptedCI.reads == 2
