"""Inputs and outputs of the ToolService, shared by the REST and MCP faces."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    StringConstraints,
    field_validator,
)

from devmesh.adapters.resilience import ResiliencePolicy
from devmesh.domain.limits import MAX_CONFIG_BYTES, MAX_PROVIDER_NAME, json_problem
from devmesh.domain.models import Credentials
from devmesh.tools.naming import looks_like_id

__all__ = ["CatalogEntry", "OperationInfo", "ProviderInfo", "ToolCreate", "ToolUpdate"]

# Tool names are the first part of operation names ({instance}.{operation}, and on
# MCP {instance}_{operation} by default; see devmesh/tools/naming.py). No dot, which
# is the canonical separator; a letter first, as Gemini wants of function names.
TOOL_NAME_PATTERN = r"^[A-Za-z][A-Za-z0-9_-]{0,63}$"
CredentialMode = Literal["stored", "passthrough", "either"]


def _plain_base_url(url: HttpUrl) -> HttpUrl:
    # A userinfo would be stored and listed in clear, and a query or fragment would
    # end up inside every request URL made from it.
    if url.username is not None or url.password is not None:
        raise ValueError(
            "must not contain a username or password; store them as the tool's credentials"
        )
    if url.query is not None:
        raise ValueError("must not contain a query (?...)")
    if url.fragment is not None:
        raise ValueError("must not contain a fragment (#...)")
    return url


BaseUrl = Annotated[HttpUrl, AfterValidator(_plain_base_url)]


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


class AutoRetryPolicy(BaseModel):
    """When the worker retries a failed build on its own: off unless turned on."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(default=False, description="Retry failures the analysis finds flaky.")
    min_confidence: float = Field(
        default=0.8,
        ge=0.0,
        le=1.0,
        description="Retry only when the analysis says retriable with at least this confidence.",
    )
    max_per_build: int = Field(
        default=1,
        ge=1,
        le=5,
        description="Retries in one chain: a retry that fails again is retried only while "
        "the chain is shorter than this.",
    )
    max_per_project_per_hour: int = Field(
        default=3, ge=1, le=100, description="Automatic retries of one project in any hour."
    )


_TOOLSETS_HELP = (
    "The toolsets (builds, logs, pipelines, artifacts, an OpenAPI tag; 'all') an MCP "
    "connection that names none lists of this instance; unset: the service's default."
)
ToolsetList = Annotated[
    list[Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]],
    Field(max_length=32),
]


class ToolCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        pattern=TOOL_NAME_PATTERN,
        description="Unique within the tenant: a letter, then letters, digits, '_' or '-'; "
        "not shaped like a tool id (a UUID). Operations are named '<name>.<operation>' "
        "(on MCP '<name>_<operation>' by default).",
    )
    provider: str = Field(
        min_length=1,
        max_length=MAX_PROVIDER_NAME,
        description="A registered provider, e.g. 'buildbot'.",
    )
    base_url: BaseUrl | None = Field(
        default=None,
        description="The tool's base URL, e.g. http://ci.internal:8010: no credentials, "
        "query or fragment in it. Optional for providers with a default (gitlab.com).",
    )
    verify_tls: bool = Field(
        default=True,
        description="Check the tool's TLS certificate. Turn off only for a server with a "
        "self-signed certificate on a network you trust.",
    )
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
    auto_retry: AutoRetryPolicy = Field(
        default_factory=AutoRetryPolicy,
        description="Whether the worker retries this tool's flaky failures by itself.",
    )
    toolsets: ToolsetList | None = Field(default=None, description=_TOOLSETS_HELP)
    spec: dict[str, Any] | None = Field(
        default=None,
        description="For providers whose operations come from a description (openapi): "
        "the description itself (OpenAPI 3.0/3.1 or Swagger 2.0, as JSON), instead of a "
        "spec_url in config. Read once, at registration.",
    )

    @field_validator("name")
    @classmethod
    def _not_id_shaped(cls, name: str) -> str:
        # REST routes take a name or an id, and an id-shaped reference is looked up
        # as an id only: a tool with this name could not be reached by it.
        if looks_like_id(name):
            raise ValueError("must not look like a tool id (a UUID)")
        return name


class ToolUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    base_url: BaseUrl | None = Field(
        default=None,
        description="Stored credentials are bound to the URL's origin (scheme, host, port): "
        "a new origin drops them unless this request sets `credentials` too.",
    )
    credentials: Credentials | None = Field(
        default=None, description="New credentials to store, encrypted, for the new base_url."
    )
    config: ToolConfig | None = Field(default=None, description=_CONFIG_HELP)
    verify_tls: bool | None = None
    credential_mode: CredentialMode | None = None
    resilience: ResiliencePolicy | None = Field(
        default=None, description="Replaces the whole policy; omitted fields get defaults."
    )
    auto_retry: AutoRetryPolicy | None = Field(
        default=None, description="Replaces the whole policy; omitted fields get defaults."
    )
    toolsets: ToolsetList | None = Field(
        default=None, description=_TOOLSETS_HELP + " Send null to return to the default."
    )
    spec: dict[str, Any] | None = Field(
        default=None,
        description="For providers whose operations come from a description (openapi): a "
        "new description, replacing the stored one.",
    )


class OperationInfo(BaseModel):
    name: str
    summary: str
    input_schema: dict[str, Any]
    output_schema: dict[str, Any]
    read_only: bool
    destructive: bool
    idempotent: bool
    toolset: str | None = None


class ProviderInfo(BaseModel):
    """What agents are told about a provider: MCP's instructions and tool descriptions."""

    name: str
    title: str
    description: str
    operations: list[str]


class CatalogEntry(BaseModel):
    """One callable (instance, operation) pair, as MCP lists it."""

    tool: str
    provider: str
    operation: OperationInfo
    provider_title: str = ""
    provider_description: str = ""
    # What a connection naming no toolsets lists of this instance; None: the default.
    default_toolsets: list[str] | None = None

    @property
    def qualified_name(self) -> str:
        """The canonical name, ``{tool}.{operation}``; MCP may expose another
        (``devmesh.tools.naming``)."""
        return f"{self.tool}.{self.operation.name}"
