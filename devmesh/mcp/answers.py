"""What a ``tools/call`` answers, before either MCP path puts it on the wire.

Both paths (the SDK's handler and ``devmesh.mcp.direct``) run a call through the
same function and get a ``ToolAnswer``: the text block, the structured content
(already encoded, so the direct path writes it without encoding it again) and
whether it is an error. ``encode`` is the one JSON encoder of the text, so the
two paths put the same characters in it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import mcp_types as types
import orjson

__all__ = ["ToolAnswer", "encode"]


def encode(value: Any) -> bytes:
    """Compact JSON, UTF-8. orjson refuses what ``json`` still writes (integer keys,
    lone surrogates, integers past 64 bits): those take the slow way rather than fail."""
    try:
        return orjson.dumps(value)
    except TypeError:
        return json.dumps(value, separators=(",", ":")).encode()


@dataclass(frozen=True, slots=True)
class ToolAnswer:
    text: str
    structured: dict[str, Any] | None = None
    """``structuredContent``; ``None`` on an error (see ``devmesh.mcp.errors``)."""
    encoded: bytes | None = None
    """``structured``, encoded (it is the text too)."""
    is_error: bool = False

    @classmethod
    def of(cls, result: dict[str, Any]) -> ToolAnswer:
        encoded = encode(result)
        return cls(text=encoded.decode(), structured=result, encoded=encoded)

    def result(self) -> types.CallToolResult:
        """The SDK's model of this answer, for its handler."""
        return types.CallToolResult(
            content=[types.TextContent(text=self.text)],
            structured_content=self.structured,
            is_error=self.is_error,
        )
