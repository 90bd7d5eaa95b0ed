"""Providers, found through the ``devmesh.providers`` entry-point group.

Built-in providers register exactly as a third-party package would. Loading fails
at start-up, naming the entry point, when one will not import or is not a
``Provider``: a half-loaded catalog is worse than a service that will not start.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict

from devmesh.adapters.operations import Operation
from devmesh.adapters.protocols import Adapter
from devmesh.domain.models import Credentials

__all__ = [
    "ENTRY_POINT_GROUP",
    "Connection",
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


@dataclass(frozen=True)
class Provider:
    """A provider package's one public object, named by its entry point."""

    name: str
    title: str
    create_adapter: Callable[[Connection], Adapter]
    operations: Sequence[Operation[Any]]
    config_model: type[BaseModel] = NoConfig
    description: str = ""
    docs_url: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def operation(self, name: str) -> Operation[Any] | None:
        return next((op for op in self.operations if op.name == name), None)


class ProviderRegistry:
    def __init__(self, providers: Iterable[Provider] = ()) -> None:
        self._providers: dict[str, Provider] = {}
        for provider in providers:
            self.add(provider)

    def add(self, provider: Provider) -> None:
        if provider.name in self._providers:
            raise ProviderLoadError(f"provider {provider.name!r} is registered twice")
        self._providers[provider.name] = provider

    def get(self, name: str) -> Provider | None:
        return self._providers.get(name)

    def names(self) -> list[str]:
        return sorted(self._providers)

    def __iter__(self) -> Iterable[Provider]:
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
    return loaded
