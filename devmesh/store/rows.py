"""ORM rows. One class per table; names end in ``Row``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy import (
    false as sa_false,
)
from sqlalchemy import (
    true as sa_true,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "ApiKeyRow",
    "AutoRetryRow",
    "Base",
    "BuildWatchRow",
    "ContextRow",
    "EventDeliveryRow",
    "EventRow",
    "HandledEventRow",
    "IdempotencyKeyRow",
    "NotificationAttemptRow",
    "NotificationRow",
    "SubscriptionRow",
    "TenantRow",
    "ToolCallRow",
    "ToolDocumentRow",
    "ToolRow",
    "ToolWebhookRow",
    "UtcDateTime",
    "WebhookDeliveryRow",
]

# Stable constraint names, so migrations read the same on SQLite and PostgreSQL.
_NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC on the way out, whatever the backend keeps."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=_NAMING)


class TenantRow(Base):
    __tablename__ = "tenants"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class ApiKeyRow(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(128))
    # The public part of the key, used to find the row; the secret is only hashed.
    prefix: Mapped[str] = mapped_column(String(32), unique=True)
    salt: Mapped[bytes] = mapped_column()
    secret_hash: Mapped[bytes] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), default=None)
    # A read-only key lists and runs only operations hinted read-only (migration 0014).
    read_only: Mapped[bool] = mapped_column(default=False, server_default=sa_false())


class ToolRow(Base):
    """A tenant's tool instance. Credentials are stored sealed by ``security.vault``."""

    __tablename__ = "tools"
    __table_args__ = (UniqueConstraint("tenant_id", "name"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    provider: Mapped[str] = mapped_column(String(32))
    base_url: Mapped[str] = mapped_column(String(2048))
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    credential_mode: Mapped[str] = mapped_column(String(16), default="either")
    verify_tls: Mapped[bool] = mapped_column(default=True, server_default=sa_true())
    # The toolsets an MCP connection that names none lists of this instance (0014);
    # NULL: the service's default.
    toolsets: Mapped[list[str] | None] = mapped_column(JSON, default=None)
    resilience: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, server_default="{}")
    auto_retry: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, server_default="{}")
    credentials_key_id: Mapped[str | None] = mapped_column(String(32), default=None)
    credentials_sealed: Mapped[bytes | None] = mapped_column(default=None)
    # The origin the credentials were sealed for (part of their associated data);
    # NULL for credentials sealed before origins were bound.
    credentials_origin: Mapped[str | None] = mapped_column(String(2048), default=None)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class IdempotencyKeyRow(Base):
    """A mutating call made under an ``Idempotency-Key``, and its result once known.

    ``response`` is NULL while the first call is still running.
    """

    __tablename__ = "idempotency_keys"

    tenant_id: Mapped[str] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    response: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True), default=None)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)


# --- events ---------------------------------------------------------------------------
# SQLite only numbers rows by itself for an INTEGER PRIMARY KEY.
_Seq = BigInteger().with_variant(Integer(), "sqlite")


class ToolCallRow(Base):
    """A mutating tool call that succeeded, written in one transaction with its event."""

    __tablename__ = "tool_calls"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    # No foreign key: the record of a call outlives the tool it called.
    tool_id: Mapped[str] = mapped_column(String(36))
    tool_name: Mapped[str] = mapped_column(String(64))
    operation: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str | None] = mapped_column(String(255), default=None)
    event_id: Mapped[str] = mapped_column(String(36), unique=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(255), default=None)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class EventRow(Base):
    """An event, and the outbox: ``dispatched_at`` is NULL until the bus has it.

    ``seq`` orders events by commit and is the cursor of ``GET /api/v1/events``.
    ``uq_events_once``: one event of a type about one subject of a tool, whichever
    source (call, webhook, watcher) records it first (events without a subject are
    not limited).
    """

    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_tenant_seq", "tenant_id", "seq"),
        Index("ix_events_undispatched", "dispatched_at", "seq"),
        Index("uq_events_once", "tenant_id", "tool_id", "subject", "type", unique=True),
    )

    seq: Mapped[int] = mapped_column(_Seq, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(36), unique=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    tool_id: Mapped[str] = mapped_column(String(36))
    tool_name: Mapped[str] = mapped_column(String(64))
    provider: Mapped[str] = mapped_column(String(32))
    type: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(16))
    subject: Mapped[str | None] = mapped_column(String(255), default=None)
    occurred_at: Mapped[datetime] = mapped_column(UtcDateTime())
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    dispatched_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), default=None)


