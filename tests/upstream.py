"""A fault-injecting upstream on loopback, for fault tests and the benchmark.

It runs as its own process (``python -m tests.upstream --port N [--target URL |
--canned]``), so a test or a benchmark in another process drives it over HTTP,
and its CPU time is not the measured service's. Two modes:

* **proxy** (``--target URL``): forwards every request (method, path, query, body,
  headers, cookies) to a real server, e.g. the Buildbot master of
  ``tests/integration/buildbot/fixture.py``, and streams the answer back.
* **canned** (default): answers the Buildbot REST reads the Buildbot provider makes
  for ``get_build_status`` and ``list_builds`` with JSON shaped like a Buildbot 4.3
  master's (copied from a real one), and serves ``GET /openapi.json`` describing
  them, so FastMCP's OpenAPI proxy can be built over the same upstream.

Faults, in both modes, through the control endpoints (never faulted or counted):

* ``POST /__faults`` adds one fault, e.g. ``{"kind": "status", "status": 503,
  "retry_after": "1", "count": 3, "path": "^/api/v2/builds"}``. Kinds: ``status``
  (any code from 200 to 599, optional ``retry_after`` header and ``body``; with
  ``echo`` the body is ``{"error": ...}`` repeating the request's ``Authorization`` and
  ``Cookie`` headers, as a misconfigured proxy does), ``hang`` (wait
  ``seconds``, at most ``MAX_HANG_S``, then answer normally), ``drop`` (close the
  connection without sending a byte). ``count`` is how many matching requests it
  applies to (omitted: until cleared); ``path`` is a regular expression searched in
  the request path, ``method`` an HTTP method. Faults apply in the order they were
  added; the first one matching takes the request.
* ``DELETE /__faults`` clears them; ``GET /__stats`` counts the requests seen (total,
  per path, how many were faulted, and how many carried ``Authorization`` or a
  ``Cookie``); ``DELETE /__stats`` zeroes the counts.

Canned mode also answers ``GET /auth/login`` like a master with a login: with basic
credentials it sets the session cookie ``TWISTED_SESSION=session-of-<username>``.

``run_upstream()`` starts the process on a free port, waits (bounded) until it
answers, and stops it by its PID on exit.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import re
import signal
import socket
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from http.cookiejar import CookieJar, DefaultCookiePolicy
from pathlib import Path
from typing import Any, Literal

import httpx
import uvicorn
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = [
    "MAX_HANG_S",
    "FaultKind",
    "Upstream",
    "UpstreamStats",
    "listening_socket",
    "run_upstream",
]

HOST = "127.0.0.1"
MAX_HANG_S = 120.0
_MAX_BODY_BYTES = 10 * 1024 * 1024
_START_TIMEOUT_S = 20.0
_STOP_TIMEOUT_S = 5.0
_DISCONNECT_WAIT_S = 5.0
_PROXY_TIMEOUT = httpx.Timeout(60.0, connect=5.0)
_ABORT = "devmesh.abort"
_REPO = Path(__file__).resolve().parents[1]

FaultKind = Literal["status", "hang", "drop"]

# --- faults ------------------------------------------------------------------------


class Fault(BaseModel):
    """One injected fault, as ``POST /__faults`` takes it."""

    model_config = ConfigDict(extra="forbid")

    kind: FaultKind
    # 1xx are not final answers; ASGI cannot send them.
    status: int | None = Field(default=None, ge=200, le=599)
    retry_after: str | None = None
    body: str | None = None
    echo: bool = False
    seconds: float | None = Field(default=None, gt=0, le=MAX_HANG_S)
    count: int | None = Field(default=None, ge=1)
    path: str | None = None
    method: str | None = None

    @field_validator("path")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a regular expression: {exc}") from exc
        return value

    @model_validator(mode="after")
    def _complete(self) -> Fault:
        if self.kind == "status" and self.status is None:
            raise ValueError("a status fault needs a status")
        if self.kind == "hang" and self.seconds is None:
            raise ValueError("a hang fault needs seconds")
        return self


class _Faults:
    """The faults in force and the request counts; one event loop, so no locks."""

    def __init__(self) -> None:
        self._faults: list[tuple[Fault, re.Pattern[str] | None]] = []
        self._left: list[int | None] = []
        self.seen: Counter[str] = Counter()
        self.faulted = 0
        self.authorized = 0

    def add(self, fault: Fault) -> None:
        self._faults.append((fault, re.compile(fault.path) if fault.path else None))
        self._left.append(fault.count)

    def clear(self) -> None:
        self._faults.clear()
        self._left.clear()

    def take(self, method: str, path: str) -> Fault | None:
        """Count the request; the fault it gets, if any, used up by one."""
        self.seen[path] += 1
        for index, (fault, pattern) in enumerate(self._faults):
            left = self._left[index]
            if left == 0:
                continue
            if fault.method is not None and fault.method.upper() != method:
                continue
            if pattern is not None and pattern.search(path) is None:
                continue
            if left is not None:
                self._left[index] = left - 1
            self.faulted += 1
            return fault
        return None

    def stats(self) -> dict[str, Any]:
        return {
            "total": sum(self.seen.values()),
            "paths": dict(self.seen),
            "faulted": self.faulted,
            "authorized": self.authorized,
        }


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > _MAX_BODY_BYTES:
            raise ValueError("request body too large for the test upstream")
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def _until_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


class _FaultLayer:
    """ASGI middleware: counts each request and applies the first fault that matches.

    The body is read before a fault is chosen, so that waiting for the client to
    leave (during a hang or after a drop) never swallows it; the inner app gets it
    replayed.
    """

    def __init__(self, app: ASGIApp, faults: _Faults) -> None:
        self._app = app
        self._faults = faults

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        body = await _read_body(receive)
        fault = self._faults.take(scope["method"], scope["path"])
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if "authorization" in headers or "cookie" in headers:
            self._faults.authorized += 1
        if fault is not None and fault.kind == "status":
            await _fault_status(fault, send, headers)
            return
        if fault is not None and fault.kind == "drop":
            scope["extensions"][_ABORT]()
            # Returning before uvicorn has seen the connection go would make it answer 500.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(_DISCONNECT_WAIT_S):
                    await _until_disconnect(receive)
            return
        if fault is not None and fault.kind == "hang":
            assert fault.seconds is not None
            try:
                async with asyncio.timeout(fault.seconds):
                    await _until_disconnect(receive)
                return  # the client gave up first: nobody is left to answer
            except TimeoutError:
                pass
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self._app(scope, replay, send)


async def _fault_status(fault: Fault, send: Send, headers: Mapping[str, str]) -> None:
    assert fault.status is not None
    if fault.echo:
        seen = "; ".join(
            f"{name}: {headers[name]}" for name in ("authorization", "cookie") if name in headers
        )
        body = json.dumps({"error": f"proxy saw {seen or 'no credentials'}"}).encode()
    elif fault.body is not None:
        body = fault.body.encode()
    else:
        body = json.dumps({"error": f"injected fault: status {fault.status}"}).encode()
    if fault.status in (204, 304):
        body = b""  # HTTP forbids a body on these; h11 would refuse to send one
    headers = [
        (
            b"content-type",
            b"application/json" if fault.body is None or fault.echo else b"text/plain",
        ),
        (b"content-length", str(len(body)).encode()),
    ]
    if fault.retry_after is not None:
        headers.append((b"retry-after", fault.retry_after.encode("latin-1")))
    await send({"type": "http.response.start", "status": fault.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class _AbortableH11(H11Protocol):
    """uvicorn's h11 protocol, handing the app a way to drop its connection.

    ASGI cannot close a connection without answering: uvicorn sends a 500 for an
    app that returns or raises before it starts a response. The ``drop`` fault must
    close the socket with no byte sent, so the scope carries the transport's abort.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        inner = self.app

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            scope.setdefault("extensions", {})[_ABORT] = self.transport.abort
            await inner(scope, receive, send)

        self.app = app


