"""Inputs and outputs of the ToolService, shared by the REST and MCP faces."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, HttpUrl

from devmesh.adapters.resilience import ResiliencePolicy
from devmesh.domain.limits import MAX_CONFIG_BYTES, MAX_PROVIDER_NAME, json_problem

__all__ = ["CatalogEntry", "OperationInfo", "ToolCreate", "ToolUpdate"]

# Tool names become MCP tool-name prefixes ({instance}.{operation}); MCP allows
# [A-Za-z0-9._-], and the dot is ours as the separator.
TOOL_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
CredentialMode = Literal["stored", "passthrough", "either"]


def _bounded_config(config: dict[str, Any]) -> dict[str, Any]:
    # Stored and returned by every listing: bounded as a whole, not field by field,
    # since each provider's config model decides its own fields.
    if problem := json_problem(config, max_bytes=MAX_CONFIG_BYTES):
        raise ValueError(f"config {problem}")
    return config


ToolConfig = Annotated[dict[str, Any], AfterValidator(_bounded_config)]
_CONFIG_HELP = (
    f"Provider settings, validated by the provider; at most {MAX_CONFIG_BYTES} bytes as JSON."
)


class ToolCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        pattern=TOOL_NAME_PATTERN,
        description="Unique within the tenant; MCP tools are named '<name>.<operation>'.",
    )
    provider: str = Field(
        min_length=1,
        max_length=MAX_PROVIDER_NAME,
        description="A registered provider, e.g. 'buildbot'.",
    )
    base_url: HttpUrl = Field(description="The tool's base URL, e.g. http://ci.internal:8010.")
    config: ToolConfig = Field(default_factory=dict, description=_CONFIG_HELP)
    credential_mode: CredentialMode = Field(
        default="either",
        description="stored: use the stored credentials; passthrough: the caller sends "
        "X-Upstream-Token on each request; either: the caller's token when sent, else stored.",
    )
    resilience: ResiliencePolicy = Field(
        default_factory=ResiliencePolicy,
        description="Deadline, retries, circuit breaker, rate limit and concurrency for calls "
        "to this tool; omitted fields keep their defaults.",
    )


class ToolUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    base_url: HttpUrl | None = None
    config: ToolConfig | None = Field(default=None, description=_CONFIG_HELP)
    credential_mode: CredentialMode | None = None
    resilience: ResiliencePolicy | None = Field(
        default=None, description="Replaces the whole policy; omitted fields get defaults."
    )


class OperationInfo(BaseModel):
    name: str
    summary: str
    input_schema: dict[str, Any]
    output_schema: dict[str, Any]
    read_only: bool
    destructive: bool
    idempotent: bool


class CatalogEntry(BaseModel):
    """One callable (instance, operation) pair, as MCP lists it."""

    tool: str
    provider: str
    operation: OperationInfo

    @property
    def qualified_name(self) -> str:
        return f"{self.tool}.{self.operation.name}"
