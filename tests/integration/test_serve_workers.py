"""`devmesh serve --workers 2` as real processes: both serve the port, metrics count
for both, and the parent stops (and is stopped by) its children."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support.backends import free_port

pytestmark = pytest.mark.integration

DEVMESH = str(Path(sys.executable).parent / "devmesh")
START_S = 60.0


@dataclass
class Served:
    parent: subprocess.Popen[bytes]
    children: list[int]
    base: str
    key: str


def _children(pid: int) -> list[int]:
    found = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return sorted(int(child) for child in found)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    port = free_port()
    env = {**os.environ, "DEVMESH_DATA_DIR": str(tmp_path / "data")}
    env.pop("DEVMESH_DATABASE_URL", None)
    env.pop("DEVMESH_REDIS_URL", None)
    created = subprocess.run(
        [DEVMESH, "tenants", "create", "acme"], env=env, capture_output=True, check=True
    )
    key = json.loads(created.stdout)["api_key"]
    parent = subprocess.Popen(
        [DEVMESH, "serve", "--port", str(port), "--workers", "2"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_S
        while True:
            children = _children(parent.pid) if parent.poll() is None else []
            try:
                ready = httpx.get(f"{base}/readyz", timeout=1).status_code == 200
            except httpx.TransportError:
                ready = False
            if ready and len(children) == 2:
                break
            if parent.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("devmesh serve --workers 2 did not come up")
            time.sleep(0.05)
        yield Served(parent, children, base, key)
    finally:
        if parent.poll() is None:
            parent.send_signal(signal.SIGTERM)
        try:
            parent.wait(timeout=30)
        except subprocess.TimeoutExpired:
            parent.kill()
            parent.wait(timeout=10)
        if parent.stdout:
            parent.stdout.close()


def _tenant(served: Served) -> int:
    # A new connection each time: a kept-alive one would stay with one process.
    headers = {"Authorization": f"Bearer {served.key}", "Connection": "close"}
    return httpx.get(f"{served.base}/api/v1/tenant", headers=headers, timeout=10).status_code


def test_each_worker_process_answers_when_the_other_is_paused(served: Served) -> None:
    for paused in served.children:
        os.kill(paused, signal.SIGSTOP)
        try:
            assert [_tenant(served) for _ in range(3)] == [200, 200, 200]
        finally:
            os.kill(paused, signal.SIGCONT)


def test_metrics_from_either_process_count_the_requests_of_both(served: Served) -> None:
    for paused in served.children:
        os.kill(paused, signal.SIGSTOP)
        try:
            assert _tenant(served) == 200
        finally:
            os.kill(paused, signal.SIGCONT)
    text = httpx.get(f"{served.base}/metrics", timeout=10).text
    line = 'devmesh_http_requests_total{method="GET",route="/api/v1/tenant",status="200"}'
    counts = [row.split()[-1] for row in text.splitlines() if row.startswith(line)]
    assert counts == ["2.0"]


def test_sigterm_drains_both_processes_and_the_parent_exits_0(served: Served) -> None:
    served.parent.send_signal(signal.SIGTERM)
    assert served.parent.wait(timeout=30) == 0
    assert served.parent.stdout is not None
    log = served.parent.stdout.read().decode()
    assert log.count('"event": "stopped"') == 2
    assert "Traceback" not in log


def test_a_worker_that_dies_stops_the_service_with_exit_code_1(served: Served) -> None:
    os.kill(served.children[0], signal.SIGKILL)
    assert served.parent.wait(timeout=30) == 1
    assert not any(Path(f"/proc/{child}").exists() for child in served.children[1:])


def test_sigterm_while_the_workers_are_still_starting_exits_0(tmp_path: Path) -> None:
    env = {**os.environ, "DEVMESH_DATA_DIR": str(tmp_path / "data")}
    env.pop("DEVMESH_DATABASE_URL", None)
    env.pop("DEVMESH_REDIS_URL", None)
    parent = subprocess.Popen(
        [DEVMESH, "serve", "--port", str(free_port()), "--workers", "2"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        assert parent.stdout is not None
        # The parent says so once it has forked both; they are still importing then.
        for line in parent.stdout:
            if b"workers_started" in line:
                break
        parent.send_signal(signal.SIGTERM)
        code = parent.wait(timeout=30)
        assert code == 0, parent.stdout.read().decode()
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait(timeout=10)
        if parent.stdout:
            parent.stdout.close()
