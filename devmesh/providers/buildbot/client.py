"""A typed client for Buildbot's REST API (``/api/v2``).

Reads are GETs on collections; control actions (force, stop, cancel, rebuild) are
JSON-RPC 2.0 POSTs. Requests go through ``BuildbotSession`` (the kit's
``UpstreamHttp``, plus Buildbot's login), so every failure on the way, whether an
httpx error, an HTTP error status or an answer that is not Buildbot's JSON, is an
``AdapterError`` already; a JSON-RPC error inside a 200 becomes one here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel

from devmesh.adapters.http import HttpPolicy, UnexpectedAnswer, Window, decode_json, read_window
from devmesh.adapters.upstream import join_url
from devmesh.domain.errors import AdapterError, UpstreamInvalidArgument
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
from devmesh.providers.buildbot.session import BASE_URL_HINT, BuildbotSession, error_words

__all__ = ["BuildbotClient", "Forced", "RawRead"]

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")

# JSON-RPC codes that mean the caller asked for something malformed, not that the
# master broke: invalid request, method not found, invalid params.
_RPC_CALLER_ERRORS = frozenset({-32600, -32601, -32602})
RawRead = Window


@dataclass(frozen=True)
class Forced:
    """What ``force`` and ``rebuild`` made: a buildset, and a build request per builder."""

    buildsetid: int
    requests: dict[int, int]  # builderid -> buildrequestid


class _RpcError(Exception):
    """A JSON-RPC error inside a successful HTTP answer."""

    def __init__(self, code: int | None, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _items(response: httpx.Response, key: str, model: type[M]) -> list[M]:
    try:
        return [model.model_validate(item) for item in decode_json(response)[key]]
    except (ValueError, KeyError, TypeError) as exc:  # pydantic's ValidationError is a ValueError
        raise UnexpectedAnswer(f"no list of {key}") from exc


def _one(response: httpx.Response, key: str, model: type[M]) -> M:
    items = _items(response, key, model)
    if len(items) != 1:
        raise UnexpectedAnswer(f"{len(items)} {key} where one was expected")
    return items[0]


def _rpc_result(response: httpx.Response) -> Any:
    body = decode_json(response)
    if not isinstance(body, dict):
        raise UnexpectedAnswer("not a JSON-RPC answer")
    error = body.get("error")
    if error is not None:
        code = error.get("code") if isinstance(error, dict) else None
        raise _RpcError(code if isinstance(code, int) else None, error_words(error))
    return body.get("result")


def _forced(response: httpx.Response) -> Forced:
    """``force`` and ``rebuild`` answer ``[buildsetid, {builderid: buildrequestid}]``."""
    result = _rpc_result(response)
    try:
        buildsetid, by_builder = result
        requests = {int(builder): int(request) for builder, request in by_builder.items()}
        return Forced(buildsetid=int(buildsetid), requests=requests)
    except (ValueError, TypeError, AttributeError) as exc:
        raise UnexpectedAnswer("no build requests in the answer") from exc


def _properties(response: httpx.Response) -> dict[str, Any]:
    """A properties answer: one ``{name: [value, source]}`` object in a list."""
    try:
        [properties] = decode_json(response)["properties"]
    except (KeyError, TypeError, ValueError) as exc:
        raise UnexpectedAnswer("no properties") from exc
    if not isinstance(properties, dict):
        raise UnexpectedAnswer("properties that are not an object")
    return properties


def _nothing(response: httpx.Response) -> None:
    _rpc_result(response)


def _whole(parse: Callable[[httpx.Response], T]) -> Callable[[httpx.Response], Awaitable[T]]:
    """A handler that reads the whole (JSON) answer, then parses it."""

    async def handle(response: httpx.Response) -> T:
        await response.aread()
        return parse(response)

    return handle


class BuildbotClient:
    """One Buildbot master, reached through the shared httpx client."""

    def __init__(
        self,
        *,
        base_url: str,
        http: httpx.AsyncClient,
        credentials: Credentials | None,
        timeout: float,
        policy: HttpPolicy | None = None,
    ) -> None:
        self._session = BuildbotSession(
            base_url=base_url, http=http, credentials=credentials, timeout=timeout, policy=policy
        )
        self.base_url = self._session.base_url
        self._api = join_url(self.base_url, "/api/v2")

    # --- reads ---------------------------------------------------------------------

    async def builders(self) -> list[WireBuilder]:
        return await self._get(
            "/builders",
            what="list builders",
            hint=BASE_URL_HINT,
            parse=lambda r: _items(r, "builders", WireBuilder),
        )

    async def force_schedulers(self) -> list[WireForceScheduler]:
        return await self._get(
            "/forceschedulers",
            what="list force schedulers",
            hint=BASE_URL_HINT,
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
            return await read_window(response, offset=offset, limit=limit)

        return await self._session.exchange("GET", path, what=what, handle=read)

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
        return await self._session.exchange(
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
        try:
            return await self._session.exchange(
                "POST", path, what=what, handle=_whole(parse), payload=payload
            )
        except _RpcError as exc:
            # A JSON-RPC error comes inside a 200 answer: shown as such, redacted.
            message = self._session.upstream.redactor.excerpt(exc.message, status=200)
            said = f": {message}" if message else ""
            details = {"operation": what}
            if exc.code in _RPC_CALLER_ERRORS:
                raise UpstreamInvalidArgument(
                    f"buildbot rejected the request to {what}{said}", details=details
                ) from exc
            raise AdapterError(f"buildbot failed to {what}{said}", details=details) from exc
