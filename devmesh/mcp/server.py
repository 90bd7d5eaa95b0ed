"""The MCP server: each tenant's tool operations as MCP tools named ``{tool}.{operation}``.

The low-level SDK server fits here because the tool list differs per caller.
Who the caller is comes from ``resolve_tenant``: the HTTP face reads the tenant
its authentication put on the request, stdio uses the one its API key names.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import mcp_types as types
from mcp.server.caching import CacheHint
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server

from devmesh.domain.errors import DevMeshError, InvalidInput
from devmesh.domain.models import Tenant
from devmesh.mcp.errors import error_result, internal_error_result
from devmesh.tools.models import CatalogEntry
from devmesh.tools.service import ToolService

__all__ = ["CallerResolver", "build_server"]

Context = ServerRequestContext[Any, Any]
CallerResolver = Callable[[Context], Awaitable[tuple[Tenant, str | None]]]
"""Returns the caller's tenant and, when sent, its own upstream token."""

INSTRUCTIONS = (
    "Developer Mesh exposes your team's DevOps tools. Each tool is named "
    "'<instance>.<operation>', e.g. 'ci.trigger_build'. Builds are identified by the id "
    "trigger_build or list_builds returns. Logs are bounded: get_build_logs returns the last "
    "lines (or a page from a cursor) and search_build_logs finds lines by regular expression. "
    "Pipelines run several builds together: list_pipelines names them, trigger_pipeline starts "
    "one and get_pipeline follows the run. get_artifacts lists a build's files and "
    "download_artifact reads one a window at a time. Mutating tools take an optional "
    "idempotency_key: repeat a call with the same key and it runs only once."
)


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


def _tool(entry: CatalogEntry) -> types.Tool:
    op = entry.operation
    return types.Tool(
        name=entry.qualified_name,
        title=f"{entry.tool}: {op.name.replace('_', ' ')}",
        description=f"{op.summary} ({entry.provider} tool '{entry.tool}')",
        input_schema=_input_schema(entry),
        output_schema=op.output_schema,
        annotations=types.ToolAnnotations(
            read_only_hint=op.read_only,
            destructive_hint=op.destructive,
            idempotent_hint=op.idempotent,
            open_world_hint=True,
        ),
    )


def build_server(tools: ToolService, resolve_caller: CallerResolver) -> Server[Any]:
    async def list_tools(
        ctx: Context, params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        tenant, _ = await resolve_caller(ctx)
        return types.ListToolsResult(tools=[_tool(e) for e in await tools.catalog(tenant)])

    async def call_tool(ctx: Context, params: types.CallToolRequestParams) -> types.CallToolResult:
        tenant, upstream_token = await resolve_caller(ctx)
        instance, _, operation = params.name.partition(".")
        arguments = dict(params.arguments or {})
        key = arguments.pop(_IDEMPOTENCY_KEY, None)
        try:
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
        instructions=INSTRUCTIONS,
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
