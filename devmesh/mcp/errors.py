"""Errors mapped once for MCP: domain errors become ``isError`` results the agent reads.

An unknown tool is an ``isError`` result too, not the -32602 protocol error the
spec suggests: agents read tool results and correct themselves, while protocol
errors surface to them as opaque failures. Anything outside the domain tree is
logged with its traceback and shown as ``internal``: the SDK's own catch-all
would show the model ``str(exc)``, which can leak.
"""

from __future__ import annotations

import json
from typing import Any

import mcp_types as types
import structlog

from devmesh.domain.errors import DevMeshError
from devmesh.mcp.answers import ToolAnswer, encode

__all__ = ["error_answer", "error_payload", "internal_error_answer"]

_log = structlog.get_logger(__name__)


def _answer(payload: dict[str, Any]) -> ToolAnswer:
    # The machine-readable part rides in the text, not structuredContent: clients
    # such as the TypeScript SDK validate structuredContent against the tool's
    # outputSchema even on errors, and an error is not shaped like a result.
    return ToolAnswer(text=f"{payload['message']}\n{encode(payload).decode()}", is_error=True)


def error_payload(result: types.CallToolResult) -> dict[str, Any]:
    """The ``{error, message, retriable, details}`` object of an error result."""
    block = result.content[0]
    assert isinstance(block, types.TextContent)
    payload: dict[str, Any] = json.loads(block.text.rsplit("\n", 1)[1])
    return payload


def error_answer(exc: DevMeshError) -> ToolAnswer:
    return _answer(
        {
            "error": exc.code,
            "message": exc.message,
            "retriable": exc.retriable,
            "details": exc.details,
        }
    )


def internal_error_answer(tool: str) -> ToolAnswer:
    _log.exception("mcp_tool_internal_error", tool=tool)
    return _answer(
        {
            "error": "internal",
            "message": f"{tool} failed inside Developer Mesh; the server log has the details",
            "retriable": False,
            "details": {},
        }
    )
