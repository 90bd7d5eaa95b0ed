"""The provider kit's upstream HTTP client: one request, and every way it can fail, typed.

``UpstreamHttp`` wraps the shared (egress-checked) ``httpx.AsyncClient`` for one tool
instance. A provider's API client calls ``get_json``/``send_json`` for JSON, ``stream``
for anything it reads piece by piece, and ``read_window`` for logs and artifacts; it
never sees an httpx exception or an error status, only the ``AdapterError`` tree:

====================================  ==========================================
what happened                         raised
====================================  ==========================================
404                                   ``UpstreamNotFound``
401, 403 (or ``auth_statuses``)       ``UpstreamAuthFailed`` + the provider's advice
429, or 403 with ``…RateLimit-Remaining: 0``  ``UpstreamRateLimited`` (``retry_after``)
400, 409, 422                         ``UpstreamInvalidArgument``
408, timeouts                         ``UpstreamTimeout``
502, 503, 504, connection failures    ``UpstreamUnavailable`` (``retry_after``)
3xx not followed                      ``AdapterError`` naming where it pointed
other statuses                        ``AdapterError`` (retriable from 502)
not the documented JSON               ``AdapterError`` (``UnexpectedAnswer`` inside)
====================================  ==========================================

A 403 with ``Retry-After`` is a rate limit too (GitHub's secondary limits).

Messages name the provider, the action (``what``: "read build 42") and the upstream's
public address, never userinfo or query. Upstream words appear only through
``Redactor.excerpt``: nothing from a 401/403, and from other answers only what
``error_text`` picks out of a bounded error body, redacted and clipped.

HTTP policy. Redirects are followed here, not by httpx, when the provider's
``HttpPolicy`` allows: credentials (``auth``, and the provider's own headers) go only
to the tool's origin, and every hop opens its connection through the egress policy
again. Cookies are kept per ``UpstreamHttp`` (so per tool instance and credentials),
never in the shared client, and their values are redacted like credentials.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Collection, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from devmesh.adapters.egress import origin_of
from devmesh.adapters.upstream import Redactor, join_url, parsed_url, rate_limit_wait
from devmesh.domain.errors import (
    AdapterError,
    DevMeshError,
    UpstreamAuthFailed,
    UpstreamInvalidArgument,
    UpstreamNotFound,
    UpstreamRateLimited,
    UpstreamTimeout,
    UpstreamUnavailable,
)

__all__ = [
    "ERROR_BODY_BYTES",
    "HttpPolicy",
    "UnexpectedAnswer",
    "UpstreamHttp",
    "Window",
    "decode_json",
    "json_error_text",
    "public_address",
    "raise_for_status",
    "read_window",
]

# An error answer is read only this far: enough for an API's JSON error, never a
# whole page some proxy in front of the upstream sent instead.
ERROR_BODY_BYTES = 64 * 1024
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


@dataclass(frozen=True)
class HttpPolicy:
    """How a provider's requests travel. ``verify_tls`` is overridden per tool instance.

    ``follow_redirects``: follow up to ``max_redirects`` (credentials only to the tool's
    own origin); off, a redirect is an error naming where it pointed, which usually
    means base_url should be https. ``cookies``: keep cookies the upstream sets, per
    tool instance; off, none are kept (the shared client keeps none either).
    """

    follow_redirects: bool = False
    max_redirects: int = 5
    cookies: bool = False
    verify_tls: bool = True


class UnexpectedAnswer(Exception):
    """The upstream answered, but not with what its API documents. Raise it from a
    parser inside ``UpstreamHttp.mapped``; the message stays internal."""


@dataclass(frozen=True)
class Window:
    """At most ``limit`` bytes of a download from some offset (``read_window``)."""

    data: bytes
    more: bool
    size: int | None
    content_type: str | None


def public_address(base_url: str) -> str:
    """scheme://host[:port] of a URL: enough to name it, never its userinfo or query."""
    try:
        url = httpx.URL(base_url)
    except httpx.InvalidURL:
        return "the configured base_url"
    port = f":{url.port}" if url.port else ""
    return f"{url.scheme}://{url.host}{port}" if url.host else "the configured base_url"


