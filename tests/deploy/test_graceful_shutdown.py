"""SIGTERM mid-load: the service and the workers stop gracefully.

`devmesh serve` stops accepting at once and lets the calls in flight finish (within
``shutdown_timeout``); two `devmesh worker`s on PostgreSQL + Redis finish the
deliveries they claimed and leave none pending in the consumer group, so a worker
started afterwards handles the rest with no event lost and none handled twice.
Each test prints its figures (``pytest -s``): docs/deployment.md quotes them.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis

from devmesh.security.tenants import TenantService
from devmesh.store.db import Database
from tests.events.support import an_event, create_effects_table, effects, publish
from tests.support.backends import free_port, fresh_postgres_database
from tests.upstream import Upstream

pytestmark = [pytest.mark.anyio, pytest.mark.integration]

DEVMESH = str(Path(sys.executable).parent / "devmesh")
REPO = Path(__file__).parents[2]
IN_FLIGHT = 6
HANG = 3.0
EVENTS = 600
WAIT = 90.0


def _wait_healthy(process: subprocess.Popen[bytes], base: str) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert process.poll() is None, "devmesh serve stopped"
        assert time.monotonic() < deadline, "devmesh serve did not come up"
        time.sleep(0.05)


@pytest.fixture
def service(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], str, dict[str, str]]]:
    env = {
        **os.environ,
        "DEVMESH_DATA_DIR": str(tmp_path / "data"),
        "DEVMESH_SHUTDOWN_TIMEOUT": "20",
        "DEVMESH_LOGGING__LEVEL": "warning",
    }
    for name in ("DEVMESH_DATABASE_URL", "DEVMESH_REDIS_URL", "DEVMESH_CONFIG"):
        env.pop(name, None)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with (tmp_path / "serve.log").open("wb") as log:
        process = subprocess.Popen(
            [DEVMESH, "serve", "--port", str(port)], env=env, stdout=log, stderr=log
        )
    try:
        _wait_healthy(process, base)
        yield process, base, env
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)


async def test_sigterm_lets_every_call_in_flight_finish_and_refuses_new_connections(
    service: tuple[subprocess.Popen[bytes], str, dict[str, str]], canned_upstream: Upstream
) -> None:
    process, base, env = service
    created = await asyncio.to_thread(
        subprocess.run,
        [DEVMESH, "tenants", "create", "acme"],
        env=env,
        capture_output=True,
        check=True,
    )
    auth = {"Authorization": f"Bearer {json.loads(created.stdout)['api_key']}"}
    async with httpx.AsyncClient(base_url=base, headers=auth, timeout=60) as http:
        tool = {"name": "ci", "provider": "buildbot", "base_url": canned_upstream.base_url}
        assert (await http.post("/api/v1/tools", json=tool)).status_code == 201
    await canned_upstream.reset_stats()
    # Every call the upstream answers only after HANG seconds: all are in flight at once.
    await canned_upstream.inject("hang", seconds=HANG, count=IN_FLIGHT, path="^/api/v2/builds$")

    async def one_call() -> tuple[int, float]:
        # A connection of its own each, as separate agents would have.
        async with httpx.AsyncClient(base_url=base, headers=auth, timeout=60) as http:
            answer = await http.post("/api/v1/tools/ci/operations/list_builds", json={})
            return answer.status_code, time.monotonic()

    calls = [asyncio.create_task(one_call()) for _ in range(IN_FLIGHT)]
    deadline = time.monotonic() + 30
    while (await canned_upstream.stats()).faulted < IN_FLIGHT:
        assert time.monotonic() < deadline, "the calls never reached the upstream"
        await asyncio.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    signalled = time.monotonic()

    refused_after = None
    while refused_after is None and time.monotonic() - signalled < HANG:
        try:
            async with httpx.AsyncClient(timeout=1) as late:
                await late.get(f"{base}/healthz")
        except httpx.ConnectError:
            refused_after = time.monotonic() - signalled
        await asyncio.sleep(0.05)
    answers = await asyncio.gather(*calls)
    code = await asyncio.to_thread(process.wait, 30)
    stopped_after = time.monotonic() - signalled
    last_answer = max(at for _, at in answers) - signalled
    refused = "never" if refused_after is None else f"{refused_after:.2f}s"
    print(
        f"serve SIGTERM: in_flight={IN_FLIGHT} answered_200="
        f"{sum(status == 200 for status, _ in answers)} refused_new_after={refused} "
        f"last_answer_after={last_answer:.2f}s exit={code} exited_after={stopped_after:.2f}s"
    )
    assert refused_after is not None, "new connections were still accepted"
    assert [status for status, _ in answers] == [200] * IN_FLIGHT
    assert code == 0


def _install_handler(tmp_path: Path) -> Path:
    """Registers ``tests.events.support:crash_counter`` the way any handler package does."""
    plugins = tmp_path / "plugins"
    info = plugins / "devmesh_shutdown_handler-0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: devmesh-shutdown-handler\nVersion: 0\n"
    )
    (info / "entry_points.txt").write_text(
        "[devmesh.handlers]\ncrash_counter = tests.events.support:crash_counter\n"
    )
    return plugins


@pytest.fixture
async def queue(
    tmp_path: Path, postgres_url: str, redis_url: str
) -> AsyncIterator[tuple[dict[str, str], Database, Redis]]:
    stream = f"shutdown:{uuid.uuid4().hex}"
    async with fresh_postgres_database(postgres_url) as url:
        env = {
            **os.environ,
            "PYTHONPATH": f"{_install_handler(tmp_path)}{os.pathsep}{REPO}",
            "DEVMESH_DATA_DIR": str(tmp_path / "data"),
            "DEVMESH_DATABASE_URL": url,
            "DEVMESH_REDIS_URL": redis_url,
            "DEVMESH_EVENTS__STREAM": stream,
            "DEVMESH_EVENTS__POLL_INTERVAL": "0.05",
            "DEVMESH_LOGGING__LEVEL": "warning",
            "DEVMESH_TEST_INVOCATIONS": str(tmp_path / "invocations.log"),
        }
        env.pop("DEVMESH_CONFIG", None)
        db = Database(url)
        await db.upgrade()
        redis = Redis.from_url(redis_url)
        try:
            yield env, db, redis
        finally:
            await db.close()
            await redis.delete(stream, f"{stream}:dead", f"{stream}:retry")
            await redis.aclose()


def _worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen([DEVMESH, "worker"], env=env, stdout=out, stderr=out)


async def _pending(redis: Redis, stream: str) -> int:
    return sum(int(group["pending"]) for group in await redis.xinfo_groups(stream))


async def test_sigterm_stops_two_workers_with_every_claimed_event_handled_once_and_none_pending(
    queue: tuple[dict[str, str], Database, Redis], tmp_path: Path
) -> None:
    env, db, redis = queue
    await create_effects_table(db)
    tenant, _ = await TenantService(db).create_tenant("acme")
    events = [an_event(tenant.id, subject=str(n)) for n in range(EVENTS)]
    log = tmp_path / "workers.log"
    # At info, each says worker_started once its signals are handled.
    chatty = {**env, "DEVMESH_LOGGING__LEVEL": "info"}
    workers = [_worker(chatty, log), _worker(chatty, log)]
    try:
        deadline = time.monotonic() + WAIT
        # The load starts once both run: a worker still starting when signalled would
        # die of the signal rather than drain, which is not what this is about.
        while log.read_text().count('"worker_started"') < 2:
            assert time.monotonic() < deadline, log.read_text()
            assert all(w.poll() is None for w in workers), log.read_text()
            await asyncio.sleep(0.02)
        await publish(db, events)
        # Mid-load: once a tenth is handled, well before the end.
        while len(await effects(db)) < EVENTS // 10:
            assert time.monotonic() < deadline, log.read_text()
            assert all(w.poll() is None for w in workers), log.read_text()
            await asyncio.sleep(0.02)
        for w in workers:
            w.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        codes = [await asyncio.to_thread(w.wait, 30) for w in workers]
        stopped_after = time.monotonic() - signalled
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
                w.wait(timeout=10)
    at_stop = await effects(db)
    pending = await _pending(redis, env["DEVMESH_EVENTS__STREAM"])
    invocations_at_stop = len((tmp_path / "invocations.log").read_text().split())

    last = _worker(env, log)
    try:
        deadline = time.monotonic() + WAIT
        while len(await effects(db)) < EVENTS:
            assert time.monotonic() < deadline, f"{len(await effects(db))} of {EVENTS} handled"
            assert last.poll() is None, log.read_text()
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.3)  # anything still in flight would show as a duplicate
    finally:
        last.send_signal(signal.SIGTERM)
        last_code = await asyncio.to_thread(last.wait, 30)
    handled = await effects(db)
    invocations = (tmp_path / "invocations.log").read_text().split()
    print(
        f"worker SIGTERM: events={EVENTS} workers=2 handled_at_stop={len(at_stop)} "
        f"invocations_at_stop={invocations_at_stop} pending_after_stop={pending} "
        f"exit_codes={codes} exited_after={stopped_after:.2f}s then handled={len(set(handled))} "
        f"effects={len(handled)} invocations={len(invocations)} lost={EVENTS - len(set(handled))}"
    )
    assert codes == [0, 0]
    assert len(at_stop) < EVENTS, "the stop came after the load, not in the middle of it"
    assert pending == 0
    assert invocations_at_stop == len(at_stop)
    assert sorted(handled) == sorted(e.id for e in events)
    assert len(invocations) == EVENTS
    assert last_code == 0
