"""The processes a run starts and stops: Developer Mesh (``devmesh serve``) and the FastMCP peer."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import httpx2

from tests.support.backends import free_port, start_postgres, start_redis
from tests.upstream import Upstream, listening_socket

HOST = "127.0.0.1"
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 15.0
# The peer runs from the benchmark's own script, with --serve-fastmcp.
_ENTRY = Path(__file__).resolve().parents[1] / "call_overhead.py"


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its children (``serve --workers N``), all
    threads, from /proc (10 ms resolution)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return math.nan
    fields = stat[stat.rindex(")") + 2 :].split()
    own = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return own + sum(cpu_seconds(int(child)) for child in children)


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM by PID, then SIGKILL if it will not go; always reaped."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
            return
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=STOP_TIMEOUT_S)


def spawn(
    argv: list[str], *, work: Path, log: str, env: dict[str, str] | None = None, pipe: bool = False
) -> subprocess.Popen[bytes]:
    """Start a process in ``work`` (made here), its stderr (and stdout unless piped) to ``log``.

    Blocking, and called from async code on purpose: start-up is outside every measured
    phase, so holding the event loop for a moment costs no measurement anything.
    """
    work.mkdir(parents=True, exist_ok=True)
    with (work / log).open("wb") as out:
        return subprocess.Popen(
            argv, env=env, cwd=work, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE if pipe else out, stderr=out,
        )  # fmt: skip


@dataclass(frozen=True)
class Gateway:
    """A gateway under test: its process and where to call it."""

    name: str
    base_url: str
    pid: int
    api_key: str = ""


def _devmesh_env(data_dir: Path, **settings: str) -> dict[str, str]:
    # Only the settings named here: a DEVMESH_* variable of the caller's shell must not
    # change what is measured.
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEVMESH_")}
    env["DEVMESH_DATA_DIR"] = str(data_dir)
    # One key makes every call here; the per-key inbound limit (600/min by default)
    # would measure the limit, not the gateway.
    env["DEVMESH_RATE_LIMIT__REQUESTS_PER_MINUTE"] = ""
    env.update({f"DEVMESH_{key.upper()}": value for key, value in settings.items()})
    return env


def _devmesh_cli(env: dict[str, str], cwd: Path, *args: str) -> Any:
    exe = Path(sys.executable).with_name("devmesh")
    done = subprocess.run(
        [str(exe), *args], env=env, cwd=cwd, capture_output=True, timeout=60, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"devmesh {' '.join(args)} failed: {done.stderr.decode()}")
    return json.loads(done.stdout)


@asynccontextmanager
async def run_devmesh(
    upstream: Upstream | None, work: Path, *, workers: int = 1, **settings: str
) -> AsyncIterator[Gateway]:
    """``devmesh serve --workers N`` with a tenant, a key and (with an upstream) tool
    ``ci``; stopped by PID on exit."""
    work.mkdir(parents=True)  # noqa: ASYNC240 (set-up, before anything is measured)
    # The working directory has no configs/config.yaml, so only defaults and env count.
    env = _devmesh_env(work / "data", **settings)
    tenant = _devmesh_cli(env, work, "tenants", "create", "bench")
    key = _devmesh_cli(env, work, "keys", "create", tenant["tenant_id"], "--name", "bench")
    port = free_port()
    serve = [str(Path(sys.executable).with_name("devmesh")), "serve", "--port", str(port)]
    serve += ["--workers", str(workers)]
    process = spawn(serve, work=work, log="service.log", env=env)
    try:
        base_url = f"http://{HOST}:{port}"
        headers = {"Authorization": f"Bearer {key['api_key']}"}
        async with httpx.AsyncClient(base_url=base_url, trust_env=False, timeout=10) as http:
            await _until_ready(http, "/readyz", process, work / "service.log", "devmesh")
            if upstream is not None:
                made = await http.post(
                    "/api/v1/tools",
                    headers=headers,
                    json={"name": "ci", "provider": "buildbot", "base_url": upstream.base_url},
                )
                if made.status_code != 201:
                    raise RuntimeError(
                        f"registering tool ci failed: {made.status_code} {made.text}"
                    )
        yield Gateway("devmesh", base_url, process.pid, key["api_key"])
    finally:
        stop(process)


async def _until_ready(
    http: httpx.AsyncClient, path: str, process: subprocess.Popen[bytes], log: Path, what: str
) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}:\n{tail(log)}")
        with contextlib.suppress(httpx.TransportError):
            if (await http.get(path)).status_code < 500:
                return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} not ready in {START_TIMEOUT_S}s:\n{tail(log)}")
        await asyncio.sleep(0.1)


@contextlib.contextmanager
def postgres_and_redis() -> Iterator[tuple[str, str]]:
    """URLs from DEVMESH_TEST_POSTGRES_URL / DEVMESH_TEST_REDIS_URL, or servers started here."""
    with contextlib.ExitStack() as stack:
        pg = (
            os.environ.get("DEVMESH_TEST_POSTGRES_URL")
            or stack.enter_context(start_postgres()).sqlalchemy_url()
        )
        redis = os.environ.get("DEVMESH_TEST_REDIS_URL") or stack.enter_context(start_redis()).url
        yield pg, redis


@asynccontextmanager
async def run_fastmcp(upstream: Upstream, work: Path) -> AsyncIterator[Gateway]:
    """The peer: this file with ``--serve-fastmcp``, in a process of its own."""
    log = work / "fastmcp.log"
    peer = [sys.executable, str(_ENTRY), "--serve-fastmcp", upstream.base_url]
    process = spawn(peer, work=work, log=log.name, pipe=True)
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(process.stdout.readline), START_TIMEOUT_S)
        match = re.fullmatch(rb"listening on (http://\S+)\s*", line)
        if match is None:
            raise RuntimeError(f"FastMCP peer did not start ({line!r}):\n{tail(log)}")
        base_url = match.group(1).decode()
        async with httpx.AsyncClient(base_url=base_url, trust_env=False, timeout=10) as http:
            await _until_ready(http, "/mcp", process, log, "FastMCP peer")
        yield Gateway("fastmcp", base_url, process.pid)
    finally:
        stop(process)


def serve_fastmcp(upstream_url: str) -> None:
    """Run FastMCP's OpenAPI proxy of the upstream; print the address, serve until killed."""
    from fastmcp import FastMCP

    async def serve() -> None:
        async with httpx2.AsyncClient(base_url=upstream_url, trust_env=False, timeout=30) as http:
            spec = (await http.get("/openapi.json")).json()
            server = FastMCP.from_openapi(spec, client=http, name="buildbot-peer")
            sock = listening_socket()
            print(f"listening on http://{HOST}:{sock.getsockname()[1]}", flush=True)
            # The same transport choices as Developer Mesh's /mcp (stateless, JSON
            # answers), so the comparison is of the gateways, not of transport modes.
            await server.run_http_async(
                show_banner=False,
                transport="http",
                host=HOST,
                sockets=[sock],
                stateless_http=True,
                json_response=True,
                log_level="warning",
            )

    asyncio.run(serve())
