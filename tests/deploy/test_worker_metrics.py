"""`devmesh worker --metrics-port`: a worker's own metrics, for Prometheus to scrape."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.support.backends import free_port

pytestmark = pytest.mark.integration

DEVMESH = str(Path(sys.executable).parent / "devmesh")


def test_a_worker_serves_its_metrics_until_sigterm_then_exits_0(tmp_path: Path) -> None:
    env = {**os.environ, "DEVMESH_DATA_DIR": str(tmp_path / "data"), "DEVMESH_HOST": "127.0.0.1"}
    for name in ("DEVMESH_DATABASE_URL", "DEVMESH_REDIS_URL", "DEVMESH_CONFIG"):
        env.pop(name, None)
    port = free_port()
    url = f"http://127.0.0.1:{port}/metrics"
    with (tmp_path / "worker.log").open("wb") as log:
        worker = subprocess.Popen(
            [DEVMESH, "worker", "--metrics-port", str(port)], env=env, stdout=log, stderr=log
        )
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                scraped = httpx.get(url, timeout=1)
                break
            except httpx.TransportError:
                assert worker.poll() is None, (tmp_path / "worker.log").read_text()
                assert time.monotonic() < deadline, "no metrics endpoint"
                time.sleep(0.05)
        # The worker records the queue's figures on its first cycle.
        while "devmesh_events_queue_depth 0.0" not in scraped.text:
            assert time.monotonic() < deadline, scraped.text
            time.sleep(0.1)
            scraped = httpx.get(url, timeout=1)
        assert "devmesh_events_dead_letters" in scraped.text
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=30) == 0
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait(timeout=10)
    with pytest.raises(httpx.TransportError):
        httpx.get(url, timeout=1)


def test_a_metrics_port_already_taken_is_one_line_and_exit_1(tmp_path: Path) -> None:
    env = {**os.environ, "DEVMESH_DATA_DIR": str(tmp_path / "data"), "DEVMESH_HOST": "127.0.0.1"}
    for name in ("DEVMESH_DATABASE_URL", "DEVMESH_REDIS_URL", "DEVMESH_CONFIG"):
        env.pop(name, None)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [DEVMESH, "worker", "--metrics-port", str(port)],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1
    assert f"cannot serve metrics on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr
