"""Tool instances declared in the configuration file (``adapters.ci.<name>``), applied.

Three steps, so a bad file changes nothing: ``parse`` checks every entry against the
installed providers and their credential schemes before the database is read;
``plan`` compares the entries with what their tenants have, and fails before any
change if a tenant is missing or a name belongs to a tool made through the API;
``apply`` carries the plan out through ToolService and WebhookService, as a REST
call would, never around them.

Instances made here are marked ``managed_by: config``. Only those are ever changed
or deleted: a later file that leaves one out reports it, and deletes it only when
asked (``prune``). Tools made through the API are never touched.

Secrets in the file (tokens, passwords, webhook secrets) are compared with the
stored ones in memory; a plan says ``credentials`` or ``webhook.secret`` changed,
never what to.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import structlog
from pydantic import ValidationError

from devmesh.adapters.egress import origin_of
from devmesh.adapters.registry import Provider, ProviderRegistry
from devmesh.adapters.resilience import ResiliencePolicy
from devmesh.config import ConfigError, DeclaredTool, Settings
from devmesh.domain.errors import Conflict, InvalidInput, NotFound
from devmesh.domain.models import Credentials, Tenant, ToolInstance
from devmesh.security.tenants import TenantService
from devmesh.tools.models import ToolCreate, ToolUpdate
from devmesh.tools.service import (
    MANAGED_BY_CONFIG,
    ToolService,
    validate_config,
    validation_message,
)
from devmesh.tools.webhooks import WebhookScheme, WebhookService, is_standard_secret

__all__ = ["Change", "DeclaredTools", "Plan"]

_log = structlog.get_logger(__name__)

Action = Literal["create", "update", "unchanged", "kept", "delete"]
# ToolCreate's field → the file's key, for messages that name the key path.
_FILE_KEYS = {"name": "", "base_url": "url", "resilience": ""}


@dataclass(frozen=True)
class _Webhook:
    scheme: WebhookScheme
    secret: str = field(repr=False)
    allowed_events: list[str] | None


@dataclass(frozen=True)
class _Desired:
    key: str  # adapters.ci.<name>
    tenant: str
    tenant_key: str  # where the tenant was named: "tenant" or "<key>.tenant"
    spec: ToolCreate
    base_url: str
    config: dict[str, Any]
    credentials: Credentials | None = field(repr=False)
    webhook: _Webhook | None


@dataclass(frozen=True)
class Change:
    """One line of a plan: what happens to one tool, and which of its parts change."""

    action: Action
    tenant: str
    tool: str
    provider: str
    parts: tuple[str, ...] = ()

    def describe(self) -> str:
        where = f"{self.tenant}/{self.tool}"
        if self.action == "create":
            return f"create    {where} ({self.provider})"
        if self.action == "update":
            return f"update    {where}: {', '.join(self.parts)}"
        if self.action == "kept":
            return f"kept      {where}: no longer in the file (--prune deletes it)"
        if self.action == "delete":
            return f"delete    {where}: no longer in the file"
        return f"unchanged {where}"


@dataclass(frozen=True)
class Plan:
    """What ``apply`` will do. Holds the file's secrets (never in its repr)."""

    new_tenants: list[str]
    changes: list[Change]
    _desired: dict[tuple[str, str], _Desired] = field(repr=False)

    def lines(self) -> list[str]:
        created = [
            f"create    tenant {name} (it gets no API key here: devmesh keys create {name})"
            for name in self.new_tenants
        ]
        return created + [change.describe() for change in self.changes]

    @property
    def changes_anything(self) -> bool:
        return bool(self.new_tenants) or any(
            change.action in ("create", "update", "delete") for change in self.changes
        )