# --- control endpoints ---------------------------------------------------------------


def _control_routes(faults: _Faults) -> list[Route]:
    async def add_fault(request: Request) -> Response:
        try:
            fault = Fault.model_validate_json(await request.body())
        except ValidationError as exc:
            return JSONResponse({"error": str(exc)}, status_code=422)
        faults.add(fault)
        return JSONResponse(fault.model_dump(exclude_none=True), status_code=201)

    async def clear_faults(request: Request) -> Response:
        faults.clear()
        return Response(status_code=204)

    async def read_stats(request: Request) -> Response:
        return JSONResponse(faults.stats())

    async def reset_stats(request: Request) -> Response:
        faults.seen.clear()
        faults.faulted = 0
        faults.authorized = 0
        return Response(status_code=204)

    return [
        Route("/__faults", add_fault, methods=["POST"]),
        Route("/__faults", clear_faults, methods=["DELETE"]),
        Route("/__stats", read_stats, methods=["GET"]),
        Route("/__stats", reset_stats, methods=["DELETE"]),
    ]


# --- proxy mode ----------------------------------------------------------------------

# Hop-by-hop headers (RFC 9110 7.6.1) belong to one connection, never forwarded.
# Host and Content-Length are set again by httpx for the target request.
_HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)
_NOT_FORWARDED = _HOP_BY_HOP | {b"host", b"content-length"}


