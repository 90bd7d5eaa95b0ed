"""Injected faults: what one is, which request it takes, and how it is answered.

A status, a hang, or a dropped connection, applied by ``FaultLayer`` in front of
whatever the upstream serves (canned answers or the proxy).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections import Counter
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from tests.upstream.asgi import read_body

__all__ = ["MAX_HANG_S", "AbortableH11", "Fault", "FaultKind", "FaultLayer", "Faults"]

MAX_HANG_S = 120.0
_DISCONNECT_WAIT_S = 5.0
_ABORT = "devmesh.abort"

FaultKind = Literal["status", "hang", "drop"]


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
    # A request header whose value ``matches`` (a regular expression searched in it):
    # where a protocol names the operation in a header, not the path (AWS's
    # ``X-Amz-Target: CodeBuild_20161006.BatchGetBuilds``).
    header: str | None = None
    matches: str | None = None

    @field_validator("path", "matches")
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
        if (self.header is None) != (self.matches is None):
            raise ValueError("header and matches go together")
        if self.kind == "hang" and self.seconds is None:
            raise ValueError("a hang fault needs seconds")
        return self


class Faults:
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

    def take(
        self, method: str, path: str, headers: Mapping[str, str] | None = None
    ) -> Fault | None:
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
            if fault.header is not None and fault.matches is not None:
                value = (headers or {}).get(fault.header.lower(), "")
                if re.search(fault.matches, value) is None:
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


async def _until_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


class FaultLayer:
    """ASGI middleware: counts each request and applies the first fault that matches.

    The body is read before a fault is chosen, so that waiting for the client to
    leave (during a hang or after a drop) never swallows it; the inner app gets it
    replayed.
    """

    def __init__(self, app: ASGIApp, faults: Faults) -> None:
        self._app = app
        self._faults = faults

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        body = await read_body(receive)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        fault = self._faults.take(scope["method"], scope["path"], headers)
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
    answer = [
        (
            b"content-type",
            b"application/json" if fault.body is None or fault.echo else b"text/plain",
        ),
        (b"content-length", str(len(body)).encode()),
    ]
    if fault.retry_after is not None:
        answer.append((b"retry-after", fault.retry_after.encode("latin-1")))
    await send({"type": "http.response.start", "status": fault.status, "headers": answer})
    await send({"type": "http.response.body", "body": body})


class AbortableH11(H11Protocol):
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
