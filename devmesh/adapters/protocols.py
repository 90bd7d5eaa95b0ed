"""What a provider implements. Adapters are async and raise only ``AdapterError``s."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypeVar, runtime_checkable

from devmesh.domain.models import (
    Artifact,
    ArtifactChunk,
    Build,
    BuildRequest,
    BuildStatus,
    LogLine,
    Pipeline,
    PipelineRequest,
    PipelineRun,
)

__all__ = [
    "Adapter",
    "ArtifactAdapter",
    "CIAdapter",
    "LogSelection",
    "PipelineAdapter",
    "is_unsupported",
    "unsupported",
]

F = TypeVar("F", bound=Callable[..., Any])
_UNSUPPORTED = "__devmesh_unsupported__"


def unsupported(method: F) -> F:
    """Mark an adapter method the upstream cannot serve: the operations needing it are
    not offered (checked at start-up, without calling it). Its body should raise
    ``NotImplementedError``, for a caller that reaches it some other way."""
    setattr(method, _UNSUPPORTED, True)
    return method


def is_unsupported(method: Any) -> bool:
    return bool(getattr(method, _UNSUPPORTED, False))


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

    A method the upstream cannot serve is marked ``@unsupported`` (and raises
    ``NotImplementedError``): the operations that need it are then not offered, as the
    registry sees at start-up. A method missing altogether fails start-up.
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


@runtime_checkable
class PipelineAdapter(Adapter, Protocol):
    """A CI system that starts several builds as one run (a pipeline, workflow or scheduler)."""

    async def list_pipelines(self) -> list[Pipeline]: ...

    async def trigger_pipeline(self, request: PipelineRequest) -> PipelineRun:
        """Start every project of the pipeline; the run reads as queued at first."""
        ...

    async def get_pipeline_run(self, run_id: str) -> PipelineRun:
        """The run with one build per project, queued ones included."""
        ...


@runtime_checkable
class ArtifactAdapter(Adapter, Protocol):
    """A CI system whose builds leave files behind."""

    async def list_artifacts(self, build_id: str) -> list[Artifact]: ...

    async def read_artifact(
        self, build_id: str, artifact_id: str, *, offset: int, limit: int
    ) -> ArtifactChunk:
        """At most ``limit`` bytes from ``offset``, never the whole artifact unasked.

        The adapter stops reading upstream once it has them (and knows whether more
        follow), so memory and the answer stay bounded however large the artifact.
        Turning bytes into text or base64 happens above (``adapters.artifacts``).
        """
        ...
