"""``tools/call`` on the 2026-07-28 protocol without the SDK's per-request pipeline.

Per call the SDK builds a ``Connection``, a ``ServerRunner`` and a session, then
dumps and validates the result dict about four times before ``json.dumps`` (issue
16: MCP cost ~2.4 ms of gateway CPU a call against REST's ~1.1 ms). This path
answers the common request itself: one well-formed JSON-RPC ``tools/call`` on a
modern version, headers and ``_meta`` in agreement, from a client that takes
JSON. It runs the SDK's own checks on it (transport security, Accept, duplicated
routing headers, ``classify_inbound_request``, ``validate_client_request``, the
params model), then the same function the SDK's handler runs
(``MeshServer.call_tool``), inside the same span the SDK's OpenTelemetry middleware
makes, and writes the answer the SDK would write, encoded once.

Whatever it cannot prove well-formed it hands back untouched (``handle`` returns
False before anything is sent or run), so every error answer, every other method
and every older protocol version stays the SDK's own.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any, Final

import mcp_types as types
import orjson
from mcp.server._otel import OpenTelemetryMiddleware
from mcp.server.streamable_http import check_accept_headers
from mcp.server.transport_security import TransportSecurityMiddleware, TransportSecuritySettings
from mcp.shared import _otel
from mcp.shared._otel import extract_trace_context, otel_span
from mcp.shared.inbound import (
    MCP_PROTOCOL_VERSION_HEADER,
    InboundModernRoute,
    classify_inbound_request,
    find_duplicated_routing_header,
)
from mcp_types import methods
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from opentelemetry.trace import (
    ProxyTracer,
    ProxyTracerProvider,
    SpanKind,
    StatusCode,
    get_tracer_provider,
)
from pydantic import ValidationError
from starlette.requests import Request
from starlette.types import Scope, Send

from devmesh.domain.models import Tenant
from devmesh.mcp.answers import ToolAnswer, encode
from devmesh.mcp.server import MeshServer
from devmesh.tools.toolsets import View

__all__ = ["DirectToolCalls", "response_body"]

_METHOD: Final = "tools/call"
_ENVELOPE: Final = frozenset({"jsonrpc", "id", "method", "params"})
_VERSION_HEADER: Final = MCP_PROTOCOL_VERSION_HEADER.encode()
_HEADERS: Final = [(b"content-type", b"application/json")]


class DirectToolCalls:
    """Answers the common ``tools/call`` at /mcp; ``handle`` says whether it did."""

    def __init__(
        self,
        server: MeshServer,
        *,
        security: TransportSecuritySettings | None,
        max_body_bytes: int,
        resolve_view: Callable[[Request], Awaitable[View]],
    ) -> None:
        self._server = server
        # What the answer below reproduces is the SDK's pipeline with its one default
        # middleware and no cache hint on tools/call; a server with more is left to it.
        self.enabled = (
            len(server.middleware) == 1
            and isinstance(server.middleware[0], OpenTelemetryMiddleware)
            and _METHOD not in server.cache_hints
        )
        self._security = TransportSecurityMiddleware(security)
        self._max_body_bytes = max_body_bytes
        self._resolve_view = resolve_view
        # The SDK stamps every 2026-era result with the same serverInfo (a fresh copy
        # each time, so nothing aliases it); written once here, as bytes.
        self._stamp = encode({types.SERVER_INFO_META_KEY: server.server_info_stamp})

    async def handle(self, scope: Scope, body: bytes, send: Send) -> bool:
        request = await self._well_formed(scope, body) if self.enabled else None
        if request is None:
            return False
        http, message, params, version = request
        tenant: Tenant = scope["state"]["tenant"]
        name: str = params.name

        def answer() -> Awaitable[ToolAnswer]:
            # Never raises: call_tool answers every error as an isError result, as the
            # SDK's handler does (it runs the same function).
            token = http.headers.get("x-upstream-token") or None
            return self._server.call_tool(
                tenant, token, lambda: self._resolve_view(http), name, params.arguments
            )

        parent = extract_trace_context(message["params"].get("_meta"))
        if parent is None and _sdk_spans_off():
            # The SDK's span would be a no-op carrying the current span's context, which
            # is what its absence leaves current too; it costs ~20 µs to make.
            answered = await answer()
        else:
            # The SDK's OpenTelemetryMiddleware span: its name, attributes and parent.
            attributes: dict[str, Any] = {
                "mcp.method.name": _METHOD,
                "mcp.protocol.version": version,
                "jsonrpc.request.id": str(message["id"]),
                "gen_ai.operation.name": "execute_tool",
                "gen_ai.tool.name": name,
            }
            with otel_span(
                name=f"{_METHOD} {name}",
                kind=SpanKind.SERVER,
                attributes=attributes,
                context=parent,
                record_exception=False,
                set_status_on_exception=False,
            ) as span:
                answered = await answer()
                if answered.is_error:
                    span.set_attribute("error.type", "tool_error")
                    span.set_status(StatusCode.ERROR)
        await _send(send, response_body(message["id"], answered, self._stamp))
        return True

    async def _well_formed(
        self, scope: Scope, body: bytes
    ) -> tuple[Request, dict[str, Any], types.CallToolRequestParams, str] | None:
        """The request, its message, params and version, if this path may answer it.

        In the order the SDK's modern entry (``handle_modern_request``) checks, each
        check the SDK's own, so anything one of them would refuse is left to the SDK.
        """
        if scope["method"] != "POST" or len(body) > self._max_body_bytes:
            return None
        # The session manager sends the first header of the name to the modern entry.
        version = next((v for k, v in scope["headers"] if k == _VERSION_HEADER), None)
        if version is None or version.decode("latin-1") not in MODERN_PROTOCOL_VERSIONS:
            return None
        if "tenant" not in scope.get("state", {}):
            return None
        http = Request(scope)
        if await self._security.validate_request(http, is_post=True) is not None:
            return None
        if not check_accept_headers(http)[0]:
            return None
        try:
            message = orjson.loads(body)
        except orjson.JSONDecodeError:
            return None  # or json.loads reads what orjson does not: the SDK decides
        if not (
            isinstance(message, dict)
            and message.keys() <= _ENVELOPE
            and message.get("jsonrpc") == "2.0"
            and message.get("method") == _METHOD
            and type(message.get("id")) in (int, str)
            and isinstance(message.get("params"), dict)
        ):
            return None
        if find_duplicated_routing_header(http.headers.items()) is not None:
            return None
        # dict(Headers) keeps the first of a repeated name; a reversed build does too.
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in reversed(scope["headers"])}
        verdict = classify_inbound_request(message, headers=headers)
        if not isinstance(verdict, InboundModernRoute):
            return None
        params = message["params"]
        if not self._no_param_headers(params.get("name")):
            return None
        try:
            methods.validate_client_request(_METHOD, verdict.protocol_version, params)
            typed = types.CallToolRequestParams.model_validate(params, by_name=False)
        except (ValidationError, KeyError, ValueError):
            return None
        return http, message, typed, verdict.protocol_version

    def _no_param_headers(self, name: Any) -> bool:
        """Whether the SDK would skip its Mcp-Param-* header check for this tool: it
        asks ``get_tool_input_schema``, which says no tool declares one."""
        lookup = self._server.get_tool_input_schema
        if lookup is None or not isinstance(name, str):
            return False
        try:
            return lookup(name) is None
        except Exception:
            return False


def response_body(request_id: int | str, answer: ToolAnswer, stamp: bytes) -> bytes:
    """What the SDK's ``_serialize`` and ``_write`` make of the answer, keys in their
    order; ``stamp`` is the encoded ``_meta`` (the serverInfo stamp)."""
    result: dict[str, Any] = {
        "content": [{"text": answer.text, "type": "text"}],
        "isError": answer.is_error,
        "resultType": "complete",
    }
    if answer.encoded is not None:
        result["structuredContent"] = orjson.Fragment(answer.encoded)
    result["_meta"] = orjson.Fragment(stamp)
    try:
        return orjson.dumps({"jsonrpc": "2.0", "id": request_id, "result": result})
    except TypeError:
        # A lone surrogate in an error's text (an upstream's message): the slow encoder,
        # which takes no fragments.
        if answer.encoded is not None:
            result["structuredContent"] = answer.structured
        result["_meta"] = orjson.loads(stamp)
        message = {"jsonrpc": "2.0", "id": request_id, "result": result}
        return json.dumps(message, separators=(",", ":")).encode()


def _sdk_spans_off() -> bool:
    """Whether the SDK's spans go nowhere: its tracer is the global provider's and no
    provider was set (Developer Mesh's own tracing has a provider of its own)."""
    return isinstance(_otel._tracer, ProxyTracer) and isinstance(
        get_tracer_provider(), ProxyTracerProvider
    )


async def _send(send: Send, body: bytes) -> None:
    headers = [(b"content-length", str(len(body)).encode()), *_HEADERS]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})
