"""The floor: the least a webhook receiver on the same database can do.

A bare ASGI app (no framework) that answers every POST after one durable INSERT of
the raw body into a table of its own, in its own transaction, through the same
``Database`` (driver, pool, SQLite pragmas) and the same uvicorn settings as
``devmesh serve``. Nothing else: no signature, no lookup, no dedup, no events.

Run as ``python -m bench.ingest.floor DATABASE_URL``: it prints ``listening on URL``
once it answers, and serves until SIGTERM.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import uvicorn
from sqlalchemy import text

from devmesh.config import Settings
from devmesh.serving import uvicorn_config
from devmesh.store.db import Database
from tests.upstream import listening_socket

TABLE = "bench_floor_deliveries"
_CREATE_SQLITE = f"CREATE TABLE IF NOT EXISTS {TABLE} (id INTEGER PRIMARY KEY, body BLOB NOT NULL)"
_CREATE_PG = f"CREATE TABLE IF NOT EXISTS {TABLE} (id BIGSERIAL PRIMARY KEY, body BYTEA NOT NULL)"
_INSERT = text(f"INSERT INTO {TABLE} (body) VALUES (:body)")
_ANSWER = b'{"duplicate": false}'  # what a new delivery gets from Developer Mesh


class Floor:
    """The ASGI app: read the body, insert it, answer 200."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (message := await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await self._db.close()
            await send({"type": "lifespan.shutdown.complete"})
            return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        async with self._db.session() as session:
            await session.execute(_INSERT, {"body": body})
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": _ANSWER})


async def _serve(url: str) -> None:
    db = Database(url)
    async with db.session() as session:
        await session.execute(text(_CREATE_SQLITE if db.is_sqlite else _CREATE_PG))
    sock = listening_socket()
    host, port = sock.getsockname()[:2]
    config = uvicorn_config(Floor(db), Settings(), host=host, port=port)
    server = uvicorn.Server(config)
    print(f"listening on http://{host}:{port}", flush=True)
    await server.serve(sockets=[sock])


def main() -> None:
    asyncio.run(_serve(sys.argv[1]))


if __name__ == "__main__":
    main()
