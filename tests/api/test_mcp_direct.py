"""The direct tools/call path answers exactly what the SDK's pipeline would.

Each request goes to /mcp twice through the whole app (gate, request context): once
with the direct path on, once with an endpoint that leaves everything to the SDK
(``McpHttpEndpoint(direct=False)``); statuses and JSON bodies must match. A spy on
the direct path says which requests it answered, so a request it silently handed
over cannot pass for one it served.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import httpx2
import mcp_types as types
import pytest
from fastapi import FastAPI
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared import _otel
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import ProxyTracerProvider, SpanKind, StatusCode, get_tracer_provider
from starlette.types import Scope, Send

from devmesh.app import Services, create_app
from devmesh.config import Settings
from devmesh.mcp.direct import DirectToolCalls
from devmesh.mcp.errors import error_payload
from devmesh.mcp.http import McpHttpEndpoint
from tests.support.http import bearer
from tests.upstream import Upstream

pytestmark = pytest.mark.anyio

VERSION = "2026-07-28"
LEGACY = "2025-06-18"
BASE = "http://127.0.0.1"
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


class Paths:
    """The app's endpoint (direct path on) and an SDK-only one over the same server."""

    def __init__(self, app: FastAPI, sdk_only: McpHttpEndpoint, key: str) -> None:
        self.app = app
        self.direct: McpHttpEndpoint = app.state.mcp
        self.sdk_only = sdk_only
        self.key = key
        self.answered: list[bool] = []

    async def post(
        self, endpoint: McpHttpEndpoint, body: Any, headers: dict[str, str], query: str = ""
    ) -> httpx.Response:
        self.app.state.mcp = endpoint
        try:
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=self.app), base_url=BASE
            ) as http:
                content = body if isinstance(body, bytes) else json.dumps(body).encode()
                return await http.post(
                    f"/mcp{query}", content=content, headers={**bearer(self.key), **headers}
                )
        finally:
            self.app.state.mcp = self.direct

    async def both(
        self, body: Any, headers: dict[str, str], query: str = ""
    ) -> tuple[httpx.Response, bool]:
        """The direct path's answer, after checking the SDK's is the same; and
        whether the direct path answered it itself."""
        self.answered.clear()
        direct = await self.post(self.direct, body, headers, query)
        served = self.answered == [True]
        sdk = await self.post(self.sdk_only, body, headers, query)
        assert len(self.answered) == 1  # the SDK-only endpoint has no direct path
        assert (direct.status_code, direct.headers.get("content-type")) == (
            sdk.status_code,
            sdk.headers.get("content-type"),
        ), (direct.text, sdk.text)
        if sdk.headers.get("content-type") == "application/json":
            assert direct.json() == sdk.json()
            # Key order too: the SDK's surface dump sets it, and some clients hash bodies.
            assert list(direct.json().get("result", {})) == list(sdk.json().get("result", {}))
        else:
            assert direct.content == sdk.content
        return direct, served


def meta(version: str = VERSION, **extra: Any) -> dict[str, Any]:
    return {
        types.PROTOCOL_VERSION_META_KEY: version,
        types.CLIENT_CAPABILITIES_META_KEY: {},
        types.CLIENT_INFO_META_KEY: {"name": "differential", "version": "1"},
        **extra,
    }


def call(name: str, arguments: Any, *, version: str = VERSION, **extra: Any) -> dict[str, Any]:
    params = {"name": name, "arguments": arguments, "_meta": meta(version, **extra)}
    return {"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": params}


def headers(name: str, *, version: str = VERSION, method: str = "tools/call") -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "Accept": "application/json, text/event-stream",
        "MCP-Protocol-Version": version,
        "Mcp-Method": method,
        "Mcp-Name": name,
    }


