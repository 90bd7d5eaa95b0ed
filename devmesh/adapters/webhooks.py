"""The provider kit's webhook slots: what a provider declares to receive its tool's
webhooks (``POST /api/v1/webhooks/{tool_id}``, the events work).

Both are optional on a ``Provider``. The verifier runs first, on the raw body and
headers, before anything is parsed or stored; the normaliser turns a verified
payload into domain events. Neither does I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

__all__ = ["URL_TOKEN_HEADER", "BodyDeliveryId", "WebhookNormaliser", "WebhookVerifier"]

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
