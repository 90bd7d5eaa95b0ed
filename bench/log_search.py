"""Log search: how fast logs are indexed and how fast a search answers, by size.

Index throughput: synthetic build logs (test output, stack traces, progress bars
with ANSI colours) go through the whole path the log handler takes: ``clean_lines``,
``chunk_lines``, then ``ContextService.index_log_chunks`` (embedding with the
shipped model, then chunks, vectors and full text in one transaction). Reported as
log lines per second, on the embedded default (SQLite) and on PostgreSQL+pgvector.

Search latency: one tenant's store is filled to N chunks (10k, 100k, and with
``--sizes`` more) with chunk rows written directly (random words, random unit
vectors: the index shapes, not the model, decide the cost), a second tenant holds
as many so the tenant filter matters, and ``search_contexts`` runs a fixed set of
queries (full text + vector arms, fusion, hits), each timed end to end; p50/p99.
Each phase is bounded in seconds.

Run: ``uv run python -m bench.log_search [--sizes 10000,100000] [--pg-sizes 100000]``.
The last line is machine-readable:

    logsearch index_lines_per_s=… pg_index_lines_per_s=… p50_ms_10k=… p50_ms_100k=… pg_p50_ms_…=…
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
from sqlalchemy import text

from devmesh.knowledge.embedding import DIMENSIONS, Model2VecEmbedder
from devmesh.knowledge.logtext import chunk_lines, clean_lines
from devmesh.knowledge.models import ContextQuery
from devmesh.knowledge.service import ContextService
from devmesh.security.tenants import TenantService
from devmesh.store.db import Database
from devmesh.store.rows import ContextRow, ToolRow, utcnow
from tests.support.backends import fresh_postgres_database, start_postgres

_WORDS = [
    "error",
    "failed",
    "timeout",
    "connection",
    "refused",
    "assertion",
    "test",
    "module",
    "build",
    "step",
    "compile",
    "link",
    "docker",
    "image",
    "pull",
    "push",
    "cache",
    "hit",
    "miss",
    "retry",
    "network",
    "dns",
    "memory",
    "killed",
    "oom",
    "segfault",
    "exception",
    "traceback",
    "python",
    "java",
    "gradle",
    "maven",
    "npm",
    "install",
    "dependency",
    "version",
    "conflict",
    "permission",
    "denied",
    "disk",
    "full",
    "quota",
]
_QUERIES = [
    "connection refused by database",
    "ERRCODE-4711",
    "out of memory killed",
    "test assertion failed in checkout",
    "docker image pull timeout",
    "permission denied writing cache",
    "segfault in native extension",
    "dependency version conflict",
]


# Words of synthetic chunks: the vocabulary above, then a long tail, drawn Zipf-like
# (rank r with weight 1/r) as words in real logs are; a uniform draw from a few dozen
# words would make every chunk match every query.
_VOCABULARY = (
    _WORDS
    + [f"{a}{b}" for a in ("ab", "cd", "ef", "gh", "ij") for b in _WORDS]
    + [f"sym{n}" for n in range(20_000)]
)
_CUMULATIVE = list(itertools.accumulate(1.0 / rank for rank in range(1, len(_VOCABULARY) + 1)))


def _words(rng: random.Random, k: int) -> str:
    return " ".join(rng.choices(_VOCABULARY, cum_weights=_CUMULATIVE, k=k))


def _log(build: int, lines: int) -> str:
    rng = random.Random(build)
    out = []
    for n in range(lines):
        kind = rng.random()
        if kind < 0.05:
            out.append(f"\x1b[31mERROR\x1b[0m step {n}: ERRCODE-{rng.randint(1000, 9999)} failed")
        elif kind < 0.1:
            out.append(f"Downloading {rng.randint(0, 50)}%\rDownloading 100%")
        else:
            words = _words(rng, 8)
            out.append(f"tests/test_{n % 50}.py::test_{n} {words}")
    return "\n".join(out)


async def _tenant_with_tool(db: Database, name: str) -> str:
    tenant, _ = await TenantService(db).create_tenant(name)
    async with db.session() as session:
        session.add(
            ToolRow(
                id=str(uuid.uuid4()),
                tenant_id=tenant.id,
                name="ci",
                provider="gitlab",
                base_url="https://gitlab.example.com",
            )
        )
    return tenant.id


async def index_throughput(db: Database, store: ContextService, seconds: float) -> float:
    tenant = await _tenant_with_tool(db, f"index-{uuid.uuid4().hex[:6]}")
    lines_per_log = 5000
    logs = [_log(build, lines_per_log) for build in range(20)]
    # Warm the model (loaded on first use) outside the timing.
    await store.index_log_chunks(tenant, "ci", "warm", chunk_lines(["warm"]), context_key="w")
    done, start, cpu = 0, time.perf_counter(), time.process_time()
    for build, log in enumerate(logs):
        chunks = chunk_lines(clean_lines(log))
        await store.index_log_chunks(tenant, "ci", str(build), chunks, context_key=f"log-{build}")
        done += lines_per_log
        if time.perf_counter() - start > seconds:
            break
    # Lines per CPU-second of this process (all its threads) as well: on a shared
    # machine wall time measures the neighbours too.
    print(f"  {done:,} lines, {done / (time.process_time() - cpu):,.0f} lines per CPU-second")
    return done / (time.perf_counter() - start)


async def _fill(db: Database, tenant: str, chunks: int, seed: int) -> None:
    """``chunks`` chunk rows under 100-chunk contexts, written in bulk."""
    rng = np.random.default_rng(seed)
    words = random.Random(seed)
    per_context = 100
    for start in range(0, chunks, 20_000):
        count = min(20_000, chunks - start)
        vectors = rng.standard_normal((count, DIMENSIONS)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        async with db.session() as session:
            ids = []
            for c in range(count // per_context):
                row = ContextRow(
                    id=str(uuid.uuid4()),
                    tenant_id=tenant,
                    scope="",
                    key=f"log-{seed}-{start + c}",
                    type="build_log",
                    subject=str(start + c),
                    data={},
                    created_at=utcnow(),
                    updated_at=utcnow(),
                )
                session.add(row)
                ids.append(row.id)
            await session.flush()
            cast = ":e" if db.is_sqlite else "CAST(:e AS vector)"
            rows = []
            for i in range(count):
                words_text = _words(words, 30)
                vec = vectors[i]
                rows.append(
                    {
                        "c": ids[i // per_context],
                        "t": tenant,
                        "first": 1 + (i % per_context) * 40,
                        "last": 40 + (i % per_context) * 40,
                        "text": f"{words_text} ERRCODE-{words.randint(1000, 9999)}",
                        "e": vec.tobytes()
                        if db.is_sqlite
                        else "[" + ",".join(f"{x:.5f}" for x in vec.tolist()) + "]",
                    }
                )
            await session.execute(
                text(
                    "INSERT INTO context_chunks "
                    "(context_id, tenant_id, first_line, last_line, text, embedding) "
                    f"VALUES (:c, :t, :first, :last, :text, {cast})"
                ),
                rows,
            )


async def search_latency(
    db: Database, store: ContextService, size: int, seconds: float
) -> tuple[float, float]:
    tenant = await _tenant_with_tool(db, f"s-{size}-{uuid.uuid4().hex[:6]}")
    other = await _tenant_with_tool(db, f"o-{size}-{uuid.uuid4().hex[:6]}")
    await _fill(db, tenant, size, seed=1)
    await _fill(db, other, size, seed=2)
    if not db.is_sqlite:
        async with db.session() as session:
            await session.execute(text("ANALYZE context_chunks"))
    await store.search_contexts(tenant, ContextQuery(query="warm up"))  # loads caches
    timings: list[float] = []
    deadline = time.perf_counter() + seconds
    while len(timings) < 200 and time.perf_counter() < deadline:
        query = _QUERIES[len(timings) % len(_QUERIES)]
        start = time.perf_counter()
        await store.search_contexts(tenant, ContextQuery(query=query, limit=5))
        timings.append((time.perf_counter() - start) * 1000)
    timings.sort()
    p99 = timings[min(len(timings) - 1, int(len(timings) * 0.99))]
    return statistics.median(timings), p99


@contextlib.asynccontextmanager
async def _database(url: str) -> AsyncIterator[Database]:
    db = Database(url)
    await db.upgrade()
    try:
        yield db
    finally:
        await db.close()


def _label(size: int) -> str:
    return f"{size // 1_000_000}m" if size >= 1_000_000 else f"{size // 1000}k"


async def main(args: argparse.Namespace) -> None:
    embedder = Model2VecEmbedder()
    figures: dict[str, float] = {}
    # Shared machines skew every figure; the load says how much to trust them.
    print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cpus")
    with tempfile.TemporaryDirectory() as scratch:
        async with _database(f"sqlite+aiosqlite:///{Path(scratch) / 'bench.db'}") as db:
            store = ContextService(db=db, embedder=embedder)
            rate = await index_throughput(db, store, args.seconds)
            figures["index_lines_per_s"] = rate
            print(f"embedded index: {rate:,.0f} lines/s")
        for size in args.sizes:
            async with _database(f"sqlite+aiosqlite:///{Path(scratch) / f's{size}.db'}") as db:
                store = ContextService(db=db, embedder=embedder)
                p50, p99 = await search_latency(db, store, size, args.seconds)
                figures[f"p50_ms_{_label(size)}"] = p50
                figures[f"p99_ms_{_label(size)}"] = p99
                print(f"embedded search at {size:,} chunks: p50 {p50:.1f} ms, p99 {p99:.1f} ms")
    if args.pg_sizes is not None:
        with contextlib.ExitStack() as stack:
            server = os.environ.get("DEVMESH_TEST_POSTGRES_URL") or (
                stack.enter_context(start_postgres()).sqlalchemy_url()
            )
            async with fresh_postgres_database(server) as url, _database(url) as db:
                store = ContextService(db=db, embedder=embedder)
                rate = await index_throughput(db, store, args.seconds)
                figures["pg_index_lines_per_s"] = rate
                print(f"postgres index: {rate:,.0f} lines/s")
            for size in args.pg_sizes:
                async with fresh_postgres_database(server) as url, _database(url) as db:
                    store = ContextService(db=db, embedder=embedder)
                    p50, p99 = await search_latency(db, store, size, args.seconds)
                    figures[f"pg_p50_ms_{_label(size)}"] = p50
                    figures[f"pg_p99_ms_{_label(size)}"] = p99
                    print(f"postgres search at {size:,} chunks: p50 {p50:.1f} ms, p99 {p99:.1f} ms")
    print("logsearch " + " ".join(f"{key}={value:.1f}" for key, value in figures.items()))


def _sizes(value: str) -> list[int]:
    return [int(part) for part in value.split(",") if part]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=_sizes, default=[10_000, 100_000])
    parser.add_argument(
        "--pg-sizes",
        type=_sizes,
        default=[100_000],
        help="chunk counts on PostgreSQL (1000000 takes long: HNSW build)",
    )
    parser.add_argument("--skip-postgres", dest="pg_sizes", action="store_const", const=None)
    parser.add_argument("--seconds", type=float, default=30.0, help="bound per phase")
    asyncio.run(main(parser.parse_args()))
