"""The MCP server tells the SDK there are no Mcp-Param headers to check; keep that true."""

from __future__ import annotations

import json

from devmesh.adapters.registry import ProviderRegistry
from devmesh.tools.service import describe


def test_no_operation_schema_asks_for_mcp_param_headers() -> None:
    # If one ever does, build_server's get_tool_input_schema must return real schemas.
    registry = ProviderRegistry.from_entry_points()
    for name in registry.names():
        provider = registry.get(name)
        assert provider is not None
        for operation in provider.operations:
            assert "x-mcp-header" not in json.dumps(describe(operation).input_schema)
