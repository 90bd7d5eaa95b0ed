"""The one error tree of Developer Mesh.

Every failure a caller can act on is one of these; the REST face maps them to
problem+json (``devmesh.api.errors``), the MCP face to ``isError`` tool results
(``devmesh.mcp.errors``) and the CLI to a one-line message. Nothing else is
shown to a caller: an exception outside this tree is an internal error.

    DevMeshError
    ├── NotFound            the thing does not exist *for this tenant*
    │   └── UnknownTool     no such tool instance or operation (MCP: a protocol error)
    ├── Conflict            it exists already, or the request contradicts stored state
    ├── InvalidInput        the caller's input is wrong; ``field`` names where
    ├── Unauthorized        no credentials, or credentials that are wrong or revoked
    ├── Forbidden           authenticated, but not allowed
    ├── RateLimited         too many requests; ``retry_after`` seconds
    ├── Unavailable         a dependency of ours is down (database, bus); ``retry_after``
    └── AdapterError        an upstream tool failed; ``code``, ``retriable``, ``details``
        ├── UpstreamNotFound
        ├── UpstreamAuthFailed
        ├── UpstreamInvalidArgument
        ├── UpstreamRateLimited
        ├── UpstreamTimeout
        └── UpstreamUnavailable

Messages must be safe to show: never a credential, never a raw upstream body.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

__all__ = [
    "AdapterError",
    "Conflict",
    "DevMeshError",
    "Forbidden",
    "InvalidInput",
    "NotFound",
    "RateLimited",
    "Unauthorized",
    "Unavailable",
    "UnknownTool",
    "UpstreamAuthFailed",
    "UpstreamInvalidArgument",
    "UpstreamNotFound",
    "UpstreamRateLimited",
    "UpstreamTimeout",
    "UpstreamUnavailable",
]


class DevMeshError(Exception):
    """Base of every error a caller may see."""

    code: ClassVar[str] = "error"
    retriable: bool = False

    def __init__(self, message: str, *, details: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = dict(details or {})


class NotFound(DevMeshError):
    code = "not_found"


class UnknownTool(NotFound):
    code = "unknown_tool"


class Conflict(DevMeshError):
    code = "conflict"


class InvalidInput(DevMeshError):
    code = "invalid_input"

    def __init__(
        self, message: str, *, field: str | None = None, details: Mapping[str, Any] | None = None
    ) -> None:
        merged = dict(details or {})
        if field is not None:
            merged.setdefault("field", field)
        super().__init__(message, details=merged)
        self.field = field


class Unauthorized(DevMeshError):
    code = "unauthorized"


class Forbidden(DevMeshError):
    code = "forbidden"


class _RetryLater(DevMeshError):
    """An error that may say when trying again is worth it (``retry_after`` seconds)."""

    retriable = True

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        merged = dict(details or {})
        if retry_after is not None:
            merged.setdefault("retry_after", retry_after)
        super().__init__(message, details=merged)
        self.retry_after = retry_after


class RateLimited(_RetryLater):
    code = "rate_limited"


class Unavailable(_RetryLater):
    """A dependency of ours is down; ``retry_after`` says when trying again is worth it."""

    code = "unavailable"


class AdapterError(DevMeshError):
    """An upstream tool failed. ``retriable`` says whether trying again may help."""

    code = "upstream_error"

    def __init__(
        self,
        message: str,
        *,
        retriable: bool | None = None,
        retry_after: float | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        merged = dict(details or {})
        if retry_after is not None:
            merged.setdefault("retry_after", retry_after)
        super().__init__(message, details=merged)
        if retriable is not None:
            self.retriable = retriable
        self.retry_after = retry_after


class UpstreamNotFound(AdapterError):
    code = "upstream_not_found"


class UpstreamAuthFailed(AdapterError):
    code = "upstream_auth_failed"


class UpstreamInvalidArgument(AdapterError):
    code = "upstream_invalid_argument"


class UpstreamRateLimited(AdapterError):
    code = "upstream_rate_limited"
    retriable = True


class UpstreamTimeout(AdapterError):
    code = "upstream_timeout"
    retriable = True


class UpstreamUnavailable(AdapterError):
    code = "upstream_unavailable"
    retriable = True
