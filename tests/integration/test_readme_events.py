"""The README's events tour, run for real: ``devmesh serve`` as a process, a real Buildbot
master pushing with the README's ``HttpStatusPush`` (tests/support/buildbot/master.cfg), and
``GET /api/v1/events`` listing what the README shows."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.backends import free_port
from tests.support.buildbot.server import MASTER_CFG, run_buildbot

pytestmark = pytest.mark.integration

DEVMESH = str(Path(sys.executable).parent / "devmesh")
README = (Path(__file__).parents[2] / "README.md").read_text()
WAIT = 90.0


def tour_block(language: str, containing: str) -> str:
    """The README's fenced ``language`` block that contains ``containing``."""
    blocks = re.findall(rf"```{language}\n(.*?)```", README, flags=re.DOTALL)
    return next(block for block in blocks if containing in block)


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    port = free_port()
    env = {**os.environ, "DEVMESH_DATA_DIR": str(tmp_path / "data")}
    env.pop("DEVMESH_DATABASE_URL", None)
    process = subprocess.Popen(
        [DEVMESH, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
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
            assert process.poll() is None and time.monotonic() < deadline, "serve did not start"
            time.sleep(0.05)
        yield base, env
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def test_the_readme_master_cfg_is_the_one_the_tests_run() -> None:
    snippet = tour_block("python", "HttpStatusPush")
    ours = MASTER_CFG.read_text()
    for part in (
        "reporters.HttpStatusPush(",
        'auth=("devmesh", ',
        "reporters.BuildStatusGenerator(",
        'mode="all"',
        "report_new=True",
        'lambda ctx: ctx["build"], "json"',
    ):
        assert part in snippet and part in ours, part


def test_a_buildbot_master_pushes_and_the_events_list_shows_what_the_readme_shows(
    serve: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    base, env = serve
    created = subprocess.run(
        [DEVMESH, "tenants", "create", "acme"], env=env, capture_output=True, check=True
    )
    bearer = {"Authorization": f"Bearer {json.loads(created.stdout)['api_key']}"}
    with httpx.Client(base_url=base, headers=bearer, timeout=60) as http:
        # The master's port is known once it runs, and it needs the hook's URL to start.
        tool = http.post(
            "/api/v1/tools",
            json={"name": "ci", "provider": "buildbot", "base_url": "http://127.0.0.1:9"},
        )
        assert tool.status_code == 201, tool.text
        hook = http.put("/api/v1/tools/ci/webhook", json={})
        assert hook.status_code == 200, hook.text
        answer = hook.json()
        assert answer["url_path"] == f"/api/v1/webhooks/{tool.json()['id']}"
        with run_buildbot(
            tmp_path / "buildbot",
            hook_url=base + answer["url_path"],
            hook_password=answer["secret"],
        ) as master:
            moved = http.patch("/api/v1/tools/ci", json={"base_url": master.base_url})
            assert moved.status_code == 200, moved.text
            triggered = http.post(
                "/api/v1/tools/ci/operations/trigger_build", json={"project": "runtests"}
            )
            assert triggered.status_code == 200, triggered.text
            subject = triggered.json()["id"]
            events = _until_completed(http, subject)

    # The README's output is abbreviated (ids, "…"): its types, sources and subject rule
    # are what must hold.
    readme = tour_block("json", '"build.triggered"')
    assert [e["type"] for e in events] == re.findall(r'"type": "([a-z.]+)"', readme)
    assert re.findall(r'"subject": "([^"]+)"', readme) == ["br-1"] * len(events)
    assert {e["subject"] for e in events} == {subject} and subject.startswith("br-")
    assert events[0]["source"] == "tool_call"
    assert {e["source"] for e in events[1:]} <= {"webhook", "poll"}
    assert events[-1]["payload"]["status"] == "succeeded"


def _until_completed(http: httpx.Client, subject: str) -> list[dict[str, Any]]:
    deadline = time.monotonic() + WAIT
    while True:
        listed = http.get("/api/v1/events", params={"tool": "ci", "subject": subject})
        assert listed.status_code == 200, listed.text
        events: list[dict[str, Any]] = listed.json()["events"]
        if any(e["type"] == "build.completed" for e in events):
            # A duplicate, were one coming, would show by now.
            time.sleep(1.0)
            again: list[dict[str, Any]] = http.get(
                "/api/v1/events", params={"tool": "ci", "subject": subject}
            ).json()["events"]
            return again
        assert time.monotonic() < deadline, f"only {[e['type'] for e in events]}"
        time.sleep(0.2)
