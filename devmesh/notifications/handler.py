"""The bus handler of notifications out: one notification row per matching subscription.

It only writes rows, through the delivery's own session, so an event redelivered by
the bus yields each notification once. Sending happens in the ``Notifier``, one
notification at a time, so a slow or dead subscriber holds up no other.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime

from sqlalchemy import select

from devmesh.config import RetryPolicySettings
from devmesh.domain.events import Event
from devmesh.events.handlers import HandlerContext
from devmesh.notifications.matching import wants
from devmesh.store.rows import NotificationRow, SubscriptionRow, utcnow

__all__ = ["NotifySubscribers", "message_body", "notify_subscribers", "webhook_id"]

# uuid5 namespace of webhook ids: the same (event, subscription) always gets the same id.
_NAMESPACE = uuid.UUID("6f1d4a52-5c2e-4b8e-9b7e-0c7f4e0d9a11")


def webhook_id(event_id: str, subscription_id: str) -> str:
    return "msg_" + uuid.uuid5(_NAMESPACE, f"{event_id}:{subscription_id}").hex


def message_body(event: Event) -> str:
    """The Standard Webhooks payload: ``type``, ``timestamp`` and the event as ``data``
    (without the tenant id, as over REST)."""
    data = event.model_dump(mode="json", exclude={"tenant_id"})
    return json.dumps(
        {"type": event.type, "timestamp": _iso(event.occurred_at), "data": data},
        separators=(",", ":"),
    )


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


class NotifySubscribers:
    name = "notifications"
    types: frozenset[str] = frozenset()  # every type: subscriptions choose
    retry_policy: RetryPolicySettings | None = None

    async def handle(self, context: HandlerContext) -> None:
        event = context.event
        session = context.session
        # The event's own tenant only: no subscriber ever sees another tenant's events.
        subscriptions = await session.scalars(
            select(SubscriptionRow).where(
                SubscriptionRow.tenant_id == event.tenant_id, SubscriptionRow.status == "active"
            )
        )
        now = utcnow()
        body: str | None = None
        for subscription in subscriptions:
            if not wants(subscription.event_types, event.type):
                continue
            body = body or message_body(event)
            session.add(
                NotificationRow(
                    id=webhook_id(event.id, subscription.id),
                    subscription_id=subscription.id,
                    event_id=event.id,
                    event_type=event.type,
                    body=body,
                    status="pending",
                    attempts=0,
                    available_at=now,
                    created_at=now,
                    updated_at=now,
                )
            )


notify_subscribers = NotifySubscribers()
