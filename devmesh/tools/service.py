"""ToolService: tool instances per tenant, their operations, and executing them.

This is the only place that executes an operation; REST and MCP call it with
the caller's tenant. Every lookup is scoped by tenant, and another tenant's tool
is reported exactly like a missing one.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import hmac
import json
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import httpx
import jsonschema_rs
import structlog
from cachetools import TTLCache
from pydantic import BaseModel, ValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from devmesh.adapters.clients import HttpClients
from devmesh.adapters.egress import EgressDenied, EgressPolicy, origin_of
from devmesh.adapters.http import public_address
from devmesh.adapters.operations import BuildRef, JsonArguments, Operation
from devmesh.adapters.protocols import Adapter
from devmesh.adapters.registry import Connection, Provider, ProviderRegistry
from devmesh.adapters.resilience import Resilience, ResiliencePolicy, ToolCall
from devmesh.adapters.upstream import Redactor
from devmesh.domain.errors import (
    Conflict,
    DevMeshError,
    Forbidden,
    InvalidInput,
    NotFound,
    UnknownTool,
)
from devmesh.domain.events import ToolRef
from devmesh.domain.limits import MAX_VALIDATION_ERRORS, check_call, shorten
from devmesh.domain.models import Credentials, LogLine, Tenant, ToolInstance
from devmesh.events.outbox import Outbox, call_event
from devmesh.security.vault import Vault
from devmesh.store.db import Database
from devmesh.store.rows import IdempotencyKeyRow, ToolCallRow, ToolDocumentRow, ToolRow, utcnow
from devmesh.tools.idempotency import IdempotencyStore, check_key, request_hash
from devmesh.tools.models import (
    CatalogEntry,
    OperationInfo,
    ProviderInfo,
    ToolCreate,
    ToolUpdate,
)
from devmesh.tools.naming import looks_like_id

__all__ = ["MANAGED_BY_CONFIG", "ToolService", "ToolUpdated"]

_log = structlog.get_logger(__name__)
_ADAPTER_CACHE_SIZE = 256
_ROW_CACHE_SIZE = 10_000
_CATALOG_CACHE_SIZE = 1_000

# (tenant id, tool id, build id) → the error pattern its failure analysis found.
ErrorPatterns = Callable[[str, str, str], Awaitable[str | None]]


class _LogTail(BaseModel):
    lines: list[LogLine]
    total: int


# Built operations of document-made instances (an OpenAPI description keeps its parsed
# document: GitHub's is ~100 MB in memory), so only a few are kept.
_DOCUMENT_CACHE_SIZE = 16
# A document read from a URL at registration: GitHub's whole description is 13 MB.
MAX_DOCUMENT_BYTES = 64 * 1024 * 1024
_DOCUMENT_TIMEOUT = 60.0
_SHOWN_OPERATIONS = 20
# Who owns an instance made other than through the API (``devmesh apply``: "config").
# Kept in the row's config under a key no provider setting can take (a leading "$"),
# and taken out of it before the provider or the tenant sees the config.
MANAGED_BY_CONFIG = "config"
_MANAGED_BY = "$managed_by"


def validation_message(exc: ValidationError, *, prefix: str = "") -> tuple[str, str]:
    """``(field, message)`` naming the first bad field, e.g. ``config.port``.

    Only the first few errors are listed, and names the caller chose are cut short:
    100,000 unknown keys must not make a megabyte answer."""
    parts = []
    fields = []
    for error in exc.errors(include_url=False, include_input=False)[:MAX_VALIDATION_ERRORS]:
        path = [prefix] if prefix else []
        path += [shorten(str(p)) for p in error["loc"]]
        field = ".".join(path) or "arguments"
        fields.append(field)
        parts.append(f"{field}: {error['msg']}")
    if (more := exc.error_count() - len(parts)) > 0:
        parts.append(f"and {more} more")
    return fields[0], "; ".join(parts)


@cache
def _schema(model: type[BaseModel]) -> dict[str, Any]:
    return model.model_json_schema()


def describe(operation: Operation[Any]) -> OperationInfo:
    input_schema = (
        dict(operation.input_schema)
        if operation.input_schema is not None
        else _schema(operation.input_model)
    )
    output_schema = (
        dict(operation.output_schema)
        if operation.output_schema is not None
        else _schema(operation.output_model)
    )
    return OperationInfo(
        name=operation.name,
        summary=operation.summary,
        input_schema=input_schema,
        output_schema=output_schema,
        read_only=operation.read_only,
        destructive=operation.destructive,
        idempotent=operation.idempotent,
        toolset=operation.toolset,
    )


class OperationSet:
    """One instance's operations by name, each described and checked once, lazily: a
    description with a thousand operations costs nothing until it is listed or called."""

    def __init__(self, operations: Sequence[Operation[Any]]) -> None:
        self.operations = list(operations)
        self._by_name = {op.name: op for op in self.operations}
        self._infos: dict[str, OperationInfo] = {}
        self._validators: dict[str, Any] = {}

    def get(self, name: str) -> Operation[Any] | None:
        return self._by_name.get(name)

    def info(self, op: Operation[Any]) -> OperationInfo:
        if (found := self._infos.get(op.name)) is None:
            found = self._infos[op.name] = describe(op)
        return found

    def arguments(self, tool: str, op: Operation[Any], arguments: Mapping[str, Any]) -> BaseModel:
        """``arguments`` checked against the operation's model or JSON Schema; an
        ``InvalidInput`` names the first bad field."""
        if op.input_schema is None:
            try:
                return op.input_model.model_validate(dict(arguments))
            except ValidationError as exc:
                field, message = validation_message(exc)
                raise InvalidInput(
                    f"invalid arguments for {tool}.{op.name}: {message}", field=field
                ) from None
        if (validator := self._validators.get(op.name)) is None:
            validator = self._validators[op.name] = jsonschema_rs.validator_for(
                self.info(op).input_schema
            )
        for error in validator.iter_errors(dict(arguments)):
            field = ".".join(shorten(str(part)) for part in error.instance_path) or "arguments"
            raise InvalidInput(
                f"invalid arguments for {tool}.{op.name}: {field}: {shorten(error.message, 200)}",
                field=field,
            )
        return JsonArguments.model_validate(dict(arguments))


@dataclass(frozen=True)
class ToolUpdated:
    """A changed tool, and whether the change dropped its stored credentials."""

    tool: ToolInstance
    credentials_cleared: bool


class ToolService:
    def __init__(
        self,
        *,
        db: Database,
        registry: ProviderRegistry,
        vault: Vault,
        clients: HttpClients,
        egress: EgressPolicy,
        resilience: Resilience,
        cache_ttl: float = 0.0,
        outbox: Outbox | None = None,
        error_patterns: ErrorPatterns | None = None,
    ) -> None:
        """``cache_ttl`` > 0 lets ``execute`` reuse a tool's row that long. Changes made
        here drop the tenant's entries at once; other replicas see them within the TTL.
        ``egress`` refuses a tool's address up front; ``clients`` enforce it again on
        every connection, whatever the address resolves to by then. ``error_patterns``
        looks up what the failure analysis found for a build, for ``get_build_logs``."""
        self._db = db
        self._registry = registry
        self._vault = vault
        self._clients = clients
        self._egress = egress
        self._resilience = resilience
        self._idempotency = IdempotencyStore(db)
        self._outbox = outbox or Outbox()
        self._error_patterns = error_patterns
        self._rows: TTLCache[tuple[str, str], ToolRow] | None = (
            TTLCache(maxsize=_ROW_CACHE_SIZE, ttl=cache_ttl) if cache_ttl > 0 else None
        )
        # MCP resolves a tool's exposed name against the tenant's catalog on every call.
        self._catalogs: TTLCache[str, list[CatalogEntry]] | None = (
            TTLCache(maxsize=_CATALOG_CACHE_SIZE, ttl=cache_ttl) if cache_ttl > 0 else None
        )
        # Told, after a commit, that a tenant's list of tools changed (MCP's
        # tools/list_changed). In-process only: another replica's listeners miss it.
        self._catalog_listeners: list[Callable[[Tenant], Awaitable[None]]] = []
        # Adapters keep per-instance state worth reusing (login sessions, resolved
        # schedulers); the key changes whenever the tool or its credentials change.
        self._adapters: OrderedDict[tuple[str, str, str], tuple[Adapter, Redactor]] = OrderedDict()
        self._static: dict[str, OperationSet] = {}
        self._documents: OrderedDict[tuple[str, str], OperationSet] = OrderedDict()

    def on_catalog_change(self, listener: Callable[[Tenant], Awaitable[None]]) -> None:
        """Call ``listener`` after a tool is registered or removed for a tenant."""
        self._catalog_listeners.append(listener)

    async def _catalog_changed(self, tenant: Tenant) -> None:
        for listener in self._catalog_listeners:
            try:
                await listener(tenant)
            except Exception:
                # A listener's failure must not undo or fail the change itself.
                _log.exception("catalog_listener_failed")

    # --- instances -------------------------------------------------------------

    async def register_tool(
        self, tenant: Tenant, spec: ToolCreate, *, managed_by: str | None = None
    ) -> ToolInstance:
        """Create the instance; ``managed_by`` marks who owns it when not the API."""
        provider = self._provider(spec.provider)
        config = _validate_config(provider, spec.config)
        if managed_by is not None:
            config[_MANAGED_BY] = managed_by
        base_url = _base_url(provider, spec.base_url)
        await self._check_destination(base_url)
        document = await self._load_document(provider, config, spec.spec)
        now = utcnow()
        row = ToolRow(
            id=str(uuid.uuid4()),
            tenant_id=tenant.id,
            name=spec.name,
            provider=provider.name,
            base_url=base_url,
            config=config,
            verify_tls=spec.verify_tls,
            credential_mode=spec.credential_mode,
            resilience=spec.resilience.model_dump(exclude_unset=True),
            auto_retry=spec.auto_retry.model_dump(exclude_unset=True),
            toolsets=_lowered(spec.toolsets),
            created_at=now,
            updated_at=now,
        )
        try:
            async with self._db.session() as session:
                session.add(row)
                if document is not None:
                    await session.flush()
                    session.add(
                        ToolDocumentRow(
                            tool_id=row.id,
                            sha256=hashlib.sha256(document.encode()).hexdigest(),
                            body=document,
                        )
                    )
        except IntegrityError as exc:
            raise Conflict(
                f"a tool named {spec.name!r} exists already", details={"name": spec.name}
            ) from exc
        finally:
            self._forget(tenant)
        await self._catalog_changed(tenant)
        return _instance(row)

    async def list_tools(self, tenant: Tenant) -> list[ToolInstance]:
        async with self._db.session() as session:
            rows = await session.scalars(
                select(ToolRow).where(ToolRow.tenant_id == tenant.id).order_by(ToolRow.name)
            )
            return [_instance(row) for row in rows]

    async def get_tool(self, tenant: Tenant, ref: str) -> ToolInstance:
        async with self._db.session() as session:
            return _instance(await _find(session, tenant, ref))

    async def update_tool(self, tenant: Tenant, ref: str, changes: ToolUpdate) -> ToolUpdated:
        """Apply ``changes``. Stored credentials are bound to the origin they were stored
        for, so a ``base_url`` on another origin drops them, unless ``changes`` carries
        new ones."""
        if changes.base_url is not None:
            await self._check_destination(str(changes.base_url))
        document = await self._changed_document(tenant, ref, changes)
        cleared = False
        try:
            async with self._db.session() as session:
                row = await _find(session, tenant, ref)
                if document is not None:
                    await session.merge(
                        ToolDocumentRow(
                            tool_id=row.id,
                            sha256=hashlib.sha256(document.encode()).hexdigest(),
                            body=document,
                        )
                    )
                if changes.base_url is not None:
                    moved = origin_of(str(changes.base_url)) != origin_of(row.base_url)
                    row.base_url = str(changes.base_url).rstrip("/")
                    if moved and row.credentials_sealed is not None:
                        _forget_credentials(row)
                        cleared = changes.credentials is None
                if changes.credentials is not None:
                    self._seal(row, changes.credentials)
                if changes.config is not None:
                    config = _validate_config(self._provider(row.provider), changes.config)
                    if _MANAGED_BY in row.config:
                        config[_MANAGED_BY] = row.config[_MANAGED_BY]
                    row.config = config
                if changes.credential_mode is not None:
                    row.credential_mode = changes.credential_mode
                if changes.verify_tls is not None:
                    row.verify_tls = changes.verify_tls
                if changes.resilience is not None:
                    row.resilience = changes.resilience.model_dump(exclude_unset=True)
                if changes.auto_retry is not None:
                    row.auto_retry = changes.auto_retry.model_dump(exclude_unset=True)
                if "toolsets" in changes.model_fields_set:
                    row.toolsets = _lowered(changes.toolsets)
                row.updated_at = utcnow()
                if cleared:
                    _log.info("tool_credentials_cleared", tool=row.name, reason="origin_changed")
                updated = ToolUpdated(tool=_instance(row), credentials_cleared=cleared)
        finally:
            self._forget(tenant)
        if "toolsets" in changes.model_fields_set:
            await self._catalog_changed(tenant)
        return updated

    async def delete_tool(self, tenant: Tenant, ref: str) -> None:
        try:
            async with self._db.session() as session:
                await session.delete(await _find(session, tenant, ref))
        finally:
            self._forget(tenant)
        await self._catalog_changed(tenant)

    async def set_credentials(self, tenant: Tenant, ref: str, credentials: Credentials) -> None:
        try:
            async with self._db.session() as session:
                row = await _find(session, tenant, ref)
                self._seal(row, credentials)
                row.updated_at = utcnow()
        finally:
            self._forget(tenant)

    async def credentials_equal(
        self, tenant: Tenant, ref: str, credentials: Credentials | None
    ) -> bool:
        """Whether the tool's stored credentials are ``credentials`` (``None``: none
        stored). Compared in memory, so a plan can say "update" without showing either."""
        async with self._db.session() as session:
            row = await _find(session, tenant, ref)
        if row.credentials_sealed is None:
            return credentials is None
        if credentials is None:
            return False
        stored = self._stored_credentials(row)
        return stored is not None and hmac.compare_digest(
            stored.model_dump_json().encode(), credentials.model_dump_json().encode()
        )

    async def delete_credentials(self, tenant: Tenant, ref: str) -> None:
        try:
            async with self._db.session() as session:
                row = await _find(session, tenant, ref)
                _forget_credentials(row)
                row.updated_at = utcnow()
        finally:
            self._forget(tenant)

    # --- operations ------------------------------------------------------------

    async def operations(self, tenant: Tenant, ref: str) -> list[OperationInfo]:
        tool = await self.get_tool(tenant, ref)
        found = await self._operations(tool.id, tool.provider, tool.updated_at.isoformat())
        return [found.info(op) for op in found.operations]

    async def catalog(self, tenant: Tenant) -> list[CatalogEntry]:
        """Every (tool, operation) the tenant can call, in a stable order."""
        if self._catalogs is not None and (cached := self._catalogs.get(tenant.id)) is not None:
            return cached
        entries = []
        for tool in await self.list_tools(tenant):
            if (provider := self._registry.get(tool.provider)) is None:
                continue
            found = await self._operations(tool.id, tool.provider, tool.updated_at.isoformat())
            entries += [
                CatalogEntry(
                    tool=tool.name,
                    provider=tool.provider,
                    operation=found.info(op),
                    provider_title=provider.title,
                    provider_description=provider.description,
                    default_toolsets=tool.toolsets,
                )
                for op in found.operations
            ]
        entries.sort(key=lambda entry: entry.qualified_name)
        if self._catalogs is not None:
            self._catalogs[tenant.id] = entries
        return entries

    def providers(self) -> list[ProviderInfo]:
        """The installed providers, as agents should know them."""
        return [
            ProviderInfo(
                name=provider.name,
                title=provider.title,
                description=provider.description,
                operations=[op.name for op in provider.operations],
            )
            for provider in self._registry
        ]

    async def execute(
        self,
        tenant: Tenant,
        ref: str,
        operation: str,
        arguments: Mapping[str, Any],
        *,
        upstream_token: str | None = None,
        idempotency_key: str | None = None,
        read_only: bool = False,
    ) -> dict[str, Any]:
        """Run one operation of one of the tenant's tools; returns its JSON result.

        With an ``idempotency_key``, a mutating operation runs at most once per key
        and tenant in 24 hours; reads ignore the key, being safe to repeat anyway.
        ``read_only`` (a read-only key or connection) refuses every operation not
        hinted read-only, before its arguments are looked at.
        """
        check_call(arguments, upstream_token=upstream_token)
        row = await self._row(tenant, ref)
        provider = self._provider(row.provider)
        found = await self._operations(row.id, row.provider, row.updated_at.isoformat())
        op = found.get(operation)
        if op is None:
            names = [o.name for o in found.operations]
            available = ", ".join(names[:_SHOWN_OPERATIONS])
            if len(names) > _SHOWN_OPERATIONS:
                available += f" and {len(names) - _SHOWN_OPERATIONS} more (list them)"
            raise UnknownTool(
                f"tool {row.name!r} has no operation {shorten(operation)!r}; "
                f"it offers: {available or 'none'}",
                details={"tool": row.name, "operation": operation},
            )
        if read_only and not op.read_only:
            raise Forbidden(
                f"{row.name}.{op.name} changes state and this API key or connection is "
                "read-only; only operations marked read-only may run",
                details={"tool": row.name, "operation": op.name, "read_only": True},
            )
        args = found.arguments(row.name, op, arguments)
        if op.read_only:
            result = await self._run(row, provider, op, args, upstream_token)
            if op.name == "get_build_logs" and self._error_patterns is not None:
                build_id = str(result.get("build_id") or arguments.get("build_id"))
                result["error_pattern"] = await self._error_patterns(tenant.id, row.id, build_id)
            return result
        if idempotency_key is None:
            result = await self._run(row, provider, op, args, upstream_token)
            await self._record_call(tenant, row, op, result, idempotency_key=None)
            return result
        key = check_key(idempotency_key)
        fingerprint = request_hash(
            tool=row.id, operation=op.name, arguments=args.model_dump(mode="json")
        )
        replay = await self._idempotency.claim(tenant, key, fingerprint)
        if replay is not None:
            _log.info("tool_call_replayed", tool=row.name, operation=op.name)
            return replay
        try:
            result = await self._run(row, provider, op, args, upstream_token)
            await self._record_call(tenant, row, op, result, idempotency_key=key)
        except BaseException:
            # The call failed (or its record did), so the key is free again for the
            # caller's retry. Shielded: a cancelled request must not leave the key
            # claimed for a day.
            await asyncio.shield(self._idempotency.release(tenant, key))
            raise
        return result

    async def _run(
        self,
        row: ToolRow,
        provider: Provider,
        op: Operation[Any],
        args: BaseModel,
        upstream_token: str | None,
    ) -> dict[str, Any]:
        credentials = self._credentials(row, upstream_token)
        # Whatever a provider puts in an error, the credentials of this call stay out.
        adapter, redactor = self._adapter(row, provider, credentials)
        policy = ResiliencePolicy.model_validate(row.resilience)
        call = ToolCall(
            tool_id=row.id,
            tool=row.name,
            provider=row.provider,
            operation=op.name,
            read_only=op.read_only,
        )

        async def attempt() -> BaseModel:
            try:
                return await op.run(adapter, args)
            except NotImplementedError:
                raise NotFound(
                    f"{row.provider} does not support {op.name}",
                    details={"tool": row.name, "operation": op.name},
                ) from None
            except DevMeshError as exc:
                redactor.scrub(exc)
                raise

        _log.info("tool_call", tool=row.name, provider=row.provider, operation=op.name)
        result = await self._resilience.run(call, policy, attempt)
        return result.model_dump(mode="json")

    async def read_build_log(
        self, tenant: Tenant, ref: str, build_id: str, *, max_lines: int
    ) -> tuple[list[LogLine], int]:
        """The last ``max_lines`` lines of a build's whole log and its length: for the
        knowledge layer, which reads more than a page at once. Same credentials,
        resilience and metrics as ``get_build_logs``."""
        row = await self._row(tenant, ref)
        provider = self._provider(row.provider)
        if provider.operation("get_build_logs") is None:
            raise NotFound(f"{row.provider} does not offer build logs", details={"tool": row.name})

        async def tail(adapter: Any, args: BuildRef) -> _LogTail:
            lines = await adapter.read_log_lines(args.build_id, failed_only=False)
            return _LogTail(lines=list(lines[-max_lines:]), total=len(lines))

        op: Operation[Any] = Operation(
            name="get_build_logs",
            summary="",
            input_model=BuildRef,
            output_model=_LogTail,
            run=tail,
            read_only=True,
            idempotent=True,
        )
        read = _LogTail.model_validate(
            await self._run(row, provider, op, BuildRef(build_id=build_id), None)
        )
        return read.lines, read.total

    # --- events: the outbox of mutating calls -----------------------------------

    async def _record_call(
        self,
        tenant: Tenant,
        row: ToolRow,
        op: Operation[Any],
        result: dict[str, Any],
        *,
        idempotency_key: str | None,
    ) -> None:
        """Record a successful mutating call, its idempotency result and its event in
        one transaction: all of them or none (the outbox)."""
        event = call_event(
            tenant_id=tenant.id,
            tool=ToolRef(id=row.id, name=row.name),
            provider=row.provider,
            operation=op.name,
            result=result,
            build_subject=provider.subject_of
            if (provider := self._registry.get(row.provider)) is not None
            else None,
        )
        async with self._db.session() as session:
            if idempotency_key is not None:
                claimed = await session.get(IdempotencyKeyRow, (tenant.id, idempotency_key))
                if claimed is not None:
                    claimed.response = result
            session.add(
                ToolCallRow(
                    id=str(uuid.uuid4()),
                    tenant_id=tenant.id,
                    tool_id=row.id,
                    tool_name=row.name,
                    operation=op.name,
                    subject=event.subject,
                    event_id=event.id,
                    idempotency_key=idempotency_key,
                    created_at=event.occurred_at,
                )
            )
            await session.flush()
            await self._outbox.add(session, event)
        self._outbox.committed()

    # --- operations made from a document ------------------------------------------

    async def _operations(self, tool_id: str, provider_name: str, version: str) -> OperationSet:
        """The instance's operations: its provider's, and those of its stored document
        (cached per instance and ``version``, its ``updated_at``)."""
        provider = self._provider(provider_name)
        if provider.document is None:
            if (static := self._static.get(provider.name)) is None:
                static = self._static[provider.name] = OperationSet(provider.operations)
            return static
        key = (tool_id, version)
        if (cached := self._documents.get(key)) is not None:
            self._documents.move_to_end(key)
            return cached
        async with self._db.session() as session:
            row = await session.get(ToolRow, tool_id)
            stored = await session.get(ToolDocumentRow, tool_id)
        operations: list[Operation[Any]] = list(provider.operations)
        if row is not None and stored is not None:
            config = provider.config_model.model_validate(_provider_config(row))
            make, body = provider.document.operations, stored.body
            # Parsing and indexing a large description takes a moment; not on the loop.
            operations += await asyncio.to_thread(lambda: make(json.loads(body), config))
        built = OperationSet(operations)
        self._documents[key] = built
        if len(self._documents) > _DOCUMENT_CACHE_SIZE:
            self._documents.popitem(last=False)
        return built

    async def _load_document(
        self, provider: Provider, config: dict[str, Any], given: Mapping[str, Any] | None
    ) -> str | None:
        """The document to store with a new instance, as JSON text, or ``None``."""
        if provider.document is None:
            if given is not None:
                raise InvalidInput(
                    f"{provider.name} tools take no spec; leave it out", field="spec"
                )
            return None
        model = provider.config_model.model_validate(config)
        document = await provider.document.load(model, given, self._fetch)
        return await asyncio.to_thread(_as_text, document)

    async def _changed_document(self, tenant: Tenant, ref: str, changes: ToolUpdate) -> str | None:
        """The document to store after ``changes``, or ``None`` to keep the stored one.

        A new ``spec``, or a config with another ``spec_url``, is read and checked as at
        registration; any other config change is checked against the stored document
        (its operation selection, its security scheme) and keeps it."""
        if changes.spec is None and changes.config is None:
            return None
        async with self._db.session() as session:
            row = await _find(session, tenant, ref)
            provider = self._provider(row.provider)
            if provider.document is None:
                if changes.spec is not None:
                    raise InvalidInput(
                        f"{provider.name} tools take no spec; leave it out", field="spec"
                    )
                return None
            stored = await session.get(ToolDocumentRow, row.id)
        old = _provider_config(row)
        new = _validate_config(provider, changes.config) if changes.config is not None else old
        given: Mapping[str, Any] | None = changes.spec
        if given is None and new.get("spec_url") == old.get("spec_url") and stored is not None:
            given = json.loads(stored.body)
        model = provider.config_model.model_validate(new)
        document = await provider.document.load(model, given, self._fetch)
        text = await asyncio.to_thread(_as_text, document)
        return None if stored is not None and stored.body == text else text

    async def _fetch(self, url: str) -> bytes:
        """``url``'s body, through the egress policy, bounded in size and time; an
        ``InvalidInput`` (field ``config``) says why not."""
        try:
            await self._egress.check_url(url)
        except EgressDenied as exc:
            raise InvalidInput(f"{url} is refused: {exc.message}", field="config") from None
        where = public_address(url)
        try:
            async with asyncio.timeout(_DOCUMENT_TIMEOUT):
                # Every hop of a redirect passes the egress policy again (the transport's).
                client = self._clients.client()
                async with client.stream("GET", url, follow_redirects=True) as response:
                    if not response.is_success:
                        raise InvalidInput(
                            f"{where} answered {response.status_code}", field="config"
                        )
                    body = bytearray()
                    async for chunk in response.aiter_bytes():
                        body += chunk
                        if len(body) > MAX_DOCUMENT_BYTES:
                            raise InvalidInput(
                                f"{where} is larger than {MAX_DOCUMENT_BYTES} bytes",
                                field="config",
                            )
                    return bytes(body)
        except TimeoutError:
            raise InvalidInput(
                f"{where} did not answer within {_DOCUMENT_TIMEOUT:.0f} s", field="config"
            ) from None
        except EgressDenied as exc:
            raise InvalidInput(f"{where} is refused: {exc.message}", field="config") from None
        except httpx.HTTPError as exc:
            raise InvalidInput(
                f"{where} could not be read: {type(exc).__name__}", field="config"
            ) from None

    # --- internals -------------------------------------------------------------

    async def _row(self, tenant: Tenant, ref: str) -> ToolRow:
        if self._rows is not None and (row := self._rows.get((tenant.id, ref))) is not None:
            return row
        async with self._db.session() as session:
            row = await _find(session, tenant, ref)
        if self._rows is not None:
            self._rows[(tenant.id, ref)] = row
        return row

    def _forget(self, tenant: Tenant) -> None:
        # After the change commits, so no call can cache the row as it was.
        if self._rows is not None:
            for key in [key for key in self._rows if key[0] == tenant.id]:
                self._rows.pop(key, None)
        if self._catalogs is not None:
            self._catalogs.pop(tenant.id, None)

    async def _check_destination(self, base_url: str) -> None:
        try:
            await self._egress.check_url(base_url)
        except EgressDenied as exc:
            raise InvalidInput(f"base_url is refused: {exc.message}", field="base_url") from None

    def _seal(self, row: ToolRow, credentials: Credentials) -> None:
        scheme = self._provider(row.provider).credentials
        if (problem := scheme.problem(credentials)) is not None:
            field, message = problem
            raise InvalidInput(
                f"{row.provider} credentials: {message}", field=f"credentials.{field}"
            )
        origin = origin_of(row.base_url)
        row.credentials_key_id, row.credentials_sealed = self._vault.encrypt(
            credentials.model_dump_json().encode(),
            tenant_id=row.tenant_id,
            bound_to=row.id,
            origin=origin,
        )
        row.credentials_origin = origin

    def _provider(self, name: str) -> Provider:
        provider = self._registry.get(name)
        if provider is None:
            raise InvalidInput(
                f"unknown provider {name!r}; installed: {', '.join(self._registry.names())}",
                field="provider",
            )
        return provider

    def _credentials(self, row: ToolRow, upstream_token: str | None) -> Credentials | None:
        if upstream_token and row.credential_mode in ("passthrough", "either"):
            # The provider says what a caller's own token is (Bearer, PRIVATE-TOKEN, ...).
            scheme = self._provider(row.provider).credentials
            passed = scheme.passthrough_credentials(upstream_token)
            if passed is None:
                raise InvalidInput(
                    f"{row.provider} tools cannot take the caller's own token; "
                    "store credentials for the tool instead",
                    field="X-Upstream-Token",
                )
            return passed
        if row.credential_mode == "passthrough":
            raise InvalidInput(
                f"tool {row.name!r} takes the caller's own credentials: send X-Upstream-Token",
                field="X-Upstream-Token",
            )
        return self._stored_credentials(row)

    def _stored_credentials(self, row: ToolRow) -> Credentials | None:
        if row.credentials_sealed is None or row.credentials_key_id is None:
            return None
        plaintext = self._vault.decrypt(
            row.credentials_sealed,
            key_id=row.credentials_key_id,
            tenant_id=row.tenant_id,
            bound_to=row.id,
            # The origin the call goes to, not the one recorded: credentials sealed for
            # another origin do not decrypt, whatever the row says.
            origin=origin_of(row.base_url) if row.credentials_origin is not None else None,
        )
        return Credentials.model_validate_json(plaintext)

    def _adapter(
        self, row: ToolRow, provider: Provider, credentials: Credentials | None
    ) -> tuple[Adapter, Redactor]:
        """The instance's adapter for these credentials, and the redactor of them (made
        once with the adapter: building its pattern costs 15 µs, a call's whole share of
        the wrapper's CPU otherwise). Only ``scrub`` is ever asked of the redactor."""
        fingerprint = (
            hashlib.sha256(credentials.model_dump_json().encode()).hexdigest()
            if credentials
            else ""
        )
        key = (row.id, row.updated_at.isoformat(), fingerprint)
        cached = self._adapters.get(key)
        if cached is not None:
            self._adapters.move_to_end(key)
            return cached
        config = provider.config_model.model_validate(_provider_config(row))
        adapter = provider.create_adapter(
            Connection(
                base_url=row.base_url,
                config=config,
                credentials=credentials,
                http=self._clients.client(verify_tls=row.verify_tls),
                policy=dataclasses.replace(provider.http, verify_tls=row.verify_tls),
            )
        )
        made = self._adapters[key] = (adapter, Redactor.of(credentials))
        if len(self._adapters) > _ADAPTER_CACHE_SIZE:
            self._adapters.popitem(last=False)
        return made


