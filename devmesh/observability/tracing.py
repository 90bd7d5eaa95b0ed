"""OpenTelemetry traces: a span per HTTP request and per adapter call.

Spans are always made, so every log line of a request has a ``trace_id`` to
search by; they are recorded and leave the process only when an exporter is
configured (``tracing.exporter`` or the standard ``OTEL_TRACES_EXPORTER``). The provider is
the app's own, not the global one, so tests can build many apps side by side.
"""

from __future__ import annotations

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from opentelemetry.trace import format_span_id, format_trace_id, get_current_span
from structlog.types import EventDict, WrappedLogger

from devmesh.config import TracingSettings

__all__ = ["add_trace_ids", "build_tracer_provider"]

TRACER_NAME = "devmesh"


def build_tracer_provider(settings: TracingSettings) -> TracerProvider:
    # Resource.create also reads OTEL_RESOURCE_ATTRIBUTES, as the spec asks.
    resource = Resource.create({"service.name": settings.service_name})
    if settings.exporter == "none":
        # Nothing leaves the process, so a span needs only its ids: log lines carry
        # them, children share the trace, a caller's traceparent is continued. An
        # unsampled span is just that (no attributes, events or timing kept), at a
        # fraction of a recorded span's CPU, twice per call.
        return TracerProvider(resource=resource, sampler=ALWAYS_OFF)
    provider = TracerProvider(resource=resource)
    if settings.exporter == "otlp":
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    elif settings.exporter == "console":
        provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    return provider


def add_trace_ids(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    """structlog processor: the current span's ids on every line logged inside it."""
    context = get_current_span().get_span_context()
    if context.is_valid:
        event.setdefault("trace_id", format_trace_id(context.trace_id))
        event.setdefault("span_id", format_span_id(context.span_id))
    return event
