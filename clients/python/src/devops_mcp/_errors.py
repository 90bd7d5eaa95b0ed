"""What can go wrong when calling Developer Mesh, as one small tree.

    ClientError                  catch this for "the call did not give a result"
    ├── ToolError                the service answered with a problem (RFC 9457):
    │                            ``status``, ``code``, ``detail``, ``retriable``, ``field``
    ├── ServiceUnreachable       no answer at all: refused, unknown host; names the URL
    └── CallTimeout              no answer within the timeout or the call's deadline

Foreign exceptions (httpx's) are translated in one place, ``_client._send``, and
chained with ``from``, so a traceback still shows the cause.
"""

from __future__ import annotations

from typing import Any

__all__ = ["CallTimeout", "ClientError", "ServiceUnreachable", "ToolError"]


class ClientError(Exception):
    """Base of every error the client raises."""


class ToolError(ClientError):
    """The service answered with an error: a problem+json body, read into attributes.

    ``code`` is the machine-readable kind (``invalid_input``, ``not_found``,
    ``upstream_unavailable``, ``rate_limited``, …); ``retriable`` says whether the
    same call may succeed later; ``field`` names the bad argument when the service
    said which; ``retry_after`` is the seconds the service asked to wait, if it did;
    ``problem`` is the whole body as sent.
    """

    def __init__(
        self,
        *,
        status: int,
        code: str,
        detail: str,
        retriable: bool = False,
        field: str | None = None,
        retry_after: float | None = None,
        problem: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {detail}")
        self.status = status
        self.code = code
        self.detail = detail
        self.retriable = retriable
        self.field = field
        self.retry_after = retry_after
        self.problem: dict[str, Any] = problem or {}

    @property
    def request_id(self) -> str | None:
        """The service's id for the request, to quote when asking its operators."""
        found = self.problem.get("request_id")
        return found if isinstance(found, str) else None


class ServiceUnreachable(ClientError):
    """The service could not be reached at ``url`` (connection refused, unknown host…)."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"cannot reach Developer Mesh at {url}: {reason}")
        self.url = url


class CallTimeout(ClientError):
    """No answer from ``url`` in time: the request's timeout or the call's deadline."""

    def __init__(self, url: str, seconds: float) -> None:
        super().__init__(f"no answer from {url} within {seconds:g} s")
        self.url = url
        self.seconds = seconds
