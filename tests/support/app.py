"""Fixtures for the application, wired as in production (registered by conftest).

Store and API tests run twice: on the embedded SQLite and on the real PostgreSQL
the session started, each PostgreSQL test in a database of its own.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from devmesh.app import Services, create_app
from devmesh.config import Settings
from devmesh.store.db import Database
from tests.support.backends import fresh_postgres_database
from tests.support.canary import watch


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.integration)])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'devmesh.db'}"
        return
    server_url: str = request.getfixturevalue("postgres_url")
    async with fresh_postgres_database(server_url) as url:
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