class EventDeliveryRow(Base):
    """One event for one handler, on the SQL bus: the queue.

    ``pending`` rows whose ``available_at`` has come are claimed by pushing
    ``available_at`` a lease ahead, so a crashed worker's claim lapses by itself.
    ``failures`` counts handler errors only (a crash is not the handler's fault);
    at the policy's maximum the row turns ``dead``: the dead-letter queue.
    """

    __tablename__ = "event_deliveries"
    __table_args__ = (
        UniqueConstraint("event_id", "handler"),
        Index("ix_event_deliveries_due", "status", "available_at"),
    )

    id: Mapped[int] = mapped_column(_Seq, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"))
    handler: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    failures: Mapped[int] = mapped_column(Integer, default=0)
    claims: Mapped[int] = mapped_column(Integer, default=0)
    available_at: Mapped[datetime] = mapped_column(UtcDateTime())
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class HandledEventRow(Base):
    """Handler ``handler`` has handled event ``event_id``: written in the transaction
    of the handler's own effects, so a redelivered event changes nothing."""

    __tablename__ = "handled_events"

    handler: Mapped[str] = mapped_column(String(64), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    handled_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class BuildWatchRow(Base):
    """A build the watcher follows until it is final (``devmesh.tools.watcher``).

    ``subject`` is the build id the trigger returned and stays the subject of every
    event; ``build_id`` is the id the CI shows now (Buildbot: ``br-<n>`` becomes a
    number once the build starts). ``version`` grows with every change, so two
    pollers racing on one watch cannot both emit. ``state``: ``watching``, ``done``
    (final state seen, by the watcher or another source), ``gave_up`` (deadline
    passed), ``skipped`` (cannot be polled; ``reason`` says why).
    """

    __tablename__ = "build_watches"
    __table_args__ = (
        UniqueConstraint("tenant_id", "tool_id", "subject"),
        Index("ix_build_watches_due", "state", "next_poll_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    tool_id: Mapped[str] = mapped_column(String(36))
    subject: Mapped[str] = mapped_column(String(255))
    build_id: Mapped[str] = mapped_column(String(255))
    state: Mapped[str] = mapped_column(String(16), default="watching")
    last_status: Mapped[str | None] = mapped_column(String(16), default=None)
    reason: Mapped[str | None] = mapped_column(String(255), default=None)
    version: Mapped[int] = mapped_column(Integer, default=0)
    polls: Mapped[int] = mapped_column(Integer, default=0)
    next_poll_at: Mapped[datetime] = mapped_column(UtcDateTime())
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


# --- webhooks in --------------------------------------------------------------------


class ToolWebhookRow(Base):
    """A tool's inbound webhook: how deliveries prove their sender, and which events
    they may raise. Secrets are sealed by ``security.vault`` like credentials; while a
    rotation's grace lasts, the previous secret verifies too."""

    __tablename__ = "tool_webhooks"

    tool_id: Mapped[str] = mapped_column(
        ForeignKey("tools.id", ondelete="CASCADE"), primary_key=True
    )
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    scheme: Mapped[str] = mapped_column(String(16))
    secret_key_id: Mapped[str] = mapped_column(String(32))
    secret_sealed: Mapped[bytes] = mapped_column()
    previous_key_id: Mapped[str | None] = mapped_column(String(32), default=None)
    previous_sealed: Mapped[bytes | None] = mapped_column(default=None)
    previous_until: Mapped[datetime | None] = mapped_column(UtcDateTime(), default=None)
    allowed_events: Mapped[list[str] | None] = mapped_column(JSON(none_as_null=True), default=None)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


# --- notifications out ------------------------------------------------------------------


class SubscriptionRow(Base):
    """A tenant's URL subscribed to event types (globs). Its signing secret is stored
    sealed by ``security.vault``, bound to this row and the URL's origin."""

    __tablename__ = "subscriptions"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    url: Mapped[str] = mapped_column(String(2048))
    event_types: Mapped[list[str]] = mapped_column(JSON, default=list)
    description: Mapped[str | None] = mapped_column(String(256), default=None)
    status: Mapped[str] = mapped_column(String(16), default="active")
    disabled_reason: Mapped[str | None] = mapped_column(Text, default=None)
    # Failed attempts in a row, across deliveries; a success resets it.
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    secret_key_id: Mapped[str] = mapped_column(String(32))
    secret_sealed: Mapped[bytes] = mapped_column()
    secret_origin: Mapped[str] = mapped_column(String(2048))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class NotificationRow(Base):
    """One event for one subscription: the message, signed and sent until it is
    ``delivered`` or ``failed``. Its ``id`` is the ``webhook-id``: stable per (event,
    subscription), so a receiver can drop repeats."""

    __tablename__ = "notifications"
    __table_args__ = (
        UniqueConstraint("event_id", "subscription_id"),
        Index("ix_notifications_due", "status", "available_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    subscription_id: Mapped[str] = mapped_column(
        ForeignKey("subscriptions.id", ondelete="CASCADE"), index=True
    )
    event_id: Mapped[str] = mapped_column(String(36))
    event_type: Mapped[str] = mapped_column(String(64))
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    available_at: Mapped[datetime] = mapped_column(UtcDateTime())
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class NotificationAttemptRow(Base):
    """One try at sending a notification: what came back, how long it took."""

    __tablename__ = "notification_attempts"

    id: Mapped[int] = mapped_column(_Seq, primary_key=True, autoincrement=True)
    notification_id: Mapped[str] = mapped_column(
        ForeignKey("notifications.id", ondelete="CASCADE"), index=True
    )
    attempt: Mapped[int] = mapped_column(Integer)
    status_code: Mapped[int | None] = mapped_column(Integer, default=None)
    duration_ms: Mapped[int] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    attempted_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class WebhookDeliveryRow(Base):
    """A verified delivery, kept as received (headers without secrets) before it is
    answered; ``(tool_id, delivery_id)`` is unique, so a redelivery changes nothing."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (UniqueConstraint("tool_id", "delivery_id"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    tool_id: Mapped[str] = mapped_column(String(36))
    delivery_id: Mapped[str] = mapped_column(String(255))
    headers: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    body: Mapped[bytes] = mapped_column()
    error: Mapped[str | None] = mapped_column(Text, default=None)
    event_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


# --- knowledge ----------------------------------------------------------------------


class ContextRow(Base):
    """Something the knowledge layer remembers for a tenant, unique per (tenant, scope,
    key): ``scope`` is the tool's id for a tool-bound context, "" for a tenant-wide one.
    Its searchable chunks live in ``context_chunks``, reached through
    ``devmesh.knowledge`` only (their vector and full-text columns differ by backend)."""

    __tablename__ = "contexts"
    __table_args__ = (
        UniqueConstraint("tenant_id", "scope", "key"),
        Index("ix_contexts_tenant_type", "tenant_id", "type", "updated_at"),
        Index("ix_contexts_tenant_signature", "tenant_id", "signature"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    scope: Mapped[str] = mapped_column(String(36))
    tool_id: Mapped[str | None] = mapped_column(
        ForeignKey("tools.id", ondelete="CASCADE"), index=True, default=None
    )
    tool: Mapped[str | None] = mapped_column(String(64), default=None)
    key: Mapped[str] = mapped_column(String(255))
    type: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str | None] = mapped_column(String(255), default=None)
    project: Mapped[str | None] = mapped_column(String(255), default=None)
    status: Mapped[str | None] = mapped_column(String(64), default=None)
    # A failure analysis's error_pattern: failures of the same kind share it.
    signature: Mapped[str | None] = mapped_column(String(512), default=None)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class AutoRetryRow(Base):
    """A failed build the worker retried on its own (``devmesh.tools.learning``).

    Unique per (tool, build): two deliveries of one failure, or two workers, claim
    the same row and only one retries. ``depth`` counts retries in a chain (a retry
    that fails again is retried at depth 2, if the policy allows); ``retry_build_id``
    is set once the retry is made."""

    __tablename__ = "auto_retries"
    __table_args__ = (
        UniqueConstraint("tool_id", "build_id"),
        Index("ix_auto_retries_project", "tool_id", "project", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    tool_id: Mapped[str] = mapped_column(ForeignKey("tools.id", ondelete="CASCADE"))
    build_id: Mapped[str] = mapped_column(String(255))
    project: Mapped[str | None] = mapped_column(String(255), default=None)
    depth: Mapped[int] = mapped_column(Integer, default=1)
    retry_build_id: Mapped[str | None] = mapped_column(String(255), default=None)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


# --- tool documents -------------------------------------------------------------------


class ToolDocumentRow(Base):
    """The document a tool instance's operations come from (an OpenAPI description),
    stored as registered: JSON text, which may run to megabytes, so it has its own table
    and is read only when the instance's operations are built."""

    __tablename__ = "tool_documents"

    tool_id: Mapped[str] = mapped_column(
        ForeignKey("tools.id", ondelete="CASCADE"), primary_key=True
    )
    sha256: Mapped[str] = mapped_column(String(64))
    body: Mapped[str] = mapped_column(Text)
