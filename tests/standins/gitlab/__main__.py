"""Run the GitLab stand-in: ``python -m tests.standins.gitlab --port N`` (0: any free port).

It prints ``listening on http://127.0.0.1:PORT`` once bound, serves until SIGTERM,
and exits by itself if its parent dies.
"""

from __future__ import annotations

import argparse
import asyncio
import os

import uvicorn

from tests.standins.gitlab.app import create_app
from tests.upstream import HOST, listening_socket


async def _serve(port: int) -> None:
    sock = listening_socket(port)
    config = uvicorn.Config(
        create_app(), log_level="warning", access_log=False, lifespan="off",
        timeout_graceful_shutdown=1,
    )  # fmt: skip
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
    parser = argparse.ArgumentParser(prog="python -m tests.standins.gitlab", description=__doc__)
    parser.add_argument("--port", type=int, default=0, help="0 (default): any free port")
    asyncio.run(_serve(parser.parse_args(argv).port))


if __name__ == "__main__":
    main()
