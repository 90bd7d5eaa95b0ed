"""A typed client for Buildbot's REST API (``/api/v2``).

Reads are GETs on collections; control actions (force, stop, cancel, rebuild) are
JSON-RPC 2.0 POSTs. Every failure on the way, whether an httpx error, an HTTP error
status, a JSON-RPC error or an answer that is not Buildbot's JSON, becomes an
``AdapterError`` in ``BuildbotClient._mapped`` and nowhere else.

Authentication. ``basic`` credentials log in through ``GET /auth/login``, because
Buildbot refuses basic auth on the API itself; the session cookie is kept per
client (so per adapter) and sent by hand, since the shared httpx client keeps no
cookies. A master reads an expired session as anonymous, so the first 401/403
after an old session logs in again, once. ``bearer`` and ``personal_access_token``
credentials go as ``Authorization: Bearer``, for masters behind a proxy that
checks them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel

from devmesh.adapters.upstream import Redactor, join_url
from devmesh.adapters.upstream import retry_after as upstream_retry_after
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
from devmesh.providers.buildbot.models import (
    WireBuild,
    WireBuildData,
    WireBuilder,
    WireBuildRequest,
    WireBuildset,
    WireForceScheduler,
    WireLog,
    WireLogChunk,
    WireStep,
)

__all__ = ["BuildbotClient", "Forced", "RawRead"]

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")

_SESSION_COOKIE = "TWISTED_SESSION"
# JSON-RPC codes that mean the caller asked for something malformed, not that the
# master broke: invalid request, method not found, invalid params.
_RPC_CALLER_ERRORS = frozenset({-32600, -32601, -32602})
_BASE_URL_HINT = "check that base_url is the master's root URL, e.g. http://buildbot:8010"
# An error answer is read only this far: enough for Buildbot's JSON error, never a
# whole page some proxy in front of the master sent instead.
_ERROR_BODY_BYTES = 64 * 1024


@dataclass(frozen=True)
class Forced:
    """What ``force`` and ``rebuild`` made: a buildset, and a build request per builder."""

    buildsetid: int
    requests: dict[int, int]  # builderid -> buildrequestid


@dataclass(frozen=True)
class RawRead:
    """Bytes of a raw download from some offset; see ``BuildbotClient.read_raw``."""

    data: bytes
    more: bool
    size: int | None
    content_type: str | None


class _UnexpectedAnswer(Exception):
    """Buildbot answered, but not with the JSON its API documents."""


class _RpcError(Exception):
    """A JSON-RPC error inside a successful HTTP answer."""

    def __init__(self, code: int | None, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _error_text(error: Any) -> str:
    """Buildbot's own error words, raw: a REST ``error`` string or a JSON-RPC error object.

    Raw means unsafe to show: it goes through ``Redactor.excerpt`` first.
    """
    if isinstance(error, dict):
        message = error.get("message")
        if isinstance(message, dict):
            # Force-form validation errors come keyed by field name.
            return "; ".join(f"{key}: {value}" for key, value in message.items())
        return str(message) if message is not None else ""
    return str(error) if error else ""


def _error_field(response: httpx.Response) -> str:
    """Only Buildbot's error field of an error answer, never the rest of the body."""
    try:
        body = response.json()
    except ValueError:
        return ""
    return _error_text(body.get("error")) if isinstance(body, dict) else ""


def _items(response: httpx.Response, key: str, model: type[M]) -> list[M]:
    try:
        return [model.model_validate(item) for item in response.json()[key]]
    except (ValueError, KeyError, TypeError) as exc:  # pydantic's ValidationError is a ValueError
        raise _UnexpectedAnswer(f"no list of {key}") from exc


def _one(response: httpx.Response, key: str, model: type[M]) -> M:
    items = _items(response, key, model)
    if len(items) != 1:
        raise _UnexpectedAnswer(f"{len(items)} {key} where one was expected")
    return items[0]


def _rpc_result(response: httpx.Response) -> Any:
    try:
        body = response.json()
    except ValueError as exc:
        raise _UnexpectedAnswer("not JSON") from exc
    if not isinstance(body, dict):
        raise _UnexpectedAnswer("not a JSON-RPC answer")
    error = body.get("error")
    if error is not None:
        code = error.get("code") if isinstance(error, dict) else None
        raise _RpcError(code if isinstance(code, int) else None, _error_text(error))
    return body.get("result")


