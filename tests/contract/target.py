"""What a provider supplies to the contract suite: its test server and a few facts."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devmesh.domain.models import BuildRequest, Credentials, PipelineRequest

__all__ = ["ProviderTarget", "Server"]


@dataclass(frozen=True)
class Server:
    """A running test server of one provider."""

    base_url: str
    # What a registered tool needs to work against it; None when the server is open.
    credentials: Credentials | None = None


@dataclass(frozen=True)
class ProviderTarget:
    """A provider under contract: how to serve it and what it is known to do.

    See the package docstring for what each fact means.
    """

    provider: str
    serve: Callable[[Path], AbstractAsyncContextManager[Server]]
    succeeds: BuildRequest
    fails: BuildRequest
    error_line: str
    runs_long: BuildRequest
    unknown_project: str
    unknown_build_ids: tuple[str, ...]
    bad_credentials: Credentials
    config: Mapping[str, Any] = field(default_factory=dict)
    # Offers pipelines: one that runs to succeeded, and a well-formed id of none.
    pipeline: PipelineRequest | None = None
    unknown_pipeline: str = ""
    # Offers artifacts (a succeeds build leaves a downloadable one under MAX_BYTES):
    # a well-formed artifact id that no build has.
    unknown_artifact_id: str | None = None
    # How the fault proxy tells its requests apart (``tests.upstream`` fault fields):
    # reads and the request that starts a build. Most HTTP APIs read with GET and
    # start with POST; AWS's JSON protocols POST everything, naming the operation in
    # X-Amz-Target.
    reads: Mapping[str, str] = field(default_factory=lambda: {"method": "GET"})
    triggers: Mapping[str, str] = field(default_factory=lambda: {"method": "POST"})
    # The proxy forwards the Host header as sent (a client that signs it: AWS SigV4).
    proxy_keeps_host: bool = False

    def tool(
        self, name: str, base_url: str, *, resilience: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """A ``POST /api/v1/tools`` body registering this provider at ``base_url``."""
        body: dict[str, Any] = {"name": name, "provider": self.provider, "base_url": base_url}
        if self.config:
            body["config"] = dict(self.config)
        if resilience:
            body["resilience"] = dict(resilience)
        return body
