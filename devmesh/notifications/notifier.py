"""The notifier: sends due notifications, signed, and records how each attempt went.

Runs beside the event worker (``devmesh serve`` in-process, or ``devmesh worker``).
Each cycle claims due notifications of active subscriptions by pushing their
``available_at`` one lease ahead (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so several
workers share the table), then sends each in a task of its own: a subscriber that
hangs uses up its own timeout, not anyone else's.

Every attempt goes through ``HttpClients`` (the egress policy, checked at connect
time, so a URL that now resolves to a refused address fails) and ``Resilience`` (a
breaker per subscription). A 2xx settles the notification; anything else is
retried with exponential backoff up to ``notifications.retry_policy.max_attempts``.
``notifications.disable_after`` failed attempts in a row disable the subscription,
with the reason; its pending notifications wait until it is enabled again.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import httpx
import structlog
from sqlalchemy import select
from standardwebhooks.webhooks import Webhook

from devmesh.adapters.clients import HttpClients
from devmesh.adapters.resilience import Resilience, ResiliencePolicy, ToolCall
from devmesh.config import NotificationSettings
from devmesh.domain.errors import DevMeshError, UpstreamTimeout, UpstreamUnavailable
from devmesh.events.background import pause
from devmesh.events.handlers import backoff_delay
from devmesh.notifications.subscriptions import bound_to
from devmesh.security.vault import Vault
from devmesh.store.db import Database
from devmesh.store.rows import NotificationAttemptRow, NotificationRow, SubscriptionRow, utcnow

__all__ = ["Notifier"]

_log = structlog.get_logger(__name__)
_ERROR_CHARS = 500


class Notifier:
    def __init__(
        self,
        *,
        db: Database,
        clients: HttpClients,
        resilience: Resilience,
        vault: Vault,
        settings: NotificationSettings,
        poll_interval: float,
    ) -> None:
        self._db = db
        self._clients = clients
        self._resilience = resilience
        self._vault = vault
        self._settings = settings
        self._poll_interval = poll_interval
        # Longer than an attempt can take, so a claim lapses only if its worker died.
        self._lease = timedelta(seconds=settings.timeout * 2 + 5)
        self._policy = ResiliencePolicy(
            deadline=settings.timeout, attempt_timeout=settings.timeout, max_retries=0
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Send until ``stop`` is set; a failing database is logged and tried again."""
        while not stop.is_set():
            try:
                sent = await self.run_once()
            except Exception:
                _log.exception("notifier_cycle_failed")
                sent = 0
            if not sent:
                await pause(stop, self._poll_interval)

    async def run_once(self) -> int:
        """Claim due notifications and send them; how many were tried."""
        claimed = await self._claim()
        slots = asyncio.Semaphore(self._settings.concurrency)

        async def send(notification_id: str) -> None:
            async with slots:
                await self._send(notification_id)

        async with asyncio.TaskGroup() as tasks:
            for notification_id in claimed:
                tasks.create_task(send(notification_id))
        return len(claimed)

    async def _claim(self) -> list[str]:
        now = utcnow()
        async with self._db.session() as session:
            rows = list(
                await session.scalars(
                    select(NotificationRow)
                    .join(SubscriptionRow, SubscriptionRow.id == NotificationRow.subscription_id)
                    .where(
                        NotificationRow.status == "pending",
                        NotificationRow.available_at <= now,
                        SubscriptionRow.status == "active",
                    )
                    .order_by(NotificationRow.available_at)
                    .limit(self._settings.concurrency * 4)
                    .with_for_update(skip_locked=True, of=NotificationRow)
                )
            )
            for row in rows:
                row.available_at = now + self._lease
            return [row.id for row in rows]

    async def _send(self, notification_id: str) -> None:
        async with self._db.session() as session:
            notification = await session.get(NotificationRow, notification_id)
            subscription = (
                await session.get(SubscriptionRow, notification.subscription_id)
                if notification is not None
                else None
            )
            if notification is None or subscription is None or notification.status != "pending":
                return
            url, body, subscription_id = subscription.url, notification.body, subscription.id
            sealed = (
                subscription.secret_sealed,
                subscription.secret_key_id,
                subscription.tenant_id,
                subscription.secret_origin,
            )
        started = time.perf_counter()
        status_code: int | None = None
        error: str | None = None
        try:
            blob, key_id, tenant_id, origin = sealed
            # A master key that is gone makes this fail (Unavailable): it is recorded as
            # a failed attempt like any other, so it shows on the deliveries page.
            secret = self._vault.decrypt(
                blob,
                key_id=key_id,
                tenant_id=tenant_id,
                bound_to=bound_to(subscription_id),
                origin=origin,
            ).decode()
            status_code = await self._post(url, notification_id, body, secret, subscription_id)
        except DevMeshError as exc:
            error = exc.message[:_ERROR_CHARS]
            status_code = _status_of(exc)
        except Exception as exc:  # a bug of ours must not stop the other sends
            _log.exception("notification_send_failed", notification_id=notification_id)
            error = f"internal error ({type(exc).__name__})"
        duration_ms = round((time.perf_counter() - started) * 1000)
        await self._record(notification_id, status_code, duration_ms, error)

    async def _post(
        self, url: str, message_id: str, body: str, secret: str, subscription_id: str
    ) -> int:
        timestamp = datetime.now(UTC)
        headers = {
            "content-type": "application/json",
            "user-agent": "devmesh-notifications",
            "webhook-id": message_id,
            "webhook-timestamp": str(int(timestamp.timestamp())),
            "webhook-signature": Webhook(secret).sign(message_id, timestamp, body),
        }
        client = self._clients.client()

        async def attempt() -> int:
            try:
                response = await client.post(url, content=body.encode(), headers=headers)
            except httpx.TimeoutException as exc:
                raise UpstreamTimeout("the subscriber did not answer in time") from exc
            except httpx.TransportError as exc:
                # The message names the connection failure, never a secret.
                raise UpstreamUnavailable(
                    f"the subscriber could not be reached ({type(exc).__name__})"
                ) from exc
            if response.status_code >= 500:
                raise _Refused(response.status_code)
            return response.status_code

        call = ToolCall(
            tool_id=subscription_id,
            tool="the subscriber",
            provider="notifications",
            operation="deliver",
            read_only=False,
        )
        return await self._resilience.run(call, self._policy, attempt)

    async def _record(
        self, notification_id: str, status_code: int | None, duration_ms: int, error: str | None
    ) -> None:
        ok = error is None and status_code is not None and 200 <= status_code < 300
        if error is None and not ok:
            error = f"the subscriber answered HTTP {status_code}"
        now = utcnow()
        async with self._db.session() as session:
            notification = await session.get(NotificationRow, notification_id)
            if notification is None:  # its subscription was deleted meanwhile
                return
            subscription = await session.get(SubscriptionRow, notification.subscription_id)
            assert subscription is not None
            notification.attempts += 1
            notification.updated_at = now
            session.add(
                NotificationAttemptRow(
                    notification_id=notification_id,
                    attempt=notification.attempts,
                    status_code=status_code,
                    duration_ms=duration_ms,
                    error=error,
                    attempted_at=now,
                )
            )
            if ok:
                notification.status = "delivered"
                subscription.consecutive_failures = 0
                return
            policy = self._settings.retry_policy
            if notification.attempts >= policy.max_attempts:
                notification.status = "failed"
            else:
                delay = backoff_delay(policy, notification.attempts)
                notification.available_at = now + timedelta(seconds=delay)
            subscription.consecutive_failures += 1
            if (
                subscription.status == "active"
                and subscription.consecutive_failures >= self._settings.disable_after
            ):
                subscription.status = "disabled"
                subscription.disabled_reason = (
                    f"{subscription.consecutive_failures} attempts in a row failed; "
                    f"the last: {error}"
                )[:_ERROR_CHARS]
                subscription.updated_at = now
                _log.warning(
                    "subscription_disabled",
                    subscription_id=subscription.id,
                    failures=subscription.consecutive_failures,
                )


class _Refused(UpstreamUnavailable):
    """The subscriber answered with a server error (retriable; counts for the breaker)."""

    def __init__(self, status_code: int) -> None:
        super().__init__(f"the subscriber answered HTTP {status_code}")
        self.status_code = status_code


def _status_of(exc: DevMeshError) -> int | None:
    return exc.status_code if isinstance(exc, _Refused) else None
