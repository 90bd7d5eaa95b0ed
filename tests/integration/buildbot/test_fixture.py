"""The Buildbot fixture runs a real master + worker answering the REST calls our provider uses."""

from __future__ import annotations

import json
import os
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from tests.support.buildbot import BuildbotServer, run_buildbot

pytestmark = pytest.mark.integration

ERROR_LINE = "ERROR: test_login failed: AssertionError: expected 200, got 500"
CANARY = f"canary-{secrets.token_hex(8)}"
RESULTS_SUCCESS, RESULTS_FAILURE, RESULTS_CANCELLED = 0, 2, 6


@dataclass
class HookReceiver:
    url: str
    posts: list[dict[str, Any]] = field(default_factory=list)


@pytest.fixture(scope="module")
def hook() -> Iterator[HookReceiver]:
    """A loopback HTTP server recording the JSON bodies that HttpStatusPush sends."""
    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            received.append(json.loads(body))
            self.send_response(200)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield HookReceiver(f"http://127.0.0.1:{server.server_address[1]}/hook", received)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture(scope="module")
def buildbot(
    tmp_path_factory: pytest.TempPathFactory, hook: HookReceiver
) -> Iterator[BuildbotServer]:
    # Planted in the test process before the worker starts: it must never reach a build log.
    previous = os.environ.get("DEVMESH_CANARY")
    os.environ["DEVMESH_CANARY"] = CANARY
    try:
        with run_buildbot(tmp_path_factory.mktemp("buildbot"), hook_url=hook.url) as server:
            yield server
    finally:
        if previous is None:
            os.environ.pop("DEVMESH_CANARY", None)
        else:
            os.environ["DEVMESH_CANARY"] = previous


def api_client(server: BuildbotServer) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=server.api_url, timeout=10, trust_env=False)


async def rpc(client: httpx.AsyncClient, path: str, method: str, **params: Any) -> httpx.Response:
    return await client.post(
        path, json={"jsonrpc": "2.0", "method": method, "params": params, "id": 1}
    )


async def builder_id(client: httpx.AsyncClient, name: str) -> int:
    builders = (await client.get("/builders")).json()["builders"]
    return int(next(b["builderid"] for b in builders if b["name"] == name))


async def force(client: httpx.AsyncClient, scheduler: str, builderid: int, **params: Any) -> int:
    """Force a build; returns the build request id."""
    response = await rpc(
        client, f"/forceschedulers/{scheduler}", "force", builderid=builderid, **params
    )
    assert response.status_code == 200, response.text
    bsid, brids = response.json()["result"]
    assert isinstance(bsid, int)
    assert list(brids) == [str(builderid)]  # JSON object: keys are builder ids as strings
    return int(brids[str(builderid)])


async def build_for_request(client: httpx.AsyncClient, brid: int) -> dict[str, Any]:
    with anyio.fail_after(30):
        while True:
            builds = (await client.get("/builds", params={"buildrequestid": brid})).json()
            if builds["builds"]:
                return dict(builds["builds"][0])
            await anyio.sleep(0.05)


async def completed_build(client: httpx.AsyncClient, buildid: int) -> dict[str, Any]:
    with anyio.fail_after(30):
        while True:
            build = (await client.get(f"/builds/{buildid}")).json()["builds"][0]
            if build["complete"]:
                return dict(build)
            await anyio.sleep(0.05)


async def raw_logs(client: httpx.AsyncClient, buildid: int) -> dict[str, str]:
    """Raw text of every log of a build, keyed by step name."""
    texts: dict[str, str] = {}
    for step in (await client.get(f"/builds/{buildid}/steps")).json()["steps"]:
        for log in (await client.get(f"/steps/{step['stepid']}/logs")).json()["logs"]:
            raw = await client.get(f"/logs/{log['logid']}/raw")
            assert raw.status_code == 200
            texts[f"{step['name']}/{log['slug']}"] = raw.text
    return texts


def _stat_fields(pid: int) -> list[str] | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name may contain spaces; it ends at the last ')'.
    return stat[stat.rindex(")") + 2 :].split()


def cmdline(pid: int) -> list[bytes]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\x00")[:-1]
    except OSError:
        return []


def descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        fields = _stat_fields(int(entry.name)) if entry.name.isdigit() else None
        if fields is not None:
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        kids = children.get(todo.pop(), [])
        found += kids
        todo += kids
    return found


def process_alive(pid: int) -> bool:
    fields = _stat_fields(pid)
    return fields is not None and fields[0] != "Z"


@pytest.mark.anyio
async def test_the_worker_is_connected_once_the_fixture_yields(buildbot: BuildbotServer) -> None:
    async with api_client(buildbot) as client:
        workers = (await client.get("/workers")).json()["workers"]
    assert [w["name"] for w in workers] == [buildbot.worker_name]
    assert workers[0]["connected_to"]
    assert buildbot.api_url == f"{buildbot.base_url}/api/v2"


