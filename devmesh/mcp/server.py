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
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import mcp_types as types
from mcp.server.caching import CacheHint
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server

from devmesh.domain.errors import DevMeshError, InvalidInput, UnknownTool
from devmesh.domain.models import Tenant
from devmesh.mcp.errors import error_result, internal_error_result
from devmesh.mcp.schemas import portable_input, portable_output
from devmesh.tools.models import CatalogEntry, ProviderInfo
from devmesh.tools.naming import CANONICAL_SEPARATOR, Separator, ToolNames
from devmesh.tools.service import ToolService
from devmesh.tools.tenant_wide import TenantOperation

__all__ = ["CallerResolver", "build_server"]

Context = ServerRequestContext[Any, Any]
CallerResolver = Callable[[Context], Awaitable[tuple[Tenant, str | None]]]
"""Returns the caller's tenant and, when sent, its own upstream token."""


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


async def _resolve(
    tools: ToolService, tenant: Tenant, name: str, separator: Separator
) -> tuple[str, str]:
    """``(instance, operation)`` for a name tools/list showed, or a canonical one."""
    if separator != CANONICAL_SEPARATOR:
        instance, dot, operation = name.partition(CANONICAL_SEPARATOR)
        if dot:
            # Instance names have no dot, so the canonical form needs no catalog;
            # execute says which part is unknown, if one is.
            return instance, operation
    entry = ToolNames(await tools.catalog(tenant), separator=separator).find(name)
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
) -> Server[Any]:
    """``separator`` joins instance and operation in the names tools/list shows;
    ``tenant_operations`` are listed beside every tenant's tool operations."""
    tenant_wide = {operation.name: operation for operation in tenant_operations}
    tenant_wide_tools = [_tenant_tool(operation) for operation in tenant_operations]

    async def list_tools(
        ctx: Context, params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        tenant, _ = await resolve_caller(ctx)
        catalog = await tools.catalog(tenant)
        names = ToolNames(catalog, separator=separator)
        return types.ListToolsResult(
            tools=[*tenant_wide_tools, *(_tool(entry, names) for entry in catalog)]
        )

    async def call_tool(ctx: Context, params: types.CallToolRequestParams) -> types.CallToolResult:
        tenant, upstream_token = await resolve_caller(ctx)
        arguments = dict(params.arguments or {})
        key = arguments.pop(_IDEMPOTENCY_KEY, None)
        try:
            if (tenant_operation := tenant_wide.get(params.name)) is not None:
                if key is not None:
                    arguments[_IDEMPOTENCY_KEY] = key
                result = await tenant_operation.execute(tenant, arguments)
                return types.CallToolResult(
                    content=[types.TextContent(text=json.dumps(result))],
                    structured_content=result,
                )
            instance, operation = await _resolve(tools, tenant, params.name, separator)
            if key is not None and not isinstance(key, str):
                raise InvalidInput("idempotency_key must be a string", field=_IDEMPOTENCY_KEY)
            result = await tools.execute(
                tenant,
                instance,
                operation,
                arguments,
                upstream_token=upstream_token,
                idempotency_key=key,
            )
        except DevMeshError as exc:
            return error_result(exc)
        except Exception:
            return internal_error_result(params.name)
        return types.CallToolResult(
            content=[types.TextContent(text=json.dumps(result))],
            structured_content=result,
        )

    return Server(
        "developer-mesh",
        version="0.1.0",
        title="Developer Mesh",
        instructions=instructions(separator, tools.providers()),
        # Lists change only when a tenant registers or removes a tool; a short
        # private TTL lets clients skip re-listing on every turn.
        cache_hints={"tools/list": CacheHint(ttl_ms=30_000, scope="private")},
        on_list_tools=list_tools,
        on_call_tool=call_tool,
        # Mcp-Param-* header checks look only at properties marked x-mcp-header, and
        # no operation's schema has one (a test pins that). Saying so spares every
        # 2026-07-28 tools/call a run of the tools/list handler: a query, thrown away.
        get_tool_input_schema=lambda name: None,
    )
