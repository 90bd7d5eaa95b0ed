"""The calls measured: direct to the upstream, REST, MCP per session, MCP a session per call."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import httpx
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
    """Workers that share one pooled client, as a program with one httpx client does."""

    @asynccontextmanager
    async def worker() -> AsyncIterator[Call]:
        yield call

    return worker


def direct_calls(http: httpx.AsyncClient) -> Worker:
    async def call() -> None:
        answer = await http.get(BUILD_PATH, params={"property": PROPERTIES})
        if answer.status_code != 200 or not answer.json()["builds"]:
            raise CallFailed(f"HTTP {answer.status_code}")

    return _shared(call)


def rest_calls(http: httpx.AsyncClient, api_key: str) -> Worker:
    headers = {"Authorization": f"Bearer {api_key}"}

    async def call() -> None:
        answer = await http.post(
            "/api/v1/tools/ci/operations/get_build_status",
            json={"build_id": "1"},
            headers=headers,
        )
        if answer.status_code != 200 or answer.json()["status"] != "succeeded":
            raise CallFailed(f"HTTP {answer.status_code}: {answer.text[:200]}")

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
