"""The MCP server: each tenant's tool operations as MCP tools.

The low-level SDK server fits here because the tool list differs per caller.
Who the caller is comes from ``resolve_tenant``: the HTTP face reads the tenant
its authentication put on the request, stdio uses the one its API key names.

Every tool passes through ``_tool``, which names it (``devmesh.tools.naming``:
``ci_trigger_build`` by default) and makes its schemas portable
(``devmesh.mcp.schemas``), so the rules hold for every provider alike.
``tools/call`` takes the exposed name or the canonical ``ci.trigger_build``.

Tenant-wide operations (``devmesh.tools.tenant_wide``: ``search_contexts``,
``get_context``…) come first in every tenant's list, under their own names,
through the same schema rules.

What a connection lists is its view (``devmesh.tools.toolsets``): the toolsets it
chose, or the defaults beside the meta-tools; in search mode the meta-tools alone
(``search_tools``, ``call_tool``, ``list_toolsets``); read-only, only the
operations hinted read-only, and only those run.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import mcp_types as types
import numpy as np
import numpy.typing as npt
from cachetools import LRUCache
from mcp.server.caching import CacheHint
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.shared.exceptions import MCPError

from devmesh.domain.errors import DevMeshError, Forbidden, InvalidInput, UnknownTool
from devmesh.domain.models import Tenant
from devmesh.mcp.answers import ToolAnswer
from devmesh.mcp.errors import error_answer, internal_error_answer
from devmesh.mcp.schemas import portable_input, portable_output
from devmesh.tools.models import CatalogEntry, ProviderInfo
from devmesh.tools.naming import CANONICAL_SEPARATOR, Separator, ToolNames
from devmesh.tools.service import ToolService
from devmesh.tools.tenant_wide import TenantOperation
from devmesh.tools.tool_search import Candidate, rank, words
from devmesh.tools.toolsets import ALL, View, entry_toolset

__all__ = ["META_TOOLS", "CallerResolver", "MeshServer", "ToolCall", "ViewResolver", "build_server"]

Context = ServerRequestContext[Any, Any]
CallerResolver = Callable[[Context], Awaitable[tuple[Tenant, str | None]]]
"""Returns the caller's tenant and, when sent, its own upstream token."""
ViewResolver = Callable[[Context], Awaitable[View]]
Embed = Callable[[Sequence[str]], Awaitable["npt.NDArray[np.float32]"]]
"""Texts to unit-length rows (the knowledge layer's embedder), for search_tools."""
ListenResolver = Callable[
    [Context, types.SubscriptionsListenRequestParams], Awaitable[types.SubscriptionsListenResult]
]
"""Returns what the caller's connection sees (toolsets, search mode, read-only)."""
ToolCall = Callable[
    [Tenant, str | None, Callable[[], Awaitable[View]], str, dict[str, Any] | None],
    Awaitable[ToolAnswer],
]
"""Runs one tools/call: ``(tenant, upstream token, the view, name, arguments)``."""


