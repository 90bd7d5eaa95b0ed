"""`devmesh serve --apply`: the declared tools are in place before the service answers."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.support.backends import free_port

pytestmark = pytest.mark.integration

DEVMESH = str(Path(sys.executable).parent / "devmesh")
DECLARED = """
tenant: acme
adapters:
  ci:
    nightly:
      provider: buildbot
      url: http://buildbot.example.com:8010
      token: ${BUILDBOT_TOKEN}
"""


def test_serve_with_apply_applies_the_file_at_start(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(DECLARED)
    env = {
        **os.environ,
        "DEVMESH_DATA_DIR": str(tmp_path / "data"),
        "DEVMESH_CONFIG": str(config),
        "BUILDBOT_TOKEN": "bb-token-never-printed",
    }
    env.pop("DEVMESH_DATABASE_URL", None)
    subprocess.run([DEVMESH, "tenants", "create", "acme"], env=env, check=True, capture_output=True)
    port = free_port()
    process = subprocess.Popen(
        [DEVMESH, "serve", "--apply", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None, "devmesh serve --apply stopped"
            assert time.monotonic() < deadline, "devmesh serve --apply did not come up"
            time.sleep(0.05)
        again = subprocess.run(
            [DEVMESH, "apply", "--dry-run"], env=env, capture_output=True, text=True, timeout=60
        )
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=15)
    assert again.stdout.splitlines()[0] == "unchanged acme/nightly"
    assert b"create    acme/nightly (buildbot)" in output
    assert b"bb-token-never-printed" not in output
