"""Gateway overhead: what Developer Mesh adds to one upstream read, over REST and MCP.

One run starts a canned Buildbot upstream (``tests/upstream/``), Developer Mesh
(``devmesh serve``, a subprocess on its embedded default: SQLite, no Redis) with a
tenant, an API key and a Buildbot tool ``ci`` pointing at the upstream, and a peer:
FastMCP's OpenAPI proxy (``FastMCP.from_openapi``) of the same upstream, also a
subprocess. Then, for the same read (build 1's status, one ``GET /api/v2/builds/1``
upstream), it measures

* ``direct``: the upstream itself, with httpx;
* ``rest``: ``POST /api/v1/tools/ci/operations/get_build_status``;
* ``mcp``: ``tools/call ci.get_build_status`` with the official SDK client over
  Streamable HTTP, one client session per concurrent worker (an agent keeps its
  session), plus one row of a new session per call, at concurrency 1;
* ``fastmcp``: ``tools/call get_build`` on the FastMCP proxy, same client, same way;

at concurrency 1, 8 and 32, after a warm-up, every phase bounded in calls and in
seconds. Then it runs direct, rest and mcp again with Developer Mesh on PostgreSQL
and Redis (``--skip-postgres`` leaves that out). The table shows p50/p99 latency,
what rest/mcp/fastmcp add over direct at the same concurrency, calls per second,
and CPU per call of the gateway process and of this client. If a target is missed
(added p50 ≤ 2 ms REST, ≤ 5 ms MCP; MCP calls/s ≥ 3x FastMCP's at concurrency 8),
the service is profiled with py-spy under MCP and REST load and the hottest code is
printed. The last line is machine-readable:

    overhead rest_p50_ms=… mcp_p50_ms=… mcp_rps_c8=… fastmcp_rps_c8=…

(added p50 at concurrency 1 and calls/s at concurrency 8, embedded default).

Run: ``uv run --group bench python bench/call_overhead.py`` (see docs/performance.md).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tests.support.backends import free_port, fresh_postgres_database, start_postgres, start_redis
from tests.upstream import Upstream, listening_socket, run_upstream

HOST = "127.0.0.1"
PROPERTIES = ["branch", "revision", "got_revision"]  # what the adapter asks for
BUILD_PATH = "/api/v2/builds/1"
CALL_TIMEOUT_S = 10.0
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 15.0
SESSION_PER_CALL_MAX = 300  # each such call is three HTTP exchanges; keep the row short
TARGET_REST_MS = 2.0
TARGET_MCP_MS = 5.0
TARGET_RPS_RATIO = 3.0

Call = Callable[[], Awaitable[None]]
Worker = Callable[[], AbstractAsyncContextManager[Call]]


class CallFailed(Exception):
    """A call that answered, but not with the build."""


# --- processes -------------------------------------------------------------------------


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of a process, all threads, from /proc (10 ms resolution)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return math.nan
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _stop(process: subprocess.Popen[bytes]) -> None:
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


def _spawn(
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
async def run_devmesh(upstream: Upstream, work: Path, **settings: str) -> AsyncIterator[Gateway]:
    """``devmesh serve`` with a tenant, a key and tool ``ci``; stopped by PID on exit."""
    work.mkdir(parents=True)  # noqa: ASYNC240 (set-up, before anything is measured)
    # The working directory has no configs/config.yaml, so only defaults and env count.
    env = _devmesh_env(work / "data", **settings)
    tenant = _devmesh_cli(env, work, "tenants", "create", "bench")
    key = _devmesh_cli(env, work, "keys", "create", tenant["tenant_id"], "--name", "bench")
    port = free_port()
    serve = [str(Path(sys.executable).with_name("devmesh")), "serve", "--port", str(port)]
    process = _spawn(serve, work=work, log="service.log", env=env)
    try:
        base_url = f"http://{HOST}:{port}"
        headers = {"Authorization": f"Bearer {key['api_key']}"}
        async with httpx.AsyncClient(base_url=base_url, trust_env=False, timeout=10) as http:
            await _until_ready(http, "/readyz", process, work / "service.log", "devmesh")
            made = await http.post(
                "/api/v1/tools",
                headers=headers,
                json={"name": "ci", "provider": "buildbot", "base_url": upstream.base_url},
            )
            if made.status_code != 201:
                raise RuntimeError(f"registering tool ci failed: {made.status_code} {made.text}")
        yield Gateway("devmesh", base_url, process.pid, key["api_key"])
    finally:
        _stop(process)


async def _until_ready(
    http: httpx.AsyncClient, path: str, process: subprocess.Popen[bytes], log: Path, what: str
) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}:\n{_tail(log)}")
        with contextlib.suppress(httpx.TransportError):
            if (await http.get(path)).status_code < 500:
                return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} not ready in {START_TIMEOUT_S}s:\n{_tail(log)}")
        await asyncio.sleep(0.1)


@asynccontextmanager
async def run_fastmcp(upstream: Upstream, work: Path) -> AsyncIterator[Gateway]:
    """The peer: this file with ``--serve-fastmcp``, in a process of its own."""
    log = work / "fastmcp.log"
    peer = [sys.executable, __file__, "--serve-fastmcp", upstream.base_url]
    process = _spawn(peer, work=work, log=log.name, pipe=True)
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(process.stdout.readline), START_TIMEOUT_S)
        match = re.fullmatch(rb"listening on (http://\S+)\s*", line)
        if match is None:
            raise RuntimeError(f"FastMCP peer did not start ({line!r}):\n{_tail(log)}")
        base_url = match.group(1).decode()
        async with httpx.AsyncClient(base_url=base_url, trust_env=False, timeout=10) as http:
            await _until_ready(http, "/mcp", process, log, "FastMCP peer")
        yield Gateway("fastmcp", base_url, process.pid)
    finally:
        _stop(process)


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


# --- calls -------------------------------------------------------------------------------


def _shared(call: Call) -> Worker:
    """Workers that share one pooled client, as a program with one httpx client does."""

    @asynccontextmanager
    async def worker() -> AsyncIterator[Call]:
        yield call

    return worker


def direct_calls(http: httpx.AsyncClient) -> Worker:
    async def call() -> None:
        answer = await http.get(BUILD_PATH, params={"property": PROPERTIES})
        if answer.status_code != 200 or not answer.json()["builds"]:
            raise CallFailed(f"HTTP {answer.status_code}")

    return _shared(call)


def rest_calls(http: httpx.AsyncClient, api_key: str) -> Worker:
    headers = {"Authorization": f"Bearer {api_key}"}

    async def call() -> None:
        answer = await http.post(
            "/api/v1/tools/ci/operations/get_build_status",
            json={"build_id": "1"},
            headers=headers,
        )
        if answer.status_code != 200 or answer.json()["status"] != "succeeded":
            raise CallFailed(f"HTTP {answer.status_code}: {answer.text[:200]}")

    return _shared(call)


@asynccontextmanager
async def mcp_session(url: str, headers: dict[str, str]) -> AsyncIterator[Client]:
    async with (
        httpx2.AsyncClient(headers=headers, timeout=CALL_TIMEOUT_S, trust_env=False) as http,
        Client(streamable_http_client(url, http_client=http)) as client,
    ):
        yield client


async def _call_tool(client: Client, tool: str, arguments: dict[str, Any]) -> None:
    result = await client.call_tool(tool, arguments, read_timeout_seconds=CALL_TIMEOUT_S)
    if result.is_error:
        raise CallFailed(str(result.content)[:200])


def mcp_calls(url: str, headers: dict[str, str], tool: str, arguments: dict[str, Any]) -> Worker:
    """One session per worker, opened before the clock starts and kept for every call."""

    @asynccontextmanager
    async def worker() -> AsyncIterator[Call]:
        async with mcp_session(url, headers) as client:

            async def call() -> None:
                await _call_tool(client, tool, arguments)

            yield call

    return worker


def mcp_session_per_call(
    url: str, headers: dict[str, str], tool: str, arguments: dict[str, Any]
) -> Worker:
    """A new MCP session for every call (discover, list tools, call) over one HTTP client.

    The HTTP client is shared, as a program keeps one: a new httpx client per call
    would add its own set-up (an SSL context) to what is measured.
    """

    @asynccontextmanager
    async def worker() -> AsyncIterator[Call]:
        async with httpx2.AsyncClient(
            headers=headers, timeout=CALL_TIMEOUT_S, trust_env=False
        ) as http:

            async def call() -> None:
                async with Client(streamable_http_client(url, http_client=http)) as client:
                    await _call_tool(client, tool, arguments)

            yield call

    return worker


# --- measuring ----------------------------------------------------------------------------


def _percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return math.nan
    return sorted_values[max(0, math.ceil(q * len(sorted_values)) - 1)]


@dataclass
class Result:
    backend: str
    path: str
    concurrency: int
    calls: int = 0
    errors: int = 0
    wall_s: float = 0.0
    latencies: list[float] = field(default_factory=list)
    gateway_cpu_s: float = math.nan
    client_cpu_s: float = math.nan
    upstream_requests: int = 0
    first_error: str = ""

    @property
    def p50_ms(self) -> float:
        return _percentile(self.latencies, 0.50) * 1000

    @property
    def p99_ms(self) -> float:
        return _percentile(self.latencies, 0.99) * 1000

    @property
    def rps(self) -> float:
        return self.calls / self.wall_s if self.wall_s else math.nan


async def run_phase(
    worker: Worker,
    *,
    concurrency: int,
    requests: int,
    seconds: float,
    result: Result,
    gateway_pid: int | None = None,
    upstream: Upstream | None = None,
) -> Result:
    """``requests`` calls over ``concurrency`` workers, stopping early after ``seconds``."""
    async with AsyncExitStack() as stack:
        calls = [await stack.enter_async_context(worker()) for _ in range(concurrency)]
        if upstream is not None:
            await upstream.reset_stats()
        issued = 0
        latencies: list[float] = []
        gateway_before = _cpu_seconds(gateway_pid) if gateway_pid else math.nan
        client_before = time.process_time()
        started = time.perf_counter()
        deadline = time.monotonic() + seconds

        async def loop(call: Call) -> None:
            nonlocal issued
            while issued < requests and time.monotonic() < deadline:
                issued += 1
                t0 = time.perf_counter()
                try:
                    async with asyncio.timeout(CALL_TIMEOUT_S):
                        await call()
                except Exception as exc:  # any failure is counted and shown, never fatal
                    result.errors += 1
                    result.first_error = result.first_error or f"{type(exc).__name__}: {exc}"
                else:
                    latencies.append(time.perf_counter() - t0)

        # The whole phase is bounded too: a stuck call cannot outlive its own timeout.
        async with asyncio.timeout(seconds + CALL_TIMEOUT_S + 5):
            await asyncio.gather(*(loop(call) for call in calls))
        result.wall_s = time.perf_counter() - started
        result.client_cpu_s = time.process_time() - client_before
        if gateway_pid:
            result.gateway_cpu_s = _cpu_seconds(gateway_pid) - gateway_before
        if upstream is not None:
            result.upstream_requests = (await upstream.stats()).total
    result.latencies = sorted(latencies)
    result.calls = len(latencies)
    return result


@dataclass
class Bench:
    args: argparse.Namespace
    upstream: Upstream
    results: list[Result] = field(default_factory=list)

    async def sweep(
        self, backend: str, path: str, worker: Worker, gateway_pid: int | None = None
    ) -> None:
        """Warm-up, then each concurrency level; prints each row as it lands."""
        warm = Result(backend, path, 8)
        await run_phase(
            worker,
            concurrency=min(8, self.args.warmup),
            requests=self.args.warmup,
            seconds=self.args.phase_seconds,
            result=warm,
        )
        if warm.errors:
            raise RuntimeError(f"{backend}/{path} fails in warm-up: {warm.first_error}")
        for concurrency in self.args.concurrency:
            result = await run_phase(
                worker,
                concurrency=concurrency,
                requests=self.args.requests,
                seconds=self.args.phase_seconds,
                result=Result(backend, path, concurrency),
                gateway_pid=gateway_pid,
                upstream=self.upstream,
            )
            self.results.append(result)
            print(f"  {backend:8} {path:22} c={concurrency:<3} {_brief(result)}", flush=True)

    def find(self, backend: str, path: str, concurrency: int) -> Result | None:
        return next(
            (
                r
                for r in self.results
                if (r.backend, r.path, r.concurrency) == (backend, path, concurrency)
            ),
            None,
        )


def _brief(result: Result) -> str:
    errors = f" errors={result.errors} ({result.first_error})" if result.errors else ""
    return f"p50={result.p50_ms:.2f}ms p99={result.p99_ms:.2f}ms {result.rps:.0f}/s{errors}"


async def measure_devmesh(bench: Bench, gateway: Gateway, backend: str) -> None:
    headers = {"Authorization": f"Bearer {gateway.api_key}"}
    mcp_url = f"{gateway.base_url}/mcp"
    tool, arguments = "ci.get_build_status", {"build_id": "1"}
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with (
        httpx.AsyncClient(
            base_url=bench.upstream.base_url, trust_env=False, timeout=CALL_TIMEOUT_S, limits=limits
        ) as upstream_http,
        httpx.AsyncClient(
            base_url=gateway.base_url, trust_env=False, timeout=CALL_TIMEOUT_S, limits=limits
        ) as gateway_http,
    ):
        # Direct again for every backend: the machine's load drifts between rounds.
        await bench.sweep(backend, "direct", direct_calls(upstream_http))
        await bench.sweep(backend, "rest", rest_calls(gateway_http, gateway.api_key), gateway.pid)
        await bench.sweep(backend, "mcp", mcp_calls(mcp_url, headers, tool, arguments), gateway.pid)
    once = Result(backend, "mcp, session per call", 1)
    await run_phase(
        mcp_session_per_call(mcp_url, headers, tool, arguments),
        concurrency=1,
        requests=min(bench.args.requests, SESSION_PER_CALL_MAX),
        seconds=bench.args.phase_seconds,
        result=once,
        gateway_pid=gateway.pid,
        upstream=bench.upstream,
    )
    bench.results.append(once)
    print(f"  {backend:8} {once.path:22} c=1   {_brief(once)}", flush=True)


async def measure_fastmcp(bench: Bench, gateway: Gateway) -> None:
    worker = mcp_calls(
        f"{gateway.base_url}/mcp", {}, "get_build", {"buildid": 1, "property": PROPERTIES}
    )
    await bench.sweep("embedded", "fastmcp", worker, gateway.pid)


# --- reporting ------------------------------------------------------------------------------


def _ms(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.2f}"


def table(bench: Bench) -> list[str]:
    header = (
        f"{'backend':9} {'path':22} {'conc':>4} {'calls':>6} {'err':>4} {'p50 ms':>7} "
        f"{'p99 ms':>7} {'+p50 ms':>8} {'+p99 ms':>8} {'calls/s':>8} {'gw CPU ms':>9} "
        f"{'client CPU':>10} {'up/call':>7}"
    )
    lines = [header, "-" * len(header)]
    for r in bench.results:
        direct = bench.find(r.backend, "direct", r.concurrency)
        added = r.path != "direct" and direct is not None
        lines.append(
            f"{r.backend:9} {r.path:22} {r.concurrency:>4} {r.calls:>6} {r.errors:>4} "
            f"{r.p50_ms:>7.2f} {r.p99_ms:>7.2f} "
            f"{_ms(r.p50_ms - direct.p50_ms) if added and direct else '-':>8} "
            f"{_ms(r.p99_ms - direct.p99_ms) if added and direct else '-':>8} "
            f"{r.rps:>8.1f} {_ms(r.gateway_cpu_s * 1000 / r.calls if r.calls else math.nan):>9} "
            f"{_ms(r.client_cpu_s * 1000 / r.calls if r.calls else math.nan):>10} "
            f"{r.upstream_requests / r.calls if r.calls else math.nan:>7.2f}"
        )
    return lines


@dataclass(frozen=True)
class Headline:
    rest_p50_ms: float
    mcp_p50_ms: float
    mcp_rps_c8: float
    fastmcp_rps_c8: float

    def misses(self) -> list[str]:
        missed = []
        if not self.rest_p50_ms <= TARGET_REST_MS:
            missed.append(f"REST adds {self.rest_p50_ms:.2f} ms at p50 (target ≤ {TARGET_REST_MS})")
        if not self.mcp_p50_ms <= TARGET_MCP_MS:
            missed.append(f"MCP adds {self.mcp_p50_ms:.2f} ms at p50 (target ≤ {TARGET_MCP_MS})")
        if not self.mcp_rps_c8 >= TARGET_RPS_RATIO * self.fastmcp_rps_c8:
            missed.append(
                f"MCP does {self.mcp_rps_c8:.1f} calls/s at c=8, "
                f"{self.mcp_rps_c8 / self.fastmcp_rps_c8:.2f}x FastMCP's {self.fastmcp_rps_c8:.1f} "
                f"(target ≥ {TARGET_RPS_RATIO:.0f}x)"
            )
        return missed

    def line(self) -> str:
        return (
            f"overhead rest_p50_ms={self.rest_p50_ms:.2f} mcp_p50_ms={self.mcp_p50_ms:.2f} "
            f"mcp_rps_c8={self.mcp_rps_c8:.1f} fastmcp_rps_c8={self.fastmcp_rps_c8:.1f}"
        )


def headline(bench: Bench) -> Headline:
    def get(path: str, concurrency: int) -> Result:
        found = bench.find("embedded", path, concurrency)
        if found is None:
            raise RuntimeError(f"no embedded {path} row at concurrency {concurrency}")
        return found

    direct = get("direct", 1)
    return Headline(
        rest_p50_ms=get("rest", 1).p50_ms - direct.p50_ms,
        mcp_p50_ms=get("mcp", 1).p50_ms - direct.p50_ms,
        mcp_rps_c8=get("mcp", 8).rps,
        fastmcp_rps_c8=get("fastmcp", 8).rps,
    )


# --- profiling ------------------------------------------------------------------------------

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]+?)(?::\d+)?\)$")
_THREAD = re.compile(r"^thread \(\w+\): ?(?P<name>.*)$")
# Inclusive time is listed for the code whose cost we can act on: ours, and the MCP SDK's.
_OWNED = ("devmesh/", "mcp/")


def _layer(file: str) -> str:
    """The package (or stdlib module) a frame's file belongs to, from py-spy's short name."""
    if file.startswith("<frozen "):
        return file.removeprefix("<frozen ").split(".")[0].rstrip(">")
    return file.split("/", 1)[0].removesuffix(".py")


def _percent(part: int, whole: int) -> str:
    return f"{part / whole:6.1%}"


def summarise_profile(raw: Path, top: int = 15) -> list[str]:
    """Collapsed stacks (py-spy --format raw --threads) → where the active samples are."""
    threads: Counter[str] = Counter()
    self_layer: Counter[str] = Counter()
    self_func: Counter[str] = Counter()
    owned: Counter[str] = Counter()
    roots: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        parts = stack.split(";")
        frames = [m for f in parts if (m := _FRAME.match(f))]
        if not frames:
            continue
        total += count
        thread = _THREAD.match(parts[0])
        # aiosqlite names each connection's thread after its function; one name for all.
        name = thread["name"] if thread else "?"
        threads[re.sub(r"^Thread-\d+ ", "Thread-N ", name)] += count
        # SQLAlchemy's async ORM runs in greenlets, whose stacks start afresh: their
        # first frame, not the request's, says what they do.
        roots[f"{frames[0]['func']} ({frames[0]['file']})"] += count
        leaf = frames[-1]
        self_layer[_layer(leaf["file"])] += count
        self_func[f"{leaf['func']} ({leaf['file']})"] += count
        for label in {f"{m['func']} ({m['file']})" for m in frames if m["file"].startswith(_OWNED)}:
            owned[label] += count
    if not total:
        return ["(no samples)"]
    lines = [f"{total} active samples; by thread:"]
    lines += [f"  {_percent(n, total)}  {name}" for name, n in threads.most_common(5)]
    lines.append("by first frame (the server's main; others are greenlets or threads):")
    lines += [f"  {_percent(n, total)}  {name}" for name, n in roots.most_common(8)]
    lines.append("self time by package (the leaf frame's):")
    lines += [f"  {_percent(n, total)}  {name}" for name, n in self_layer.most_common(top)]
    lines.append("self time, hottest functions:")
    lines += [f"  {_percent(n, total)}  {name}" for name, n in self_func.most_common(top)]
    lines.append("inclusive time of devmesh and MCP SDK functions:")
    lines += [f"  {_percent(n, total)}  {name}" for name, n in owned.most_common(top + 10)]
    return lines


async def profile(bench: Bench, gateway: Gateway, work: Path) -> list[str]:
    """py-spy record on the service while MCP, then REST, load runs; a summary of each."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    headers = {"Authorization": f"Bearer {gateway.api_key}"}
    report: list[str] = []
    seconds = bench.args.profile_seconds
    async with httpx.AsyncClient(
        base_url=gateway.base_url, trust_env=False, timeout=CALL_TIMEOUT_S
    ) as http:
        loads: list[tuple[str, Worker]] = [
            (
                "mcp",
                mcp_calls(
                    f"{gateway.base_url}/mcp", headers, "ci.get_build_status", {"build_id": "1"}
                ),
            ),
            ("rest", rest_calls(http, gateway.api_key)),
        ]
        for name, worker in loads:
            out = work / f"profile-{name}.txt"
            # --gil: only the thread holding the GIL, i.e. where the one core this
            # process can use for Python goes; --nonblocking: sampled without pausing
            # the service, so the measurement does not slow the load it watches.
            command = [spy, "record", "--pid", str(gateway.pid), "--rate", "250",
                       "--duration", str(math.ceil(seconds)), "--format", "raw",
                       "--output", str(out), "--threads", "--gil", "--nonblocking"]  # fmt: skip
            spy_log = work / f"py-spy-{name}.log"
            recorder = _spawn(command, work=work, log=spy_log.name)
            try:
                await asyncio.sleep(0.5)  # let py-spy attach before the load starts
                await run_phase(
                    worker,
                    concurrency=8,
                    requests=10**9,  # bounded by time: the recording's length
                    seconds=seconds,
                    result=Result("embedded", f"profile {name}", 8),
                )
                await asyncio.to_thread(recorder.wait, seconds + 30)
            finally:
                _stop(recorder)
            report.append(f"--- py-spy, {name} load at concurrency 8 for {seconds:.0f} s ---")
            if recorder.returncode != 0 or not out.exists():
                report.append(f"py-spy failed (exit {recorder.returncode}): {_tail(spy_log, 5)}")
                continue
            report += summarise_profile(out)
            kept = bench.args.profile_dir
            if kept is not None:
                kept.mkdir(parents=True, exist_ok=True)
                shutil.copy(out, kept / out.name)
    return report