class _Proxy:
    """Forwards a request to the target as it came, and streams the answer back."""

    def __init__(self, target: str) -> None:
        self._target = httpx.URL(target.rstrip("/") + "/")
        self._target_root = str(self._target).rstrip("/")
        self.http: httpx.AsyncClient | None = None

    @asynccontextmanager
    async def open(self) -> AsyncIterator[None]:
        # No cookie jar and no redirects: cookies and Location headers pass through to
        # the client untouched, as if it talked to the target itself.
        async with httpx.AsyncClient(
            timeout=_PROXY_TIMEOUT,
            follow_redirects=False,
            trust_env=False,
            cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),
        ) as http:
            self.http = http
            yield
            self.http = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert self.http is not None, "the proxy's client opens in the app's lifespan"
        body = await _read_body(receive)
        raw_path: bytes = scope.get("raw_path") or scope["path"].encode()
        query: bytes = scope.get("query_string", b"")
        url = self._target.copy_with(raw_path=raw_path + (b"?" + query if query else b""))
        headers = [(k, v) for k, v in scope["headers"] if k.lower() not in _NOT_FORWARDED]
        request = self.http.build_request(scope["method"], url, headers=headers, content=body)
        try:
            response = await self.http.send(request, stream=True)
        except httpx.HTTPError as exc:
            await _send_json(send, 502, {"error": f"test upstream cannot reach target: {exc!r}"})
            return
        try:
            out = [
                (key, self._local(key, value, scope))
                for key, value in response.headers.raw
                if key.lower() not in _HOP_BY_HOP
            ]
            await send(
                {"type": "http.response.start", "status": response.status_code, "headers": out}
            )
            # Raw bytes: a compressed answer stays compressed, matching its headers.
            async for chunk in response.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        finally:
            await response.aclose()

    def _local(self, key: bytes, value: bytes, scope: Scope) -> bytes:
        """A redirect to the target points back at this proxy, so clients stay on it."""
        if key.lower() != b"location":
            return value
        text = value.decode("latin-1")
        if not text.startswith(self._target_root):
            return value
        host, port = scope["server"]
        return f"http://{host}:{port}{text.removeprefix(self._target_root)}".encode("latin-1")


async def _send_json(send: Send, status: int, payload: Any) -> None:
    body = json.dumps(payload).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


