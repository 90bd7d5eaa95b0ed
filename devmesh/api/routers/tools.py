"""Tool instances, their credentials and operations: a thin face over ToolService."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Header, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from devmesh.adapters.resilience import ResiliencePolicy
from devmesh.api.deps import CurrentTenant, Tools, current_tenant
from devmesh.api.openapi import problems
from devmesh.api.responses import JsonBody
from devmesh.domain.limits import MAX_IDEMPOTENCY_KEY, MAX_UPSTREAM_TOKEN
from devmesh.domain.models import Credentials, ToolInstance
from devmesh.tools.models import AutoRetryPolicy, OperationInfo, ToolCreate, ToolUpdate

router = APIRouter(prefix="/api/v1/tools", tags=["tools"])

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=MAX_IDEMPOTENCY_KEY,
        description="Run a mutating operation at most once: the same key within 24 h returns "
        "the first result. Ignored for read-only operations.",
    ),
]
UpstreamToken = Annotated[
    str | None,
    Header(
        alias="X-Upstream-Token",
        max_length=MAX_UPSTREAM_TOKEN,
        description="Your own token for the upstream tool, used instead of stored credentials.",
    ),
]


class ToolRead(BaseModel):
    id: str
    name: str
    provider: str
    base_url: str
    config: dict[str, Any]
    credential_mode: Literal["stored", "passthrough", "either"]
    resilience: ResiliencePolicy
    auto_retry: AutoRetryPolicy
    has_credentials: bool
    toolsets: list[str] | None = Field(
        default=None,
        description="The toolsets an MCP connection that names none lists of this tool; "
        "unset: the service's default.",
    )
    managed_by: Literal["config"] | None = Field(
        default=None,
        description="'config': declared in the service's configuration file; `devmesh apply` "
        "keeps it as the file says and undoes other changes. Unset: made through the API.",
    )
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, tool: ToolInstance) -> ToolRead:
        return cls.model_validate(tool.model_dump(exclude={"tenant_id"}))


class ToolPatched(ToolRead):
    credentials_cleared: bool = Field(
        description="True when base_url moved to another origin and the stored credentials "
        "were dropped: store new ones (PUT .../credentials, or `credentials` in the PATCH)."
    )


class CredentialsUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    credentials: Credentials


@router.post(
    "",
    status_code=201,
    response_model=ToolRead,
    summary="Register a tool instance",
    responses=problems(409),
)
async def register_tool(body: ToolCreate, tenant: CurrentTenant, tools: Tools) -> ToolRead:
    return ToolRead.of(await tools.register_tool(tenant, body))


@router.get("", response_model=list[ToolRead], summary="List this tenant's tools")
async def list_tools(tenant: CurrentTenant, tools: Tools) -> list[ToolRead]:
    return [ToolRead.of(tool) for tool in await tools.list_tools(tenant)]


@router.get("/{tool}", response_model=ToolRead, summary="One tool, by id or name")
async def get_tool(tool: str, tenant: CurrentTenant, tools: Tools) -> ToolRead:
    return ToolRead.of(await tools.get_tool(tenant, tool))


@router.patch("/{tool}", response_model=ToolPatched, summary="Change a tool's settings")
async def update_tool(
    tool: str, body: ToolUpdate, tenant: CurrentTenant, tools: Tools
) -> ToolPatched:
    updated = await tools.update_tool(tenant, tool, body)
    return ToolPatched(
        **ToolRead.of(updated.tool).model_dump(), credentials_cleared=updated.credentials_cleared
    )


@router.delete("/{tool}", status_code=204, summary="Remove a tool and its credentials")
async def delete_tool(tool: str, tenant: CurrentTenant, tools: Tools) -> Response:
    await tools.delete_tool(tenant, tool)
    return Response(status_code=204)


@router.put("/{tool}/credentials", status_code=204, summary="Store credentials, encrypted")
async def set_credentials(
    tool: str, body: CredentialsUpdate, tenant: CurrentTenant, tools: Tools
) -> Response:
    await tools.set_credentials(tenant, tool, body.credentials)
    return Response(status_code=204)


@router.delete("/{tool}/credentials", status_code=204, summary="Forget stored credentials")
async def delete_credentials(tool: str, tenant: CurrentTenant, tools: Tools) -> Response:
    await tools.delete_credentials(tenant, tool)
    return Response(status_code=204)


@router.get(
    "/{tool}/operations",
    response_model=list[OperationInfo],
    summary="What the tool can do, with input and output schemas",
)
async def list_operations(tool: str, tenant: CurrentTenant, tools: Tools) -> list[OperationInfo]:
    return await tools.operations(tenant, tool)


@router.post(
    "/{tool}/operations/{operation}",
    summary="Run one operation",
    response_model=dict[str, Any],
    # 409: the idempotency key is in use by a call still running, or with other arguments.
    responses=problems(409, 502, 503, 504),
)
async def execute(
    request: Request,
    tool: str,
    operation: str,
    upstream_token: UpstreamToken = None,
    idempotency_key: IdempotencyKey = None,
    arguments: Annotated[dict[str, Any] | None, Body()] = None,
) -> Response:
    # The hottest route takes the tenant and the service straight from the request, as
    # the `CurrentTenant` and `Tools` dependencies would (each dependency FastAPI solves
    # is CPU on every call), and answers with its body already encoded: the result is
    # JSON-safe already (`model_dump(mode="json")`), so FastAPI's validation and
    # `jsonable_encoder` walk of it would only repeat what was done.
    services = request.app.state.services
    result = await services.tools.execute(
        current_tenant(request),
        tool,
        operation,
        arguments or {},
        upstream_token=upstream_token,
        idempotency_key=idempotency_key,
        # The gate let a read-only key through; the operation's hint decides.
        read_only=getattr(request.state, "read_only", False),
    )
    return JsonBody(result)
