"""What an agent does over MCP with a target's facts: trigger one of its builds, follow it."""

from __future__ import annotations

from typing import Any

from mcp import Client

from tests.contract.target import ProviderTarget
from tests.support.live import structured
from tests.support.polling import mcp_status

__all__ = ["finished", "trigger_arguments"]


def trigger_arguments(target: ProviderTarget, which: str) -> dict[str, Any]:
    """``ci_trigger_build`` arguments for one of the target's build requests."""
    arguments: dict[str, Any] = getattr(target, which).model_dump(
        exclude_none=True, exclude_defaults=True
    )
    return arguments


async def finished(client: Client, target: ProviderTarget, which: str) -> dict[str, Any]:
    """A build of ``which`` triggered over MCP, once it has finished."""
    build = structured(await client.call_tool("ci_trigger_build", trigger_arguments(target, which)))
    return await mcp_status(client, "ci", build["id"])
