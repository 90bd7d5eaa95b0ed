"""The shared upstream clients keep no cookie from any answer, for any tenant's next call."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from devmesh.adapters.clients import HttpClients
from devmesh.adapters.egress import EgressPolicy

pytestmark = pytest.mark.anyio


async def test_a_cookie_an_upstream_sets_is_never_sent_again_by_the_shared_client() -> None:
    seen: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            for _ in range(2):
                seen.append(await reader.readuntil(b"\r\n\r\n"))
                writer.write(
                    b"HTTP/1.1 200 OK\r\nset-cookie: session=tenant-a-secret; Path=/\r\n"
                    b"content-length: 2\r\n\r\n{}"
                )
                await writer.drain()
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    clients = HttpClients(EgressPolicy())
    try:
        async with server:
            http = clients.client()
            first = await http.get(f"{url}/a")
            await http.get(f"{url}/b")
    finally:
        await clients.aclose()

    assert first.headers["set-cookie"].startswith("session=")
    assert len(seen) == 2
    assert b"cookie" not in seen[1].lower().replace(b"set-cookie", b"")
    assert not http.cookies
