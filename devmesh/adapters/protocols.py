"""What a provider implements. Adapters are async and raise only ``AdapterError``s."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from devmesh.domain.models import Build, BuildRequest, BuildStatus, LogLine

__all__ = ["Adapter", "CIAdapter", "LogSelection"]


class LogSelection(Protocol):
    """Which lines a log read wants; adapters may use it to fetch less."""

    @property
    def failed_only(self) -> bool: ...


@runtime_checkable
class Adapter(Protocol):
    """Any tool adapter: it can say whether its upstream answers."""

    async def ping(self) -> None:
        """Raise an ``AdapterError`` unless the upstream answers with our credentials."""


@runtime_checkable
class CIAdapter(Adapter, Protocol):
    """A CI system. A provider lists the operations it supports; only those become tools.

    A method a provider does not support may raise ``NotImplementedError``; the
    operation that needs it is then simply not offered.
    """

    async def trigger_build(self, request: BuildRequest) -> Build: ...

    async def get_build(self, build_id: str) -> Build: ...

    async def list_builds(
        self, *, project: str | None, status: BuildStatus | None, limit: int
    ) -> list[Build]: ...

    async def cancel_build(self, build_id: str) -> Build: ...

    async def retry_build(self, build_id: str) -> Build: ...

    async def read_log_lines(self, build_id: str, *, failed_only: bool) -> list[LogLine]:
        """The build's log lines, numbered from 1 across steps.

        ``failed_only`` keeps the steps that failed, when the upstream can tell.
        Paging, tailing and searching happen above the adapter (``adapters.logs``),
        so every provider gets the same bounded, agent-friendly log tools.
        """
        ...