def json_error_text(response: httpx.Response) -> str:
    """The error words of a JSON error body: ``message``, ``error`` or ``detail``,
    whichever comes first (GitLab, GitHub, Jenkins, CircleCI and Buildbot all use one).

    Raw means unsafe to show: ``UpstreamHttp`` passes it through ``Redactor.excerpt``.
    """
    try:
        body = response.json()
    except ValueError:
        return ""
    if not isinstance(body, dict):
        return ""
    for key in ("message", "error", "detail", "error_description"):
        value = body.get(key)
        if isinstance(value, str) and value:
            return value
        if isinstance(value, dict) and isinstance(value.get("message"), str):
            return str(value["message"])
        if isinstance(value, list) and value:
            return "; ".join(str(item) for item in value)
    return ""


def _no_advice(credentials_sent: bool) -> str:
    return (
        "check the tool's credentials and that they may do this"
        if credentials_sent
        else "this needs credentials: store them for the tool"
    )


class UpstreamHttp:
    """One tool instance's upstream, reached through a shared httpx client.

    ``name`` starts messages ("gitlab could not read …"); ``auth`` applies the
    credentials to every request to the tool's origin (``devmesh.adapters.credentials``
    builds it); ``error_text`` picks the upstream's error words out of an error body;
    ``auth_advice(credentials_sent)`` says what to fix after a 401/403;
    ``base_url_hint`` is added when an answer suggests base_url is wrong.
    """

    def __init__(
        self,
        *,
        name: str,
        base_url: str,
        http: httpx.AsyncClient,
        redactor: Redactor,
        timeout: float = 30.0,
        auth: httpx.Auth | None = None,
        policy: HttpPolicy | None = None,
        error_text: Callable[[httpx.Response], str] = json_error_text,
        auth_advice: Callable[[bool], str] = _no_advice,
        base_url_hint: str | None = None,
    ) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.where = public_address(self.base_url)
        self.redactor = redactor
        self.policy = policy or HttpPolicy()
        self._http = http
        self._timeout = timeout
        self._auth = auth
        self._origin = _origin(self.base_url)
        self._error_text = error_text
        self._auth_advice = auth_advice
        self._base_url_hint = base_url_hint
        self._cookies = httpx.Cookies() if self.policy.cookies else None

    def url(self, path: str) -> httpx.URL:
        """``path`` (already percent-encoded) under base_url."""
        return join_url(self.base_url, path)

    # --- requests --------------------------------------------------------------------

    async def get_json(
        self,
        path: str,
        *,
        what: str,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        hint: str | None = None,
    ) -> Any:
        """The decoded JSON body of a GET; not JSON is an ``AdapterError`` naming ``what``."""
        body, _ = await self.send_json(
            "GET", path, what=what, params=params, headers=headers, hint=hint
        )
        return body

    async def send_json(
        self,
        method: str,
        path: str | httpx.URL,
        *,
        what: str,
        params: Mapping[str, Any] | None = None,
        payload: Any = None,
        headers: Mapping[str, str] | None = None,
        hint: str | None = None,
    ) -> tuple[Any, httpx.Response]:
        """The decoded JSON body and the response (for pagination headers)."""
        async with self.stream(
            method, path, what=what, params=params, payload=payload, headers=headers, hint=hint
        ) as response:
            await response.aread()
            return decode_json(response), response

    async def read_window(
        self,
        path: str | httpx.URL,
        *,
        offset: int,
        limit: int,
        what: str,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Window:
        """At most ``limit`` bytes of a download, from byte ``offset``.

        Works without Range support: the bytes before ``offset`` are read and dropped,
        and reading stops as soon as one byte past the window shows that more follow,
        so memory stays bounded by ``limit`` however large the download.
        """
        async with self.stream("GET", path, what=what, params=params, headers=headers) as response:
            return await read_window(response, offset=offset, limit=limit)

    @asynccontextmanager
    async def stream(
        self,
        method: str,
        path: str | httpx.URL,
        *,
        what: str,
        params: Mapping[str, Any] | None = None,
        payload: Any = None,
        headers: Mapping[str, str] | None = None,
        passing: Collection[int] = (),
        hint: str | None = None,
        content: bytes | None = None,
    ) -> AsyncIterator[httpx.Response]:
        """A successful streamed response (or one whose status is in ``passing``, for a
        caller that handles it, e.g. logging in again after a 401). Any other status
        and any failure on the way is raised as an ``AdapterError``. ``content`` is a
        body already encoded (a form), sent instead of ``payload``."""
        url = path if isinstance(path, httpx.URL) else self.url(path)
        if params and not url.query and not url.fragment:
            # The query written here, as httpx would merge it into a URL without one
            # (40 µs there), and the URL parsed once for every call with the same text.
            url = parsed_url(f"{url}?{httpx.QueryParams(params)}")
            params = None
        async with self.mapped(what, hint=hint):
            request = self._http.build_request(
                method,
                url,
                params=params,
                json=payload,
                content=content,
                headers=headers,
                timeout=self._timeout,
            )
            response = await self._send(request)
            try:
                if not response.is_success and response.status_code not in passing:
                    await raise_for_status(response)
                yield response
            finally:
                await response.aclose()

    async def _send(self, request: httpx.Request) -> httpx.Response:
        """Send, following redirects as the policy says, credentials to our origin only."""
        hops = 0
        while True:
            ours = _origin(request.url) == self._origin
            if self._cookies is not None and ours:
                self._cookies.set_cookie_header(request)
            response = await self._http.send(
                request, stream=True, auth=self._auth if ours else None, follow_redirects=False
            )
            if self._cookies is not None and ours:
                self._cookies.extract_cookies(response)
                for cookie in self._cookies.jar:
                    if cookie.value:
                        self.redactor.add(cookie.value)
            location = response.headers.get("location")
            if (
                not self.policy.follow_redirects
                or response.status_code not in _REDIRECTS
                or not location
                or hops >= self.policy.max_redirects
            ):
                return response
            await response.aclose()
            hops += 1
            request = self._redirected(request, response.status_code, request.url.join(location))

    def _redirected(self, request: httpx.Request, status: int, url: httpx.URL) -> httpx.Request:
        method = request.method
        if (status == 303 and method != "HEAD") or (status in (301, 302) and method == "POST"):
            method = "GET"
        keep_body = method == request.method and status in (307, 308)
        headers = httpx.Headers(request.headers)
        for name in ("host", "cookie", "authorization", "content-length", "transfer-encoding"):
            headers.pop(name, None)
        if _origin(url) != self._origin:
            # Whatever the provider added may be a credential (PRIVATE-TOKEN, a
            # session): nothing but the basics leaves for another origin.
            headers = httpx.Headers(
                {k: v for k, v in headers.items() if k.lower() in ("accept", "user-agent")}
            )
        if not keep_body:
            headers.pop("content-type", None)
        return self._http.build_request(
            method,
            url,
            headers=headers,
            content=request.content if keep_body else None,
            timeout=self._timeout,
        )

    # --- the one error mapping ---------------------------------------------------------

    @asynccontextmanager
    async def mapped(self, what: str, *, hint: str | None = None) -> AsyncIterator[None]:
        """Turn whatever goes wrong talking to the upstream into an ``AdapterError``.

        ``what`` is a verb phrase for the attempted action ("read build 42"); ``hint``
        says what to check when the failure is not about credentials. A
        ``DevMeshError`` raised inside passes unchanged.
        """
        details: dict[str, Any] = {"operation": what}
        then = f"; {hint}" if hint else ""
        name, where = self.name, self.where
        try:
            yield
        except DevMeshError:
            raise
        except httpx.HTTPStatusError as exc:
            raise self.status_error(exc.response, what, hint=hint) from exc
        except UnexpectedAnswer as exc:
            advice = f"; {self._base_url_hint}" if self._base_url_hint else then
            raise AdapterError(
                f"{name} at {where} answered the request to {what} with something "
                f"other than its REST API's JSON{advice}",
                details=details,
            ) from exc
        except httpx.TimeoutException as exc:
            raise UpstreamTimeout(
                f"{name} at {where} did not answer in time ({what}); it may be busy, try again",
                details=details,
            ) from exc
        except httpx.UnsupportedProtocol as exc:
            raise UpstreamInvalidArgument(
                f"the tool's base_url ({where}) must start with http:// or https://",
                details=details,
            ) from exc
        except httpx.TransportError as exc:
            raise UpstreamUnavailable(
                f"cannot reach {name} at {where} to {what} ({type(exc).__name__}); "
                "check that it is running and base_url is right",
                details=details,
            ) from exc
        except httpx.InvalidURL as exc:
            raise UpstreamInvalidArgument(
                "the tool's base_url is not a valid URL", details=details
            ) from exc
        except httpx.HTTPError as exc:
            raise AdapterError(
                f"talking to {name} at {where} failed ({what}): {type(exc).__name__}",
                details=details,
            ) from exc

    def status_error(
        self, response: httpx.Response, what: str, *, hint: str | None = None
    ) -> AdapterError:
        """The ``AdapterError`` for an error answer (its body already read, bounded)."""
        name, where = self.name, self.where
        status = response.status_code
        then = f"; {hint}" if hint else ""
        details: dict[str, Any] = {"operation": what, "status": status}
        # A 404's body only describes the upstream's routing; it helps no one.
        excerpt = (
            ""
            if status == 404
            else self.redactor.excerpt(self._error_text(response), status=status)
        )
        said = f"HTTP {status}: {excerpt}" if excerpt else f"HTTP {status}"
        if status == 429 or (status == 403 and _out_of_requests(response)):
            retry_after = rate_limit_wait(response)
            when = f"; retry after {retry_after:.0f} s" if retry_after is not None else ""
            return UpstreamRateLimited(
                f"{name} is limiting requests and refused to {what}{when}",
                retry_after=retry_after,
                details=details,
            )
        if status == 404:
            return UpstreamNotFound(
                f"{name} could not {what}: not found ({said}){then}", details=details
            )
        if status in (401, 403):
            advice = self._auth_advice(
                self._auth is not None or "cookie" in response.request.headers
            )
            return UpstreamAuthFailed(
                f"{name} refused to {what} ({said}); {advice}", details=details
            )
        if status in (400, 409, 422):
            return UpstreamInvalidArgument(
                f"{name} rejected the request to {what} ({said})", details=details
            )
        if status == 408:
            return UpstreamTimeout(f"{name} timed out trying to {what} ({said})", details=details)
        if status in (502, 503, 504):
            # A 503 may say when to come back (RFC 9110); a retry loop should honour it.
            retry_after = rate_limit_wait(response)
            when = f"in {retry_after:.0f} s" if retry_after is not None else "shortly"
            return UpstreamUnavailable(
                f"{name} at {where} is unavailable ({said}) and could not {what}; try again {when}",
                retry_after=retry_after,
                details=details,
            )
        if 300 <= status < 400:
            target = public_address(response.headers.get("location", ""))
            return AdapterError(
                f"{name} redirected the request to {what} to {target}; set base_url to the "
                "address it serves from (perhaps https)",
                details=details,
            )
        return AdapterError(
            f"{name} failed to {what} ({said}){then}", retriable=status >= 502, details=details
        )


def decode_json(response: httpx.Response) -> Any:
    """The body as JSON; ``UnexpectedAnswer`` if it is not (an HTML login page, say)."""
    try:
        return response.json()
    except ValueError as exc:
        raise UnexpectedAnswer("not JSON") from exc


async def raise_for_status(response: httpx.Response) -> None:
    """Raise ``HTTPStatusError`` for an answer that is not a success, with a bounded body.

    The error mapping reads the upstream's error words from the body, so keep its start.
    """
    body = bytearray()
    async for piece in response.aiter_bytes():
        body += piece[: ERROR_BODY_BYTES - len(body)]
        if len(body) >= ERROR_BODY_BYTES:
            break
    # The body is decoded already; headers about its transfer would make httpx decode it again.
    headers = {
        name: value
        for name, value in response.headers.items()
        if name.lower() not in ("content-encoding", "content-length", "transfer-encoding")
    }
    kept = httpx.Response(
        response.status_code, headers=headers, content=bytes(body), request=response.request
    )
    kept.raise_for_status()
    raise AssertionError(f"HTTP {response.status_code} is not an error")


async def read_window(response: httpx.Response, *, offset: int, limit: int) -> Window:
    """At most ``limit`` bytes of a streamed response from byte ``offset``; see
    ``UpstreamHttp.read_window``."""
    kept = bytearray()
    position = 0  # bytes of the download seen so far
    more = False
    async for piece in response.aiter_bytes():
        start = max(0, offset - position)
        position += len(piece)
        wanted = piece[start:]
        if not wanted:
            continue
        room = limit - len(kept)
        kept += wanted[:room]
        if len(wanted) > room:
            more = True
            break
    length = response.headers.get("content-length", "")
    size = position if not more else (int(length) if length.isdigit() else None)
    media = response.headers.get("content-type", "").partition(";")[0].strip()
    return Window(data=bytes(kept), more=more, size=size, content_type=media or None)


def _origin(url: str | httpx.URL) -> str:
    try:
        return origin_of(url)
    except (httpx.InvalidURL, ValueError):
        return ""


def _out_of_requests(response: httpx.Response) -> bool:
    # GitHub answers an exhausted rate limit with 403, not 429; and its secondary rate
    # limits (too many requests at once) with 403 and Retry-After while requests
    # remain. A refusal of credentials never says when to come back.
    for name in ("x-ratelimit-remaining", "ratelimit-remaining"):
        if response.headers.get(name, "").strip() == "0":
            return True
    return "retry-after" in response.headers
