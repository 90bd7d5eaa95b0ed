"""Webhook ingest: signed deliveries accepted and handled per second, beside the floor.

One run starts Developer Mesh (``devmesh serve``, the event worker in-process, as the
embedded default runs) with a tenant and a tool that takes Standard Webhooks
deliveries (``scheme: standard``), then at each concurrency (default 1, 16 and 64)
sends up to ``--deliveries`` new signed deliveries to ``POST /api/v1/webhooks/{tool}``
(each phase also stops after ``--cell-seconds``), and waits (up to
``--drain-seconds``) until the worker has handled the event of every accepted one.
It measures:

* ``accepted/s``: 2xx answers over the sending's wall time;
* ``handled/s``: events handled (the ``notifications`` handler's marks, which every
  event reaches) over the time from the first send to the last handled;
* ``ack p50/p99``: from signing a delivery to its answer;
* ``lost``: accepted but not handled when the drain bound ran out.

Then, on the same database, the **floor**: a bare ASGI app under the same uvicorn
settings that does one durable INSERT of the raw body per request and nothing else
(``bench/ingest/floor.py``), sent the same signed deliveries at the same concurrency.
The whole again on PostgreSQL + Redis (``--skip-postgres`` leaves that out).

The last line is machine-readable, for the embedded default at concurrency 16 (a
CI server posting its builds' changes in parallel; the figure that best represents
sustained throughput without queueing at the client), ``lost`` summed over every cell
of the run:

    webhooks accepted_per_s=… handled_per_s=… ack_p99_ms=… floor_per_s=… lost=…

Targets: ≥ 1,000 accepted/s on the embedded default, 0 lost, ≥ 50% of the floor's
rate; acknowledgement p99 under 50 ms.

Run: ``bash scripts/uv run python bench/webhook_ingest.py`` (see docs/ingest-performance.md).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import sys
import tempfile
from pathlib import Path

import httpx

from bench.ingest.cells import Cell, measure, measure_floor, run_floor
from bench.ingest.reporting import headline, misses, table
from bench.overhead.processes import postgres_and_redis, run_devmesh
from devmesh.store.db import Database
from tests.support.backends import fresh_postgres_database
from tests.support.ingest import webhook_tool

HEADLINE_CONCURRENCY = 16


async def _backend(
    args: argparse.Namespace, name: str, work: Path, url: str, **settings: str
) -> list[Cell]:
    cells = [Cell(name, c) for c in args.concurrency]
    db = Database(url)
    try:
        async with run_devmesh(None, work / "devmesh", workers=args.workers, **settings) as gateway:
            print(f"devmesh {name} {gateway.base_url} (pid {gateway.pid})", flush=True)
            async with httpx.AsyncClient(
                base_url=gateway.base_url, trust_env=False, timeout=10
            ) as http:
                tool = await webhook_tool(http, gateway.api_key)
            for cell in cells:
                await measure(
                    cell,
                    base_url=gateway.base_url,
                    tool=tool,
                    db=db,
                    deliveries=args.deliveries,
                    seconds=args.cell_seconds,
                    drain_seconds=args.drain_seconds,
                )
                print(f"  {name:8} devmesh c={cell.concurrency:<3} {_brief(cell)}", flush=True)
        # Developer Mesh is stopped: the floor has the database to itself, as it had.
        async with run_floor(url, work / "floor") as floor_url:
            for cell in cells:
                floor = await measure_floor(
                    cell, base_url=floor_url, deliveries=args.deliveries, seconds=args.cell_seconds
                )
                print(
                    f"  {name:8} floor   c={cell.concurrency:<3} {floor.per_second:.0f}/s "
                    f"p99={floor.p_ms(0.99):.1f}ms",
                    flush=True,
                )
    finally:
        await db.close()
    return cells


def _brief(cell: Cell) -> str:
    s = cell.sending
    refused = f" refused={s.refused} ({s.first_error[:160]})" if s.refused else ""
    return (
        f"accepted={s.accepted} {s.per_second:.0f}/s handled={cell.handled} "
        f"{cell.handled_per_s:.0f}/s p50={s.p_ms(0.5):.1f}ms p99={s.p_ms(0.99):.1f}ms{refused}"
    )


async def run(args: argparse.Namespace) -> int:
    work = Path(tempfile.mkdtemp(prefix="devmesh-ingest-"))
    try:
        embedded = work / "embedded"
        database = f"sqlite+aiosqlite:///{(embedded / 'devmesh' / 'data' / 'devmesh.db')}"
        cells = await _backend(args, "embedded", embedded, database)
        if not args.skip_postgres:
            with postgres_and_redis() as (pg_server, redis_url):
                async with fresh_postgres_database(pg_server) as database_url:
                    cells += await _backend(
                        args,
                        "pg+redis",
                        work / "postgres",
                        database_url,
                        database_url=database_url,
                        redis_url=redis_url,
                    )
        print()
        print("\n".join(table(cells)))
        print()
        top = headline(cells, HEADLINE_CONCURRENCY)
        for miss in misses(top):
            print(f"target missed: {miss}")
        if not misses(top):
            print("targets met: ≥ 1,000 accepted/s, 0 lost, ≥ 50% of the floor, ack p99 < 50 ms")
        print(top.line())
        return 0
    finally:
        with contextlib.suppress(OSError):
            shutil.rmtree(work)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--deliveries", type=int, default=3000, help="deliveries per cell")
    parser.add_argument(
        "--cell-seconds", type=float, default=20.0, help="a cell stops sending after this long"
    )
    parser.add_argument(
        "--drain-seconds", type=float, default=60.0, help="longest wait for handling after"
    )
    parser.add_argument(
        "--concurrency", type=lambda s: [int(c) for c in s.split(",")], default=[1, 16, 64]
    )
    parser.add_argument("--skip-postgres", action="store_true", help="embedded default only")
    parser.add_argument(
        "--workers", type=int, default=1, help="serve Developer Mesh with `serve --workers N`"
    )
    args = parser.parse_args()
    if HEADLINE_CONCURRENCY not in args.concurrency:
        parser.error(f"--concurrency must include {HEADLINE_CONCURRENCY} (the headline uses it)")
    if args.deliveries < 1 or args.cell_seconds <= 0 or args.drain_seconds <= 0:
        parser.error("--deliveries, --cell-seconds and --drain-seconds must be positive")
    sys.exit(asyncio.run(run(args)))


if __name__ == "__main__":
    main()
