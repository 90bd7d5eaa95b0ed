"""The calls measured: direct to the upstream, REST, MCP per session, MCP a session per call."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

PROPERTIES = ["branch", "revision", "got_revision"]  # what the adapter asks for
BUILD_PATH = "/api/v2/builds/1"
# The name tools/list shows for tool ``ci``'s get_build_status (the default separator
# is "_"), as an agent calls it. The canonical ``ci.get_build_status`` works too, but
# the SDK client checks structured output against the tool it listed, and, not finding
# that name, lists the tools again on every call: two requests measured as one.
MCP_TOOL = "ci_get_build_status"
# The service's default view lists the knowledge tools and the search meta-tools; an
# agent that works with builds connects with their toolset, and so lists the tool it
# calls (an unlisted name would send the SDK client back to tools/list on every call).
MCP_PATH = "/mcp?toolsets=builds"
CALL_TIMEOUT_S = 10.0
SESSION_PER_CALL_MAX = 300  # each such call is three HTTP exchanges; keep the row short

Call = Callable[[], Awaitable[None]]
Worker = Callable[[], AbstractAsyncContextManager[Call]]


class CallFailed(Exception):
    """A call that answered, but not with the build."""


def _shared(call: Call) -> Worker:
    """Workers that share one pooled client, as a program with one HTTP client does."""

    @asynccontextmanager
    async def worker() -> AsyncIterator[Call]:
        yield call

    return worker


@asynccontextmanager
async def lean_client() -> AsyncIterator[aiohttp.ClientSession]:
    """The client of every row but the SDK's: aiohttp, about a quarter of the CPU per
    request of httpx on anyio, so on two cores the load generator takes less of what
    it measures. The same client for the upstream, both faces and both gateways."""
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=64),
        timeout=aiohttp.ClientTimeout(total=CALL_TIMEOUT_S),
    ) as session:
        yield session


async def _json(answer: aiohttp.ClientResponse) -> Any:
    body = await answer.read()
    if answer.status != 200:
        raise CallFailed(f"HTTP {answer.status}: {body[:200]!r}")
    return json.loads(body)


def direct_calls(http: aiohttp.ClientSession, base_url: str) -> Worker:
    url = f"{base_url}{BUILD_PATH}"
    params = [("property", p) for p in PROPERTIES]

    async def call() -> None:
        async with http.get(url, params=params) as answer:
            if not (await _json(answer))["builds"]:
                raise CallFailed("no build")

    return _shared(call)


def rest_calls(http: aiohttp.ClientSession, base_url: str, api_key: str) -> Worker:
    url = f"{base_url}/api/v1/tools/ci/operations/get_build_status"
    headers = {"Authorization": f"Bearer {api_key}"}

    async def call() -> None:
        async with http.post(url, json={"build_id": "1"}, headers=headers) as answer:
            build = await _json(answer)
        if build["status"] != "succeeded":
            raise CallFailed(str(build)[:200])

    return _shared(call)


@dataclass(frozen=True)
class Captured:
    """One request as the official client sent it."""

    url: str
    headers: dict[str, str]
    body: bytes


# Per connection: aiohttp sets its own.
_PER_CONNECTION = {"host", "content-length", "connection", "accept-encoding"}


async def capture_call(
    url: str, headers: dict[str, str], tool: str, arguments: dict[str, Any]
) -> Captured:
    """The request the official client sends for ``tools/call tool(arguments)``, taken
    from its HTTP client after it has discovered the server."""
    seen: list[Captured] = []

    async def record(request: httpx2.Request) -> None:
        if b'"tools/call"' in request.content:
            kept = {k: v for k, v in request.headers.items() if k.lower() not in _PER_CONNECTION}
            seen.append(Captured(str(request.url), kept, request.content))

    async with (
        httpx2.AsyncClient(
            headers=headers,
            timeout=CALL_TIMEOUT_S,
            trust_env=False,
            event_hooks={"request": [record]},
        ) as http,
        Client(streamable_http_client(url, http_client=http)) as client,
    ):
        result = await client.call_tool(tool, arguments, read_timeout_seconds=CALL_TIMEOUT_S)
    if result.is_error or len(seen) != 1:
        raise CallFailed(f"no single tools/call to capture ({len(seen)}): {result.content}")
    return seen[0]


def replayed_calls(http: aiohttp.ClientSession, captured: Captured) -> Worker:
    """The official client's own request sent again by the lean client, each answer
    checked as the SDK checks it (a JSON-RPC result, not ``isError``). On the
    2026-07-28 protocol a request stands alone, so the one request is a whole call."""

    async def call() -> None:
        async with http.post(captured.url, data=captured.body, headers=captured.headers) as answer:
            message = await _json(answer)
        result = message.get("result")
        if not isinstance(result, dict) or result.get("isError"):
            raise CallFailed(str(message)[:200])

    return _shared(call)


@asynccontextmanager
async def mcp_session(url: str, headers: dict[str, str]) -> AsyncIterator[Client]:
    async with (
        httpx2.AsyncClient(headers=headers, timeout=CALL_TIMEOUT_S, trust_env=False) as http,
        Client(streamable_http_client(url, http_client=http)) as client,
    ):
        yield client


async def _call_tool(client: Client, tool: str, arguments: dict[str, Any]) -> None:
    result = await client.call_tool(tool, arguments, read_timeout_seconds=CALL_TIMEOUT_S)
    if result.is_error:
        raise CallFailed(str(result.content)[:200])


def mcp_calls(url: str, headers: dict[str, str], tool: str, arguments: dict[str, Any]) -> Worker:
    """One session per worker, opened before the clock starts and kept for every call."""

    @asynccontextmanager
    async def worker() -> AsyncIterator[Call]:
        async with mcp_session(url, headers) as client:

            async def call() -> None:
                await _call_tool(client, tool, arguments)

            yield call

    return worker


def mcp_session_per_call(
    url: str, headers: dict[str, str], tool: str, arguments: dict[str, Any]
) -> Worker:
    """A new MCP session for every call (discover, list tools, call) over one HTTP client.

    The HTTP client is shared, as a program keeps one: a new httpx client per call
    would add its own set-up (an SSL context) to what is measured.
    """

    @asynccontextmanager
    async def worker() -> AsyncIterator[Call]:
        async with httpx2.AsyncClient(
            headers=headers, timeout=CALL_TIMEOUT_S, trust_env=False
        ) as http:

            async def call() -> None:
                async with Client(streamable_http_client(url, http_client=http)) as client:
                    await _call_tool(client, tool, arguments)

            yield call

    return worker
