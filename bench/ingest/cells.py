"""One cell of the ingest benchmark: signed deliveries at a concurrency, and their fate."""

from __future__ import annotations

import asyncio
import math
import re
import sys
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.overhead.processes import START_TIMEOUT_S, spawn, stop, tail
from devmesh.store.db import Database
from tests.support.ingest import (
    SEND_TIMEOUT_S,
    Sending,
    WebhookTool,
    handled_count,
    send_deliveries,
)

# The handler every event reaches on a fresh install (it finds no subscription and
# writes only its "handled" mark): "handled end to end" is its count.
HANDLER = "notifications"


@dataclass
class Cell:
    backend: str
    concurrency: int
    sending: Sending = field(default_factory=Sending)
    handled: int = 0
    handled_s: float = math.nan  # first send to last event handled
    floor: Sending | None = None

    @property
    def handled_per_s(self) -> float:
        return self.handled / self.handled_s if self.handled_s else math.nan

    @property
    def lost(self) -> int:
        """Accepted (2xx, new) but never handled within the drain bound."""
        return max(self.sending.accepted - self.handled, 0)

    @property
    def ratio(self) -> float:
        if self.floor is None or not self.floor.per_second:
            return math.nan
        return self.sending.per_second / self.floor.per_second


def _limits(concurrency: int) -> httpx.Limits:
    return httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)


async def measure(
    cell: Cell,
    *,
    base_url: str,
    tool: WebhookTool,
    db: Database,
    deliveries: int,
    seconds: float,
    drain_seconds: float,
) -> Cell:
    """Send up to ``deliveries`` new signed deliveries (bounded by ``seconds``), then wait
    (up to ``drain_seconds``) until the worker has handled the event of each accepted."""
    before = await handled_count(db, HANDLER)
    ids = [f"msg_{uuid.uuid4().hex}" for _ in range(deliveries)]
    started = time.perf_counter()
    async with httpx.AsyncClient(
        base_url=base_url, trust_env=False, timeout=SEND_TIMEOUT_S, limits=_limits(cell.concurrency)
    ) as http:
        await send_deliveries(
            http, tool, ids, concurrency=cell.concurrency, seconds=seconds, into=cell.sending
        )
    deadline = time.monotonic() + drain_seconds
    while True:
        cell.handled = await handled_count(db, HANDLER) - before
        cell.handled_s = time.perf_counter() - started
        if cell.handled >= cell.sending.accepted or time.monotonic() > deadline:
            return cell
        await asyncio.sleep(0.05)


async def measure_floor(cell: Cell, *, base_url: str, deliveries: int, seconds: float) -> Sending:
    """The same sends to the floor (it checks no signature; signing still costs the client
    the same, so the two are compared on equal terms)."""
    target = WebhookTool(id="floor", secret="whsec_" + "MDEyMzQ1Njc4OWFiY2RlZg==")
    ids = [f"msg_{uuid.uuid4().hex}" for _ in range(deliveries)]
    async with httpx.AsyncClient(
        base_url=base_url, trust_env=False, timeout=SEND_TIMEOUT_S, limits=_limits(cell.concurrency)
    ) as http:
        cell.floor = await send_deliveries(
            http, target, ids, concurrency=cell.concurrency, seconds=seconds
        )
    return cell.floor


@asynccontextmanager
async def run_floor(database_url: str, work: Path) -> AsyncIterator[str]:
    """``python -m bench.ingest.floor`` on the database; its base URL; stopped by PID."""
    process = spawn(
        [sys.executable, "-m", "bench.ingest.floor", database_url],
        work=work,
        log="floor.log",
        pipe=True,
    )
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(process.stdout.readline), START_TIMEOUT_S)
        match = re.fullmatch(rb"listening on (http://\S+)\s*", line)
        if match is None:
            raise RuntimeError(f"the floor did not start ({line!r}):\n{tail(work / 'floor.log')}")
        # The socket listens before uvicorn starts: early requests wait, none is refused.
        yield match.group(1).decode()
    finally:
        stop(process)
