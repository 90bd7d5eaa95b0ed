"""httpx over aiohttp: the shared upstream clients' transport.

Adapters keep speaking httpx (requests, auth flows, cookies, streamed responses);
only the transport underneath changes. httpx's own transport (httpcore on anyio)
cost about 0.33 ms of CPU per request here, aiohttp's about 0.12 ms, and a call
through the gateway is one or more such requests (docs/performance.md).

What the transport keeps exactly as httpx's did:

* egress: every connection, redirect hops included, is opened by
  ``_EgressConnector``, which resolves the host through ``EgressPolicy.permitted``
  (refused if any address is) and connects only to the addresses it checked, so DNS
  rebinding changes nothing; a literal address is checked the same way;
* the request as httpx built it: its headers only (aiohttp adds none, decompresses
  nothing: httpx decodes ``Content-Encoding`` itself), its URL unre-encoded, no
  redirects, no cookies, no proxy from the environment;
* the timeouts httpx passes per request (connect, read), and failures raised as
  httpx's exceptions, so ``UpstreamHttp.mapped`` turns them into the same errors;
* streaming: the body is read as the caller reads it, never buffered whole here.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Sequence
from typing import Any

import aiohttp
import httpx
from aiohttp.abc import ResolveResult
from aiohttp.tracing import Trace
from yarl import URL

from devmesh.adapters.egress import EgressPolicy

__all__ = ["AiohttpEgressTransport"]

_CHUNK = 64 * 1024


class _EgressConnector(aiohttp.TCPConnector):
    """A connector that reaches only the addresses the egress policy permits.

    aiohttp looks every host up through ``_resolve_host`` (literal addresses too,
    which it would otherwise pass through unresolved), so that is the one place the
    policy is applied.
    """

    def __init__(self, policy: EgressPolicy, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._policy = policy

    async def _resolve_host(
        self, host: str, port: int, traces: Sequence[Trace] | None = None
    ) -> list[ResolveResult]:
        addresses = await self._policy.permitted(host, port)
        return [
            ResolveResult(
                hostname=host,
                host=address,
                port=port,
                family=socket.AF_INET6 if ":" in address else socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
            for address in addresses
        ]


class _Body(httpx.AsyncByteStream):
    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.content.iter_chunked(_CHUNK):
                yield chunk
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _read_error(exc) from exc

    async def aclose(self) -> None:
        if self._response.content.at_eof():
            self._response.release()  # the connection goes back to the pool
        else:
            self._response.close()  # unread bytes: the connection cannot be reused


class AiohttpEgressTransport(httpx.AsyncBaseTransport):
    """One aiohttp connection pool behind an httpx client, every connection checked
    against ``policy``; ``verify=False`` skips TLS certificate checks."""

    def __init__(self, policy: EgressPolicy, *, limits: httpx.Limits, verify: bool = True) -> None:
        self._policy = policy
        self._limits = limits
        # httpx's trust store (certifi), not the system's: the same CAs as before.
        self.ssl_context = httpx.create_ssl_context(verify=verify, trust_env=False)
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        # Made on first use: aiohttp binds a session to the running event loop.
        if self._session is None:
            connector = _EgressConnector(
                self._policy,
                limit=self._limits.max_connections or 0,
                limit_per_host=0,
                keepalive_timeout=self._limits.keepalive_expiry or 5.0,
                ssl=self.ssl_context,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                cookie_jar=aiohttp.DummyCookieJar(),
                auto_decompress=False,
                skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
                trust_env=False,
                timeout=aiohttp.ClientTimeout(total=None),
            )
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeouts: dict[str, float | None] = request.extensions.get("timeout", {})
        timeout = aiohttp.ClientTimeout(
            total=None,
            connect=timeouts.get("pool"),
            sock_connect=timeouts.get("connect"),
            sock_read=timeouts.get("read"),
        )
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw]
        body = await request.aread()
        try:
            response = await self._client().request(
                request.method,
                URL(str(request.url), encoded=True),
                headers=headers,
                data=body or None,
                allow_redirects=False,
                timeout=timeout,
                compress=None,
                chunked=None,
            )
        except aiohttp.ConnectionTimeoutError as exc:
            raise httpx.ConnectTimeout(str(exc), request=request) from exc
        except aiohttp.ClientConnectorError as exc:
            raise httpx.ConnectError(str(exc), request=request) from exc
        except aiohttp.InvalidURL as exc:
            raise httpx.UnsupportedProtocol(str(exc), request=request) from exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _read_error(exc, request) from exc
        return httpx.Response(
            response.status,
            headers=list(response.raw_headers),
            stream=_Body(response),
            request=request,
            extensions={"http_version": b"HTTP/1.1"},
        )

    async def aclose(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()


def _read_error(exc: BaseException, request: httpx.Request | None = None) -> httpx.TransportError:
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        return httpx.ReadTimeout(str(exc) or "timed out", request=request)
    if isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError):
        return httpx.RemoteProtocolError(str(exc), request=request)
    return httpx.ReadError(str(exc), request=request)
