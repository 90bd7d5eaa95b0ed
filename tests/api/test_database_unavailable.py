"""A database that goes away under a running app is a retriable 503, never a 500.

No mocks: the SQLite file's directory is removed and the engine's pooled
connections closed, or the app is pointed at a PostgreSQL port nobody listens on.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from fastapi import FastAPI
from mcp import Client

from devmesh.app import Services, create_app
from devmesh.config import Settings
from devmesh.domain.models import Tenant
from devmesh.mcp.errors import error_payload
from devmesh.mcp.server import Context, build_server
from devmesh.security.apikeys import generate_key
from tests.support.backends import free_port

pytestmark = pytest.mark.anyio


async def running(settings: dict[str, Any]) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    app = create_app(Settings.model_validate(settings))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://devmesh.test") as http:
            yield app, http


@pytest.fixture
async def sqlite_app(tmp_path: Path) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    database = tmp_path / "db" / "devmesh.db"
    database.parent.mkdir()
    settings = {
        "data_dir": tmp_path / "data",
        "database_url": f"sqlite+aiosqlite:///{database}",
        # aiosqlite leaves a connection object behind each time opening the file fails;
        # the in-process worker would poll the vanished file and leave one per cycle,
        # which the suite's ResourceWarning check reports in a later test. This test is
        # about the answers REST gives, not the worker.
        "events": {"in_process_worker": False},
    }
    async for pair in running(settings):
        yield pair
    # aiosqlite stops the thread of a connection that failed to open without waiting
    # for it; let those threads finish while this test's event loop still runs.
    for thread in threading.enumerate():
        if "_connection_worker_thread" in thread.name:
            await anyio.to_thread.run_sync(thread.join, 5)


async def take_the_database_away(services: Services) -> None:
    database = Path(services.db.engine.url.database or "")
    shutil.rmtree(database.parent)
    await services.db.engine.dispose()


async def test_rest_answers_503_unavailable_with_retry_after_when_the_sqlite_file_is_gone(
    sqlite_app: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, http = sqlite_app
    services: Services = app.state.services
    _, key = await services.tenants.create_tenant("acme")
    await take_the_database_away(services)
    answer = await http.get("/api/v1/tools", headers={"Authorization": f"Bearer {key}"})
    problem = answer.json()
    assert answer.status_code == 503
    assert answer.headers["content-type"] == "application/problem+json"
    assert int(answer.headers["retry-after"]) > 0
    assert (problem["code"], problem["retriable"]) == ("unavailable", True)
    assert "sqlite" not in answer.text.lower()


async def test_rest_answers_503_unavailable_when_postgresql_refuses_connections(
    tmp_path: Path,
) -> None:
    dead = f"postgresql+asyncpg://devmesh:unused@127.0.0.1:{free_port()}/devmesh"
    settings = {"data_dir": tmp_path / "data", "database_url": dead, "auto_migrate": False}
    async for _, http in running(settings):
        key = generate_key().plaintext
        answer = await http.get("/api/v1/tenant", headers={"Authorization": f"Bearer {key}"})
        assert answer.status_code == 503
        assert (answer.json()["code"], answer.json()["retriable"]) == ("unavailable", True)
        assert "retry-after" in answer.headers


async def test_mcp_tool_call_is_a_retriable_unavailable_result_when_the_database_is_gone(
    sqlite_app: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, _ = sqlite_app
    services: Services = app.state.services
    tenant, _ = await services.tenants.create_tenant("acme")

    async def caller(ctx: Context) -> tuple[Tenant, str | None]:
        return tenant, None

    async with Client(build_server(services.tools, caller)) as mcp:
        await take_the_database_away(services)
        result = await mcp.call_tool("ci.list_builds", {})
    payload = error_payload(result)
    assert result.is_error
    assert (payload["error"], payload["retriable"]) == ("unavailable", True)


async def test_mcp_over_http_answers_503_unavailable_when_postgresql_refuses_connections(
    tmp_path: Path,
) -> None:
    dead = f"postgresql+asyncpg://devmesh:unused@127.0.0.1:{free_port()}/devmesh"
    settings = {"data_dir": tmp_path / "data", "database_url": dead, "auto_migrate": False}
    async for _, http in running(settings):
        answer = await http.post(
            "/mcp",
            headers={
                "Authorization": f"Bearer {generate_key().plaintext}",
                "Accept": "application/json, text/event-stream",
            },
            json={"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}},
        )
        assert answer.status_code == 503
        assert (answer.json()["code"], answer.json()["retriable"]) == ("unavailable", True)