class MeshServer(Server[Any]):
    """The SDK's server, plus the function its tools/call handler runs, which
    ``devmesh.mcp.direct`` runs too, so both paths answer alike."""

    def __init__(self, *args: Any, call_tool: ToolCall, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.call_tool = call_tool


def instructions(separator: Separator, providers: Sequence[ProviderInfo] = ()) -> str:
    """The server's instructions: how tools are named, then each installed provider in
    its own words (``Provider.description``) with the operations it offers."""
    example = f"ci{separator}trigger_build"
    text = (
        "Developer Mesh exposes your team's DevOps tools. Each tool is named "
        f"'<instance>{separator}<operation>', e.g. '{example}'. Ids an operation returns "
        "(builds, pipeline runs, artifacts) are what the other operations of the same "
        "instance take. Reads are bounded: logs and artifacts come a page or a window at "
        "a time, with a cursor or offset for the next. Mutating tools take an optional "
        "idempotency_key: repeat a call with the same key and it runs only once."
    )
    lines = [
        f"- {provider.title} ({provider.name}): "
        + (f"{provider.description} " if provider.description else "")
        + (
            f"Operations: {', '.join(provider.operations)}."
            if provider.operations
            # An openapi instance's operations come from its own description.
            else "Operations: each tool's own, as listed."
        )
        for provider in providers
    ]
    return text + ("\n\nProviders:\n" + "\n".join(lines) if lines else "")


_IDEMPOTENCY_KEY = "idempotency_key"
_IDEMPOTENCY_SCHEMA = {
    "type": "string",
    "minLength": 1,
    "maxLength": 255,
    "description": "Optional. Run this at most once: calling again with the same key within "
    "24 hours returns the first result instead of acting again. Use a new key per intent.",
}


def _input_schema(entry: CatalogEntry) -> dict[str, Any]:
    schema = entry.operation.input_schema
    if entry.operation.read_only:
        return schema
    # On REST the key is the Idempotency-Key header; MCP has only arguments.
    properties = {**schema.get("properties", {}), _IDEMPOTENCY_KEY: _IDEMPOTENCY_SCHEMA}
    return {**schema, "properties": properties}


def _description(entry: CatalogEntry) -> str:
    # Not every client shows the server's instructions; every one shows this. Only the
    # description's first sentence: the whole of it, on every tool of every instance,
    # would cost more tokens than the instructions that already carry it once.
    title = entry.provider_title or entry.provider
    about = f" {_first_sentence(entry.provider_description)}" if entry.provider_description else ""
    return f"{entry.operation.summary} ({title} tool '{entry.tool}'.{about})"


def _first_sentence(text: str) -> str:
    head, dot, _ = text.partition(". ")
    return head + dot.strip()


def _tool(entry: CatalogEntry, names: ToolNames) -> types.Tool:
    op = entry.operation
    title = f"{entry.tool}: {op.name.replace('_', ' ')}"
    if names.shortened(entry):
        # The name had to be shortened or disambiguated: the title keeps the whole.
        title = f"{title} ({entry.qualified_name})"
    return types.Tool(
        name=names.name(entry),
        title=title,
        description=_description(entry),
        input_schema=portable_input(_input_schema(entry)),
        output_schema=portable_output(op.output_schema),
        annotations=types.ToolAnnotations(
            read_only_hint=op.read_only,
            destructive_hint=op.destructive,
            idempotent_hint=op.idempotent,
            open_world_hint=True,
        ),
    )


def _tenant_tool(operation: TenantOperation) -> types.Tool:
    return types.Tool(
        name=operation.name,
        title=operation.title,
        description=f"{operation.summary} (Across all your tools.)",
        input_schema=portable_input(operation.input_schema()),
        output_schema=portable_output(operation.output_schema()),
        annotations=types.ToolAnnotations(
            read_only_hint=operation.read_only,
            destructive_hint=operation.destructive,
            idempotent_hint=operation.idempotent,
            open_world_hint=False,
        ),
    )


_SEARCH_TOOLS = "search_tools"
_CALL_TOOL = "call_tool"
_LIST_TOOLSETS = "list_toolsets"
META_TOOLS = (_SEARCH_TOOLS, _CALL_TOOL, _LIST_TOOLSETS)
_SEARCH_LIMIT = 5
_VECTOR_CACHE_SIZE = 10_000
_NAMES_CACHE_SIZE = 1_000
_MAX_SEARCH_LIMIT = 20


def _meta(name: str, description: str, schema: dict[str, Any]) -> types.Tool:
    return types.Tool(
        name=name,
        description=description,
        input_schema=portable_input(schema),
        annotations=types.ToolAnnotations(
            # call_tool runs whatever it is given: the operation's own hints apply.
            read_only_hint=name != _CALL_TOOL,
            open_world_hint=name == _CALL_TOOL,
        ),
    )


_META = [
    _meta(
        _SEARCH_TOOLS,
        "Find the operations for a task among all your DevOps tools (e.g. 'trigger a build "
        "of app on ci'): the best matches, with the arguments each takes. Run one with "
        "call_tool.",
        {
            "type": "object",
            "properties": {
                "query": {"type": "string", "minLength": 1, "description": "What to do."},
                "limit": {"type": "integer", "minimum": 1, "maximum": _MAX_SEARCH_LIMIT},
            },
            "required": ["query"],
            "additionalProperties": False,
        },
    ),
    _meta(
        _CALL_TOOL,
        "Run an operation search_tools found, by its name, with its arguments.",
        {
            "type": "object",
            "properties": {
                "name": {"type": "string", "minLength": 1},
                "arguments": {"type": "object"},
            },
            "required": ["name"],
            "additionalProperties": False,
        },
    ),
    _meta(
        _LIST_TOOLSETS,
        "The toolsets of your tools (builds, logs, pipelines, ...) and how many "
        "operations each holds; connect with ?toolsets=... to list one in full.",
        {"type": "object", "properties": {}, "additionalProperties": False},
    ),
]


def _compact_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """A search result's input schema: the portable form tools/list would show (no
    references), without the bookkeeping (titles) an agent does not act on."""
    schema = portable_input(schema)
    properties = {
        name: {key: value for key, value in spec.items() if key != "title"}
        for name, spec in schema.get("properties", {}).items()
    }
    compact: dict[str, Any] = {"properties": properties}
    if schema.get("required"):
        compact["required"] = schema["required"]
    return compact


def _read_only_refusal(name: str) -> Forbidden:
    return Forbidden(
        f"{name} changes state and this connection is read-only (a read-only API key or "
        "?read_only=true); only operations marked read-only may run",
        details={"tool": name, "read_only": True},
    )


async def _resolve(
    names_of: Callable[[], Awaitable[ToolNames]], name: str, separator: Separator
) -> tuple[str, str]:
    """``(instance, operation)`` for a name tools/list showed, or a canonical one."""
    if separator != CANONICAL_SEPARATOR:
        instance, dot, operation = name.partition(CANONICAL_SEPARATOR)
        if dot:
            # Instance names have no dot, so the canonical form needs no catalog;
            # execute says which part is unknown, if one is.
            return instance, operation
    entry = (await names_of()).find(name)
    if entry is not None:
        return entry.tool, entry.operation.name
    if separator == CANONICAL_SEPARATOR:
        instance, _, operation = name.partition(CANONICAL_SEPARATOR)
        return instance, operation
    raise UnknownTool(
        f"no tool {name!r}; tools/list shows the tools you can use",
        details={"tool": name},
    )


def build_server(
    tools: ToolService,
    resolve_caller: CallerResolver,
    *,
    separator: Separator = "_",
    tenant_operations: Sequence[TenantOperation] = (),
    resolve_view: ViewResolver | None = None,
    default_toolsets: frozenset[str] = frozenset({ALL}),
    listen: ListenResolver | None = None,
    embed: Embed | None = None,
) -> MeshServer:
    """``separator`` joins instance and operation in the names tools/list shows;
    ``tenant_operations`` are listed beside every tenant's tool operations.
    ``resolve_view`` says what a connection sees (unset: ``View()``), and
    ``default_toolsets`` what a view that chose no toolsets lists (``all``: every one;
    otherwise the meta-tools come with them, so the rest stays within reach).
    ``listen`` serves ``subscriptions/listen`` (``devmesh.mcp.changes``), which makes
    the server announce ``tools.listChanged`` on the 2026-07-28 protocol. ``embed``
    adds meaning to search_tools' ranking (``devmesh.tools.tool_search``)."""
    tenant_wide = {operation.name: operation for operation in tenant_operations}
    tenant_wide_tools = {operation.name: _tenant_tool(operation) for operation in tenant_operations}
    defaults = default_toolsets
    # An operation's text changes only with the code or a tool's provider: embed once.
    vectors: LRUCache[str, npt.NDArray[np.float32]] = LRUCache(maxsize=_VECTOR_CACHE_SIZE)
    # The service keeps a tenant's catalog as one list until it changes: name each list
    # once rather than on every call. Holding the list keeps its id from being reused.
    names_cache: LRUCache[int, tuple[list[CatalogEntry], ToolNames]] = LRUCache(
        maxsize=_NAMES_CACHE_SIZE
    )

    def named(catalog: list[CatalogEntry]) -> ToolNames:
        cached = names_cache.get(id(catalog))
        if cached is None or cached[0] is not catalog:
            cached = names_cache[id(catalog)] = (catalog, ToolNames(catalog, separator=separator))
        return cached[1]

    async def similarity(query: str, texts: list[str]) -> list[float] | None:
        if embed is None:
            return None
        missing = [text for text in dict.fromkeys(texts) if text not in vectors]
        rows = await embed([query, *missing])
        for text, row in zip(missing, rows[1:], strict=True):
            vectors[text] = row
        return [float(vectors[text] @ rows[0]) for text in texts]

    async def view_of(ctx: Context) -> View:
        return await resolve_view(ctx) if resolve_view is not None else View()

    def lists_meta(view: View) -> bool:
        return view.search or (view.toolsets is None and ALL not in defaults)

    async def visible(
        tenant: Tenant, view: View
    ) -> tuple[list[TenantOperation], list[CatalogEntry], ToolNames]:
        catalog = await tools.catalog(tenant)
        names = named(catalog)
        shown_wide = [
            operation
            for operation in tenant_operations
            if view.shows(operation.toolset, read_only=operation.read_only, defaults=defaults)
        ]
        shown = [
            entry
            for entry in catalog
            if view.shows(
                entry_toolset(entry),
                read_only=entry.operation.read_only,
                # A tenant may choose an instance's defaults itself.
                defaults=defaults
                if entry.default_toolsets is None
                else frozenset(entry.default_toolsets),
            )
        ]
        return shown_wide, shown, names

    async def list_tools(
        ctx: Context, params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        tenant, _ = await resolve_caller(ctx)
        try:
            view = await view_of(ctx)
        except DevMeshError as exc:
            # A bad ?mode= or ?toolsets=: the client's request is wrong, not the server.
            raise MCPError(types.INVALID_PARAMS, exc.message, data=exc.details) from None
        meta = list(_META) if lists_meta(view) else []
        if view.search:
            return types.ListToolsResult(tools=meta)
        shown_wide, shown, names = await visible(tenant, view)
        return types.ListToolsResult(
            tools=[
                *meta,
                *(tenant_wide_tools[operation.name] for operation in shown_wide),
                *(_tool(entry, names) for entry in shown),
            ]
        )

    async def search(tenant: Tenant, view: View, arguments: dict[str, Any]) -> dict[str, Any]:
        query = arguments.get("query")
        limit = arguments.get("limit", _SEARCH_LIMIT)
        if not isinstance(query, str) or not query.strip():
            raise InvalidInput("query must be a non-empty string", field="query")
        if isinstance(limit, bool) or not isinstance(limit, int):
            raise InvalidInput("limit must be an integer", field="limit")
        if not 1 <= limit <= _MAX_SEARCH_LIMIT:
            raise InvalidInput(f"limit must be 1 to {_MAX_SEARCH_LIMIT}", field="limit")
        # Every operation the caller may call, not only the listed toolsets.
        chosen = view.toolsets if view.search else None
        everything = View(toolsets=chosen or frozenset({ALL}), read_only=view.read_only)
        shown_wide, shown, names = await visible(tenant, everything)
        candidates = [
            Candidate(
                name=operation.name,
                text=f"{operation.summary} {operation.toolset}",
                input_schema=operation.input_schema(),
            )
            for operation in shown_wide
        ] + [
            Candidate(
                name=names.name(entry),
                text=f"{entry.tool} {entry.operation.name} {entry_toolset(entry)} "
                f"{entry.operation.summary} {entry.provider_title or entry.provider} "
                f"{'read-only' if entry.operation.read_only else ''}",
                input_schema=_input_schema(entry),
            )
            for entry in shown
        ]
        texts = [f"{' '.join(words(c.name))} {c.text}" for c in candidates]
        found = rank(candidates, query, limit=limit, similarity=await similarity(query, texts))
        descriptions = {
            **{operation.name: operation.summary for operation in shown_wide},
            **{names.name(entry): _description(entry) for entry in shown},
        }
        return {
            "tools": [
                {
                    "name": candidate.name,
                    "description": descriptions[candidate.name],
                    "input_schema": _compact_schema(candidate.input_schema),
                }
                for candidate in found
            ]
        }

    async def toolsets(tenant: Tenant, view: View) -> dict[str, Any]:
        everything = View(toolsets=frozenset({ALL}), read_only=view.read_only)
        shown_wide, shown, _ = await visible(tenant, everything)
        counts: dict[str, int] = {}
        for name in [o.toolset for o in shown_wide] + [entry_toolset(e) for e in shown]:
            counts[name] = counts.get(name, 0) + 1
        return {
            "toolsets": [
                {"name": name, "operations": count, "default": name in defaults}
                for name, count in sorted(counts.items())
            ]
        }

    async def run(
        tenant: Tenant,
        upstream_token: str | None,
        view: View,
        name: str,
        arguments: dict[str, Any],
    ) -> dict[str, Any]:
        key = arguments.pop(_IDEMPOTENCY_KEY, None)
        if (tenant_operation := tenant_wide.get(name)) is not None:
            if view.read_only and not tenant_operation.read_only:
                raise _read_only_refusal(name)
            if key is not None:
                arguments[_IDEMPOTENCY_KEY] = key
            return await tenant_operation.execute(tenant, arguments)

        async def names_of() -> ToolNames:
            return named(await tools.catalog(tenant))

        instance, operation = await _resolve(names_of, name, separator)
        if key is not None and not isinstance(key, str):
            raise InvalidInput("idempotency_key must be a string", field=_IDEMPOTENCY_KEY)
        return await tools.execute(
            tenant,
            instance,
            operation,
            arguments,
            upstream_token=upstream_token,
            idempotency_key=key,
            read_only=view.read_only,
        )

    async def answer(
        tenant: Tenant,
        upstream_token: str | None,
        connection_view: Callable[[], Awaitable[View]],
        called: str,
        given: dict[str, Any] | None,
    ) -> ToolAnswer:
        arguments = dict(given or {})
        name = called
        try:
            view = await connection_view()
            if name in META_TOOLS and name not in tenant_wide and lists_meta(view):
                if name == _SEARCH_TOOLS:
                    return ToolAnswer.of(await search(tenant, view, arguments))
                if name == _LIST_TOOLSETS:
                    return ToolAnswer.of(await toolsets(tenant, view))
                name = arguments.get("name")  # type: ignore[assignment]
                inner = arguments.get("arguments", {})
                if not isinstance(name, str) or not name:
                    raise InvalidInput("name must be a tool name search_tools found", field="name")
                if not isinstance(inner, dict):
                    raise InvalidInput("arguments must be an object", field="arguments")
                arguments = dict(inner)
            return ToolAnswer.of(await run(tenant, upstream_token, view, name, arguments))
        except DevMeshError as exc:
            return error_answer(exc)
        except Exception:
            return internal_error_answer(called)

    async def call_tool(ctx: Context, params: types.CallToolRequestParams) -> types.CallToolResult:
        tenant, upstream_token = await resolve_caller(ctx)
        answered = await answer(
            tenant, upstream_token, lambda: view_of(ctx), params.name, params.arguments
        )
        return answered.result()

    return MeshServer(
        "developer-mesh",
        version="0.1.0",
        title="Developer Mesh",
        instructions=instructions(separator, tools.providers()),
        # Lists change only when a tenant registers or removes a tool; a short
        # private TTL lets clients skip re-listing on every turn.
        cache_hints={"tools/list": CacheHint(ttl_ms=30_000, scope="private")},
        on_list_tools=list_tools,
        on_call_tool=call_tool,
        on_subscriptions_listen=listen,
        # Mcp-Param-* header checks look only at properties marked x-mcp-header, and
        # no operation's schema has one (a test pins that). Saying so spares every
        # 2026-07-28 tools/call a run of the tools/list handler: a query, thrown away.
        get_tool_input_schema=lambda name: None,
        call_tool=answer,
    )
