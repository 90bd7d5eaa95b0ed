"""The MCP face: the official SDK's low-level server over the ToolService.

Only this package imports the MCP SDK, so its churn stays here.
"""
