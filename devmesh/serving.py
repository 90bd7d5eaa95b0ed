"""How ``devmesh serve`` runs uvicorn: limits on what a connection may cost before
a request reaches the app.

uvicorn's httptools protocol (the fast one; see docs/performance.md) has no cap on
header size and no deadline for headers: a 50 MB header was read whole, and a
connection that sent half a request line was held until the client gave up. The
h11 protocol has a size cap but no deadline either, and costs more per request.
So we keep httptools and add both in a small subclass. The body is the app's
concern: the ingress gate (``api/gate.py``) caps it and gives it a deadline.
"""

from __future__ import annotations

import asyncio
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from devmesh.config import HttpSettings, Settings

__all__ = ["BoundedHttpToolsProtocol", "uvicorn_config"]

_REASONS = {408: b"Request Timeout", 431: b"Request Header Fields Too Large"}


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """httptools with a cap on request line plus headers (431) and a deadline from a
    connection's or a request's first byte to the end of its headers (408)."""

    max_header_bytes = HttpSettings().max_header_bytes
    header_timeout = HttpSettings().header_timeout

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # True while the next bytes on the wire are a request line or headers.
        self._awaiting_headers = True
        self._header_bytes = 0
        self._header_timer: asyncio.TimerHandle | None = None
        # Set once refused: the parser may still call back for bytes of the same read.
        self._rejected = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        # A connection that never sends a byte is held no longer than a slow one.
        self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.transport.is_closing():
            return
        if self._awaiting_headers:
            # Counted before parsing: httptools keeps a header in memory until it ends.
            self._header_bytes += len(data)
            self._arm_header_timer()
        super().data_received(data)
        if self._awaiting_headers and self._header_bytes > self.max_header_bytes:
            self._reject(431)

    def on_headers_complete(self) -> None:
        self._awaiting_headers = False
        self._disarm_header_timer()
        # Exact, for headers that arrived in the same read as their end.
        size = len(self.url) + sum(len(name) + len(value) for name, value in self.headers)
        self._header_bytes = 0
        if size > self.max_header_bytes:
            self._reject(431)
            return
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if not self._rejected:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if self._rejected:
            return
        super().on_message_complete()
        self._awaiting_headers = True

    def send_400_response(self, msg: str) -> None:
        if not self._rejected:
            super().send_400_response(msg)

    def _arm_header_timer(self) -> None:
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(self.header_timeout, self._headers_late)

    def _disarm_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_late(self) -> None:
        self._header_timer = None
        if not self._awaiting_headers or self.transport.is_closing():
            return
        if self._header_bytes:
            self._reject(408)
        else:
            self.transport.close()

    def _reject(self, status: int) -> None:
        if self._rejected or self.transport.is_closing():
            return
        self._rejected = True
        reason = _REASONS[status]
        self.logger.warning("Refused a request: %d %s", status, reason.decode())
        self.transport.write(
            b"HTTP/1.1 %d %s\r\ncontent-type: text/plain; charset=utf-8\r\n"
            b"content-length: %d\r\nconnection: close\r\n\r\n%s"
            % (status, reason, len(reason), reason)
        )
        self.transport.close()


def uvicorn_config(app: Any, settings: Settings, *, host: str, port: int) -> uvicorn.Config:
    limits = settings.http
    protocol = type(
        "DevMeshHttpProtocol",
        (BoundedHttpToolsProtocol,),
        {"max_header_bytes": limits.max_header_bytes, "header_timeout": limits.header_timeout},
    )
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=protocol,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=int(settings.shutdown_timeout),
        timeout_keep_alive=limits.keep_alive_timeout,
        limit_concurrency=limits.max_concurrency,
        lifespan="on",
        server_header=False,
    )