def _as_text(document: Mapping[str, Any]) -> str:
    return json.dumps(document, separators=(",", ":"))


def validate_config(provider: Provider, config: Mapping[str, Any]) -> dict[str, Any]:
    """The config as it would be stored: checked by the provider, defaults left out."""
    return _validate_config(provider, config)


def _provider_config(row: ToolRow) -> dict[str, Any]:
    return {key: value for key, value in row.config.items() if key != _MANAGED_BY}


def _validate_config(provider: Provider, config: Mapping[str, Any]) -> dict[str, Any]:
    try:
        validated = provider.config_model.model_validate(dict(config))
    except ValidationError as exc:
        field, message = validation_message(exc, prefix="config")
        raise InvalidInput(f"invalid {provider.name} config: {message}", field=field) from None
    return validated.model_dump(mode="json", exclude_unset=True)


def _base_url(provider: Provider, given: object | None) -> str:
    if given is not None:
        return str(given).rstrip("/")
    if provider.default_base_url is None:
        raise InvalidInput(
            f"base_url is required: {provider.name} has no default address", field="base_url"
        )
    return provider.default_base_url.rstrip("/")


def _lowered(toolsets: list[str] | None) -> list[str] | None:
    return None if toolsets is None else sorted({name.lower() for name in toolsets})


