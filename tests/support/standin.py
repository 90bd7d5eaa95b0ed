"""A test double in a process of its own, both sides of it.

The child (``python -m <package> --port N``) serves its ASGI app with ``serve``: on a
loopback socket it binds itself (port 0: the kernel picks), printing
``listening on http://127.0.0.1:PORT`` once bound, and exits by itself if its
parent dies. The parent starts it with ``run_standin``, reads that line, waits
(bounded) until a health path answers 200, and stops it by its PID on exit.
Used by the fault-injecting upstream (``tests.upstream``) and the GitLab stand-in.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import uvicorn

__all__ = ["HOST", "Running", "listening_socket", "run_standin", "serve"]

HOST = "127.0.0.1"
_START_TIMEOUT_S = 20.0
_STOP_TIMEOUT_S = 5.0
_REPO = Path(__file__).resolve().parents[2]


def listening_socket(port: int = 0) -> socket.socket:
    """A listening TCP socket on loopback, for ``uvicorn.Server.serve(sockets=...)``.

    Bound here rather than by uvicorn so that port 0 works: the kernel picks a free
    port and the caller reads it, with no race against other test runs.
    """
    # IPPROTO_TCP, not the default 0: asyncio sets TCP_NODELAY only on sockets that
    # say they are TCP, and without it Nagle + delayed ACKs add 40 ms to each answer.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((HOST, port))
    sock.listen(1024)
    return sock


async def serve(config: uvicorn.Config, port: int) -> None:
    """The child's side: serve ``config``'s app on loopback until stopped or orphaned."""
    sock = listening_socket(port)
    server = uvicorn.Server(config)
    # The parent learns the port (maybe picked by the kernel) from this one line.
    print(f"listening on http://{HOST}:{sock.getsockname()[1]}", flush=True)

    async def orphaned() -> None:
        # A parent killed without its finally (SIGKILL) must not leave us running.
        parent = os.getppid()
        while os.getppid() == parent:  # noqa: ASYNC110 (no event tells of a parent's death)
            await asyncio.sleep(0.5)
        server.should_exit = True

    watcher = asyncio.create_task(orphaned())
    try:
        await server.serve(sockets=[sock])
    finally:
        watcher.cancel()


@dataclass(frozen=True)
class Running:
    """A started stand-in: its address, its PID, and a client for its control routes."""

    base_url: str
    pid: int
    control: httpx.AsyncClient


@asynccontextmanager
async def run_standin(module: str, *args: str, health: str, what: str) -> AsyncIterator[Running]:
    """The parent's side: ``python -m module --port 0 *args``, up until ``health`` is 200."""
    with tempfile.TemporaryDirectory(prefix="devmesh-standin-") as scratch:
        log = Path(scratch) / "standin.log"
        with log.open("wb") as log_file:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", module, "--port", "0", *args,
                cwd=_REPO, stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE, stderr=log_file,
            )  # fmt: skip
        try:
            base_url = await _started(process, log, what)
            async with httpx.AsyncClient(base_url=base_url, trust_env=False, timeout=10) as control:
                await _answering(control, health, process, log, what)
                yield Running(base_url=base_url, pid=process.pid, control=control)
        finally:
            await _stop(process)


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


async def _started(process: asyncio.subprocess.Process, log: Path, what: str) -> str:
    assert process.stdout is not None
    try:
        async with asyncio.timeout(_START_TIMEOUT_S):
            line = (await process.stdout.readline()).decode()
    except TimeoutError:
        raise RuntimeError(
            f"{what} printed no port in {_START_TIMEOUT_S}s:\n{_tail(log)}"
        ) from None
    match = re.fullmatch(r"listening on (http://\S+)\s*", line)
    if match is None:
        raise RuntimeError(f"{what} did not start ({line!r}):\n{_tail(log)}")
    return match.group(1)


async def _answering(
    control: httpx.AsyncClient,
    health: str,
    process: asyncio.subprocess.Process,
    log: Path,
    what: str,
) -> None:
    deadline = time.monotonic() + _START_TIMEOUT_S
    while True:
        if process.returncode is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}:\n{_tail(log)}")
        with contextlib.suppress(httpx.TransportError):
            if (await control.get(health)).status_code == 200:
                return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not answer in {_START_TIMEOUT_S}s:\n{_tail(log)}")
        await asyncio.sleep(0.05)


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
