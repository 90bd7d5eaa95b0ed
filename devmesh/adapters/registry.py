"""Providers, found through the ``devmesh.providers`` entry-point group.

Built-in providers register exactly as a third-party package would. Loading fails
at start-up, naming the entry point, when one will not import or is not a
``Provider``: a half-loaded catalog is worse than a service that will not start.

Every provider added is checked against its operations, by inspecting its adapter
class (nothing is called): a method an offered operation needs (``Operation.requires``)
that the class lacks fails start-up, naming provider, operation and method; a method
marked ``@unsupported`` (``adapters.protocols``) quietly withdraws the operations that
need it, so they are never offered.
"""

from __future__ import annotations

import dataclasses
import re
import typing
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict

from devmesh.adapters.credentials import CredentialScheme
from devmesh.adapters.http import HttpPolicy, UpstreamHttp
from devmesh.adapters.operations import Operation
from devmesh.adapters.protocols import Adapter, is_unsupported
from devmesh.adapters.upstream import Redactor
from devmesh.adapters.webhooks import WebhookNormaliser, WebhookVerifier
from devmesh.domain.models import Credentials

__all__ = [
    "ENTRY_POINT_GROUP",
    "Connection",
    "Fetch",
    "InstanceDocument",
    "Provider",
    "ProviderLoadError",
    "ProviderRegistry",
]

ENTRY_POINT_GROUP = "devmesh.providers"
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


class ProviderLoadError(RuntimeError):
    """A provider entry point is broken; the message names ``group:name``."""


class NoConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True)
class Connection:
    """Everything an adapter needs to reach one tool instance.

    ToolService caches the adapter per instance and credentials, so state an adapter
    keeps (a login session, resolved builders) lives as long as the instance is unchanged.
    """

    base_url: str
    config: BaseModel
    credentials: Credentials | None
    http: httpx.AsyncClient
    # The provider's HTTP policy with this instance's verify_tls; ``http`` already
    # verifies (or not) accordingly.
    policy: HttpPolicy = field(default_factory=HttpPolicy)

    def upstream(
        self, *, name: str, auth: httpx.Auth | None, timeout: float = 30.0, **options: Any
    ) -> UpstreamHttp:
        """The kit's ``UpstreamHttp`` for this instance; ``options`` go to its constructor
        (``error_text``, ``auth_advice``, ``base_url_hint``, ``base_url``)."""
        options.setdefault("base_url", self.base_url)
        return UpstreamHttp(
            name=name,
            http=self.http,
            redactor=Redactor.of(self.credentials),
            timeout=timeout,
            auth=auth,
            policy=self.policy,
            **options,
        )


Fetch = Callable[[str], Awaitable[bytes]]
"""Reads a URL through the service's egress policy, bounded in size and time; raises
``InvalidInput`` (field ``config.<key>``) when it cannot."""


@dataclass(frozen=True)
class InstanceDocument:
    """For a provider whose operations come from a document each instance stores (an
    OpenAPI description), not from a fixed list.

    ``load(config, given, fetch)`` runs once, at registration: it takes the document
    given in the request (``given``) or reads it with ``fetch`` (a URL in the config),
    checks it, and returns it as it is to be stored; a bad document is an
    ``InvalidInput`` saying where. ``operations(document, config)`` lists the instance's
    operations; ToolService calls it once per stored document and config, and caches it.
    """

    load: Callable[[BaseModel, Mapping[str, Any] | None, Fetch], Awaitable[dict[str, Any]]]
    operations: Callable[[Mapping[str, Any], BaseModel], Sequence[Operation[Any]]]


@dataclass(frozen=True)
class Provider:
    """A provider package's one public object, named by its entry point.

    ``create_adapter`` is the adapter class, or a factory; a factory must name the class
    it returns in ``adapter_type``, which the start-up check inspects. ``description``
    is for agents: MCP shows it in the server's instructions and in every tool of the
    provider. ``default_base_url`` lets a tenant register a tool without one (SaaS
    services). ``build_subject`` names a build for its whole life, from the build as the
    operations return it, when its ``id`` changes while it runs (Buildbot: a trigger's
    ``br-<n>``, then the build's number): every event about the build, from a call, a
    webhook or the watcher, takes it as its subject, so each is recorded once.
    ``credentials`` says which credentials it takes and how they are sent;
    ``http`` its redirect, cookie and TLS policy (TLS verification is per instance).
    """

    name: str
    title: str
    create_adapter: Callable[[Connection], Adapter]
    operations: Sequence[Operation[Any]]
    config_model: type[BaseModel] = NoConfig
    description: str = ""
    docs_url: str | None = None
    default_base_url: str | None = None
    credentials: CredentialScheme = field(default_factory=CredentialScheme)
    http: HttpPolicy = field(default_factory=HttpPolicy)
    adapter_type: type[Any] | None = None
    webhook_verifier: WebhookVerifier | None = None
    webhook_normaliser: WebhookNormaliser | None = None
    build_subject: Callable[[Mapping[str, Any]], str | None] | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
    # Set when each instance's operations come from its own document; ``operations``
    # is then what every instance offers besides (usually nothing).
    document: InstanceDocument | None = None

    def operation(self, name: str) -> Operation[Any] | None:
        return next((op for op in self.operations if op.name == name), None)

    def subject_of(self, build: Mapping[str, Any]) -> str | None:
        """The subject of an event about ``build``: its lasting name, else its id."""
        lasting = self.build_subject(build) if self.build_subject is not None else None
        if lasting is not None:
            return lasting
        current = build.get("id")
        return str(current) if current is not None else None


