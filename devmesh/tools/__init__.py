"""The ToolService: the one business API behind REST and MCP."""
