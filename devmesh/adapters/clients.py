"""The pool of shared upstream httpx clients, one per transport policy, all egress-checked.

The composition root owns one ``HttpClients`` and closes it last. A client is shared by
every tool instance with the same policy, across tenants, so none keeps cookies (the
jar accepts nothing), follows redirects itself (``UpstreamHttp`` does that, keeping
credentials to the tool's origin) or reads proxies and ``.netrc`` from the environment
(``trust_env=False``: either would slip past egress). Every client's transport is an
``AiohttpEgressTransport`` (httpx over aiohttp, for CPU: see ``aio_transport``), so every
connection it opens, redirect hops included, passes the egress policy at connect time.

Only what must differ per connection pool is a key: TLS verification. A tool instance
that turns it off (a CI server with a self-signed certificate) gets a client of its
own kind, so no other tool's connections skip the check.
"""

from __future__ import annotations

from typing import Any

import httpx

from devmesh.adapters.aio_transport import AiohttpEgressTransport
from devmesh.adapters.egress import EgressPolicy

__all__ = ["HttpClients"]

_LIMITS = httpx.Limits(max_connections=200, max_keepalive_connections=50)
_TIMEOUT = httpx.Timeout(30.0, connect=5.0)


class _NoCookies(httpx.Cookies):
    """A jar that keeps nothing, without looking: httpx offers every response to the
    client's jar, and a jar whose policy refuses every cookie still parsed each answer's
    headers first (9 µs a request)."""

    def extract_cookies(self, response: httpx.Response) -> None:
        return None

    def set_cookie_header(self, request: httpx.Request) -> None:
        return None


class _SharedClient(httpx.AsyncClient):
    """An httpx client whose cookie jar is always empty (see the module's docstring)."""

    @property
    def cookies(self) -> httpx.Cookies:
        return _NO_COOKIES

    @cookies.setter
    def cookies(self, cookies: Any) -> None:
        # httpx sets its jar while it is built; whatever it is given, none is kept.
        return None


_NO_COOKIES = _NoCookies()


class HttpClients:
    """``client(verify_tls=...)``: the shared client for that policy, built on first use."""

    def __init__(self, egress: EgressPolicy, *, limits: httpx.Limits = _LIMITS) -> None:
        self._egress = egress
        self._limits = limits
        self._clients: dict[bool, httpx.AsyncClient] = {}

    def client(self, *, verify_tls: bool = True) -> httpx.AsyncClient:
        client = self._clients.get(verify_tls)
        if client is None:
            client = _SharedClient(
                transport=AiohttpEgressTransport(
                    self._egress, limits=self._limits, verify=verify_tls
                ),
                timeout=_TIMEOUT,
                follow_redirects=False,
                trust_env=False,
            )
            self._clients[verify_tls] = client
        return client

    async def aclose(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.aclose()