@pytest.fixture
def our_spans() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
async def app(settings: Settings, our_spans: InMemorySpanExporter) -> AsyncIterator[FastAPI]:
    """The app, its own tracing (not the SDK's: that stays off) into memory."""
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(our_spans))
    application = create_app(settings, tracer_provider=provider)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def paths(
    app: FastAPI,
    settings: Settings,
    client: httpx.AsyncClient,
    services: Services,
    upstream: Upstream,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Paths]:
    _, key = await services.tenants.create_tenant("acme")
    tool = {
        "name": "ci",
        "provider": "buildbot",
        "base_url": upstream.base_url,
        "resilience": {"max_retries": 0},
    }
    created = await client.post("/api/v1/tools", json=tool, headers=bearer(key))
    assert created.status_code == 201, created.text
    endpoint: McpHttpEndpoint = app.state.mcp
    sdk_only = McpHttpEndpoint(endpoint.server, host=settings.host, direct=False)
    async with sdk_only.run():
        paths = Paths(app, sdk_only, key)
        handle = DirectToolCalls.handle

        async def spied(self: DirectToolCalls, scope: Scope, body: bytes, send: Send) -> bool:
            served = await handle(self, scope, body, send)
            paths.answered.append(served)
            return served

        monkeypatch.setattr(DirectToolCalls, "handle", spied)
        yield paths


def result_of(response: httpx.Response) -> dict[str, Any]:
    result: dict[str, Any] = response.json()["result"]
    return result


def error_of(response: httpx.Response) -> dict[str, Any]:
    result = result_of(response)
    assert result["isError"] is True
    return error_payload(types.CallToolResult.model_validate(result))


# --- what the direct path answers: the SDK's answer ----------------------------------


async def test_a_successful_call_is_answered_directly_as_the_sdk_answers_it(paths: Paths) -> None:
    name = "ci_get_build_status"
    response, served = await paths.both(call(name, {"build_id": "1"}), headers(name))
    assert served
    result = result_of(response)
    assert result["isError"] is False
    assert result["resultType"] == "complete"
    assert result["structuredContent"]["build_id"] == "1"
    assert json.loads(result["content"][0]["text"]) == result["structuredContent"]
    assert result["_meta"][types.SERVER_INFO_META_KEY]["name"] == "developer-mesh"


async def test_an_unknown_tool_is_the_same_error_result_on_both_paths(paths: Paths) -> None:
    response, served = await paths.both(call("nope_thing", {}), headers("nope_thing"))
    assert served
    assert error_of(response)["error"] == "unknown_tool"


async def test_an_upstream_404_is_the_same_error_result_on_both_paths(paths: Paths) -> None:
    name = "ci_get_build_status"
    response, served = await paths.both(call(name, {"build_id": "999"}), headers(name))
    assert served
    assert error_of(response)["error"] == "upstream_not_found"


async def test_bad_arguments_are_the_same_invalid_input_on_both_paths(paths: Paths) -> None:
    name = "ci_get_build_status"
    response, served = await paths.both(call(name, {"build_id": ""}), headers(name))
    assert served
    assert error_of(response)["details"]["field"] == "build_id"


async def test_a_tenant_wide_operation_is_answered_alike(paths: Paths) -> None:
    name = "search_contexts"
    response, served = await paths.both(call(name, {"query": "flaky test"}), headers(name))
    assert served
    assert result_of(response)["isError"] is False


async def test_call_tool_in_search_mode_is_answered_alike(paths: Paths) -> None:
    inner = {"name": "ci_get_build_status", "arguments": {"build_id": "2"}}
    response, served = await paths.both(
        call("call_tool", inner), headers("call_tool"), query="?mode=search"
    )
    assert served
    assert result_of(response)["structuredContent"]["build_id"] == "2"


async def test_a_read_only_refusal_is_the_same_forbidden_result(paths: Paths) -> None:
    name = "ci_trigger_build"
    response, served = await paths.both(
        call(name, {"project": "app"}), headers(name), query="?read_only=true"
    )
    assert served
    assert error_of(response)["details"]["read_only"] is True


async def test_a_canonical_dotted_name_is_answered_alike(paths: Paths) -> None:
    name = "ci.get_build_status"
    response, served = await paths.both(call(name, {"build_id": "1"}), headers(name))
    assert served
    assert result_of(response)["structuredContent"]["build_id"] == "1"


