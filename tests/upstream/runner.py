"""The test's side: start the upstream process, hold its control API, stop it by PID."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.upstream.faults import Fault, FaultKind

__all__ = ["Upstream", "UpstreamStats", "run_upstream"]

_START_TIMEOUT_S = 20.0
_STOP_TIMEOUT_S = 5.0
_REPO = Path(__file__).resolve().parents[2]


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


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


async def _stop(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGTERM)
        try:
            async with asyncio.timeout(_STOP_TIMEOUT_S):
                await process.wait()
            return
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGKILL)
    async with asyncio.timeout(_STOP_TIMEOUT_S):
        await process.wait()


@asynccontextmanager
async def run_upstream(*, target: str | None = None) -> AsyncIterator[Upstream]:
    """Start the upstream (proxy of ``target``, else canned) and stop it by PID on exit."""
    args = ["--target", target] if target else ["--canned"]
    with tempfile.TemporaryDirectory(prefix="devmesh-upstream-") as scratch:
        log = Path(scratch) / "upstream.log"
        with log.open("wb") as log_file:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "tests.upstream", "--port", "0", *args,
                cwd=_REPO, stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE, stderr=log_file,
            )  # fmt: skip
        try:
            base_url = await _started(process, log)
            async with httpx.AsyncClient(base_url=base_url, trust_env=False, timeout=10) as control:
                await _answering(control, process, log)
                yield Upstream(base_url=base_url, pid=process.pid, _control=control)
        finally:
            await _stop(process)


async def _started(process: asyncio.subprocess.Process, log: Path) -> str:
    assert process.stdout is not None
    try:
        async with asyncio.timeout(_START_TIMEOUT_S):
            line = (await process.stdout.readline()).decode()
    except TimeoutError:
        raise RuntimeError(
            f"test upstream printed no port in {_START_TIMEOUT_S}s:\n{_tail(log)}"
        ) from None
    match = re.fullmatch(r"listening on (http://\S+)\s*", line)
    if match is None:
        raise RuntimeError(f"test upstream did not start ({line!r}):\n{_tail(log)}")
    return match.group(1)


async def _answering(
    control: httpx.AsyncClient, process: asyncio.subprocess.Process, log: Path
) -> None:
    deadline = time.monotonic() + _START_TIMEOUT_S
    while True:
        if process.returncode is not None:
            raise RuntimeError(f"test upstream exited with {process.returncode}:\n{_tail(log)}")
        try:
            if (await control.get("/__stats")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"test upstream did not answer in {_START_TIMEOUT_S}s:\n{_tail(log)}"
            )
        await asyncio.sleep(0.05)
