"""MCP over stdio (``devmesh mcp``), for IDEs that launch their servers.

The tenant is fixed for the life of the process: the one the API key names.
"""

from __future__ import annotations

from collections.abc import Sequence

from mcp.server.stdio import stdio_server

from devmesh.domain.models import Tenant
from devmesh.mcp.server import Context, build_server
from devmesh.tools.naming import Separator
from devmesh.tools.service import ToolService
from devmesh.tools.tenant_wide import TenantOperation
from devmesh.tools.toolsets import View

__all__ = ["serve_stdio"]


async def serve_stdio(
    tools: ToolService,
    tenant: Tenant,
    *,
    upstream_token: str | None = None,
    separator: Separator = "_",
    tenant_operations: Sequence[TenantOperation] = (),
    view: View | None = None,
    default_toolsets: frozenset[str] = frozenset({"all"}),
) -> None:
    """``view`` is fixed for the process too: an IDE cannot ask per connection."""

    async def caller(_ctx: Context) -> tuple[Tenant, str | None]:
        return tenant, upstream_token

    async def fixed_view(_ctx: Context) -> View:
        return view or View()

    server = build_server(
        tools,
        caller,
        separator=separator,
        tenant_operations=tenant_operations,
        resolve_view=fixed_view,
        default_toolsets=default_toolsets,
    )
    async with stdio_server() as (read_stream, write_stream):
        await server.run(read_stream, write_stream, server.create_initialization_options())