# --- canned mode -----------------------------------------------------------------------
# Shapes copied from a Buildbot 4.3.0 master (tests/integration/buildbot/master.cfg) after
# one successful build: the fields it sends, their types, and the property pairs.

_T0 = 1795534205
_SOURCE = ["", "Build"]

BUILDERS: list[dict[str, Any]] = [
    {
        "builderid": builderid,
        "description": None,
        "description_format": None,
        "description_html": None,
        "masterids": [1],
        "name": name,
        "projectid": None,
        "tags": [],
    }
    for builderid, name in ((1, "lint"), (2, "runtests"))
]


def _canned_build(buildid: int, builderid: int, number: int, results: int) -> dict[str, Any]:
    started = _T0 + 60 * buildid
    return {
        "builderid": builderid,
        "buildid": buildid,
        "buildrequestid": buildid,
        "complete": True,
        "complete_at": started + 1,
        "locks_duration_s": 0,
        "masterid": 1,
        "number": number,
        "properties": {"branch": _SOURCE, "revision": _SOURCE},
        "results": results,
        "started_at": started,
        "state_string": "build successful" if results == 0 else "failed 'bash -c ...' (failure)",
        "workerid": 1,
    }


BUILDS: list[dict[str, Any]] = [
    _canned_build(1, 2, 1, 0),
    _canned_build(2, 1, 1, 0),
    _canned_build(3, 2, 2, 2),
    _canned_build(4, 2, 3, 0),
]

BUILD_REQUESTS: list[dict[str, Any]] = [
    {
        "builderid": build["builderid"],
        "buildrequestid": build["buildrequestid"],
        "buildsetid": build["buildrequestid"],
        "claimed": True,
        "claimed_at": build["started_at"],
        "claimed_by_masterid": 1,
        "complete": True,
        "complete_at": build["complete_at"],
        "priority": 0,
        "properties": None,
        "results": build["results"],
        "submitted_at": build["started_at"],
        "waited_for": False,
    }
    for build in BUILDS
]


def _buildbot_json(
    request: Request, plural: str, items: list[Any], meta: dict[str, Any]
) -> Response:
    """Encoded as Buildbot's REST does: compact JSON only for a client that asks for it."""
    encoder = json.JSONEncoder(sort_keys=True)
    if "application/json" in request.headers.get("accept", ""):
        encoder.item_separator, encoder.key_separator = ",", ":"
        media = "application/json; charset=utf-8"
    else:
        encoder.indent = 2  # set after construction, like Buildbot: items keep ", "
        media = "text/plain; charset=utf-8"
    return Response(encoder.encode({plural: items, "meta": meta}), media_type=media)


def _not_found(what: str) -> Response:
    body = json.dumps({"error": f"not found while getting from endpoint for {what}"})
    return Response(body, status_code=404, media_type="text/plain; charset=utf-8")


def _with_properties(build: dict[str, Any], wanted: list[str]) -> dict[str, Any]:
    # Buildbot sends only the properties asked for with ?property=, and "*" means all.
    props = build["properties"]
    chosen = props if "*" in wanted else {k: v for k, v in props.items() if k in wanted}
    return {**build, "properties": chosen}


def _matches(item: Mapping[str, Any], field: str, values: list[str]) -> bool:
    # A repeated equality filter is Buildbot's "any of"; booleans read true/false.
    value = item.get(field)
    if isinstance(value, bool):
        return any((v.lower() == "true") == value for v in values)
    return str(value) in values


def _collection(
    request: Request, items: Iterable[dict[str, Any]], key: str
) -> list[dict[str, Any]]:
    """Buildbot's filters, order, offset and limit on a collection."""
    query = request.query_params
    rows = [
        item
        for item in items
        if all(_matches(item, f, query.getlist(f)) for f in query if f in item)
    ]
    order = query.get("order", key)
    rows.sort(key=lambda item: item[order.lstrip("-")], reverse=order.startswith("-"))
    offset = int(query.get("offset", "0"))
    limit = query.get("limit")
    return rows[offset : offset + int(limit) if limit else None]


