"""The upstream's own process: a loopback socket, uvicorn, and an exit with its parent."""

from __future__ import annotations

import argparse
import asyncio
import os
import socket

import uvicorn

from tests.upstream.app import create_app
from tests.upstream.faults import AbortableH11

__all__ = ["HOST", "listening_socket", "main"]

HOST = "127.0.0.1"


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


async def _serve(port: int, target: str | None) -> None:
    sock = listening_socket(port)
    config = uvicorn.Config(
        create_app(target=target),
        http=AbortableH11,
        log_level="warning",
        access_log=False,
        lifespan="on",
        # A hanging request must not hold up the stop.
        timeout_graceful_shutdown=1,
    )
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


def main(argv: list[str] | None = None) -> None:
    from tests import upstream  # the package docstring is the help text

    parser = argparse.ArgumentParser(prog="python -m tests.upstream", description=upstream.__doc__)
    parser.add_argument("--port", type=int, default=0, help="0 (default): any free port")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--target", help="proxy mode: the real server's base URL")
    mode.add_argument("--canned", action="store_true", help="canned Buildbot answers (default)")
    args = parser.parse_args(argv)
    asyncio.run(_serve(args.port, args.target))
