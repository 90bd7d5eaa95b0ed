"""What an operator sees of a request: log lines tied by ids, spans, bounded metrics."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import format_trace_id

from devmesh.app import Services, create_app
from devmesh.config import Settings

pytestmark = pytest.mark.anyio

# Nothing listens on port 1: every call fails fast as upstream_unavailable.
CLOSED = "http://127.0.0.1:1"
ARGUMENT = "987654321"


@pytest.fixture
def spans() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
async def traced_app(settings: Settings, spans: InMemorySpanExporter) -> AsyncIterator[FastAPI]:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    application = create_app(settings, tracer_provider=provider)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def http(traced_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=traced_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        yield client


@pytest.fixture
async def auth(traced_app: FastAPI, http: httpx.AsyncClient) -> dict[str, str]:
    services: Services = traced_app.state.services
    _, key = await services.tenants.create_tenant("acme")
    headers = {"Authorization": f"Bearer {key}"}
    tool = {
        "name": "ci",
        "provider": "buildbot",
        "base_url": CLOSED,
        "resilience": {"max_retries": 1, "backoff_initial": 0.01},
    }
    assert (await http.post("/api/v1/tools", json=tool, headers=headers)).status_code == 201
    return headers


async def call_tool(
    http: httpx.AsyncClient, auth: dict[str, str], **headers: str
) -> httpx.Response:
    return await http.post(
        "/api/v1/tools/ci/operations/get_build_status",
        json={"build_id": ARGUMENT},
        headers={**auth, **headers},
    )


def events(records: list[logging.LogRecord]) -> list[dict[str, Any]]:
    return [record.msg for record in records if isinstance(record.msg, dict)]


def named(spans: InMemorySpanExporter, name: str) -> ReadableSpan:
    return next(span for span in spans.get_finished_spans() if span.name == name)


async def test_every_log_line_of_a_request_has_its_request_id_and_trace_id(
    http: httpx.AsyncClient, auth: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.clear()
    response = await call_tool(http, auth)

    lines = events(caplog.records)
    assert {line["event"] for line in lines} >= {"tool_call", "tool_call_retry", "http_request"}
    assert {line.get("request_id") for line in lines} == {response.headers["x-request-id"]}
    trace_ids = {line.get("trace_id") for line in lines}
    assert len(trace_ids) == 1
    assert None not in trace_ids


async def test_info_logs_never_carry_tool_arguments(
    http: httpx.AsyncClient, auth: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    await call_tool(http, auth)

    info = [r for r in caplog.records if r.levelno >= logging.INFO]
    assert info
    assert not [r for r in info if ARGUMENT in f"{r.msg!r} {r.getMessage()}"]


async def test_a_tool_call_is_a_span_inside_the_request_span(
    http: httpx.AsyncClient, auth: dict[str, str], spans: InMemorySpanExporter
) -> None:
    response = await call_tool(http, auth)
    assert response.status_code == 503

    request = named(spans, "POST /api/v1/tools/{tool}/operations/{operation}")
    tool = named(spans, "tool get_build_status")
    assert tool.parent is not None and request.context is not None
    assert tool.parent.span_id == request.context.span_id
    assert tool.attributes == {
        "devmesh.provider": "buildbot",
        "devmesh.operation": "get_build_status",
        "devmesh.outcome": "upstream_unavailable",
    }
    assert request.attributes is not None
    assert request.attributes["http.response.status_code"] == 503
    assert request.attributes["http.route"] == "/api/v1/tools/{tool}/operations/{operation}"


async def test_a_caller_traceparent_puts_our_spans_in_its_trace(
    http: httpx.AsyncClient,
    auth: dict[str, str],
    spans: InMemorySpanExporter,
    caplog: pytest.LogCaptureFixture,
) -> None:
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    caplog.clear()
    await call_tool(http, auth, traceparent=f"00-{trace_id}-00f067aa0ba902b7-01")

    tool = named(spans, "tool get_build_status")
    assert format_trace_id(tool.context.trace_id) == trace_id  # type: ignore[union-attr]
    assert {line.get("trace_id") for line in events(caplog.records)} == {trace_id}


async def test_metrics_count_tool_calls_with_bounded_labels_only(
    http: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    await call_tool(http, auth)

    text = (await http.get("/metrics")).text
    assert (
        'devmesh_tool_calls_total{operation="get_build_status",outcome="upstream_unavailable",'
        'provider="buildbot"} 1.0' in text
    )
    assert (
        'devmesh_tool_retries_total{operation="get_build_status",provider="buildbot"} 1.0' in text
    )
    assert "devmesh_tool_call_duration_seconds_bucket" in text
    for unbounded in (ARGUMENT, "127.0.0.1:1", '"ci"', "acme"):
        assert unbounded not in text
