"""``MCPClient``: the tools and knowledge of one Developer Mesh tenant, over its REST API.

One async class. Used as an async context manager, its calls share one connection
pool; used without one, each call opens and closes its own connections, so a script
that never closes the client leaks nothing.

Every call has a deadline (``deadline``, 60 s by default): answers of 429 (too many
requests) and 503 (unavailable) are asked again after the ``Retry-After`` the
service sent (or a short backoff when it sent none) while the deadline allows; any
other error, or running out of time or attempts, raises.
"""

from __future__ import annotations

import asyncio
import email.utils
import os
import time
from collections.abc import Mapping
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote

import httpx

from devops_mcp._errors import CallTimeout, ServiceUnreachable, ToolError

__all__ = ["DEFAULT_BASE_URL", "MCPClient"]

DEFAULT_BASE_URL = "http://localhost:8081/api/v1"
API_KEY_VARIABLE = "DEVMESH_API_KEY"

_RETRIED_STATUSES = frozenset({429, 503})
# Without a Retry-After the waits are 0.5, 1, 2, … seconds, capped here.
_BACKOFF_FIRST_S = 0.5
_BACKOFF_CAP_S = 10.0


class MCPClient:
    """Run a tenant's DevOps tools and search its build knowledge.

    ``base_url`` is the REST API's root (``…/api/v1``). ``api_key`` is the tenant's
    key; when omitted, ``DEVMESH_API_KEY`` from the environment is used.
    ``upstream_token`` is sent with every tool call as the caller's own credential
    for the upstream tool (``X-Upstream-Token``), instead of the stored one; a call
    may pass another. ``timeout`` bounds each request (``connect_timeout`` its
    connection set-up); ``deadline`` bounds a whole call, retries included, and a
    call may pass its own; ``max_attempts`` caps the tries of one call.
    ``transport`` replaces httpx's network transport (e.g. ``httpx.ASGITransport``
    to call an app in process).

    Example::

        async with MCPClient(base_url="http://localhost:8081/api/v1") as mcp:
            build = await mcp.execute_tool("gitlab.trigger_build", {"project": "group/app"})
            status = await mcp.execute_tool(
                "gitlab.get_build_status", {"build_id": build["build_id"]}
            )
    """

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        api_key: str | None = None,
        *,
        upstream_token: str | None = None,
        timeout: float = 30.0,
        connect_timeout: float = 5.0,
        deadline: float = 60.0,
        max_attempts: int = 5,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key if api_key is not None else os.environ.get(API_KEY_VARIABLE)
        self._upstream_token = upstream_token
        self._timeout = httpx.Timeout(timeout, connect=connect_timeout)
        self.deadline = deadline
        self.max_attempts = max_attempts
        self._transport = transport
        self._shared: httpx.AsyncClient | None = None
        # "{tool}_{operation}" names resolved once, against the tenant's tool names.
        self._resolved: dict[str, tuple[str, str]] = {}

    def __repr__(self) -> str:
        # Never the key or the token.
        return f"MCPClient(base_url={self.base_url!r})"

    # --- lifetime ---------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        if self._shared is None:
            self._shared = self._new_http()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the shared connections, if ``async with`` opened them."""
        if self._shared is not None:
            shared, self._shared = self._shared, None
            await shared.aclose()

    # --- tools ------------------------------------------------------------------------

    async def execute_tool(
        self,
        name: str,
        arguments: Mapping[str, Any] | None = None,
        *,
        idempotency_key: str | None = None,
        upstream_token: str | None = None,
        deadline: float | None = None,
    ) -> dict[str, Any]:
        """Run one operation and return its structured result.

        ``name`` is ``"{tool}.{operation}"`` (``"gitlab.trigger_build"``) or the MCP
        form ``"{tool}_{operation}"``. ``idempotency_key`` makes a mutating call run
        at most once per key (a repeat returns the first result), which makes it safe
        to retry after a lost answer. ``upstream_token`` overrides the client's.
        Raises ``ToolError`` when the service or the tool refuses.
        """
        tool, operation = await self._split(name)
        headers: dict[str, str] = {}
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        token = upstream_token if upstream_token is not None else self._upstream_token
        if token is not None:
            headers["X-Upstream-Token"] = token
        result = await self._json(
            "POST",
            f"/tools/{_segment(tool)}/operations/{_segment(operation)}",
            json=dict(arguments or {}),
            headers=headers,
            deadline=deadline,
        )
        return _mapping(result)

    async def list_tools(self) -> list[dict[str, Any]]:
        """Every operation of every tool of the tenant, one dict each: ``name``
        (``"{tool}.{operation}"``), ``tool``, ``provider``, ``operation``, ``summary``,
        ``input_schema``, ``output_schema``, ``read_only``, ``destructive``,
        ``idempotent``."""
        found: list[dict[str, Any]] = []
        for tool in await self._tools():
            operations = await self._json("GET", f"/tools/{_segment(tool['name'])}/operations")
            for op in operations if isinstance(operations, list) else []:
                found.append(
                    {
                        "name": f"{tool['name']}.{op['name']}",
                        "tool": tool["name"],
                        "provider": tool.get("provider"),
                        "operation": op["name"],
                        **{k: v for k, v in op.items() if k != "name"},
                    }
                )
        return found

    # --- knowledge --------------------------------------------------------------------

    async def search_contexts(
        self,
        params: Mapping[str, Any] | None = None,
        /,
        *,
        query: str | None = None,
        type: str | None = None,  # the service's own field name
        tool: str | None = None,
        project: str | None = None,
        status: str | None = None,
        since: str | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """Past builds and notes like ``query``, best first, as a list of dicts.

        Takes a dict (``{"query": …, "type": "gitlab_build", "limit": 5}``), keyword
        arguments, or both (keywords win). Each hit has ``key``, ``type``, ``tool``,
        ``subject``, ``build_id``, ``project``, ``status``, ``resolution``,
        ``snippet``, ``lines``, ``score`` and ``updated_at``.
        """
        body = dict(params or {})
        given = {
            "query": query,
            "type": type,
            "tool": tool,
            "project": project,
            "status": status,
            "since": since,
            "limit": limit,
        }
        body.update({k: v for k, v in given.items() if v is not None})
        if not body.get("query"):
            raise ValueError("search_contexts needs a query")
        answer = _mapping(await self._json("POST", "/contexts/search", json=body))
        results = answer.get("results", [])
        return [hit for hit in results if isinstance(hit, dict)]

    async def get_context(self, key: str, *, tool: str | None = None) -> dict[str, Any]:
        """One stored context by its key (``tool`` narrows it to one tool's)."""
        params = {"tool": tool} if tool is not None else None
        return _mapping(await self._json("GET", f"/contexts/{_segment(key)}", params=params))

    async def analyze_failure(
        self,
        build_id: str,
        *,
        tool: str | None = None,
        idempotency_key: str | None = None,
        deadline: float | None = None,
    ) -> dict[str, Any]:
        """The failure analysis of a build: its error pattern, class, whether a retry
        may help, and similar past failures with how they were resolved.

        ``tool`` names the tool instance the build belongs to; it may be left out
        when the tenant has exactly one tool.
        """
        tool = tool or await self._only_tool("analyze_failure")
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key is not None else {}
        return _mapping(
            await self._json(
                "POST",
                f"/tools/{_segment(tool)}/builds/{_segment(build_id)}/analysis",
                headers=headers,
                deadline=deadline,
            )
        )

    async def record_resolution(
        self,
        build_id: str,
        note: str,
        *,
        tool: str | None = None,
        deadline: float | None = None,
    ) -> dict[str, Any]:
        """Say how a failed build was fixed. Later analyses of the same failure, and
        ``search_contexts`` hits about the build, show it as ``resolution``; the note
        itself is searchable. ``tool`` as for ``analyze_failure``."""
        tool = tool or await self._only_tool("record_resolution")
        return _mapping(
            await self._json(
                "PUT",
                f"/tools/{_segment(tool)}/builds/{_segment(build_id)}/resolution",
                json={"note": note},
                deadline=deadline,
            )
        )

    async def _only_tool(self, method: str) -> str:
        names = [t["name"] for t in await self._tools()]
        if len(names) != 1:
            raise ValueError(
                f"{method} needs tool= when the tenant has {len(names)} tools "
                f"({', '.join(names) or 'none'})"
            )
        return str(names[0])

    # --- plumbing ---------------------------------------------------------------------

    async def _tools(self) -> list[dict[str, Any]]:
        found = await self._json("GET", "/tools")
        return [t for t in found if isinstance(t, dict)] if isinstance(found, list) else []

    async def _split(self, name: str) -> tuple[str, str]:
        # Tool names never hold a dot, so the canonical form splits at the first one.
        tool, dot, operation = name.partition(".")
        if dot:
            if not tool or not operation:
                raise ValueError(f"tool name {name!r} is not '<tool>.<operation>'")
            return tool, operation
        if name in self._resolved:
            return self._resolved[name]
        # "{tool}_{operation}": tool and operation names may hold "_" themselves, so
        # the tenant's tool names say where one ends.
        candidates = [
            t["name"]
            for t in await self._tools()
            if name.startswith(f"{t['name']}_") and len(name) > len(t["name"]) + 1
        ]
        if not candidates:
            raise ValueError(f"no tool of this tenant matches {name!r}; use '<tool>.<operation>'")
        # The longest tool name is the most specific; "{tool}.{operation}" is never
        # ambiguous if that guess is wrong.
        tool = max(candidates, key=len)
        split = (tool, name[len(tool) + 1 :])
        self._resolved[name] = split
        return split

    def _new_http(self) -> httpx.AsyncClient:
        headers = {"Accept": "application/json", "User-Agent": "devops-mcp"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        return httpx.AsyncClient(
            base_url=self.base_url,
            headers=headers,
            timeout=self._timeout,
            transport=self._transport,
        )

    async def _json(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        deadline: float | None = None,
    ) -> Any:
        if self._shared is not None:
            response = await self._send(
                self._shared,
                method,
                path,
                json=json,
                params=params,
                headers=headers,
                deadline=deadline,
            )
        else:
            async with self._new_http() as http:
                response = await self._send(
                    http,
                    method,
                    path,
                    json=json,
                    params=params,
                    headers=headers,
                    deadline=deadline,
                )
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    async def _send(
        self,
        http: httpx.AsyncClient,
        method: str,
        path: str,
        *,
        json: Any,
        params: Mapping[str, str] | None,
        headers: Mapping[str, str] | None,
        deadline: float | None,
    ) -> httpx.Response:
        budget = self.deadline if deadline is None else deadline
        give_up = time.monotonic() + budget
        url = f"{self.base_url}{path}"
        for attempt in range(1, self.max_attempts + 1):
            left = give_up - time.monotonic()
            if left <= 0:
                raise CallTimeout(url, budget)
            timeout = httpx.Timeout(
                min(_seconds(self._timeout.read), left),
                connect=min(_seconds(self._timeout.connect), left),
            )
            try:
                response = await http.request(
                    method, path, json=json, params=params, headers=headers, timeout=timeout
                )
            except httpx.TimeoutException as exc:
                raise CallTimeout(url, min(_seconds(self._timeout.read), left)) from exc
            except httpx.TransportError as exc:
                raise ServiceUnreachable(url, _reason(exc)) from exc
            if response.status_code not in _RETRIED_STATUSES or attempt == self.max_attempts:
                break
            wait = _retry_after(response)
            if wait is None:
                wait = min(_BACKOFF_FIRST_S * 2 ** (attempt - 1), _BACKOFF_CAP_S)
            if time.monotonic() + wait >= give_up:
                break
            await response.aclose()
            await asyncio.sleep(wait)
        if response.is_error:
            await response.aread()
            raise _problem(response)
        return response


def _segment(value: str) -> str:
    # One path segment: a GitLab build id such as "group/app#12" keeps its "/" and "#".
    return quote(value, safe="")


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {"result": value}


def _seconds(value: float | None) -> float:
    return 3600.0 if value is None else value


def _reason(exc: httpx.TransportError) -> str:
    text = str(exc) or type(exc).__name__
    if isinstance(exc, httpx.ConnectError) and "refused" in text.lower():
        return "connection refused (is the service running there?)"
    return text


def _retry_after(response: httpx.Response) -> float | None:
    """``Retry-After`` in seconds: delta-seconds or an HTTP date (RFC 9110)."""
    value = response.headers.get("retry-after")
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _problem(response: httpx.Response) -> ToolError:
    status = response.status_code
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        text = response.text.strip()[:200] or response.reason_phrase
        return ToolError(status=status, code="http_error", detail=text)
    found = body.get("details")
    details: dict[str, Any] = found if isinstance(found, dict) else {}
    field = body.get("field") or details.get("field")
    errors = body.get("errors")
    if field is None and isinstance(errors, list) and errors and isinstance(errors[0], dict):
        field = errors[0].get("field")
    retry_after = _retry_after(response)
    if retry_after is None and isinstance(details.get("retry_after"), int | float):
        retry_after = float(details["retry_after"])
    return ToolError(
        status=status,
        code=str(body.get("code") or "http_error"),
        detail=str(body.get("detail") or body.get("title") or response.reason_phrase),
        retriable=bool(body.get("retriable", False)),
        field=str(field) if field is not None else None,
        retry_after=retry_after,
        problem=body,
    )
