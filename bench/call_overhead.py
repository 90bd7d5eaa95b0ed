"""Gateway overhead: what Developer Mesh adds to one upstream read, over REST and MCP.

One run starts a canned Buildbot upstream (``tests/upstream/``), Developer Mesh
(``devmesh serve``, a subprocess on its embedded default: SQLite, no Redis) with a
tenant, an API key and a Buildbot tool ``ci`` pointing at the upstream, and a peer:
FastMCP's OpenAPI proxy (``FastMCP.from_openapi``) of the same upstream, also a
subprocess. Then, for the same read (build 1's status, one ``GET /api/v2/builds/1``
upstream), it measures

* ``direct``: the upstream itself;
* ``rest``: ``POST /api/v1/tools/ci/operations/get_build_status``;
* ``mcp``: ``tools/call ci_get_build_status`` as the official SDK client sends it
  (captured from ``mcp.Client`` once, then sent again for every call);
* ``fastmcp``: ``tools/call get_build`` on the FastMCP proxy, captured and sent the same way;

all four with one lean client (aiohttp), so that on two cores the load generator takes
little of the CPU it shares with what it measures; then, as an agent sees them, the
official client's own calls (``mcp, sdk client``, ``fastmcp, sdk client``: one
session per concurrent worker, kept) and a new session per call (concurrency 1 only).
Each at concurrency 1, 8 and 32, after a warm-up, every phase bounded in calls and in
seconds. Then it runs direct, rest and mcp again with Developer Mesh on PostgreSQL
and Redis (``--skip-postgres`` leaves that out). The table shows p50/p99 latency,
what rest/mcp/fastmcp add over direct at the same concurrency, calls per second,
and CPU per call of the gateway process and of this client. If a target is missed
(added p50 ≤ 1 ms REST, ≤ 2 ms MCP; MCP calls/s ≥ 3x FastMCP's at concurrency 8),
the service is profiled with py-spy under MCP and REST load and the hottest code is
printed. The last line is machine-readable:

    overhead rest_p50_ms=… mcp_p50_ms=… mcp_rps_c8=… fastmcp_rps_c8=…

(added p50 at concurrency 1 and calls/s at concurrency 8, embedded default, the lean
client's rows).

Run: ``uv run --group bench python bench/call_overhead.py`` (see docs/performance.md).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
from pathlib import Path

from bench.overhead.measuring import Bench, measure_devmesh, measure_fastmcp
from bench.overhead.processes import (
    postgres_and_redis,
    run_devmesh,
    run_fastmcp,
    serve_fastmcp,
)
from bench.overhead.profiling import profile, summarise_profile
from bench.overhead.reporting import headline, table
from tests.support.backends import fresh_postgres_database
from tests.upstream import run_upstream


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
            if args.workers > 1:
                # The same embedded default, served by N processes (serve --workers N).
                async with run_devmesh(upstream, work / "workers", workers=args.workers) as gateway:
                    print(f"devmesh embedded x{args.workers} (pid {gateway.pid})", flush=True)
                    await measure_devmesh(bench, gateway, f"emb x{args.workers}")
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
            print("targets met: REST ≤ 1 ms, MCP ≤ 2 ms added at p50; MCP ≥ 3x FastMCP calls/s")
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
        "--workers",
        type=int,
        default=1,
        help="also measure the embedded default with `serve --workers N` (N > 1)",
    )
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
