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

from http.cookiejar import CookieJar, DefaultCookiePolicy

import httpx

from devmesh.adapters.aio_transport import AiohttpEgressTransport
from devmesh.adapters.egress import EgressPolicy

__all__ = ["HttpClients"]

_LIMITS = httpx.Limits(max_connections=200, max_keepalive_connections=50)
_TIMEOUT = httpx.Timeout(30.0, connect=5.0)


class HttpClients:
    """``client(verify_tls=...)``: the shared client for that policy, built on first use."""

    def __init__(self, egress: EgressPolicy, *, limits: httpx.Limits = _LIMITS) -> None:
        self._egress = egress
        self._limits = limits
        self._clients: dict[bool, httpx.AsyncClient] = {}

    def client(self, *, verify_tls: bool = True) -> httpx.AsyncClient:
        client = self._clients.get(verify_tls)
        if client is None:
            client = httpx.AsyncClient(
                transport=AiohttpEgressTransport(
                    self._egress, limits=self._limits, verify=verify_tls
                ),
                cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),
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