async def _builders(request: Request) -> Response:
    return _buildbot_json(request, "builders", BUILDERS, {"total": len(BUILDERS)})


async def _build(request: Request) -> Response:
    buildid = int(request.path_params["buildid"])
    found = [b for b in BUILDS if b["buildid"] == buildid]
    if not found:
        return _not_found(f"/builds/n:buildid with arguments {{'buildid': {buildid}}}")
    wanted = request.query_params.getlist("property")
    return _buildbot_json(request, "builds", [_with_properties(found[0], wanted)], {})


async def _builds(request: Request) -> Response:
    wanted = request.query_params.getlist("property")
    rows = _collection(request, BUILDS, "buildid")
    items = [_with_properties(b, wanted) for b in rows]
    return _buildbot_json(request, "builds", items, {"total": len(items)})


async def _build_request(request: Request) -> Response:
    buildrequestid = int(request.path_params["buildrequestid"])
    found = [r for r in BUILD_REQUESTS if r["buildrequestid"] == buildrequestid]
    if not found:
        return _not_found(f"/buildrequests/n:buildrequestid {{'buildrequestid': {buildrequestid}}}")
    return _buildbot_json(request, "buildrequests", found, {})


async def _build_requests(request: Request) -> Response:
    rows = _collection(request, BUILD_REQUESTS, "buildrequestid")
    return _buildbot_json(request, "buildrequests", rows, {"total": len(rows)})


def openapi(base_url: str) -> dict[str, Any]:
    """OpenAPI 3.0 of what canned mode serves, for ``FastMCP.from_openapi``."""
    build = {
        "type": "object",
        "properties": {
            "buildid": {"type": "integer"},
            "builderid": {"type": "integer"},
            "buildrequestid": {"type": "integer"},
            "number": {"type": "integer"},
            "complete": {"type": "boolean"},
            "results": {"type": "integer", "nullable": True},
            "started_at": {"type": "integer", "nullable": True},
            "complete_at": {"type": "integer", "nullable": True},
            "state_string": {"type": "string"},
            "masterid": {"type": "integer"},
            "workerid": {"type": "integer"},
            "locks_duration_s": {"type": "integer"},
            "properties": {"type": "object", "additionalProperties": True},
        },
    }

    def envelope(plural: str, item: dict[str, Any]) -> dict[str, Any]:
        return {
            "description": f"Buildbot's {plural} envelope",
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            plural: {"type": "array", "items": item},
                            "meta": {"type": "object", "additionalProperties": True},
                        },
                        "required": [plural],
                    }
                }
            },
        }

    properties = {
        "name": "property",
        "in": "query",
        "required": False,
        "description": "Build properties to include; '*' for all.",
        "schema": {"type": "array", "items": {"type": "string"}},
        "style": "form",
        "explode": True,
    }
    not_found = {"description": "No such build"}
    return {
        "openapi": "3.0.3",
        "info": {"title": "Buildbot REST API (canned subset)", "version": "4.3.0"},
        "servers": [{"url": base_url}],
        "paths": {
            "/api/v2/builds/{buildid}": {
                "get": {
                    "operationId": "get_build",
                    "summary": "One build by its global build id.",
                    "parameters": [
                        {
                            "name": "buildid",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "integer"},
                        },
                        properties,
                    ],
                    "responses": {"200": envelope("builds", build), "404": not_found},
                }
            },
            "/api/v2/builds": {
                "get": {
                    "operationId": "list_builds",
                    "summary": "Builds, filtered and ordered.",
                    "parameters": [
                        {"name": "order", "in": "query", "schema": {"type": "string"}},
                        {"name": "limit", "in": "query", "schema": {"type": "integer"}},
                        {"name": "builderid", "in": "query", "schema": {"type": "integer"}},
                        {"name": "complete", "in": "query", "schema": {"type": "boolean"}},
                        properties,
                    ],
                    "responses": {"200": envelope("builds", build)},
                }
            },
            "/api/v2/builders": {
                "get": {
                    "operationId": "list_builders",
                    "summary": "Every builder.",
                    "responses": {
                        "200": envelope(
                            "builders",
                            {
                                "type": "object",
                                "properties": {
                                    "builderid": {"type": "integer"},
                                    "name": {"type": "string"},
                                },
                            },
                        )
                    },
                }
            },
        },
    }


