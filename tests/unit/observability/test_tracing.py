"""Spans without an exporter: ids only, still on every log line and shared by children."""

from __future__ import annotations

from opentelemetry.trace import format_trace_id

from devmesh.config import TracingSettings
from devmesh.observability.tracing import add_trace_ids, build_tracer_provider


def test_without_an_exporter_a_span_still_gives_log_lines_its_trace_id() -> None:
    tracer = build_tracer_provider(TracingSettings(exporter="none")).get_tracer("test")

    with tracer.start_as_current_span("request") as span:
        event = add_trace_ids(None, "info", {"event": "http_request"})

    assert span.get_span_context().is_valid
    assert event["trace_id"] == format_trace_id(span.get_span_context().trace_id)
    assert "span_id" in event


def test_without_an_exporter_a_child_span_is_in_its_parents_trace() -> None:
    tracer = build_tracer_provider(TracingSettings(exporter="none")).get_tracer("test")

    with (
        tracer.start_as_current_span("request") as parent,
        tracer.start_as_current_span("tool") as child,
    ):
        pass

    assert child.get_span_context().trace_id == parent.get_span_context().trace_id
    assert child.get_span_context().span_id != parent.get_span_context().span_id
