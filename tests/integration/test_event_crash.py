"""Crash safety: `devmesh worker` SIGKILLed again and again while events flow.

Every event must take effect exactly once and none may be lost or dead-lettered,
on the embedded default (SQLite, the SQL queue) and on PostgreSQL + Redis Streams.
The handler is installed the way any handler is: an entry point in the
``devmesh.handlers`` group, here from a dist-info directory on PYTHONPATH.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from devmesh.events.sql import SqlEventBus
from devmesh.security.tenants import TenantService
from devmesh.store.db import Database
from tests.events.support import an_event, create_effects_table, effects, publish
from tests.support.backends import fresh_postgres_database

pytestmark = [pytest.mark.anyio, pytest.mark.integration]

DEVMESH = str(Path(sys.executable).parent / "devmesh")
REPO = Path(__file__).parents[2]
EVENTS = 2000
KILLS = 4
DEADLINE = 90.0


def _install_handler(tmp_path: Path) -> Path:
    plugins = tmp_path / "plugins"
    info = plugins / "devmesh_crash_handler-0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: devmesh-crash-handler\nVersion: 0\n"
    )
    (info / "entry_points.txt").write_text(
        "[devmesh.handlers]\ncrash_counter = tests.events.support:crash_counter\n"
    )
    return plugins


@pytest.fixture(params=["sqlite", "postgres+redis"])
async def environment(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[dict[str, str], Database]]:
    env = {
        **os.environ,
        "PYTHONPATH": f"{_install_handler(tmp_path)}{os.pathsep}{REPO}",
        "DEVMESH_DATA_DIR": str(tmp_path / "data"),
        "DEVMESH_EVENTS__CLAIM_IDLE": "1",
        "DEVMESH_EVENTS__POLL_INTERVAL": "0.05",
        "DEVMESH_EVENTS__STREAM": f"crash:{uuid.uuid4().hex}",
        "DEVMESH_LOGGING__LEVEL": "warning",
        "DEVMESH_TEST_INVOCATIONS": str(tmp_path / "invocations.log"),
    }
    for name in ("DEVMESH_DATABASE_URL", "DEVMESH_REDIS_URL", "DEVMESH_CONFIG"):
        env.pop(name, None)
    if request.param == "sqlite":
        (tmp_path / "data").mkdir()
        db = Database(f"sqlite+aiosqlite:///{(tmp_path / 'data' / 'devmesh.db').resolve()}")
        await db.upgrade()
        yield env, db
        await db.close()
        return
    redis_url: str = request.getfixturevalue("redis_url")
    async with fresh_postgres_database(request.getfixturevalue("postgres_url")) as url:
        env["DEVMESH_DATABASE_URL"] = url
        env["DEVMESH_REDIS_URL"] = redis_url
        db = Database(url)
        await db.upgrade()
        try:
            yield env, db
        finally:
            await db.close()
            redis = Redis.from_url(redis_url)
            stream = env["DEVMESH_EVENTS__STREAM"]
            await redis.delete(stream, f"{stream}:dead", f"{stream}:retry")
            await redis.aclose()


def _start(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen([DEVMESH, "worker"], env=env, stdout=out, stderr=out)


async def test_a_worker_killed_again_and_again_loses_nothing_and_doubles_nothing(
    environment: tuple[dict[str, str], Database], tmp_path: Path
) -> None:
    env, db = environment
    await create_effects_table(db)
    tenant, _ = await TenantService(db).create_tenant("acme")
    events = [an_event(tenant.id, subject=str(n)) for n in range(EVENTS)]
    chunk = EVENTS // (KILLS + 1)
    rng = random.Random(7)
    log = tmp_path / "worker.log"
    kills = 0
    for round_ in range(KILLS):
        await publish(db, events[round_ * chunk : (round_ + 1) * chunk])
        worker = _start(env, log)
        try:
            before = len(await effects(db))
            deadline = time.monotonic() + 30
            # Kill it mid-run: once it has handled something, after a random moment.
            while len(await effects(db)) == before and time.monotonic() < deadline:
                assert worker.poll() is None, log.read_text()
                await asyncio.sleep(0.05)
            await asyncio.sleep(rng.uniform(0.05, 0.4))
        finally:
            worker.send_signal(signal.SIGKILL)
            worker.wait(timeout=10)
            kills += 1
    await publish(db, events[KILLS * chunk :])
    worker = _start(env, log)
    try:
        deadline = time.monotonic() + DEADLINE
        while len(await effects(db)) < EVENTS:
            assert time.monotonic() < deadline, f"{len(await effects(db))} of {EVENTS} handled"
            assert worker.poll() is None, log.read_text()
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.3)  # anything still in flight would show as a duplicate
    finally:
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=20) == 0
    handled = await effects(db)
    invocations = (tmp_path / "invocations.log").read_text().split()
    print(
        f"crash test: sent={EVENTS} kills={kills} handled={len(set(handled))} "
        f"effects={len(handled)} invocations={len(invocations)} "
        f"redelivered_without_effect={len(invocations) - len(handled)} "
        f"lost={EVENTS - len(set(handled))}"
    )
    assert sorted(handled) == sorted(e.id for e in events)
    if "DEVMESH_REDIS_URL" not in env:
        bus = SqlEventBus(db, router=lambda _: [], claim_idle=1)
        assert (await bus.stats()).dead == 0
