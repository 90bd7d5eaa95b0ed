"""Subscriptions to this tenant's events, and what was sent to them: a thin face over
``SubscriptionService``."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Response
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, HttpUrl

from devmesh.api.deps import CurrentTenant, Subscriptions
from devmesh.api.openapi import problems
from devmesh.notifications.matching import EVENT_TYPE_PATTERN
from devmesh.notifications.subscriptions import MAX_PAGE, Notification, Subscription

router = APIRouter(prefix="/api/v1/subscriptions", tags=["subscriptions"])


def _no_userinfo(url: HttpUrl) -> HttpUrl:
    # The URL is listed in clear: a password in it would be shown to anyone with a key.
    if url.username is not None or url.password is not None:
        raise ValueError("must not contain a username or password")
    return url


_Id = Annotated[str, Path(max_length=64)]
EventTypePattern = Annotated[str, Field(pattern=EVENT_TYPE_PATTERN)]


class SubscriptionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: Annotated[HttpUrl, AfterValidator(_no_userinfo)] = Field(
        description="Where to POST the events (http or https). Refused, with the reason, "
        "when the egress policy does not allow it (loopback and private addresses need "
        "the operator's consent)."
    )
    event_types: list[EventTypePattern] = Field(
        min_length=1,
        max_length=32,
        description="Event types to receive; `*` matches any part: `build.*`, `*`.",
    )
    description: str | None = Field(default=None, max_length=256)


class SubscriptionRead(Subscription):
    pass


class SubscriptionCreated(Subscription):
    secret: str = Field(
        description="The Standard Webhooks signing secret (`whsec_…`). Shown only now: "
        "keep it to verify the `webhook-signature` header."
    )


class SubscriptionUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Literal["active", "disabled"] = Field(
        description="`active` re-enables a subscription (its failure count starts again); "
        "`disabled` pauses it."
    )


@router.post(
    "",
    status_code=201,
    response_model=SubscriptionCreated,
    summary="Subscribe a URL to event types",
)
async def create_subscription(
    body: SubscriptionCreate, tenant: CurrentTenant, subscriptions: Subscriptions
) -> SubscriptionCreated:
    created, secret = await subscriptions.create(
        tenant.id, url=str(body.url), event_types=body.event_types, description=body.description
    )
    return SubscriptionCreated(**created.model_dump(), secret=secret)


@router.get("", response_model=list[SubscriptionRead], summary="This tenant's subscriptions")
async def list_subscriptions(
    tenant: CurrentTenant, subscriptions: Subscriptions
) -> list[SubscriptionRead]:
    return [SubscriptionRead(**s.model_dump()) for s in await subscriptions.list_for(tenant.id)]


@router.get("/{subscription}", response_model=SubscriptionRead, summary="One subscription")
async def get_subscription(
    subscription: _Id, tenant: CurrentTenant, subscriptions: Subscriptions
) -> SubscriptionRead:
    return SubscriptionRead(**(await subscriptions.get(tenant.id, subscription)).model_dump())


@router.patch(
    "/{subscription}",
    response_model=SubscriptionRead,
    summary="Re-enable or pause a subscription",
)
async def update_subscription(
    subscription: _Id, body: SubscriptionUpdate, tenant: CurrentTenant, subscriptions: Subscriptions
) -> SubscriptionRead:
    updated = await subscriptions.set_status(tenant.id, subscription, status=body.status)
    return SubscriptionRead(**updated.model_dump())


@router.delete(
    "/{subscription}",
    status_code=204,
    summary="Remove a subscription and its delivery history",
    responses=problems(),
)
async def delete_subscription(
    subscription: _Id, tenant: CurrentTenant, subscriptions: Subscriptions
) -> Response:
    await subscriptions.delete(tenant.id, subscription)
    return Response(status_code=204)


@router.get(
    "/{subscription}/deliveries",
    response_model=list[Notification],
    summary="What was sent to a subscription, newest first, with every attempt",
)
async def list_deliveries(
    subscription: _Id,
    tenant: CurrentTenant,
    subscriptions: Subscriptions,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = MAX_PAGE,
) -> list[Notification]:
    return await subscriptions.notifications(tenant.id, subscription, limit=limit)