class ProviderRegistry:
    def __init__(self, providers: Iterable[Provider] = ()) -> None:
        self._providers: dict[str, Provider] = {}
        for provider in providers:
            self.add(provider)

    def add(self, provider: Provider) -> None:
        """Register ``provider``, checked against its operations (see the module doc)."""
        if provider.name in self._providers:
            raise ProviderLoadError(f"provider {provider.name!r} is registered twice")
        self._providers[provider.name] = checked(provider)

    def get(self, name: str) -> Provider | None:
        return self._providers.get(name)

    def names(self) -> list[str]:
        return sorted(self._providers)

    def __iter__(self) -> Iterator[Provider]:
        return iter(self._providers[name] for name in self.names())

    @classmethod
    def from_entry_points(cls, *, group: str = ENTRY_POINT_GROUP) -> ProviderRegistry:
        return cls(_load(ep, group) for ep in entry_points(group=group))


def _load(entry_point: EntryPoint, group: str) -> Provider:
    where = f"{group}:{entry_point.name}"
    try:
        loaded = entry_point.load()
    except Exception as exc:
        raise ProviderLoadError(f"{where} ({entry_point.value}) failed to load: {exc!r}") from exc
    if not isinstance(loaded, Provider):
        raise ProviderLoadError(
            f"{where} ({entry_point.value}) is a {type(loaded).__name__}, "
            "not a devmesh.adapters.registry.Provider"
        )
    if loaded.name != entry_point.name or not _NAME.match(loaded.name):
        raise ProviderLoadError(
            f"{where}: the provider calls itself {loaded.name!r}; the entry point name and "
            "the provider name must match and be lowercase letters, digits or '_'"
        )
    names = [op.name for op in loaded.operations]
    if len(set(names)) != len(names):
        raise ProviderLoadError(f"{where}: operation names repeat: {names}")
    try:
        return checked(loaded)
    except ProviderLoadError as exc:
        raise ProviderLoadError(f"{where}: {exc}") from exc


def checked(provider: Provider) -> Provider:
    """``provider`` offering only the operations its adapter class can serve.

    Raises ``ProviderLoadError`` naming provider, operation and method when the class
    lacks a method an operation needs; drops operations whose methods are marked
    ``@unsupported``. Nothing is called: only the class is inspected.
    """
    adapter = _adapter_class(provider)
    where = f"provider {provider.name!r} ({adapter.__module__}.{adapter.__qualname__})"
    if not callable(getattr(adapter, "ping", None)):
        raise ProviderLoadError(f"{where} has no method 'ping', which every adapter needs")
    offered: list[Operation[Any]] = []
    for op in provider.operations:
        withdrawn = False
        for method in op.requires:
            found = getattr(adapter, method, None)
            if not callable(found):
                raise ProviderLoadError(
                    f"{where} offers operation {op.name!r}, which needs the adapter method "
                    f"{method!r}; the adapter has none. Implement it, mark it @unsupported, "
                    "or leave the operation out of the provider's operations"
                )
            withdrawn = withdrawn or is_unsupported(found)
        if not withdrawn:
            offered.append(op)
    if len(offered) == len(provider.operations):
        return provider
    return dataclasses.replace(provider, operations=tuple(offered))


def _adapter_class(provider: Provider) -> type[Any]:
    if provider.adapter_type is not None:
        return provider.adapter_type
    if isinstance(provider.create_adapter, type):
        return provider.create_adapter
    try:
        returned = typing.get_type_hints(provider.create_adapter).get("return")
    except Exception:  # an annotation that does not resolve says nothing either
        returned = None
    if isinstance(returned, type) and returned not in (Adapter, Any, object):
        return returned
    raise ProviderLoadError(
        f"provider {provider.name!r}: create_adapter is not a class; name the class it "
        "returns in Provider.adapter_type, so its methods can be checked at start-up"
    )
