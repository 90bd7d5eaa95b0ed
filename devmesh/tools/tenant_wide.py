"""Operations of the tenant as a whole, beside each tool instance's operations.

An instance's operations are named ``{instance}_{operation}`` and act on one tool;
a tenant-wide operation (``search_contexts``, ``get_context``; later
``analyze_failure``, ``record_resolution``) acts across the tenant's tools and is
named as it is. Each says what it takes and gives as Pydantic models and how it
runs; the MCP server lists and calls them the same way for every one, so adding
one is adding a ``TenantOperation`` to the list the composition root passes it.

Their names must not be shaped like ``{instance}_{operation}`` of a real tool:
a clash goes to the tenant-wide operation (tools/call tries them first), and the
canonical dotted name still reaches the tool.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from devmesh.domain.errors import InvalidInput
from devmesh.domain.models import Tenant
from devmesh.tools.service import validation_message

__all__ = ["TenantOperation"]


@dataclass(frozen=True, slots=True)
class TenantOperation:
    name: str
    title: str
    summary: str
    input_model: type[BaseModel]
    output_model: type[BaseModel]
    run: Callable[[Tenant, Any], Awaitable[BaseModel]]
    read_only: bool = True
    destructive: bool = False
    idempotent: bool = True
    # The toolset a client picks it by (``devmesh.tools.toolsets``).
    toolset: str = "knowledge"

    def input_schema(self) -> dict[str, Any]:
        return self.input_model.model_json_schema()

    def output_schema(self) -> dict[str, Any]:
        return self.output_model.model_json_schema(mode="serialization")

    async def execute(self, tenant: Tenant, arguments: Mapping[str, Any]) -> dict[str, Any]:
        """Validate ``arguments`` (an error names the field), run, answer JSON."""
        try:
            given = self.input_model.model_validate(dict(arguments))
        except ValidationError as exc:
            field, message = validation_message(exc)
            raise InvalidInput(f"invalid arguments: {message}", field=field) from None
        result = await self.run(tenant, given)
        answer: dict[str, Any] = result.model_dump(mode="json")
        return answer
