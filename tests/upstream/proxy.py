"""Proxy mode: forwards every request to a real server and streams the answer back."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from http.cookiejar import CookieJar, DefaultCookiePolicy

import httpx
from starlette.types import Receive, Scope, Send

from tests.upstream.asgi import read_body, send_json

__all__ = ["Proxy"]

_PROXY_TIMEOUT = httpx.Timeout(60.0, connect=5.0)

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


class Proxy:
    """Forwards a request to the target as it came, and streams the answer back."""

    def __init__(self, target: str, *, keep_host: bool = False) -> None:
        # keep_host: forward the client's Host header unchanged, for clients that sign
        # it (AWS SigV4), as a reverse proxy with "preserve host" does.
        self._dropped = _NOT_FORWARDED - {b"host"} if keep_host else _NOT_FORWARDED
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
        body = await read_body(receive)
        raw_path: bytes = scope.get("raw_path") or scope["path"].encode()
        query: bytes = scope.get("query_string", b"")
        url = self._target.copy_with(raw_path=raw_path + (b"?" + query if query else b""))
        headers = [(k, v) for k, v in scope["headers"] if k.lower() not in self._dropped]
        request = self.http.build_request(scope["method"], url, headers=headers, content=body)
        try:
            response = await self.http.send(request, stream=True)
        except httpx.HTTPError as exc:
            await send_json(send, 502, {"error": f"test upstream cannot reach target: {exc!r}"})
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