@pytest.mark.anyio
async def test_each_force_scheduler_names_the_builders_it_can_start(
    buildbot: BuildbotServer,
) -> None:
    async with api_client(buildbot) as client:
        schedulers = (await client.get("/forceschedulers")).json()["forceschedulers"]
        lint_id = await builder_id(client, "lint")
        for_lint = (await client.get(f"/builders/{lint_id}/forceschedulers")).json()
    assert {s["name"]: s["builder_names"] for s in schedulers} == {
        "force": ["runtests"],
        "force-lint": ["lint"],
        "release": ["package", "runtests"],
    }
    assert [s["name"] for s in for_lint["forceschedulers"]] == ["force-lint"]


@pytest.mark.anyio
async def test_a_build_asked_to_fail_ends_as_failure_with_the_error_line_in_its_log(
    buildbot: BuildbotServer,
) -> None:
    async with api_client(buildbot) as client:
        runtests = await builder_id(client, "runtests")
        brid = await force(client, "force", runtests, reason="fail please", fail=True)
        build = await completed_build(client, (await build_for_request(client, brid))["buildid"])
        assert build["results"] == RESULTS_FAILURE
        assert build["builderid"] == runtests

        steps = (await client.get(f"/builds/{build['buildid']}/steps")).json()["steps"]
        assert [s["name"] for s in steps] == ["worker_preparation", "prepare", "test"]
        failing = next(s for s in steps if s["results"] == RESULTS_FAILURE)
        logs = (await client.get(f"/steps/{failing['stepid']}/logs")).json()["logs"]
        assert [log["slug"] for log in logs] == ["stdio"]
        chunks = (await client.get(f"/logs/{logs[0]['logid']}/contents")).json()["logchunks"]
    lines = "".join(chunk["content"] for chunk in chunks).splitlines()
    # stdio log lines carry a one-character stream prefix: o stdout, e stderr, h header.
    assert "efailing on purpose" in lines
    assert f"e{ERROR_LINE}" in lines
    assert "hprogram finished with exit code 3" in lines


@pytest.mark.anyio
async def test_a_successful_build_runs_every_step_and_echoes_the_reason(
    buildbot: BuildbotServer,
) -> None:
    reason = 'it\'s a "quoted" reason; echo nope'
    async with api_client(buildbot) as client:
        runtests = await builder_id(client, "runtests")
        brid = await force(client, "force", runtests, reason=reason)
        build = await completed_build(client, (await build_for_request(client, brid))["buildid"])
        logs = await raw_logs(client, build["buildid"])
    assert build["results"] == RESULTS_SUCCESS
    assert list(logs) == ["prepare/stdio", "test/stdio", "report/stdio"]
    assert f"\nreason={reason}\n" in logs["prepare/stdio"]
    assert "\n3 passed\n" in logs["test/stdio"]


@pytest.mark.anyio
async def test_build_logs_do_not_contain_variables_from_the_test_process_environment(
    buildbot: BuildbotServer,
) -> None:
    assert os.environ["DEVMESH_CANARY"] == CANARY
    async with api_client(buildbot) as client:
        runtests = await builder_id(client, "runtests")
        brid = await force(client, "force", runtests, reason="canary", fail=True)
        build = await completed_build(client, (await build_for_request(client, brid))["buildid"])
        logs = await raw_logs(client, build["buildid"])
    assert logs, "the build produced no logs"
    for text in logs.values():
        # The header does list the environment, so the check is not vacuous...
        assert " environment:\n" in text
        assert "  PATH=/usr/bin:/bin\n" in text
        # ...but only the minimal one the fixture gave the worker.
        assert CANARY not in text
        assert "DEVMESH_CANARY" not in text


@pytest.mark.anyio
async def test_stopping_a_running_build_and_cancelling_a_queued_request_both_end_cancelled(
    buildbot: BuildbotServer,
) -> None:
    async with api_client(buildbot) as client:
        runtests = await builder_id(client, "runtests")
        running_brid = await force(client, "force", runtests, reason="long", sleep="30")
        running = await build_for_request(client, running_brid)
        queued_brid = await force(client, "force", runtests, reason="queued behind")

        cancel = await rpc(client, f"/buildrequests/{queued_brid}", "cancel", reason="not needed")
        assert cancel.json() == {"id": 1, "jsonrpc": "2.0", "result": None}
        with anyio.fail_after(10):
            while True:
                request = (await client.get(f"/buildrequests/{queued_brid}")).json()
                if request["buildrequests"][0]["complete"]:
                    break
                await anyio.sleep(0.05)
        assert request["buildrequests"][0]["results"] == RESULTS_CANCELLED
        assert (await client.get("/builds", params={"buildrequestid": queued_brid})).json()[
            "builds"
        ] == []

        started = time.monotonic()
        stop = await rpc(client, f"/builds/{running['buildid']}", "stop", reason="stopped by test")
        assert stop.json()["result"] is None
        stopped = await completed_build(client, running["buildid"])
    assert stopped["results"] == RESULTS_CANCELLED
    assert "stopped by test" in stopped["state_string"]
    assert time.monotonic() - started < 10


