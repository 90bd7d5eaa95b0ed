"""httpx over aiohttp: the egress policy at connect time, httpx's errors, streamed bodies."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import httpx
import pytest

from devmesh.adapters.aio_transport import AiohttpEgressTransport
from devmesh.adapters.egress import EgressDenied, EgressPolicy

pytestmark = pytest.mark.anyio

EMBEDDED = EgressPolicy()
PRODUCTION = EgressPolicy(allow_loopback=False, allow_private=False)


def client(policy: EgressPolicy) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=AiohttpEgressTransport(policy, limits=httpx.Limits()))


async def serve(answer: bytes, *, stall: bool = False) -> tuple[asyncio.Server, str]:
    """A one-answer HTTP/1.1 server on loopback; ``stall`` sends headers and no body."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(answer)
            if stall:
                await reader.read()  # until the client gives up and closes
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"


@pytest.fixture
async def ok() -> AsyncIterator[str]:
    body = b'{"n": 1}' * 10_000
    server, url = await serve(
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s"
        % (len(body), body)
    )
    async with server:
        yield url


async def test_a_literal_metadata_address_is_refused_without_connecting() -> None:
    async with client(EMBEDDED) as http:
        with pytest.raises(EgressDenied, match="metadata"):
            await http.get("http://169.254.169.254/latest/meta-data/")


async def test_a_name_whose_address_is_refused_is_refused() -> None:
    async with client(PRODUCTION) as http:
        with pytest.raises(EgressDenied, match="loopback"):
            await http.get("http://localhost:9/")


async def test_a_name_that_does_not_resolve_is_a_connect_error() -> None:
    async with client(EMBEDDED) as http:
        with pytest.raises(httpx.ConnectError):
            await http.get("http://no-such-host.invalid/")


async def test_a_closed_port_is_a_connect_error() -> None:
    server, url = await serve(b"")
    server.close()
    await server.wait_closed()
    async with client(EMBEDDED) as http:
        with pytest.raises(httpx.ConnectError):
            await http.get(url)


async def test_an_answer_arrives_whole_with_its_status_and_headers(ok: str) -> None:
    async with client(EMBEDDED) as http:
        response = await http.get(f"{ok}/a%2Fb?x=1")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.content == b'{"n": 1}' * 10_000


async def test_a_streamed_answer_can_be_left_unread_and_the_client_goes_on(ok: str) -> None:
    async with client(EMBEDDED) as http:
        async with http.stream("GET", ok) as response:
            async for _ in response.aiter_bytes():
                break
        assert (await http.get(ok)).status_code == 200


async def test_a_body_that_stops_coming_is_a_read_timeout() -> None:
    server, url = await serve(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n", stall=True)
    async with server, client(EMBEDDED) as http:
        with pytest.raises(httpx.ReadTimeout):
            await http.get(url, timeout=httpx.Timeout(0.2))
