"""Calls one OpenAPI operation: arguments into a request, the answer bounded.

Parameters go where the description says, in its style (``form`` arrays exploded
into repeated query keys or joined by commas, ``deepObject``, ``simple`` path and
header values); a JSON body is sent as JSON, a form body urlencoded. The answer is
read up to the instance's ``max_response_bytes``: JSON is returned decoded, other text
as text, and a larger answer is cut, with a hint saying so.
"""

from __future__ import annotations

import json
from collections.abc import Generator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import httpx
from pydantic import BaseModel, Field

from devmesh.adapters.credentials import HeaderAuth
from devmesh.adapters.http import UpstreamHttp
from devmesh.adapters.registry import Connection
from devmesh.domain.errors import InvalidInput
from devmesh.providers.openapi.endpoints import Argument, Endpoint

__all__ = ["OpenApiAdapter", "OpenApiAnswer", "Security"]

_TEXT = ("json", "xml", "yaml", "javascript", "csv", "x-www-form-urlencoded")


class OpenApiAnswer(BaseModel):
    status: int = Field(description="The HTTP status the API answered with (2xx).")
    content_type: str | None = Field(default=None, description="The answer's media type.")
    body: Any = Field(
        default=None, description="The answer: decoded JSON, or text when it is not JSON."
    )
    truncated: bool = Field(default=False, description="Whether the answer was cut short.")
    location: str | None = Field(
        default=None, description="The Location header, where the API sent one (201, 202)."
    )
    hint: str | None = Field(default=None, description="What to do about a cut answer.")


@dataclass(frozen=True)
class Security:
    """How the instance's credentials are sent, from the description's securitySchemes."""

    kind: str  # "bearer", "basic", "header", "query"
    name: str = ""  # the header or query parameter of an API key


class _QueryAuth(httpx.Auth):
    def __init__(self, name: str, value: str) -> None:
        self._name = name
        self._value = value

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.url = request.url.copy_merge_params({self._name: self._value})
        yield request


class OpenApiAdapter:
    """One instance's upstream; ``call`` runs one endpoint."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._max_bytes: int = getattr(connection.config, "max_response_bytes", 100_000)
        self._upstreams: dict[Security | None, UpstreamHttp] = {}

    async def ping(self) -> None:
        return None

    def _upstream(self, security: Security | None) -> UpstreamHttp:
        if (found := self._upstreams.get(security)) is None:
            found = self._upstreams[security] = self._connection.upstream(
                name="openapi", auth=self._auth(security)
            )
        return found

    def _auth(self, security: Security | None) -> httpx.Auth | None:
        credentials = self._connection.credentials
        if credentials is None or security is None:
            return None
        secret = credentials.api_key or credentials.token or credentials.password or ""
        if security.kind == "basic" or credentials.type == "basic":
            return httpx.BasicAuth(credentials.username or "", credentials.password or "")
        if security.kind == "header":
            return HeaderAuth(security.name, secret)
        if security.kind == "query":
            return _QueryAuth(security.name, secret)
        return HeaderAuth("Authorization", f"Bearer {secret}")

    async def call(
        self, endpoint: Endpoint, values: Mapping[str, Any], security: Security | None
    ) -> OpenApiAnswer:
        path = endpoint.path
        params: list[tuple[str, str | int | float | bool | None]] = []
        headers: dict[str, str] = {}
        for argument in endpoint.arguments:
            if argument.key not in values or values[argument.key] is None:
                continue
            value = values[argument.key]
            if argument.location == "path":
                path = path.replace("{" + argument.name + "}", quote(_simple(value), safe=""))
            elif argument.location == "query":
                params += _query(argument, value)
            elif argument.location == "header":
                headers[argument.name] = _simple(value)
            else:  # cookie
                headers["cookie"] = "; ".join(
                    filter(None, [headers.get("cookie"), f"{argument.name}={_simple(value)}"])
                )
        payload: Any = None
        content: bytes | None = None
        body = endpoint.body
        if body is not None and body.key in values:
            given = values[body.key]
            if body.kind == "json":
                payload = given
            elif body.kind == "form" and isinstance(given, Mapping):
                pairs = [
                    (str(key), item)
                    for key, value in given.items()
                    for item in (value if isinstance(value, list) else [value])
                ]
                content = urlencode([(k, _scalar(v)) for k, v in pairs]).encode()
                headers["content-type"] = body.media_type
            elif body.kind == "text" and isinstance(given, str):
                content = given.encode()
                headers["content-type"] = body.media_type
            else:
                raise InvalidInput(
                    f"{endpoint.name} takes a {body.media_type} body, which this "
                    "provider cannot send yet",
                    field=body.key,
                )
        upstream = self._upstream(security)
        async with upstream.stream(
            endpoint.method.upper(),
            path,
            what=f"{endpoint.method.upper()} {endpoint.path}",
            params=httpx.QueryParams(params) if params else None,
            payload=payload,
            content=content,
            headers=headers or None,
        ) as response:
            return await self._answer(response)

    async def _answer(self, response: httpx.Response) -> OpenApiAnswer:
        raw = bytearray()
        async for chunk in response.aiter_bytes():
            raw += chunk
            if len(raw) > self._max_bytes:
                break
        truncated = len(raw) > self._max_bytes
        data = bytes(raw[: self._max_bytes])
        media = response.headers.get("content-type", "").split(";")[0].strip().lower() or None
        answer = OpenApiAnswer(
            status=response.status_code,
            content_type=media,
            location=response.headers.get("location"),
        )
        if not data:
            return answer
        textual = media is None or media.startswith("text/") or any(t in media for t in _TEXT)
        if not textual:
            answer.hint = f"a {media} answer is not shown" + (
                f": more than {self._max_bytes} bytes" if truncated else f": {len(data)} bytes"
            )
            return answer
        text = data.decode(response.encoding or "utf-8", errors="replace")
        if not truncated and media is not None and "json" in media:
            try:
                answer.body = json.loads(text)
                return answer
            except ValueError:
                pass
        answer.body = text
        if truncated:
            answer.truncated = True
            answer.hint = (
                f"the answer was longer than {self._max_bytes} bytes and is cut there; ask "
                "for less (a smaller page size, a filter) to get it whole"
            )
        return answer


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


def _simple(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(_scalar(item) for item in value)
    if isinstance(value, dict):
        return ",".join(f"{key},{_scalar(item)}" for key, item in value.items())
    return _scalar(value)


def _query(argument: Argument, value: Any) -> list[tuple[str, str | int | float | bool | None]]:
    name = argument.name
    if isinstance(value, dict):
        if argument.style == "deepObject":
            return [(f"{name}[{key}]", _scalar(item)) for key, item in value.items()]
        if argument.explode:
            return [(str(key), _scalar(item)) for key, item in value.items()]
        return [(name, _simple(value))]
    if isinstance(value, list):
        if argument.explode:
            return [(name, _scalar(item)) for item in value]
        glue = {"spaceDelimited": " ", "pipeDelimited": "|"}.get(argument.style, ",")
        return [(name, glue.join(_scalar(item) for item in value))]
    return [(name, _scalar(value))]
