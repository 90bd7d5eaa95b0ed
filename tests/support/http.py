"""Request helpers for calling the service as a tenant."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from http.cookiejar import CookieJar, DefaultCookiePolicy

import httpx

__all__ = ["bearer", "service_like_client"]


def bearer(key: str) -> dict[str, str]:
    """The headers that authenticate a request with the API key ``key``."""
    return {"Authorization": f"Bearer {key}"}


@asynccontextmanager
async def service_like_client() -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client for adapters built by hand, like the service's shared one:
    no cookie jar, no redirects, no proxy settings from the environment."""
    async with httpx.AsyncClient(
        cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),
        timeout=httpx.Timeout(30.0, connect=5.0),
        follow_redirects=False,
        trust_env=False,
    ) as client:
        yield client
