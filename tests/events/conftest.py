"""Buses on every backend: the SQL table on SQLite and PostgreSQL, Redis Streams."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from redis.asyncio import Redis

from devmesh.config import EventsSettings
from devmesh.domain.models import Tenant
from devmesh.events.bus import EventBus
from devmesh.events.handlers import Handler, HandlerRegistry
from devmesh.events.sql import SqlEventBus
from devmesh.events.streams import RedisEventBus
from devmesh.events.worker import Worker, route_for
from devmesh.observability.metrics import Metrics
from devmesh.security.tenants import TenantService
from devmesh.store.db import Database
from tests.events.support import create_effects_table
from tests.support.backends import fresh_postgres_database

CLAIM_IDLE = 0.5


@dataclass
class Backend:
    """Builds buses and workers over one database (and Redis, for ``redis``)."""

    kind: str
    db: Database
    redis: Redis | None
    stream: str
    metrics: Metrics = field(default_factory=Metrics)
    buses: list[EventBus] = field(default_factory=list)

    async def bus(self, handlers: HandlerRegistry, settings: EventsSettings) -> EventBus:
        route = route_for(handlers, settings)
        bus: EventBus
        if self.redis is not None:
            bus = RedisEventBus(
                self.db,
                self.redis,
                router=route,
                claim_idle=settings.claim_idle,
                stream=self.stream,
                block=0.05,
            )
        else:
            bus = SqlEventBus(self.db, router=route, claim_idle=settings.claim_idle)
        await bus.start()
        self.buses.append(bus)
        return bus

    async def worker(
        self, *handlers: Handler, settings: EventsSettings | None = None
    ) -> tuple[Worker, EventBus]:
        settings = settings or EventsSettings(claim_idle=CLAIM_IDLE, poll_interval=0.05)
        registry = HandlerRegistry(handlers)
        bus = await self.bus(registry, settings)
        worker = Worker(
            db=self.db, bus=bus, handlers=registry, settings=settings, metrics=self.metrics
        )
        return worker, bus


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("postgres", marks=pytest.mark.integration),
        pytest.param("redis", marks=pytest.mark.integration),
    ]
)
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    async def build(url: str, redis: Redis | None) -> AsyncIterator[Backend]:
        db = Database(url)
        await db.upgrade()
        await create_effects_table(db)
        made = Backend(request.param, db, redis, f"test:{uuid.uuid4().hex}")
        try:
            yield made
        finally:
            for bus in made.buses:
                await bus.close()
            if redis is not None:
                keys = [made.stream, f"{made.stream}:dead", f"{made.stream}:retry"]
                await redis.delete(*keys)
                await redis.aclose()
            await db.close()

    if request.param == "sqlite":
        async for made in build(f"sqlite+aiosqlite:///{tmp_path / 'devmesh.db'}", None):
            yield made
        return
    server: str = request.getfixturevalue("postgres_url")
    async with fresh_postgres_database(server) as url:
        redis = None
        if request.param == "redis":
            redis = Redis.from_url(request.getfixturevalue("redis_url"))
        async for made in build(url, redis):
            yield made


@pytest.fixture
async def tenant(backend: Backend) -> Tenant:
    created, _ = await TenantService(backend.db).create_tenant(f"t-{uuid.uuid4().hex[:8]}")
    return created