class DeclaredTools:
    def __init__(
        self,
        *,
        tools: ToolService,
        webhooks: WebhookService,
        tenants: TenantService,
        registry: ProviderRegistry,
    ) -> None:
        self._tools = tools
        self._webhooks = webhooks
        self._tenants = tenants
        self._registry = registry

    # --- parse: the file alone --------------------------------------------------

    def parse(self, settings: Settings) -> list[_Desired]:
        """Every declared instance, checked. Raises ``ConfigError`` naming the key."""
        for name in settings.events.handlers:
            self._provider(name, f"events.handlers.{name}")
        return [
            self._parse(name, entry, settings.tenant)
            for name, entry in settings.adapters.ci.items()
        ]

    def _parse(self, name: str, entry: DeclaredTool, top_tenant: str | None) -> _Desired:
        key = f"adapters.ci.{name}"
        tenant = entry.tenant or top_tenant
        if tenant is None:
            raise ConfigError(
                f"{key}.tenant: no tenant owns this tool: set `tenant:` at the top of the "
                "file or in the entry"
            )
        provider = self._provider(entry.provider, f"{key}.provider")
        try:
            spec = ToolCreate.model_validate(
                {
                    "name": name,
                    "provider": provider.name,
                    "base_url": entry.url,
                    "verify_tls": entry.verify_tls,
                    "config": entry.config,
                    "credential_mode": entry.credential_mode,
                    "resilience": _resilience(entry),
                }
            )
        except ValidationError as exc:
            field_name, message = validation_message(exc)
            head, _, rest = field_name.partition(".")
            path = ".".join(p for p in (key, _FILE_KEYS.get(head, head), rest) if p)
            raise ConfigError(f"{path}: {message.partition(': ')[2] or message}") from None
        try:
            config = validate_config(provider, spec.config)
        except InvalidInput as exc:
            raise ConfigError(f"{key}.{exc.field}: {exc.message}") from None
        base_url = str(spec.base_url).rstrip("/") if spec.base_url else provider.default_base_url
        if base_url is None:
            raise ConfigError(f"{key}.url: required: {provider.name} has no default address")
        return _Desired(
            key=key,
            tenant=tenant,
            tenant_key=f"{key}.tenant" if entry.tenant else "tenant",
            spec=spec,
            base_url=base_url.rstrip("/"),
            config=config,
            credentials=_credentials(key, entry, provider),
            webhook=_webhook(key, entry, provider),
        )

    def _provider(self, name: str, key: str) -> Provider:
        provider = self._registry.get(name)
        if provider is None:
            installed = ", ".join(self._registry.names())
            raise ConfigError(f"{key}: unknown provider {name!r}; installed: {installed}")
        return provider

    # --- plan: the file against the database ------------------------------------

    async def plan(
        self, settings: Settings, *, create_tenants: bool = False, prune: bool = False
    ) -> Plan:
        """What applying ``settings`` would change. Raises ``ConfigError`` (naming the
        key) if it cannot be applied; reads only."""
        desired = self.parse(settings)
        by_tenant: dict[str, list[_Desired]] = defaultdict(list)
        for item in desired:
            by_tenant[item.tenant].append(item)
        if settings.tenant is not None:
            by_tenant.setdefault(settings.tenant, [])
        new_tenants: list[str] = []
        changes: list[Change] = []
        for tenant_name, items in by_tenant.items():
            tenant = await self._tenant(tenant_name, items, create=create_tenants)
            if tenant is None:
                new_tenants.append(tenant_name)
                changes += [_created(item) for item in items]
                continue
            existing = {tool.name: tool for tool in await self._tools.list_tools(tenant)}
            for item in items:
                changes.append(await self._compare(tenant, item, existing.get(item.spec.name)))
            declared = {item.spec.name for item in items}
            changes += [
                Change("delete" if prune else "kept", tenant_name, tool.name, tool.provider)
                for tool in existing.values()
                if tool.managed_by == MANAGED_BY_CONFIG and tool.name not in declared
            ]
        return Plan(
            new_tenants=new_tenants,
            changes=changes,
            _desired={(item.tenant, item.spec.name): item for item in desired},
        )

    async def _tenant(self, name: str, items: Sequence[_Desired], *, create: bool) -> Tenant | None:
        try:
            return await self._tenants.get_tenant(name)
        except NotFound:
            if create:
                return None
        key = items[0].tenant_key if items else "tenant"
        raise ConfigError(
            f"{key}: no tenant {name!r}. Create it with `devmesh tenants create {name}` "
            "(which shows its first API key), or apply with --create-tenant"
        )

    async def _compare(
        self, tenant: Tenant, item: _Desired, current: ToolInstance | None
    ) -> Change:
        name = item.spec.name
        if current is None:
            return _created(item)
        if current.managed_by != MANAGED_BY_CONFIG:
            raise ConfigError(
                f"{item.key}: tenant {tenant.name!r} has a tool {name!r} made through the "
                "API; apply does not take it over: rename the entry, or delete that tool"
            )
        if current.provider != item.spec.provider:
            raise ConfigError(
                f"{item.key}.provider: the tool is a {current.provider} tool; a provider "
                "cannot change: rename the entry (and --prune the old one)"
            )
        spec = item.spec
        parts = [
            part
            for part, differs in (
                ("url", current.base_url != item.base_url),
                ("config", current.config != item.config),
                ("verify_tls", current.verify_tls != spec.verify_tls),
                ("credential_mode", current.credential_mode != spec.credential_mode),
                (
                    "resilience",
                    current.resilience != spec.resilience.model_dump(exclude_unset=True),
                ),
            )
            if differs
        ]
        if not await self._tools.credentials_equal(tenant, current.id, item.credentials):
            parts.append("credentials")
        if item.webhook is not None:
            differ = await self._webhooks.differences(
                tenant,
                current.id,
                scheme=item.webhook.scheme,
                secret=item.webhook.secret,
                allowed_events=item.webhook.allowed_events,
            )
            parts += [part if part == "webhook" else f"webhook.{part}" for part in differ]
        action: Action = "update" if parts else "unchanged"
        return Change(action, tenant.name, name, current.provider, tuple(parts))

    # --- apply: through the services --------------------------------------------

    async def apply(self, plan: Plan) -> None:
        """Carry ``plan`` out. Each tool's change is made as the API would make it."""
        for name in plan.new_tenants:
            tenant, _ = await self._tenants.create_tenant(name)
            # Nobody saw its first key, so nobody can use it: revoke it at once.
            for key in await self._tenants.list_keys(tenant.id):
                await self._tenants.revoke_key(key.id, tenant_id=tenant.id)
            _log.info("declared_tenant_created", tenant=name)
        for change in plan.changes:
            if change.action in ("unchanged", "kept"):
                continue
            tenant = await self._tenants.get_tenant(change.tenant)
            if change.action == "delete":
                await self._tools.delete_tool(tenant, change.tool)
            elif change.action == "create":
                await self._create(tenant, plan._desired[(change.tenant, change.tool)])
            else:
                await self._update(tenant, plan._desired[(change.tenant, change.tool)], change)
            _log.info(
                "declared_tool_applied",
                tenant=change.tenant,
                tool=change.tool,
                action=change.action,
                parts=list(change.parts),
            )

    async def _create(self, tenant: Tenant, item: _Desired) -> None:
        try:
            tool = await self._tools.register_tool(tenant, item.spec, managed_by=MANAGED_BY_CONFIG)
        except Conflict:
            # Made since the plan: by another replica's `serve --apply` of the same file,
            # or through the API. Compare again: the first is brought up to date, the
            # second refused as the plan would have.
            current = await self._tools.get_tool(tenant, item.spec.name)
            change = await self._compare(tenant, item, current)
            if change.action == "update":
                await self._update(tenant, item, change)
            return
        if item.credentials is not None:
            await self._tools.set_credentials(tenant, tool.id, item.credentials)
        await self._set_webhook(tenant, tool.id, item)

    async def _update(self, tenant: Tenant, item: _Desired, change: Change) -> None:
        parts = set(change.parts)
        spec = item.spec
        current = await self._tools.get_tool(tenant, spec.name)
        moved = "url" in parts and origin_of(current.base_url) != origin_of(item.base_url)
        # A new origin drops stored credentials, so they go along with it.
        send_credentials = item.credentials is not None and ("credentials" in parts or moved)
        await self._tools.update_tool(
            tenant,
            current.id,
            ToolUpdate.model_validate(
                {
                    "base_url": item.base_url if "url" in parts else None,
                    "credentials": item.credentials if send_credentials else None,
                    "config": item.config if "config" in parts else None,
                    "verify_tls": spec.verify_tls if "verify_tls" in parts else None,
                    "credential_mode": spec.credential_mode if "credential_mode" in parts else None,
                    "resilience": spec.resilience if "resilience" in parts else None,
                }
            ),
        )
        if "credentials" in parts and item.credentials is None:
            await self._tools.delete_credentials(tenant, current.id)
        if any(part.startswith("webhook") for part in parts):
            await self._set_webhook(tenant, current.id, item)

    async def _set_webhook(self, tenant: Tenant, tool_id: str, item: _Desired) -> None:
        if item.webhook is None:
            return
        await self._webhooks.configure(
            tenant,
            tool_id,
            scheme=item.webhook.scheme,
            secret=item.webhook.secret,
            allowed_events=item.webhook.allowed_events,
            grace_seconds=0,
        )