# --- the run --------------------------------------------------------------------------------


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


async def run(args: argparse.Namespace) -> int:
    work = Path(tempfile.mkdtemp(prefix="devmesh-bench-"))
    try:
        async with run_upstream() as upstream:
            bench = Bench(args, upstream)
            print(f"upstream {upstream.base_url} (pid {upstream.pid})", flush=True)
            async with run_devmesh(upstream, work / "embedded") as gateway:
                print(f"devmesh embedded {gateway.base_url} (pid {gateway.pid})", flush=True)
                await measure_devmesh(bench, gateway, "embedded")
                async with run_fastmcp(upstream, work / "fastmcp") as peer:
                    print(f"fastmcp peer {peer.base_url} (pid {peer.pid})", flush=True)
                    await measure_fastmcp(bench, peer)
                top = headline(bench)
                misses = top.misses()
                profile_report: list[str] = []
                if args.profile == "always" or (args.profile == "auto" and misses):
                    profile_report = await profile(bench, gateway, work / "profile")
            if not args.skip_postgres:
                with postgres_and_redis() as (pg_server, redis_url):
                    async with (
                        fresh_postgres_database(pg_server) as database_url,
                        run_devmesh(
                            upstream,
                            work / "postgres",
                            database_url=database_url,
                            redis_url=redis_url,
                        ) as gateway,
                    ):
                        print(f"devmesh postgres+redis (pid {gateway.pid})", flush=True)
                        await measure_devmesh(bench, gateway, "pg+redis")
        print()
        print("\n".join(table(bench)))
        print()
        for line in profile_report:
            print(line)
        if profile_report:
            print()
        for miss in misses:
            print(f"target missed: {miss}")
        if not misses:
            print("targets met: REST ≤ 2 ms, MCP ≤ 5 ms added at p50; MCP ≥ 3x FastMCP calls/s")
        print(top.line())
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=1000, help="calls per measured phase")
    parser.add_argument("--warmup", type=int, default=200, help="calls before each sweep")
    parser.add_argument(
        "--phase-seconds", type=float, default=20.0, help="a phase stops after this long"
    )
    parser.add_argument(
        "--concurrency", type=lambda s: [int(c) for c in s.split(",")], default=[1, 8, 32]
    )
    parser.add_argument("--skip-postgres", action="store_true", help="embedded default only")
    parser.add_argument(
        "--profile",
        choices=["auto", "always", "never"],
        default="auto",
        help="py-spy the service: when a target is missed (auto), always, or never",
    )
    parser.add_argument("--profile-seconds", type=float, default=10.0)
    parser.add_argument("--profile-dir", type=Path, help="keep py-spy's collapsed stacks here")
    parser.add_argument(
        "--summarise", type=Path, metavar="RAW", help="only summarise a kept py-spy profile"
    )
    parser.add_argument("--serve-fastmcp", metavar="UPSTREAM_URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.summarise:
        print("\n".join(summarise_profile(args.summarise)))
        return
    if args.serve_fastmcp:
        serve_fastmcp(args.serve_fastmcp)
        return
    if 1 not in args.concurrency or 8 not in args.concurrency:
        parser.error("--concurrency must include 1 and 8 (the headline uses them)")
    if args.requests < 1 or args.warmup < 1 or args.phase_seconds <= 0:
        parser.error("--requests, --warmup and --phase-seconds must be positive")
    sys.exit(asyncio.run(run(args)))


if __name__ == "__main__":
    main()
