"""Run the CircleCI stand-in: ``python -m tests.standins.circleci --port N`` (0: any free port).

It prints ``listening on http://127.0.0.1:PORT`` once bound, serves until SIGTERM,
and exits by itself if its parent dies.
"""

from __future__ import annotations

import argparse
import asyncio

import uvicorn

from tests.standins.circleci.app import create_app
from tests.support.standin import serve


async def _serve(port: int) -> None:
    config = uvicorn.Config(
        create_app(),
        log_level="warning",
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=1,
    )
    await serve(config, port)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.standins.circleci", description=__doc__)
    parser.add_argument("--port", type=int, default=0, help="0 (default): any free port")
    asyncio.run(_serve(parser.parse_args(argv).port))


if __name__ == "__main__":
    main()
