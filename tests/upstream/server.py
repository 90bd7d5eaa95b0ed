"""The upstream's own process: its command line, served as every stand-in is."""

from __future__ import annotations

import argparse
import asyncio

import uvicorn

from tests.support.standin import HOST, listening_socket, serve
from tests.upstream.app import create_app
from tests.upstream.faults import AbortableH11

__all__ = ["HOST", "listening_socket", "main"]


async def _serve(port: int, target: str | None, keep_host: bool) -> None:
    config = uvicorn.Config(
        create_app(target=target, keep_host=keep_host),
        http=AbortableH11,
        log_level="warning",
        access_log=False,
        lifespan="on",
        # A hanging request must not hold up the stop.
        timeout_graceful_shutdown=1,
    )
    await serve(config, port)


def main(argv: list[str] | None = None) -> None:
    from tests import upstream  # the package docstring is the help text

    parser = argparse.ArgumentParser(prog="python -m tests.upstream", description=upstream.__doc__)
    parser.add_argument("--port", type=int, default=0, help="0 (default): any free port")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--target", help="proxy mode: the real server's base URL")
    mode.add_argument("--canned", action="store_true", help="canned Buildbot answers (default)")
    parser.add_argument(
        "--keep-host", action="store_true", help="proxy mode: forward the Host header as sent"
    )
    args = parser.parse_args(argv)
    asyncio.run(_serve(args.port, args.target, args.keep_host))