def _created(item: _Desired) -> Change:
    return Change("create", item.tenant, item.spec.name, item.spec.provider)


def _resilience(entry: DeclaredTool) -> dict[str, Any]:
    """The original's keys, as a ResiliencePolicy: only what the entry sets."""
    policy: dict[str, Any] = {}
    if entry.timeout is not None:
        policy["deadline"] = entry.timeout
        # One attempt may not outlast the whole call.
        default_attempt = ResiliencePolicy.model_fields["attempt_timeout"].default
        if entry.timeout < default_attempt:
            policy["attempt_timeout"] = entry.timeout
    if entry.max_retries is not None:
        policy["max_retries"] = entry.max_retries
    if (breaker := entry.circuit_breaker) is not None:
        if breaker.max_failures is not None:
            policy["max_failures"] = breaker.max_failures
        if breaker.timeout is not None:
            policy["reset_timeout"] = breaker.timeout
    if (limit := entry.rate_limit) is not None:
        policy["requests_per_second"] = limit.requests_per_second
        if limit.burst is not None:
            policy["burst"] = limit.burst
    return policy


def _credentials(key: str, entry: DeclaredTool, provider: Provider) -> Credentials | None:
    token = entry.token.get_secret_value() if entry.token else None
    password = entry.password.get_secret_value() if entry.password else None
    if token is None and password is None:
        return None
    scheme = provider.credentials
    wanted = "username" if entry.username else "token"
    kind = (
        scheme.type(entry.credential_type)
        if entry.credential_type
        else next((kind for kind in scheme.types if wanted in kind.fields), None)
    )
    if kind is None:
        names = ", ".join(scheme.names())
        if entry.credential_type:
            raise ConfigError(f"{key}.credential_type: must be one of: {names}")
        raise ConfigError(f"{key}.username: {provider.name} takes no username; it takes: {names}")
    credentials = Credentials(
        type=kind.name,
        username=entry.username if "username" in kind.fields else None,
        # username + token, as the original wrote it, is a login with the token as password.
        password=(password or token) if "password" in kind.fields else None,
        token=token if "token" in kind.fields else None,
    )
    if (problem := scheme.problem(credentials)) is not None:
        field_name, message = problem
        raise ConfigError(f"{key}.{_CREDENTIAL_KEYS.get(field_name, field_name)}: {message}")
    return credentials


_CREDENTIAL_KEYS = {"type": "credential_type", "password": "password"}


def _webhook(key: str, entry: DeclaredTool, provider: Provider) -> _Webhook | None:
    if entry.webhook is None:
        return None
    scheme: WebhookScheme = entry.webhook.scheme or (
        "provider" if provider.webhook_verifier is not None else "standard"
    )
    if scheme == "provider" and provider.webhook_verifier is None:
        raise ConfigError(
            f"{key}.webhook.scheme: {provider.name} tools have no webhook scheme of their own; "
            "use standard (Standard Webhooks)"
        )
    secret = entry.webhook.secret.get_secret_value()
    if scheme == "standard" and not is_standard_secret(secret):
        raise ConfigError(
            f"{key}.webhook.secret: a Standard Webhooks secret is 'whsec_' followed by base64"
        )
    return _Webhook(scheme=scheme, secret=secret, allowed_events=entry.webhook.allowed_events)
