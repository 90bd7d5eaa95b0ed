"""A typed client for Buildbot's REST API (``/api/v2``).

Reads are GETs; control actions are JSON-RPC POSTs. Every httpx failure and HTTP
error status becomes an ``AdapterError`` here, in ``_mapped``, and nowhere else.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import httpx

from devmesh.domain.errors import (
    AdapterError,
    UpstreamAuthFailed,
    UpstreamInvalidArgument,
    UpstreamNotFound,
    UpstreamRateLimited,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from devmesh.domain.models import Credentials

__all__ = ["BuildbotClient"]

_SESSION_COOKIE = "TWISTED_SESSION"


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "")
    return float(value) if value.replace(".", "", 1).isdigit() else None


def _rpc_message(response: httpx.Response) -> str:
    try:
        error = response.json().get("error")
    except ValueError:
        return ""
    if isinstance(error, dict):
        message = error.get("message")
        if isinstance(message, dict):
            return "; ".join(f"{k}: {v}" for k, v in message.items())[:300]
        return str(message)[:300]
    return str(error)[:300] if error else ""


@asynccontextmanager
async def _mapped(what: str) -> AsyncIterator[None]:
    try:
        yield
    except httpx.TimeoutException as exc:
        raise UpstreamTimeout(f"buildbot did not answer in time ({what})") from exc
    except httpx.TransportError as exc:
        raise UpstreamUnavailable(f"cannot reach buildbot ({what}): {type(exc).__name__}") from exc


def _raise_for(response: httpx.Response, what: str) -> None:
    status = response.status_code
    if status < 400:
        return
    detail = _rpc_message(response)
    suffix = f": {detail}" if detail else ""
    if status == 404:
        raise UpstreamNotFound(f"{what}: not found on buildbot")
    if status in (401, 403):
        raise UpstreamAuthFailed(
            f"buildbot refused {what} ({status}){suffix}; check the tool's credentials"
        )
    if status == 429:
        raise UpstreamRateLimited(
            f"buildbot is rate limiting ({what})", retry_after=_retry_after(response)
        )
    if status in (400, 422):
        raise UpstreamInvalidArgument(f"buildbot rejected {what}{suffix}")
    if status in (502, 503, 504):
        raise UpstreamUnavailable(f"buildbot is unavailable ({status}, {what})")
    raise AdapterError(f"buildbot failed {what} ({status}){suffix}", retriable=status >= 500)


class BuildbotClient:
    def __init__(
        self, *, base_url: str, http: httpx.AsyncClient, credentials: Credentials | None
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._api = f"{self.base_url}/api/v2"
        self._http = http
        self._credentials = credentials
        self._session: str | None = None

    async def _headers(self) -> dict[str, str]:
        creds = self._credentials
        if creds is None:
            return {}
        if creds.type == "basic":
            if self._session is None:
                await self._login()
            # Sent by hand: the shared client keeps no cookie jar, so one tenant's
            # session can never ride along on another tenant's request.
            return {"Cookie": f"{_SESSION_COOKIE}={self._session}"}
        token = creds.token or creds.api_key
        return {"Authorization": f"Bearer {token}"}

    async def _login(self) -> None:
        creds = self._credentials
        assert creds is not None and creds.username and creds.password
        async with _mapped("login"):
            response = await self._http.get(
                f"{self.base_url}/auth/login", auth=(creds.username, creds.password)
            )
        if response.status_code in (401, 403):
            raise UpstreamAuthFailed("buildbot refused the login; check username and password")
        _raise_for(response, "login")
        session = response.cookies.get(_SESSION_COOKIE)
        if not session:
            raise UpstreamAuthFailed("buildbot's login gave no session; is auth configured?")
        self._session = session

    async def _send(self, method: str, path: str, what: str, **kwargs: Any) -> httpx.Response:
        for attempt in (1, 2):
            headers = await self._headers()
            async with _mapped(what):
                response = await self._http.request(
                    method, f"{self._api}{path}", headers=headers, **kwargs
                )
            # An expired session looks like a refusal: log in again, once.
            if response.status_code in (401, 403) and self._session and attempt == 1:
                self._session = None
                continue
            _raise_for(response, what)
            return response
        raise AssertionError("unreachable")

    async def get(self, path: str, what: str, **params: Any) -> dict[str, Any]:
        response = await self._send("GET", path, what, params=params or None)
        body: dict[str, Any] = response.json()
        return body

    async def get_list(self, path: str, key: str, what: str, **params: Any) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = (await self.get(path, what, **params)).get(key, [])
        return items

    async def control(self, path: str, method: str, params: Mapping[str, Any], what: str) -> Any:
        payload = {"jsonrpc": "2.0", "method": method, "params": dict(params), "id": 1}
        response = await self._send("POST", path, what, json=payload)
        return response.json().get("result")
