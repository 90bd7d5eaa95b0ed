"""The test's side: start the upstream process, hold its control API, stop it by PID."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx

from tests.support.standin import run_standin
from tests.upstream.faults import Fault, FaultKind

__all__ = ["Upstream", "UpstreamStats", "run_upstream"]


@dataclass(frozen=True)
class UpstreamStats:
    total: int
    paths: dict[str, int]
    faulted: int
    authorized: int


@dataclass(frozen=True)
class Upstream:
    """A running upstream process and its control API."""

    base_url: str
    pid: int
    _control: httpx.AsyncClient

    async def inject(
        self,
        kind: FaultKind,
        *,
        status: int | None = None,
        retry_after: str | float | None = None,
        body: str | None = None,
        echo: bool = False,
        seconds: float | None = None,
        count: int | None = None,
        path: str | None = None,
        method: str | None = None,
        header: str | None = None,
        matches: str | None = None,
    ) -> None:
        fault = Fault(
            kind=kind,
            status=status,
            retry_after=None if retry_after is None else str(retry_after),
            body=body,
            echo=echo,
            seconds=seconds,
            count=count,
            path=path,
            method=method,
            header=header,
            matches=matches,
        )
        answer = await self._control.post("/__faults", content=fault.model_dump_json())
        answer.raise_for_status()

    async def clear(self) -> None:
        (await self._control.delete("/__faults")).raise_for_status()

    async def stats(self) -> UpstreamStats:
        answer = await self._control.get("/__stats")
        answer.raise_for_status()
        data = answer.json()
        return UpstreamStats(
            total=data["total"],
            paths=data["paths"],
            faulted=data["faulted"],
            authorized=data["authorized"],
        )

    async def reset_stats(self) -> None:
        (await self._control.delete("/__stats")).raise_for_status()


@asynccontextmanager
async def run_upstream(
    *, target: str | None = None, keep_host: bool = False
) -> AsyncIterator[Upstream]:
    """Start the upstream (proxy of ``target``, else canned) and stop it by PID on exit."""
    args = ["--target", target] if target else ["--canned"]
    if keep_host:
        args.append("--keep-host")
    async with run_standin(
        "tests.upstream", *args, health="/__stats", what="test upstream"
    ) as running:
        yield Upstream(base_url=running.base_url, pid=running.pid, _control=running.control)