async def test_a_string_request_id_is_echoed_as_the_sdk_echoes_it(paths: Paths) -> None:
    body = {**call("nope_thing", {}), "id": "req-1"}
    response, served = await paths.both(body, headers("nope_thing"))
    assert served
    assert response.json()["id"] == "req-1"


# --- what it leaves to the SDK: the SDK's answer -------------------------------------


def edge_cases() -> Iterator[Any]:
    name = "ci_get_build_status"
    good = call(name, {"build_id": "1"})
    yield pytest.param(good, headers(name, method="tools/list"), id="header-method-mismatch")
    yield pytest.param(good, {**headers(name), "Mcp-Name": "other"}, id="header-name-mismatch")
    yield pytest.param(
        call(name, {"build_id": "1"}, version="2099-01-01"),
        headers(name, version="2099-01-01"),
        id="unsupported-version",
    )
    yield pytest.param(
        call(name, {"build_id": "1"}, version="2099-01-01"), headers(name), id="meta-disagrees"
    )
    yield pytest.param([good], headers(name), id="batch")
    yield pytest.param(good, {**headers(name), "Accept": "text/event-stream"}, id="sse-only")
    yield pytest.param(good, {**headers(name), "Accept": "text/html"}, id="wrong-accept")
    yield pytest.param(good, {**headers(name), "Content-Type": "text/plain"}, id="content-type")
    yield pytest.param(good, {**headers(name), "Host": "evil.example"}, id="rebound-host")
    yield pytest.param(
        call(name, {"build_id": "1"}, version=LEGACY),
        headers(name, version=LEGACY),
        id="initialize-era",
    )
    yield pytest.param(call(name, "not an object"), headers(name), id="arguments-not-object")
    yield pytest.param(call(7, {}), headers("7"), id="name-not-string")  # type: ignore[arg-type]
    no_meta = {**good, "params": {"name": name, "arguments": {"build_id": "1"}}}
    yield pytest.param(no_meta, headers(name), id="no-meta")
    yield pytest.param({**good, "jsonrpc": "1.0"}, headers(name), id="jsonrpc-version")
    yield pytest.param({**good, "id": None}, headers(name), id="null-id")
    yield pytest.param({**good, "id": True}, headers(name), id="boolean-id")
    no_id = {k: v for k, v in good.items() if k != "id"}
    yield pytest.param(no_id, headers(name), id="notification")
    yield pytest.param(b'{"jsonrpc": "2.0", "id": 7,', headers(name), id="truncated-json")
    yield pytest.param(json.dumps(good).replace("7", "NaN", 1).encode(), headers(name), id="nan")
    listing = {**good, "method": "tools/list", "params": {"_meta": meta()}}
    yield pytest.param(listing, headers(name, method="tools/list"), id="other-method")


@pytest.mark.parametrize(("body", "sent"), list(edge_cases()))
async def test_a_request_the_direct_path_cannot_prove_well_formed_gets_the_sdks_answer(
    paths: Paths, body: Any, sent: dict[str, str]
) -> None:
    _, served = await paths.both(body, sent)
    assert not served


async def test_a_repeated_routing_header_gets_the_sdks_answer(paths: Paths) -> None:
    name = "ci_get_build_status"
    sent = [*bearer(paths.key).items(), *headers(name).items(), ("Mcp-Method", "tools/call")]
    content = json.dumps(call(name, {"build_id": "1"})).encode()
    answers = []
    for endpoint in (paths.direct, paths.sdk_only):
        paths.app.state.mcp = endpoint
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=paths.app)) as http:
            request = httpx.Request("POST", f"{BASE}/mcp", content=content, headers=sent)
            answers.append(await http.send(request))
    paths.app.state.mcp = paths.direct
    assert paths.answered == [False]
    assert answers[0].status_code == answers[1].status_code == 400
    assert answers[0].json() == answers[1].json()


# --- a real client, and the span -----------------------------------------------------


