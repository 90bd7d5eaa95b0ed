"""devops-mcp: the async Python client of Developer Mesh.

``MCPClient`` runs a tenant's DevOps tools (``execute_tool("gitlab.trigger_build",
{...})``) and searches its build knowledge over the service's REST API; failures
are ``ToolError`` (the service said no), ``ServiceUnreachable`` or ``CallTimeout``,
all ``ClientError``. It depends on httpx only.
"""

from devops_mcp._client import DEFAULT_BASE_URL, MCPClient
from devops_mcp._errors import CallTimeout, ClientError, ServiceUnreachable, ToolError

__all__ = [
    "DEFAULT_BASE_URL",
    "CallTimeout",
    "ClientError",
    "MCPClient",
    "ServiceUnreachable",
    "ToolError",
]
