"""`devmesh serve` as a real process: the README's first minutes, and a clean stop."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.backends import free_port

pytestmark = pytest.mark.integration

DEVMESH = str(Path(sys.executable).parent / "devmesh")


@pytest.fixture
def service(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], str, dict[str, str]]]:
    port = free_port()
    env = {**os.environ, "DEVMESH_DATA_DIR": str(tmp_path / "data")}
    env.pop("DEVMESH_DATABASE_URL", None)
    process = subprocess.Popen(
        [DEVMESH, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"devmesh serve did not come up: {process.stdout}")
            time.sleep(0.05)
        yield process, base, env
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)
        if process.stdout:
            process.stdout.close()


def test_fresh_data_dir_then_a_tenant_key_reaches_the_api(
    service: tuple[subprocess.Popen[bytes], str, dict[str, str]],
) -> None:
    _, base, env = service
    created = subprocess.run(
        [DEVMESH, "tenants", "create", "acme"], env=env, capture_output=True, check=True
    )
    key = json.loads(created.stdout)["api_key"]
    assert httpx.get(f"{base}/api/v1/tenant").status_code == 401
    seen = httpx.get(f"{base}/api/v1/tenant", headers={"Authorization": f"Bearer {key}"})
    assert seen.json()["name"] == "acme"


def test_sigterm_stops_the_service_cleanly_with_exit_code_0(
    service: tuple[subprocess.Popen[bytes], str, dict[str, str]],
) -> None:
    process, base, _ = service
    assert httpx.get(f"{base}/readyz").status_code == 200
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=20) == 0
    assert process.stdout is not None
    log = process.stdout.read().decode()
    assert '"event": "stopped"' in log
    assert "Traceback" not in log