async def _login(request: Request) -> Response:
    """Buildbot's ``/auth/login``: basic credentials in, a session cookie out."""
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return JSONResponse({"error": "login required"}, status_code=401)
    username = base64.b64decode(encoded).decode().partition(":")[0]
    response = Response(status_code=200)
    response.set_cookie("TWISTED_SESSION", f"session-of-{username}")
    return response


async def _openapi(request: Request) -> Response:
    return JSONResponse(openapi(str(request.base_url).rstrip("/")))


def _canned_routes() -> list[Route]:
    return [
        Route("/api/v2/builders", _builders, methods=["GET"]),
        Route("/api/v2/builds", _builds, methods=["GET"]),
        Route("/api/v2/builds/{buildid:int}", _build, methods=["GET"]),
        Route("/api/v2/buildrequests", _build_requests, methods=["GET"]),
        Route("/api/v2/buildrequests/{buildrequestid:int}", _build_request, methods=["GET"]),
        Route("/openapi.json", _openapi, methods=["GET"]),
        Route("/auth/login", _login, methods=["GET"]),
    ]


def create_app(*, target: str | None = None) -> Starlette:
    """The upstream: control routes first, then the faulted proxy or canned routes."""
    faults = _Faults()
    proxy = _Proxy(target) if target else None
    served: ASGIApp = proxy if proxy is not None else Starlette(routes=_canned_routes())

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with proxy.open() if proxy is not None else contextlib.nullcontext():
            yield

    routes = [*_control_routes(faults), Mount("", app=_FaultLayer(served, faults))]
    return Starlette(routes=routes, lifespan=lifespan)


# --- the process ------------------------------------------------------------------------


def listening_socket(port: int = 0) -> socket.socket:
    """A listening TCP socket on loopback, for ``uvicorn.Server.serve(sockets=...)``.

    Bound here rather than by uvicorn so that port 0 works: the kernel picks a free
    port and the caller reads it, with no race against other test runs.
    """
    # IPPROTO_TCP, not the default 0: asyncio sets TCP_NODELAY only on sockets that
    # say they are TCP, and without it Nagle + delayed ACKs add 40 ms to each answer.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((HOST, port))
    sock.listen(1024)
    return sock