def _forced(response: httpx.Response) -> Forced:
    """``force`` and ``rebuild`` answer ``[buildsetid, {builderid: buildrequestid}]``."""
    result = _rpc_result(response)
    try:
        buildsetid, by_builder = result
        requests = {int(builder): int(request) for builder, request in by_builder.items()}
        return Forced(buildsetid=int(buildsetid), requests=requests)
    except (ValueError, TypeError, AttributeError) as exc:
        raise _UnexpectedAnswer("no build requests in the answer") from exc


def _properties(response: httpx.Response) -> dict[str, Any]:
    """A properties answer: one ``{name: [value, source]}`` object in a list."""
    try:
        [properties] = response.json()["properties"]
    except (ValueError, KeyError, TypeError) as exc:
        raise _UnexpectedAnswer("no properties") from exc
    if not isinstance(properties, dict):
        raise _UnexpectedAnswer("properties that are not an object")
    return properties


def _nothing(response: httpx.Response) -> None:
    _rpc_result(response)


def _whole(parse: Callable[[httpx.Response], T]) -> Callable[[httpx.Response], Awaitable[T]]:
    """A handler that reads the whole (JSON) answer, then parses it."""

    async def handle(response: httpx.Response) -> T:
        await response.aread()
        return parse(response)

    return handle


async def _raise_for_status(response: httpx.Response) -> None:
    """Raise ``HTTPStatusError`` for an answer that is not a success, with a bounded body.

    The error mapping reads Buildbot's error message from the body, so keep its start.
    """
    body = bytearray()
    async for piece in response.aiter_bytes():
        body += piece[: _ERROR_BODY_BYTES - len(body)]
        if len(body) >= _ERROR_BODY_BYTES:
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


def _public_address(base_url: str) -> str:
    """scheme://host[:port] of base_url: enough to name it, never its userinfo or query."""
    try:
        url = httpx.URL(base_url)
    except httpx.InvalidURL:
        return "the configured base_url"
    port = f":{url.port}" if url.port else ""
    return f"{url.scheme}://{url.host}{port}" if url.host else "the configured base_url"


