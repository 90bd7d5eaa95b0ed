"""Webhooks in: a tool's deliveries, and the tenant's settings for them. A thin face
over ``WebhookService``; the gate lets ``POST /api/v1/webhooks/{tool}`` in without an
API key (the tool's own proof stands in for it) but still caps its body and counts
its failures per client address."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from devmesh.api.deps import CurrentTenant, Webhooks
from devmesh.api.openapi import problems
from devmesh.tools.webhooks import WebhookSettings

router = APIRouter(tags=["webhooks"])

_MAX_GRACE = 7 * 24 * 3600


class WebhookUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    scheme: Literal["provider", "standard"] = Field(
        default="provider",
        description="'provider': the tool's own scheme (Buildbot basic auth, GitLab's "
        "secret token); 'standard': Standard Webhooks signatures, for any tool.",
    )
    secret: SecretStr | None = Field(
        default=None,
        max_length=512,
        description="Leave out to have one generated and returned once. Standard Webhooks "
        "secrets are 'whsec_' and base64.",
    )
    allowed_events: list[Annotated[str, Field(max_length=64)]] | None = Field(
        default=None,
        max_length=32,
        description="Event types deliveries may raise (e.g. build.failed); all when left out.",
    )
    grace_seconds: int = Field(
        default=0,
        ge=0,
        le=_MAX_GRACE,
        description="When rotating: how long the secret being replaced still verifies.",
    )


class WebhookRead(BaseModel):
    tool_id: str
    scheme: Literal["provider", "standard"]
    url_path: str = Field(description="Where the tool sends its deliveries.")
    allowed_events: list[str] | None
    previous_secret_valid_until: datetime | None
    secret: str | None = Field(
        default=None, description="Only in the answer that generated it: store it now."
    )

    @classmethod
    def of(cls, settings: WebhookSettings) -> WebhookRead:
        return cls(
            tool_id=settings.tool_id,
            scheme=settings.scheme,
            url_path=f"/api/v1/webhooks/{settings.tool_id}",
            allowed_events=settings.allowed_events,
            previous_secret_valid_until=settings.previous_secret_valid_until,
            secret=settings.secret,
        )


class DeliveryRead(BaseModel):
    delivery_id: str
    duplicate: bool = Field(description="True for a redelivery: nothing was changed.")
    events: list[str] = Field(description="The types of the events this delivery raised.")


@router.put(
    "/api/v1/tools/{tool}/webhook",
    response_model=WebhookRead,
    summary="Set or rotate a tool's inbound webhook",
)
async def set_webhook(
    tool: str, body: WebhookUpdate, tenant: CurrentTenant, webhooks: Webhooks
) -> WebhookRead:
    settings = await webhooks.configure(
        tenant,
        tool,
        scheme=body.scheme,
        secret=body.secret.get_secret_value() if body.secret is not None else None,
        allowed_events=body.allowed_events,
        grace_seconds=body.grace_seconds,
    )
    return WebhookRead.of(settings)


@router.get(
    "/api/v1/tools/{tool}/webhook",
    response_model=WebhookRead,
    summary="Show a tool's inbound webhook (never its secret)",
)
async def get_webhook(tool: str, tenant: CurrentTenant, webhooks: Webhooks) -> WebhookRead:
    return WebhookRead.of(await webhooks.settings(tenant, tool))


@router.delete(
    "/api/v1/tools/{tool}/webhook",
    status_code=204,
    summary="Remove a tool's inbound webhook: its deliveries are refused from now on",
)
async def delete_webhook(tool: str, tenant: CurrentTenant, webhooks: Webhooks) -> Response:
    await webhooks.remove(tenant, tool)
    return Response(status_code=204)


@router.post(
    "/api/v1/webhooks/{tool}",
    response_model=DeliveryRead,
    summary="Receive a delivery from a tool (no API key: the tool's signature or secret)",
    responses=problems(413),
)
async def receive_webhook(
    tool: str,
    request: Request,
    webhooks: Webhooks,
    token: Annotated[
        str | None,
        Query(
            max_length=512,
            description="The tool's webhook secret, for tools that can only put it in the "
            "URL (Jenkins' Notification plugin); never stored or logged.",
        ),
    ] = None,
) -> DeliveryRead:
    # The gate has read the body already, under its size cap and deadline.
    delivery = await webhooks.receive(
        tool, headers=dict(request.headers), body=await request.body(), url_token=token
    )
    return DeliveryRead(
        delivery_id=delivery.delivery_id, duplicate=delivery.duplicate, events=delivery.events
    )