async def _serve(port: int, target: str | None) -> None:
    sock = listening_socket(port)
    config = uvicorn.Config(
        create_app(target=target),
        http=_AbortableH11,
        log_level="warning",
        access_log=False,
        lifespan="on",
        # A hanging request must not hold up the stop.
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    # The parent learns the port (maybe picked by the kernel) from this one line.
    print(f"listening on http://{HOST}:{sock.getsockname()[1]}", flush=True)

    async def orphaned() -> None:
        # A parent killed without its finally (SIGKILL) must not leave us running.
        parent = os.getppid()
        while os.getppid() == parent:  # noqa: ASYNC110 (no event tells of a parent's death)
            await asyncio.sleep(0.5)
        server.should_exit = True

    watcher = asyncio.create_task(orphaned())
    try:
        await server.serve(sockets=[sock])
    finally:
        watcher.cancel()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.upstream", description=__doc__)
    parser.add_argument("--port", type=int, default=0, help="0 (default): any free port")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--target", help="proxy mode: the real server's base URL")
    mode.add_argument("--canned", action="store_true", help="canned Buildbot answers (default)")
    args = parser.parse_args(argv)
    asyncio.run(_serve(args.port, args.target))


# --- the handle a test holds ------------------------------------------------------------


@dataclass(frozen=True)
class UpstreamStats:
    total: int
    paths: dict[str, int]
    faulted: int
    authorized: int


@dataclass(frozen=True)
class Upstream:
    """A running upstream process and its control API."""

    base_url: str
    pid: int
    _control: httpx.AsyncClient

    async def inject(
        self,
        kind: FaultKind,
        *,
        status: int | None = None,
        retry_after: str | float | None = None,
        body: str | None = None,
        echo: bool = False,
        seconds: float | None = None,
        count: int | None = None,
        path: str | None = None,
        method: str | None = None,
    ) -> None:
        fault = Fault(
            kind=kind,
            status=status,
            retry_after=None if retry_after is None else str(retry_after),
            body=body,
            echo=echo,
            seconds=seconds,
            count=count,
            path=path,
            method=method,
        )
        answer = await self._control.post("/__faults", content=fault.model_dump_json())
        answer.raise_for_status()

    async def clear(self) -> None:
        (await self._control.delete("/__faults")).raise_for_status()

    async def stats(self) -> UpstreamStats:
        answer = await self._control.get("/__stats")
        answer.raise_for_status()
        data = answer.json()
        return UpstreamStats(
            total=data["total"],
            paths=data["paths"],
            faulted=data["faulted"],
            authorized=data["authorized"],
        )

    async def reset_stats(self) -> None:
        (await self._control.delete("/__stats")).raise_for_status()


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


async def _stop(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGTERM)
        try:
            async with asyncio.timeout(_STOP_TIMEOUT_S):
                await process.wait()
            return
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGKILL)
    async with asyncio.timeout(_STOP_TIMEOUT_S):
        await process.wait()


@asynccontextmanager
async def run_upstream(*, target: str | None = None) -> AsyncIterator[Upstream]:
    """Start the upstream (proxy of ``target``, else canned) and stop it by PID on exit."""
    args = ["--target", target] if target else ["--canned"]
    with tempfile.TemporaryDirectory(prefix="devmesh-upstream-") as scratch:
        log = Path(scratch) / "upstream.log"
        with log.open("wb") as log_file:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "tests.upstream", "--port", "0", *args,
                cwd=_REPO, stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE, stderr=log_file,
            )  # fmt: skip
        try:
            base_url = await _started(process, log)
            async with httpx.AsyncClient(base_url=base_url, trust_env=False, timeout=10) as control:
                await _answering(control, process, log)
                yield Upstream(base_url=base_url, pid=process.pid, _control=control)
        finally:
            await _stop(process)


async def _started(process: asyncio.subprocess.Process, log: Path) -> str:
    assert process.stdout is not None
    try:
        async with asyncio.timeout(_START_TIMEOUT_S):
            line = (await process.stdout.readline()).decode()
    except TimeoutError:
        raise RuntimeError(
            f"test upstream printed no port in {_START_TIMEOUT_S}s:\n{_tail(log)}"
        ) from None
    match = re.fullmatch(r"listening on (http://\S+)\s*", line)
    if match is None:
        raise RuntimeError(f"test upstream did not start ({line!r}):\n{_tail(log)}")
    return match.group(1)


async def _answering(
    control: httpx.AsyncClient, process: asyncio.subprocess.Process, log: Path
) -> None:
    deadline = time.monotonic() + _START_TIMEOUT_S
    while True:
        if process.returncode is not None:
            raise RuntimeError(f"test upstream exited with {process.returncode}:\n{_tail(log)}")
        try:
            if (await control.get("/__stats")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"test upstream did not answer in {_START_TIMEOUT_S}s:\n{_tail(log)}"
            )
        await asyncio.sleep(0.05)


if __name__ == "__main__":
    main()
