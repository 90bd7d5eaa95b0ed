"""One pure-ASGI middleware for every HTTP request: request id, span, access log, metrics.

Pure ASGI rather than ``BaseHTTPMiddleware``: it adds no task per request and
does not buffer streamed responses (MCP's Streamable HTTP streams).
"""

from __future__ import annotations

import re
import time
import uuid

import structlog
from opentelemetry import propagate
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer
from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from devmesh.observability.metrics import Metrics

__all__ = ["RequestContextMiddleware"]

_log = structlog.get_logger("devmesh.http")
_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
# Label tuples whose children are kept at hand; a client inventing methods gets no more.
_COUNTED = 1024


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, *, metrics: Metrics, tracer: Tracer) -> None:
        self.app = app
        self.metrics = metrics
        self.tracer = tracer
        # The headers the configured propagators read (traceparent, tracestate, baggage
        # by default; OTEL_PROPAGATORS may name others), as ASGI spells them.
        self._propagated = frozenset(
            field.lower().encode("latin-1") for field in propagate.get_global_textmap().fields
        )
        # One labelled child per label tuple: prometheus_client's ``labels`` checks and
        # locks on every call. Bounded: methods, route templates and statuses we send.
        self._counted: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = ""
        carrier = False
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                incoming = value.decode("latin-1")
            elif name in self._propagated:
                carrier = True
        request_id = incoming if _SAFE_ID.match(incoming) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                # int(): the MCP SDK sends HTTPStatus members, which would log as enums.
                status = int(message["status"])
                message.setdefault("headers", []).append(
                    (b"x-request-id", request_id.encode("latin-1"))
                )
            await send(message)

        method = scope["method"]
        # A caller's W3C traceparent makes our spans children of its trace. Most
        # requests carry none of the propagator's headers: then there is nothing to
        # extract, and the span's parent is the current context, as extract gives.
        parent = (
            propagate.extract(
                {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
            )
            if carrier
            else None
        )
        structlog.contextvars.bind_contextvars(request_id=request_id)
        with self.tracer.start_as_current_span(
            method, context=parent, kind=SpanKind.SERVER, record_exception=False
        ) as span:
            try:
                await self.app(scope, receive, send_with_id)
            finally:
                template = getattr(scope.get("route"), "path", None) or "unmatched"
                span.update_name(f"{method} {template}")
                span.set_attribute("http.request.method", method)
                span.set_attribute("http.route", template)
                span.set_attribute("http.response.status_code", status)
                span.set_attribute("devmesh.request_id", request_id)
                if status >= 500:
                    span.set_status(Status(StatusCode.ERROR))
                self._finish(method, template, status, started)
                structlog.contextvars.unbind_contextvars("request_id")

    def _finish(self, method: str, template: str, status: int, started: float) -> None:
        elapsed = time.perf_counter() - started
        key = (method, template, status)
        if (children := self._counted.get(key)) is None:
            children = (
                self.metrics.http_requests.labels(method, template, str(status)),
                self.metrics.http_duration.labels(method, template),
            )
            if len(self._counted) < _COUNTED:
                self._counted[key] = children
        requests, duration = children
        requests.inc()
        duration.observe(elapsed)
        # Inside the span, so the access line carries the trace id too.
        _log.info(
            "http_request",
            method=method,
            route=template,
            status=status,
            duration_ms=round(elapsed * 1000, 2),
        )
