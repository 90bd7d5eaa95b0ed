"""Webhooks in: each tool's webhook secret, and the deliveries its tool sends.

A delivery is answered from the database alone (no upstream call): it is verified
against the tool's secret (the previous one too while a rotation's grace lasts),
stored with its events in one transaction (the outbox), and deduplicated by its
delivery id per tool, so a redelivery changes nothing. A verified delivery that
cannot be parsed or mapped is still stored and reported as ``webhook.received`` with
its error; an unverified one leaves no trace but the failure count at the gate.

Who sent it is proven by the tool's own scheme (its provider's verifier, or Standard
Webhooks for any tool), not by an API key: the tool id in the path names the tenant.
An unknown id, an id of a tool without a webhook and an id of another tenant's tool
are all the same 404.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import structlog
from cachetools import TTLCache
from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from devmesh.adapters.registry import Provider, ProviderRegistry
from devmesh.adapters.standard_webhooks import SECRET_PREFIX, StandardWebhookVerifier
from devmesh.adapters.webhooks import (
    URL_TOKEN_HEADER,
    BodyDeliveryId,
    WebhookNormaliser,
    WebhookVerifier,
)
from devmesh.domain.errors import InvalidInput, Unauthorized, UnknownTool
from devmesh.domain.events import Event, EventSource, EventType, ToolRef, new_event
from devmesh.domain.models import Tenant
from devmesh.events.outbox import Outbox
from devmesh.observability.metrics import Metrics
from devmesh.security.vault import Vault
from devmesh.store.db import Database
from devmesh.store.group_commit import GroupCommit
from devmesh.store.rows import ToolRow, ToolWebhookRow, WebhookDeliveryRow, utcnow
from devmesh.tools.naming import looks_like_id

__all__ = [
    "Delivery",
    "WebhookScheme",
    "WebhookService",
    "WebhookSettings",
    "is_standard_secret",
]

_log = structlog.get_logger(__name__)

WebhookScheme = Literal["provider", "standard"]

# Sealed like credentials, but bound to their own row and purpose, so neither
# ciphertext can stand in for the other.
_ORIGIN = "webhook-in"
_MAX_DELIVERY_ID = 255
# Header names that may carry the secret or a proof of it: never stored.
_SECRET_HEADER_WORDS = ("authorization", "token", "secret", "signature", "cookie", "key")
_HOOK_CACHE_SIZE = 1024


@dataclass(frozen=True)
class WebhookSettings:
    """A tool's webhook as shown to its tenant. ``secret`` is set only in the answer
    that generated it."""

    tool_id: str
    scheme: WebhookScheme
    allowed_events: list[str] | None
    previous_secret_valid_until: datetime | None
    secret: str | None = None


@dataclass(frozen=True)
class _Hook:
    """What verifying and storing a tool's deliveries needs: the tool, its webhook's
    settings and its secrets, unsealed, each with the end of its validity (the
    previous secret's grace), or None for the current one."""

    tool_id: str
    tenant_id: str
    tool_name: str
    provider: str
    scheme: str
    allowed_events: list[str] | None
    secrets: tuple[tuple[str, datetime | None], ...]

    def valid_secrets(self) -> list[str]:
        now = utcnow()
        return [secret for secret, until in self.secrets if until is None or until > now]


@dataclass(frozen=True)
class Delivery:
    """What a received delivery came to."""

    delivery_id: str
    duplicate: bool
    events: list[str]


class WebhookService:
    def __init__(
        self,
        *,
        db: Database,
        registry: ProviderRegistry,
        vault: Vault,
        outbox: Outbox | None = None,
        standard: StandardWebhookVerifier | None = None,
        metrics: Metrics | None = None,
        cache_ttl: float = 0.0,
    ) -> None:
        """``cache_ttl`` > 0 keeps each tool's webhook (its secrets unsealed) in memory
        that long, so a delivery costs one transaction. Setting or removing a webhook
        here drops its entry at once; a secret set by another process verifies there
        within the TTL. A webhook removed (or tool deleted) anywhere refuses the next
        delivery at once: the storing transaction checks that it still exists."""
        self._db = db
        self._registry = registry
        self._vault = vault
        self._outbox = outbox or Outbox()
        self._standard = standard or StandardWebhookVerifier()
        # Deliveries are stored in shared transactions: see store/group_commit.py.
        self._commits = GroupCommit(db)
        self._metrics = metrics
        self._hooks: TTLCache[str, _Hook] | None = (
            TTLCache(maxsize=_HOOK_CACHE_SIZE, ttl=cache_ttl) if cache_ttl > 0 else None
        )

    # --- settings (a tenant's API key) -------------------------------------------

    async def configure(
        self,
        tenant: Tenant,
        ref: str,
        *,
        scheme: WebhookScheme,
        secret: str | None,
        allowed_events: Sequence[str] | None,
        grace_seconds: int,
    ) -> WebhookSettings:
        """Set (or rotate) the tool's webhook. Without ``secret`` one is generated and
        returned in this answer only. With ``grace_seconds`` > 0 the secret it replaces
        keeps verifying that long, so the sender can be switched without losing
        deliveries."""
        generated = secret is None
        async with self._db.session() as session:
            tool = await _find_tool(session, tenant, ref)
            provider = self._registry.get(tool.provider)
            if scheme == "provider" and (provider is None or provider.webhook_verifier is None):
                raise InvalidInput(
                    f"{tool.provider} tools have no webhook scheme of their own; "
                    "use scheme 'standard' (Standard Webhooks)",
                    field="scheme",
                )
            if secret is None:
                secret = _generate(scheme)
            elif scheme == "standard" and not _is_standard_secret(secret):
                raise InvalidInput(
                    "a Standard Webhooks secret is 'whsec_' followed by base64", field="secret"
                )
            now = utcnow()
            row = await session.get(ToolWebhookRow, tool.id)
            key_id, sealed = self._seal(tool, secret)
            if row is None:
                row = ToolWebhookRow(
                    tool_id=tool.id,
                    tenant_id=tenant.id,
                    scheme=scheme,
                    secret_key_id=key_id,
                    secret_sealed=sealed,
                    created_at=now,
                )
                session.add(row)
            else:
                if grace_seconds > 0:
                    row.previous_key_id, row.previous_sealed = row.secret_key_id, row.secret_sealed
                    row.previous_until = now + timedelta(seconds=grace_seconds)
                else:
                    row.previous_key_id, row.previous_sealed, row.previous_until = None, None, None
                row.secret_key_id, row.secret_sealed = key_id, sealed
                row.scheme = scheme
            row.allowed_events = list(allowed_events) if allowed_events is not None else None
            row.updated_at = now
            settings = _settings(row, secret=secret if generated else None)
        self._forget(tool.id)
        return settings

    async def settings(self, tenant: Tenant, ref: str) -> WebhookSettings:
        async with self._db.session() as session:
            tool = await _find_tool(session, tenant, ref)
            row = await session.get(ToolWebhookRow, tool.id)
            if row is None:
                raise UnknownTool(f"tool {ref!r} has no webhook; PUT .../webhook sets one")
            return _settings(row)

    async def differences(
        self,
        tenant: Tenant,
        ref: str,
        *,
        scheme: WebhookScheme,
        secret: str,
        allowed_events: Sequence[str] | None,
    ) -> list[str]:
        """What of the tool's webhook differs from these settings: ``["webhook"]`` when
        it has none, else some of ``scheme``, ``secret``, ``allowed_events``. The secret
        is compared in memory and never leaves this method."""
        async with self._db.session() as session:
            tool = await _find_tool(session, tenant, ref)
            row = await session.get(ToolWebhookRow, tool.id)
        if row is None:
            return ["webhook"]
        differ = []
        if row.scheme != scheme:
            differ.append("scheme")
        current = self._vault.decrypt(
            row.secret_sealed,
            key_id=row.secret_key_id,
            tenant_id=tool.tenant_id,
            bound_to=_bound(tool.id),
            origin=_ORIGIN,
        )
        if not hmac.compare_digest(current, secret.encode()):
            differ.append("secret")
        wanted = list(allowed_events) if allowed_events is not None else None
        if row.allowed_events != wanted:
            differ.append("allowed_events")
        return differ

    async def remove(self, tenant: Tenant, ref: str) -> None:
        """Forget the tool's webhook (its secret with it): its deliveries are then
        refused as from a tool that has none. Deliveries already stored are kept (until
        retention removes them), like the events they raised."""
        async with self._db.session() as session:
            tool = await _find_tool(session, tenant, ref)
            row = await session.get(ToolWebhookRow, tool.id)
            if row is None:
                raise UnknownTool(f"tool {ref!r} has no webhook")
            await session.delete(row)
        self._forget(tool.id)

    # --- deliveries (no API key: the tool's own proof) ----------------------------

    async def receive(
        self,
        tool_id: str,
        *,
        headers: Mapping[str, str],
        body: bytes,
        url_token: str | None = None,
    ) -> Delivery:
        """Verify, store and map one delivery. ``url_token`` is a ``?token=`` the sender
        put in the URL (tools that cannot sign); verifiers see it as ``URL_TOKEN_HEADER``."""
        headers = {
            name: value
            for name, value in headers.items()
            if name.lower() != URL_TOKEN_HEADER.lower()
        }
        if url_token:
            headers[URL_TOKEN_HEADER] = url_token
        hook = await self._hook(tool_id)
        if hook is None:
            self._count(None, "unknown_tool")
            raise UnknownTool(f"no tool {tool_id!r} takes webhooks")
        provider = self._registry.get(hook.provider)
        verifier: WebhookVerifier = self._standard
        normaliser: WebhookNormaliser | None = provider.webhook_normaliser if provider else None
        if hook.scheme == "provider":
            if provider is None or provider.webhook_verifier is None:
                self._count(None, "unknown_tool")
                raise UnknownTool(f"no tool {tool_id!r} takes webhooks")
            verifier = provider.webhook_verifier
        if not any(
            verifier.verify(secret=secret, headers=headers, body=body)
            for secret in hook.valid_secrets()
        ):
            self._count(hook.provider, "unverified")
            raise Unauthorized("the delivery does not prove the tool's webhook secret")
        given = verifier.delivery_id(headers)
        if given is None and isinstance(verifier, BodyDeliveryId):
            given = verifier.delivery_id_in_body(body)
        delivery_id = _delivery_id(given, body)
        ref = ToolRef(id=hook.tool_id, name=hook.tool_name)
        events, error = _events(normaliser, headers=headers, body=body, allowed=hook.allowed_events)
        built = [
            new_event(
                tenant_id=hook.tenant_id,
                tool=ref,
                provider=hook.provider,
                type=str(kind),
                source=EventSource.WEBHOOK,
                subject=_subject(provider, kind, data),
                payload=data,
            )
            for kind, data in events
        ]
        if not built:
            built = [
                new_event(
                    tenant_id=hook.tenant_id,
                    tool=ref,
                    provider=hook.provider,
                    type=EventType.WEBHOOK_RECEIVED,
                    source=EventSource.WEBHOOK,
                    payload={"delivery_id": delivery_id, "error": error},
                )
            ]
        try:
            delivery = await self._store(hook, delivery_id, headers, body, error, built)
        except _WebhookGone:
            self._forget(hook.tool_id)
            self._count(None, "unknown_tool")
            raise UnknownTool(f"no tool {tool_id!r} takes webhooks") from None
        if delivery.duplicate:
            self._count(hook.provider, "duplicate")
        else:
            self._count(hook.provider, "accepted" if error is None else "unparseable")
        return delivery

    async def _hook(self, tool_id: str) -> _Hook | None:
        """The tool's webhook, from the cache or the database; None when it has none."""
        if not looks_like_id(tool_id):
            return None
        key = tool_id.lower()  # a tool id is case-insensitive (like the other routes)
        if self._hooks is not None and (cached := self._hooks.get(key)) is not None:
            return cached
        async with self._db.session() as session:
            found = (
                await session.execute(
                    select(ToolRow, ToolWebhookRow)
                    .join(ToolWebhookRow, ToolWebhookRow.tool_id == ToolRow.id)
                    .where(ToolRow.id == key)
                )
            ).first()
        if found is None:
            return None
        tool, row = found[0], found[1]
        hook = _Hook(
            tool_id=tool.id,
            tenant_id=tool.tenant_id,
            tool_name=tool.name,
            provider=tool.provider,
            scheme=row.scheme,
            allowed_events=list(row.allowed_events) if row.allowed_events is not None else None,
            secrets=tuple(self._secrets(tool, row)),
        )
        if self._hooks is not None:
            self._hooks[key] = hook
        return hook

    def _forget(self, tool_id: str) -> None:
        if self._hooks is not None:
            self._hooks.pop(tool_id.lower(), None)

    def _count(self, provider: str | None, outcome: str) -> None:
        if self._metrics is not None:
            self._metrics.webhook_deliveries.labels(
                provider=provider or "unknown", outcome=outcome
            ).inc()

    async def _store(
        self,
        tool: _Hook,
        delivery_id: str,
        headers: Mapping[str, str],
        body: bytes,
        error: str | None,
        events: list[Event],
    ) -> Delivery:
        row = {
            "id": str(uuid.uuid4()),
            "tenant_id": tool.tenant_id,
            "tool_id": tool.tool_id,
            "delivery_id": delivery_id,
            "headers": _stored_headers(headers),
            "body": body,
            "error": error,
            "event_ids": [event.id for event in events],
            "received_at": utcnow(),
        }
        insert = sqlite_insert if self._db.is_sqlite else postgresql_insert
        # Insert first, skipping a delivery id already stored: the transaction takes
        # the write lock with its first statement (SQLite cannot upgrade a read to a
        # write once another connection has committed), and two deliveries of one id
        # at once settle on the unique key instead of failing.
        statement = (
            insert(WebhookDeliveryRow)
            .values(row)
            .on_conflict_do_nothing(index_elements=["tool_id", "delivery_id"])
            .returning(WebhookDeliveryRow.id)
        )

        recorded: list[Event] = []

        async def write(session: AsyncSession) -> bool:
            recorded.clear()  # a shared commit that failed is run again alone
            stored = await session.scalar(statement)
            if stored is None:
                return False
            # The webhook may have been removed (or its tool deleted) since it was
            # cached, here or by another process: checked in the storing transaction,
            # after the insert that took the write lock.
            if (
                await session.scalar(
                    select(ToolWebhookRow.tool_id).where(ToolWebhookRow.tool_id == tool.tool_id)
                )
                is None
            ):
                raise _WebhookGone
            # An event another source recorded already (the watcher saw the build
            # finish first) is not recorded again; the delivery still is.
            recorded.extend([event for event in events if await self._outbox.add(session, event)])
            if len(recorded) != len(events):
                await session.execute(
                    update(WebhookDeliveryRow)
                    .where(WebhookDeliveryRow.id == stored)
                    .values(event_ids=[event.id for event in recorded])
                )
            return True

        if not await self._commits.run(write):
            return Delivery(delivery_id=delivery_id, duplicate=True, events=[])
        self._outbox.committed()
        if error is not None:
            _log.info("webhook_unparsed", tool=tool.tool_name, delivery_id=delivery_id, error=error)
        return Delivery(
            delivery_id=delivery_id, duplicate=False, events=[event.type for event in recorded]
        )

    # --- internals ---------------------------------------------------------------

    def _seal(self, tool: ToolRow, secret: str) -> tuple[str, bytes]:
        return self._vault.encrypt(
            secret.encode(), tenant_id=tool.tenant_id, bound_to=_bound(tool.id), origin=_ORIGIN
        )

    def _secrets(self, tool: ToolRow, hook: ToolWebhookRow) -> list[tuple[str, datetime | None]]:
        """The secrets that verify, each with the end of its validity (None: no end)."""
        sealed: list[tuple[str, bytes, datetime | None]] = [
            (hook.secret_key_id, hook.secret_sealed, None)
        ]
        if (
            hook.previous_key_id is not None
            and hook.previous_sealed is not None
            and hook.previous_until is not None
            and hook.previous_until > utcnow()
        ):
            sealed.append((hook.previous_key_id, hook.previous_sealed, hook.previous_until))
        return [
            (
                self._vault.decrypt(
                    blob,
                    key_id=key_id,
                    tenant_id=tool.tenant_id,
                    bound_to=_bound(tool.id),
                    origin=_ORIGIN,
                ).decode(),
                until,
            )
            for key_id, blob, until in sealed
        ]


class _WebhookGone(Exception):
    """The webhook a delivery was verified against no longer exists."""


async def _find_tool(session: Any, tenant: Tenant, ref: str) -> ToolRow:
    match = ToolRow.id == ref.lower() if looks_like_id(ref) else ToolRow.name == ref
    row: ToolRow | None = await session.scalar(
        select(ToolRow).where(ToolRow.tenant_id == tenant.id, match)
    )
    if row is None:
        raise UnknownTool(
            f"no tool {ref!r}; GET /api/v1/tools or MCP tools/list shows the tools you can use"
        )
    return row


def _bound(tool_id: str) -> str:
    return f"webhook:{tool_id}"


def _generate(scheme: WebhookScheme) -> str:
    if scheme == "standard":
        return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()
    return secrets.token_urlsafe(32)


def is_standard_secret(secret: str) -> bool:
    """Whether ``secret`` is a Standard Webhooks secret: ``whsec_`` and base64."""
    return _is_standard_secret(secret)


def _is_standard_secret(secret: str) -> bool:
    if not secret.startswith(SECRET_PREFIX):
        return False
    try:
        return len(base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)) >= 16
    except ValueError:
        return False