def _forget_credentials(row: ToolRow) -> None:
    row.credentials_key_id, row.credentials_sealed, row.credentials_origin = None, None, None


def _instance(row: ToolRow) -> ToolInstance:
    return ToolInstance(
        id=row.id,
        tenant_id=row.tenant_id,
        name=row.name,
        provider=row.provider,
        base_url=row.base_url,
        config=_provider_config(row),
        managed_by=row.config.get(_MANAGED_BY),
        verify_tls=row.verify_tls,
        credential_mode=row.credential_mode,  # type: ignore[arg-type]
        resilience=dict(row.resilience or {}),
        auto_retry=dict(row.auto_retry or {}),
        has_credentials=row.credentials_sealed is not None,
        toolsets=row.toolsets,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


async def _find(session: AsyncSession, tenant: Tenant, ref: str) -> ToolRow:
    # A reference shaped like an id is an id, never a name: otherwise a tool named
    # like another's id would shadow it, or be shadowed (names may not take that
    # shape any more; rows from before may, and stay reachable by their own id).
    match = ToolRow.id == ref.lower() if looks_like_id(ref) else ToolRow.name == ref
    row = await session.scalar(select(ToolRow).where(ToolRow.tenant_id == tenant.id, match))
    if row is None:
        raise UnknownTool(
            f"no tool {ref!r}; GET /api/v1/tools or MCP tools/list shows the tools you can use"
        )
    return row