@asynccontextmanager
async def connected(paths: Paths) -> AsyncIterator[Client]:
    async with (
        httpx2.AsyncClient(
            transport=httpx2.ASGITransport(app=paths.app), headers=bearer(paths.key), timeout=30
        ) as http,
        Client(
            streamable_http_client(f"{BASE}/mcp?toolsets=builds", http_client=http)  # type: ignore[arg-type]
        ) as mcp,
    ):
        yield mcp


async def test_the_sdk_client_calls_a_tool_through_the_direct_path(paths: Paths) -> None:
    async with connected(paths) as mcp:
        paths.answered.clear()
        result = await mcp.call_tool("ci_get_build_status", {"build_id": "1"})
    assert True in paths.answered
    assert result.is_error is False
    assert result.structured_content is not None
    assert result.structured_content["build_id"] == "1"


@pytest.fixture
def sdk_spans(monkeypatch: pytest.MonkeyPatch) -> InMemorySpanExporter:
    """The SDK's spans (its tracer is the global provider's) into memory."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(_otel, "_tracer", provider.get_tracer("mcp-python-sdk"))
    return exporter


def observed(span: ReadableSpan) -> tuple[Any, ...]:
    parent = span.parent
    return (
        span.name,
        span.kind,
        dict(span.attributes or {}),
        span.status.status_code,
        None if parent is None else (parent.trace_id, parent.span_id),
    )


@pytest.mark.parametrize(("build", "failed"), [("1", False), ("999", True)])
async def test_the_direct_path_makes_the_span_the_sdks_middleware_makes(
    paths: Paths, sdk_spans: InMemorySpanExporter, build: str, failed: bool
) -> None:
    name = "ci_get_build_status"
    body = call(name, {"build_id": build}, traceparent=TRACEPARENT)
    spans = []
    for endpoint in (paths.direct, paths.sdk_only):
        sdk_spans.clear()
        await paths.post(endpoint, body, headers(name))
        (span,) = [s for s in sdk_spans.get_finished_spans() if s.name.startswith("tools/call")]
        spans.append(observed(span))
    assert spans[0] == spans[1]
    span_name, kind, attributes, status, parent = spans[0]
    assert (span_name, kind) == (f"tools/call {name}", SpanKind.SERVER)
    assert attributes == {
        "mcp.method.name": "tools/call",
        "mcp.protocol.version": VERSION,
        "jsonrpc.request.id": "7",
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": name,
        **({"error.type": "tool_error"} if failed else {}),
    }
    assert status is (StatusCode.ERROR if failed else StatusCode.UNSET)
    assert parent == (int(TRACEPARENT[3:35], 16), int(TRACEPARENT[36:52], 16))


@pytest.mark.parametrize("traceparent", [None, TRACEPARENT])
async def test_with_the_sdks_spans_off_our_spans_have_the_parents_they_have_under_the_sdk(
    paths: Paths, our_spans: InMemorySpanExporter, traceparent: str | None
) -> None:
    # The SDK's tracer is the global provider's, and none is set: its spans are off.
    assert isinstance(get_tracer_provider(), ProxyTracerProvider)
    name = "ci_get_build_status"
    extra = {} if traceparent is None else {"traceparent": traceparent}
    parents = []
    paths.answered.clear()
    for endpoint in (paths.direct, paths.sdk_only):
        our_spans.clear()
        await paths.post(endpoint, call(name, {"build_id": "1"}, **extra), headers(name))
        finished = our_spans.get_finished_spans()
        (request,) = [s for s in finished if s.name == "POST /mcp"]
        (tool,) = [s for s in finished if s.name == "tool get_build_status"]
        assert tool.parent is not None and request.context is not None
        parents.append((tool.parent.trace_id, tool.parent.span_id, request.context.span_id))
    assert paths.answered == [True]
    if traceparent is None:
        assert all(parent == request for _, parent, request in parents)
    else:
        expected = (int(TRACEPARENT[3:35], 16), int(TRACEPARENT[36:52], 16))
        assert [parent[:2] for parent in parents] == [expected, expected]