def _settings(row: ToolWebhookRow, *, secret: str | None = None) -> WebhookSettings:
    return WebhookSettings(
        tool_id=row.tool_id,
        scheme="standard" if row.scheme == "standard" else "provider",
        allowed_events=list(row.allowed_events) if row.allowed_events is not None else None,
        previous_secret_valid_until=row.previous_until if row.previous_sealed else None,
        secret=secret,
    )


def _delivery_id(given: str | None, body: bytes) -> str:
    """The sender's delivery id, else the body's digest (a resend of one state change
    is the same body)."""
    if given and len(given) <= _MAX_DELIVERY_ID:
        return given
    if given:
        return "sha256:" + hashlib.sha256(given.encode()).hexdigest()
    return "body-sha256:" + hashlib.sha256(body).hexdigest()


def _stored_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {
        name.lower(): value
        for name, value in headers.items()
        if not any(word in name.lower() for word in _SECRET_HEADER_WORDS)
    }


def _events(
    normaliser: WebhookNormaliser | None,
    *,
    headers: Mapping[str, str],
    body: bytes,
    allowed: list[str] | None,
) -> tuple[list[tuple[str, dict[str, Any]]], str | None]:
    """The delivery's events (those ``allowed``), and why there are none if it could
    not be read."""
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        return [], f"the body is not JSON: {exc}"
    if normaliser is None:
        return [], None
    try:
        normalised = normaliser.normalise(headers=headers, payload=payload)
        events = [(str(item["type"]), dict(item.get("data") or {})) for item in normalised]
    except Exception as exc:  # a provider's bug must not lose a verified delivery
        return [], f"the delivery could not be mapped: {type(exc).__name__}"
    return [(kind, data) for kind, data in events if allowed is None or kind in allowed], None


def _subject(provider: Provider | None, kind: str, data: Mapping[str, Any]) -> str | None:
    """A build's lasting name (as a call's or the watcher's event about it has it),
    else the id the payload gives."""
    if provider is not None and kind.startswith("build."):
        return provider.subject_of(data)
    subject = data.get("id")
    return str(subject) if subject is not None else None
