"""Fixtures for the application, wired as in production (registered by conftest).

Store and API tests run twice: on the embedded SQLite and on the real PostgreSQL
the session started, each test in a database of its own. That database is a copy of
one the session migrated once (a file copy on SQLite, ``CREATE DATABASE ... TEMPLATE``
on PostgreSQL), since migrating costs 0.1 to 0.2 s a test; a test marked
``empty_database`` gets one nothing has touched.
"""

from __future__ import annotations

import asyncio
import shutil
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from devmesh.app import Services, create_app
from devmesh.config import Settings
from devmesh.store.db import Database
from tests.support.backends import fresh_postgres_database
from tests.support.canary import watch


def _in_own_loop(run: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run a coroutine to its end on a loop of its own, in a thread of its own: the
    fixtures below are set up from inside the test's running loop (getfixturevalue)."""
    failure: list[BaseException] = []

    def target() -> None:
        try:
            asyncio.run(run())
        except BaseException as exc:  # re-raised in the caller
            failure.append(exc)

    thread = threading.Thread(target=target, name="migrate-template")
    thread.start()
    thread.join(timeout=120)
    assert not thread.is_alive(), "migrating the template database took over 120 s"
    if failure:
        raise failure[0]


async def _migrate(url: str) -> None:
    db = Database(url)
    try:
        await db.upgrade()
    finally:
        await db.close()  # no connection may stay open to a template


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated to head, for tests to copy."""
    path = tmp_path_factory.mktemp("migrated") / "devmesh.db"
    _in_own_loop(lambda: _migrate(f"sqlite+aiosqlite:///{path}"))
    # Closing the last connection checkpointed the WAL into the file and removed it.
    assert not path.with_name(f"{path.name}-wal").exists()
    return path


@pytest.fixture(scope="session")
def migrated_postgres(postgres_url: str) -> Iterator[str]:
    """The name of a PostgreSQL database migrated to head, for tests to copy."""
    base = postgres_url.replace("postgresql+asyncpg://", "postgresql://").rpartition("/")[0]
    name = f"template_{uuid.uuid4().hex[:12]}"

    async def admin(statement: str) -> None:
        connection = await asyncpg.connect(f"{base}/postgres")
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    async def create() -> None:
        await admin(f'CREATE DATABASE "{name}"')
        await _migrate(f"{postgres_url.rpartition('/')[0]}/{name}")

    _in_own_loop(create)
    try:
        yield name
    finally:
        _in_own_loop(lambda: admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.integration)])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    empty = request.node.get_closest_marker("empty_database") is not None
    if request.param == "sqlite":
        path = tmp_path / "devmesh.db"
        if not empty:
            shutil.copyfile(request.getfixturevalue("migrated_sqlite"), path)
        yield f"sqlite+aiosqlite:///{path}"
        return
    server_url: str = request.getfixturevalue("postgres_url")
    template = None if empty else request.getfixturevalue("migrated_postgres")
    async with fresh_postgres_database(server_url, template=template) as url:
        yield url


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    db = Database(database_url)
    await db.upgrade()
    try:
        yield db
    finally:
        await db.close()


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings.model_validate({"data_dir": tmp_path / "data", "database_url": database_url})


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application
        watch("metrics", application.state.services.metrics.render())


@pytest.fixture
def services(app: FastAPI) -> Services:
    built: Services = app.state.services
    return built


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async def inspect(response: httpx.Response) -> None:
        watch(f"response to {response.request.method} {response.url.path}", await response.aread())

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://devmesh.test", event_hooks={"response": [inspect]}
    ) as http:
        yield http
