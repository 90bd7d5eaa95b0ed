"""Running a phase of calls at a concurrency, and the results a run collects."""

from __future__ import annotations

import argparse
import asyncio
import math
import time
from contextlib import AsyncExitStack
from dataclasses import dataclass, field

from bench.overhead.calls import (
    CALL_TIMEOUT_S,
    MCP_PATH,
    MCP_TOOL,
    PROPERTIES,
    SESSION_PER_CALL_MAX,
    Call,
    Worker,
    capture_call,
    direct_calls,
    lean_client,
    mcp_calls,
    mcp_session_per_call,
    replayed_calls,
    rest_calls,
)
from bench.overhead.processes import Gateway, cpu_seconds
from tests.upstream import Upstream


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
        gateway_before = cpu_seconds(gateway_pid) if gateway_pid else math.nan
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
            result.gateway_cpu_s = cpu_seconds(gateway_pid) - gateway_before
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
    mcp_url = f"{gateway.base_url}{MCP_PATH}"
    tool, arguments = MCP_TOOL, {"build_id": "1"}
    async with lean_client() as http:
        # Direct again for every backend: the machine's load drifts between rounds.
        await bench.sweep(backend, "direct", direct_calls(http, bench.upstream.base_url))
        await bench.sweep(
            backend, "rest", rest_calls(http, gateway.base_url, gateway.api_key), gateway.pid
        )
        captured = await capture_call(mcp_url, headers, tool, arguments)
        await bench.sweep(backend, "mcp", replayed_calls(http, captured), gateway.pid)
    sdk = mcp_calls(mcp_url, headers, tool, arguments)
    await bench.sweep(backend, "mcp, sdk client", sdk, gateway.pid)
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
    url, arguments = f"{gateway.base_url}/mcp", {"buildid": 1, "property": PROPERTIES}
    async with lean_client() as http:
        captured = await capture_call(url, {}, "get_build", arguments)
        await bench.sweep("embedded", "fastmcp", replayed_calls(http, captured), gateway.pid)
    sdk = mcp_calls(url, {}, "get_build", arguments)
    await bench.sweep("embedded", "fastmcp, sdk client", sdk, gateway.pid)