class BuildbotClient:
    """One Buildbot master, reached through the shared httpx client."""

    def __init__(
        self,
        *,
        base_url: str,
        http: httpx.AsyncClient,
        credentials: Credentials | None,
        timeout: float,
    ) -> None:
        root = base_url.rstrip("/")
        # People paste the API's address as often as the master's; both mean the master.
        root = root.removesuffix("/api/v2").rstrip("/")
        self.base_url = root
        self._api = join_url(root, "/api/v2")
        self._where = _public_address(root)
        self._http = http
        self._credentials = credentials
        # Every secret this client sends, sessions included, is cut out of upstream text.
        self._redactor = Redactor.of(credentials)
        self._timeout = timeout
        self._session: str | None = None
        self._login_lock = asyncio.Lock()

    # --- reads ---------------------------------------------------------------------

    async def builders(self) -> list[WireBuilder]:
        return await self._get(
            "/builders",
            what="list builders",
            hint=_BASE_URL_HINT,
            parse=lambda r: _items(r, "builders", WireBuilder),
        )

    async def force_schedulers(self) -> list[WireForceScheduler]:
        return await self._get(
            "/forceschedulers",
            what="list force schedulers",
            hint=_BASE_URL_HINT,
            parse=lambda r: _items(r, "forceschedulers", WireForceScheduler),
        )

    async def builds(
        self,
        *,
        builderid: int | None = None,
        buildrequestids: Sequence[int] = (),
        complete: bool | None = None,
        results: Sequence[int] = (),
        limit: int | None = None,
        properties: Sequence[str] = (),
    ) -> list[WireBuild]:
        params: dict[str, Any] = {"order": "-buildid"}
        if builderid is not None:
            params["builderid"] = builderid
        if buildrequestids:
            # A repeated equality filter is Buildbot's "any of".
            params["buildrequestid"] = list(buildrequestids)
        if complete is not None:
            params["complete"] = "true" if complete else "false"
        if results:
            params["results"] = list(results)
        if limit is not None:
            params["limit"] = limit
        if properties:
            params["property"] = list(properties)
        return await self._get(
            "/builds",
            params=params,
            what="list builds",
            parse=lambda r: _items(r, "builds", WireBuild),
        )

    async def build(self, buildid: int, *, properties: Sequence[str] = ()) -> WireBuild:
        params = {"property": list(properties)} if properties else None
        return await self._get(
            f"/builds/{buildid}",
            params=params,
            what=f"read build {buildid}",
            parse=lambda r: _one(r, "builds", WireBuild),
        )

    async def build_request(self, buildrequestid: int) -> WireBuildRequest:
        return await self._get(
            f"/buildrequests/{buildrequestid}",
            what=f"read build request {buildrequestid}",
            parse=lambda r: _one(r, "buildrequests", WireBuildRequest),
        )

    async def pending_build_requests(
        self, *, builderid: int | None = None, limit: int
    ) -> list[WireBuildRequest]:
        """Requests no worker has claimed yet, newest first."""
        params: dict[str, Any] = {
            "claimed": "false",
            "complete": "false",
            "order": "-buildrequestid",
            "limit": limit,
        }
        if builderid is not None:
            params["builderid"] = builderid
        return await self._get(
            "/buildrequests",
            params=params,
            what="list queued build requests",
            parse=lambda r: _items(r, "buildrequests", WireBuildRequest),
        )

    async def buildset(self, bsid: int) -> WireBuildset:
        return await self._get(
            f"/buildsets/{bsid}",
            what=f"read buildset {bsid}",
            parse=lambda r: _one(r, "buildsets", WireBuildset),
        )

    async def buildset_properties(self, bsid: int) -> dict[str, Any]:
        """``{name: [value, source]}``; Buildbot answers ``{}`` for an unknown buildset."""
        return await self._get(
            f"/buildsets/{bsid}/properties",
            what=f"read the properties of buildset {bsid}",
            parse=_properties,
        )

    async def buildset_requests(self, bsid: int) -> list[WireBuildRequest]:
        return await self._get(
            "/buildrequests",
            params={"buildsetid": bsid, "order": "buildrequestid"},
            what=f"list the build requests of buildset {bsid}",
            parse=lambda r: _items(r, "buildrequests", WireBuildRequest),
        )

    async def steps(self, buildid: int) -> list[WireStep]:
        return await self._get(
            f"/builds/{buildid}/steps",
            what=f"list the steps of build {buildid}",
            parse=lambda r: _items(r, "steps", WireStep),
        )

    async def step(self, stepid: int) -> WireStep:
        return await self._get(
            f"/steps/{stepid}",
            what=f"read step {stepid}",
            parse=lambda r: _one(r, "steps", WireStep),
        )

    async def logs(self, stepid: int) -> list[WireLog]:
        return await self._get(
            f"/steps/{stepid}/logs",
            what=f"list the logs of step {stepid}",
            parse=lambda r: _items(r, "logs", WireLog),
        )

    async def log(self, logid: int) -> WireLog:
        return await self._get(
            f"/logs/{logid}",
            what=f"read log {logid}",
            parse=lambda r: _one(r, "logs", WireLog),
        )

    async def log_chunks(self, logid: int, *, offset: int, limit: int) -> list[WireLogChunk]:
        """Lines ``offset`` .. ``offset + limit - 1`` (0-based) of a log, in chunks."""
        return await self._get(
            f"/logs/{logid}/contents",
            params={"offset": offset, "limit": limit},
            what=f"read log {logid}",
            parse=lambda r: _items(r, "logchunks", WireLogChunk),
        )

    async def build_data(self, buildid: int) -> list[WireBuildData]:
        """The blobs steps stored for a build, without their values."""
        return await self._get(
            f"/builds/{buildid}/data",
            what=f"list the build data of build {buildid}",
            parse=lambda r: _items(r, "build_data", WireBuildData),
        )

    async def build_data_entry(self, buildid: int, name: str) -> WireBuildData:
        return await self._get(
            f"/builds/{buildid}/data/{quote(name, safe='')}",
            what=f"read build data {name!r} of build {buildid}",
            parse=lambda r: _one(r, "build_data", WireBuildData),
        )

    def log_raw_path(self, logid: int) -> str:
        return f"/logs/{logid}/raw"

    def build_data_path(self, buildid: int, name: str) -> str:
        return f"/builds/{buildid}/data/{quote(name, safe='')}/value"

    def api_url(self, path: str) -> str:
        """The address of an API path, for links shown to callers."""
        return str(join_url(self._api, path))

    async def read_raw(self, path: str, *, offset: int, limit: int, what: str) -> RawRead:
        """At most ``limit`` bytes of a raw download, from byte ``offset``.

        Buildbot streams raw logs and build data without a length and ignores Range,
        so the bytes before ``offset`` are read and dropped, and reading stops as soon
        as one byte past the window shows that more follow: memory stays bounded by
        ``limit`` however large the download.
        """

        async def read(response: httpx.Response) -> RawRead:
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
            return RawRead(data=bytes(kept), more=more, size=size, content_type=media or None)

        return await self._exchange("GET", path, what=what, handle=read)

    # --- control -------------------------------------------------------------------

    async def force(self, scheduler: str, params: Mapping[str, Any]) -> Forced:
        """Start builds through a force scheduler."""
        return await self._control(
            f"/forceschedulers/{quote(scheduler, safe='')}",
            "force",
            params,
            what=f"force a build through scheduler {scheduler!r}",
            parse=_forced,
        )

    async def rebuild(self, buildid: int) -> Forced:
        return await self._control(
            f"/builds/{buildid}",
            "rebuild",
            {},
            what=f"rebuild build {buildid}",
            parse=_forced,
        )

    async def stop_build(self, buildid: int, *, reason: str) -> None:
        await self._control(
            f"/builds/{buildid}",
            "stop",
            {"reason": reason},
            what=f"stop build {buildid}",
            parse=_nothing,
        )

    async def cancel_build_request(self, buildrequestid: int, *, reason: str) -> None:
        await self._control(
            f"/buildrequests/{buildrequestid}",
            "cancel",
            {"reason": reason},
            what=f"cancel build request {buildrequestid}",
            parse=_nothing,
        )

    # --- transport -----------------------------------------------------------------

    async def _get(
        self,
        path: str,
        *,
        what: str,
        parse: Callable[[httpx.Response], T],
        params: Mapping[str, Any] | None = None,
        hint: str | None = None,
    ) -> T:
        return await self._exchange(
            "GET", path, what=what, handle=_whole(parse), params=params, hint=hint
        )

    async def _control(
        self,
        path: str,
        method: str,
        params: Mapping[str, Any],
        *,
        what: str,
        parse: Callable[[httpx.Response], T],
    ) -> T:
        payload = {"jsonrpc": "2.0", "method": method, "params": dict(params), "id": 1}
        return await self._exchange("POST", path, what=what, handle=_whole(parse), payload=payload)

    async def _exchange(
        self,
        method: str,
        path: str,
        *,
        what: str,
        handle: Callable[[httpx.Response], Awaitable[T]],
        params: Mapping[str, Any] | None = None,
        payload: Mapping[str, Any] | None = None,
        hint: str | None = None,
    ) -> T:
        """One request, its answer streamed to ``handle`` once it is a success.

        A refusal with a session from an earlier call is retried once after logging in
        again; a refusal of a session made for this call is the answer.
        """
        for attempt in (1, 2):
            headers, session = await self._auth_headers()
            async with (
                self._mapped(what, hint=hint),
                self._http.stream(
                    method,
                    join_url(self._api, path),
                    params=params,
                    json=payload,
                    headers=headers,
                    timeout=self._timeout,
                ) as response,
            ):
                if response.status_code in (401, 403) and session is not None and attempt == 1:
                    async with self._login_lock:
                        # Another call may have logged in again meanwhile; keep its session.
                        if self._session == session:
                            self._session = None
                    continue
                if not response.is_success:
                    await _raise_for_status(response)
                return await handle(response)
        raise AssertionError("unreachable: the second attempt always returns or raises")

    async def _auth_headers(self) -> tuple[dict[str, str], str | None]:
        """Headers for one request, and the session used if it predates this call."""
        creds = self._credentials
        if creds is None:
            return {}, None
        if creds.type == "basic":
            async with self._login_lock:
                if self._session is None:
                    self._session = await self._login(creds)
                    return {"Cookie": f"{_SESSION_COOKIE}={self._session}"}, None
                return {"Cookie": f"{_SESSION_COOKIE}={self._session}"}, self._session
        if creds.type in ("bearer", "personal_access_token") and creds.token:
            return {"Authorization": f"Bearer {creds.token}"}, None
        raise UpstreamAuthFailed(
            "Buildbot tools take basic credentials (username and password), or a bearer "
            f"token for a proxy in front of the master; {creds.type!r} credentials cannot be used"
        )

    async def _login(self, creds: Credentials) -> str:
        assert creds.username is not None and creds.password is not None
        async with self._mapped(
            "log in",
            hint="if the master has no login configured (www auth), remove the tool's credentials",
        ):
            response = await self._http.get(
                join_url(self.base_url, "/auth/login"),
                auth=httpx.BasicAuth(creds.username, creds.password),
                timeout=self._timeout,
            )
            session = response.cookies.get(_SESSION_COOKIE)
            if session:
                self._redactor.add(session)
            else:
                response.raise_for_status()
                raise _UnexpectedAnswer("a login without a session cookie")
        return session

    # --- the one error mapping -------------------------------------------------------

    @asynccontextmanager
    async def _mapped(self, what: str, *, hint: str | None = None) -> AsyncIterator[None]:
        """Turn whatever went wrong while talking to Buildbot into an ``AdapterError``.

        ``what`` is a verb phrase for the attempted action ("read build 42"); ``hint``
        says what to check when the failure is not about credentials.
        """
        details: dict[str, Any] = {"operation": what}
        then = f"; {hint}" if hint else ""
        try:
            yield
        except httpx.HTTPStatusError as exc:
            raise self._status_error(exc.response, what, then, details) from exc
        except _RpcError as exc:
            # A JSON-RPC error comes inside a 200 answer: shown as such, redacted.
            message = self._redactor.excerpt(exc.message, status=200)
            said = f": {message}" if message else ""
            if exc.code in _RPC_CALLER_ERRORS:
                raise UpstreamInvalidArgument(
                    f"buildbot rejected the request to {what}{said}", details=details
                ) from exc
            raise AdapterError(f"buildbot failed to {what}{said}", details=details) from exc
        except _UnexpectedAnswer as exc:
            raise AdapterError(
                f"buildbot at {self._where} answered the request to {what} with something "
                f"other than its REST API's JSON; {_BASE_URL_HINT}",
                details=details,
            ) from exc
        except httpx.TimeoutException as exc:
            raise UpstreamTimeout(
                f"buildbot at {self._where} did not answer in time ({what}); it may be busy, "
                "try again",
                details=details,
            ) from exc
        except httpx.UnsupportedProtocol as exc:
            raise UpstreamInvalidArgument(
                f"the tool's base_url ({self._where}) must start with http:// or https://",
                details=details,
            ) from exc
        except httpx.TransportError as exc:
            raise UpstreamUnavailable(
                f"cannot reach buildbot at {self._where} to {what} ({type(exc).__name__}); "
                "check that the master is running and base_url is right",
                details=details,
            ) from exc
        except httpx.InvalidURL as exc:
            raise UpstreamInvalidArgument(
                "the tool's base_url is not a valid URL", details=details
            ) from exc
        except httpx.HTTPError as exc:
            raise AdapterError(
                f"talking to buildbot at {self._where} failed ({what}): {type(exc).__name__}",
                details=details,
            ) from exc

    def _status_error(
        self, response: httpx.Response, what: str, then: str, details: dict[str, Any]
    ) -> AdapterError:
        status = response.status_code
        details = {**details, "status": status}
        # A 404's body only describes Buildbot's routing tables; it helps no one.
        excerpt = (
            "" if status == 404 else self._redactor.excerpt(_error_field(response), status=status)
        )
        said = f"HTTP {status}: {excerpt}" if excerpt else f"HTTP {status}"
        if status == 404:
            return UpstreamNotFound(
                f"buildbot could not {what}: not found ({said}){then}", details=details
            )
        if status in (401, 403):
            return UpstreamAuthFailed(
                f"buildbot refused to {what} ({said}); {self._auth_advice()}", details=details
            )
        if status == 429:
            retry_after = upstream_retry_after(response)
            when = f"; retry after {retry_after:.0f} s" if retry_after is not None else ""
            return UpstreamRateLimited(
                f"buildbot is limiting requests and refused to {what}{when}",
                retry_after=retry_after,
                details=details,
            )
        if status in (400, 422):
            return UpstreamInvalidArgument(
                f"buildbot rejected the request to {what} ({said})", details=details
            )
        if status == 408:
            return UpstreamTimeout(f"buildbot timed out trying to {what} ({said})", details=details)
        if status in (502, 503, 504):
            # A 503 may say when to come back (RFC 9110); a retry loop should honour it.
            retry_after = upstream_retry_after(response)
            when = f"in {retry_after:.0f} s" if retry_after is not None else "shortly"
            return UpstreamUnavailable(
                f"buildbot at {self._where} is unavailable ({said}) and could not {what}; "
                f"try again {when}",
                retry_after=retry_after,
                details=details,
            )
        if 300 <= status < 400:
            target = _public_address(response.headers.get("location", ""))
            return AdapterError(
                f"buildbot redirected the request to {what} to {target}; set base_url to the "
                "address the master serves from (perhaps https)",
                details=details,
            )
        return AdapterError(
            f"buildbot failed to {what} ({said}){then}",
            retriable=status >= 502,
            details=details,
        )

    def _auth_advice(self) -> str:
        creds = self._credentials
        if creds is None:
            return (
                "this master needs a login for that: store basic credentials "
                "(username and password) for the tool"
            )
        if creds.type == "basic":
            return "check the tool's username and password, and that this Buildbot user may do this"
        return (
            "the tool's token was refused; Buildbot itself logs in with basic credentials "
            "(username and password)"
        )
