"""The provider kit's webhook slots: what a provider declares to receive its tool's
webhooks (``POST /api/v1/webhooks/{tool_id}``, the events work).

Both are optional on a ``Provider``. The verifier runs first, on the raw body and
headers, before anything is parsed or stored; the normaliser turns a verified
payload into domain events. Neither does I/O.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from devmesh.domain.models import BuildStatus

__all__ = [
    "URL_TOKEN_HEADER",
    "BodyDeliveryId",
    "WebhookNormaliser",
    "WebhookVerifier",
    "build_event_type",
    "header",
    "same_secret",
]

URL_TOKEN_HEADER = "X-DevMesh-Url-Token"
"""Where a verifier finds a token the sender put in the webhook's URL
(``POST /api/v1/webhooks/{tool_id}?token=…``), for tools that can neither sign a
delivery nor set a header (Jenkins' Notification plugin). The service moves the query
parameter into this header before verifying; like every header naming a token, it is
never stored, and the access log names the route, never the query."""


@runtime_checkable
class WebhookVerifier(Protocol):
    """Checks that a delivery came from the tool (a signature, a shared token)."""

    def verify(self, *, secret: str, headers: Mapping[str, str], body: bytes) -> bool:
        """True only if ``body`` and ``headers`` prove knowledge of ``secret``; compare in
        constant time (``hmac.compare_digest``)."""
        ...

    def delivery_id(self, headers: Mapping[str, str]) -> str | None:
        """The tool's id for this delivery, to drop repeats; ``None`` if it sends none."""
        ...


@runtime_checkable
class BodyDeliveryId(Protocol):
    """Optional on a verifier: a tool that names its delivery in the body, not in a
    header (CircleCI's ``id``). Asked only when ``delivery_id`` gave ``None``, and only
    after the body was verified."""

    def delivery_id_in_body(self, body: bytes) -> str | None:
        """The tool's id for this delivery, read from the raw body; ``None`` if none."""
        ...


@runtime_checkable
class WebhookNormaliser(Protocol):
    """Turns a verified payload into events (``build.started``, ``build.completed``, ...)."""

    def normalise(self, *, headers: Mapping[str, str], payload: Any) -> Sequence[Mapping[str, Any]]:
        """Zero or more events, each ``{"type": ..., "data": {...}}``; an unknown kind of
        delivery gives none, never an error."""
        ...


def header(headers: Mapping[str, str], name: str) -> str | None:
    """A header's value by its name in any case (HTTP header names are case-blind)."""
    wanted = name.lower()
    return next((value for key, value in headers.items() if key.lower() == wanted), None)


def same_secret(secret: str, sent: str | None) -> bool:
    """A shared token as the tool sent it (a header, the URL), compared in constant
    time; an empty secret or token never matches."""
    if not secret or not sent:
        return False
    return hmac.compare_digest(sent.encode(), secret.encode())


_BUILD_EVENT = {
    BuildStatus.RUNNING: "build.started",
    BuildStatus.SUCCEEDED: "build.completed",
    BuildStatus.FAILED: "build.failed",
    BuildStatus.CANCELLED: "build.cancelled",
}


def build_event_type(status: BuildStatus, *, queued: str | None = "build.triggered") -> str | None:
    """The event a build in ``status`` is reported as. ``queued``: what a queued build
    is for this tool (``build.triggered`` where the tool reports a new build queued,
    ``build.started`` where queued means accepted and about to run, ``None`` where
    the tool sends nothing worth an event then)."""
    if status is BuildStatus.QUEUED:
        return queued
    return _BUILD_EVENT[status]