@pytest.mark.anyio
async def test_rebuilding_a_build_starts_a_new_request_with_the_same_properties(
    buildbot: BuildbotServer,
) -> None:
    async with api_client(buildbot) as client:
        runtests = await builder_id(client, "runtests")
        brid = await force(client, "force", runtests, reason="original", fail=True)
        first = await completed_build(client, (await build_for_request(client, brid))["buildid"])

        response = await rpc(client, f"/builds/{first['buildid']}", "rebuild")
        _bsid, brids = response.json()["result"]
        second = await completed_build(
            client, (await build_for_request(client, brids[str(runtests)]))["buildid"]
        )
        props = (await client.get(f"/builds/{second['buildid']}", params={"property": "*"})).json()[
            "builds"
        ][0]["properties"]
        newest = (
            await client.get(
                "/builds", params={"builderid": runtests, "order": "-buildid", "limit": 2}
            )
        ).json()["builds"]
    assert second["buildid"] != first["buildid"]
    assert second["results"] == RESULTS_FAILURE
    assert props["reason"] == ["original", "Force Build Form"]
    assert props["fail"] == [True, "Force Build Form"]
    assert [b["buildid"] for b in newest] == [second["buildid"], first["buildid"]]


@pytest.mark.anyio
async def test_the_status_hook_receives_the_build_at_start_and_at_completion(
    buildbot: BuildbotServer, hook: HookReceiver
) -> None:
    async with api_client(buildbot) as client:
        lint = await builder_id(client, "lint")
        brid = await force(client, "force-lint", lint, reason="hooked")
        build = await completed_build(client, (await build_for_request(client, brid))["buildid"])
    with anyio.fail_after(10):
        while True:
            mine = [p for p in hook.posts if p.get("buildid") == build["buildid"]]
            if any(p["complete"] for p in mine):
                break
            await anyio.sleep(0.05)
    assert [p["complete"] for p in mine] == [False, True]
    final = mine[-1]
    assert final["results"] == RESULTS_SUCCESS
    assert final["builder"]["name"] == "lint"
    assert final["url"] == f"{buildbot.base_url}/#/builders/{lint}/builds/{build['number']}"


@pytest.mark.anyio
async def test_with_auth_only_a_logged_in_admin_may_force_a_build(tmp_path: Path) -> None:
    with run_buildbot(tmp_path, auth=("admin", "s3cret")) as server:
        async with api_client(server) as anonymous:
            runtests = await builder_id(anonymous, "runtests")  # reading stays anonymous
            refused = await rpc(anonymous, "/forceschedulers/force", "force", builderid=runtests)
        assert refused.status_code == 403
        assert refused.json()["error"]["message"] == "you need to have role 'admins'"

        async with httpx.AsyncClient(
            base_url=server.base_url, timeout=10, trust_env=False, auth=("admin", "wrong")
        ) as client:
            assert (await client.get("/auth/login")).status_code == 401

        async with httpx.AsyncClient(
            base_url=server.base_url, timeout=10, trust_env=False, auth=("admin", "s3cret")
        ) as client:
            login = await client.get("/auth/login")
            assert login.status_code == 302
            assert "TWISTED_SESSION" in client.cookies
            allowed = await rpc(
                client, "/api/v2/forceschedulers/force", "force", builderid=runtests
            )
        assert allowed.status_code == 200
        assert len(allowed.json()["result"]) == 2


@pytest.mark.anyio
async def test_leaving_the_context_stops_master_worker_and_a_running_build(
    tmp_path: Path,
) -> None:
    with run_buildbot(tmp_path) as server:
        async with api_client(server) as client:
            runtests = await builder_id(client, "runtests")
            brid = await force(client, "force", runtests, reason="left running", sleep="300")
            await build_for_request(client, brid)
            with anyio.fail_after(10):
                while True:  # wait until the step's shell is really running on the worker
                    pids = [
                        pid
                        for pid in descendants(server.worker_pid)
                        if cmdline(pid) == [b"sleep", b"300"]
                    ]
                    if pids:
                        break
                    await anyio.sleep(0.05)
    assert not process_alive(server.worker_pid)
    assert not process_alive(server.master_pid)
    assert not any(process_alive(pid) for pid in pids)
    assert server.timings["teardown"] < 20
