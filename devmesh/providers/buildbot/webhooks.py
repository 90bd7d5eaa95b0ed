"""Buildbot webhooks: the build dicts ``HttpStatusPush`` posts, sent with basic auth.

``HttpStatusPush(auth=("devmesh", secret))`` sends ``Authorization: Basic ...``: the
password is the tool's webhook secret (the user name is not checked). Buildbot sends
no delivery id, so the receiver deduplicates by the body's digest: a repeated POST of
one state change carries the same build dict.

A build dict becomes one event about the build's request: its subject (from the
provider's ``build_subject``) is ``br-<buildrequestid>``, the id ``trigger_build``
returned, so a webhook's events and the watcher's about one build are the same
events. Not complete → ``build.started``; complete with success, warnings or
skipped → ``build.completed``; failure or exception → ``build.failed``; cancelled →
``build.cancelled``; retry → ``build.retried``.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from devmesh.adapters.webhooks import header
from devmesh.domain.events import EventType
from devmesh.domain.models import Build
from devmesh.providers.buildbot.builds import (
    CANCELLED,
    REQUEST_PREFIX,
    RETRY,
    SKIPPED,
    SUCCESS,
    WARNINGS,
    build_property,
    result_name,
    status_of,
    time_of,
)
from devmesh.providers.buildbot.models import WireBuild

__all__ = ["BuildbotWebhookNormaliser", "BuildbotWebhookVerifier", "build_subject"]


def build_subject(build: Mapping[str, Any]) -> str | None:
    """A build's lasting name: its build request's ``br-<n>``. The trigger returns it,
    every operation takes it, and it does not change when a worker starts the build
    (the ``id`` does: it becomes the build's number)."""
    metadata = build.get("metadata")
    request = metadata.get("buildrequestid") if isinstance(metadata, Mapping) else None
    if isinstance(request, int) and not isinstance(request, bool):
        return f"{REQUEST_PREFIX}{request}"
    return None


class BuildbotWebhookVerifier:
    def verify(self, *, secret: str, headers: Mapping[str, str], body: bytes) -> bool:
        scheme, _, encoded = (header(headers, "Authorization") or "").partition(" ")
        if not secret or scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True)
        except (binascii.Error, ValueError):
            return False
        _, colon, password = decoded.partition(b":")
        return bool(colon) and hmac.compare_digest(password, secret.encode())

    def delivery_id(self, headers: Mapping[str, str]) -> str | None:
        return None


class BuildbotWebhookNormaliser:
    def normalise(self, *, headers: Mapping[str, str], payload: Any) -> Sequence[Mapping[str, Any]]:
        if not isinstance(payload, dict):
            return []
        try:
            wire = WireBuild.model_validate(payload)
        except ValidationError:
            return []
        started, finished = time_of(wire.started_at), time_of(wire.complete_at)
        builder = payload.get("builder")
        name = builder.get("name") if isinstance(builder, dict) else None
        build = Build(
            id=str(wire.buildid),
            project=str(name) if name else str(wire.builderid),
            number=wire.number,
            branch=build_property(wire.properties, "branch"),
            commit=build_property(wire.properties, "got_revision")
            or build_property(wire.properties, "revision"),
            status=status_of(wire.complete, wire.results, True),
            status_text=wire.state_string,
            started_at=started,
            finished_at=finished if wire.complete else None,
            duration=(finished - started).total_seconds()
            if wire.complete and started and finished
            else None,
            url=payload["url"] if isinstance(payload.get("url"), str) else None,
            metadata={
                "buildid": wire.buildid,
                "buildrequestid": wire.buildrequestid,
                "builderid": wire.builderid,
                "results": result_name(wire.results),
            },
        )
        return [{"type": _event_type(wire), "data": build.model_dump(mode="json")}]


def _event_type(wire: WireBuild) -> EventType:
    if not wire.complete:
        return EventType.BUILD_STARTED
    if wire.results == CANCELLED:
        return EventType.BUILD_CANCELLED
    if wire.results == RETRY:
        return EventType.BUILD_RETRIED
    if wire.results in (SUCCESS, WARNINGS, SKIPPED):
        return EventType.BUILD_COMPLETED
    return EventType.BUILD_FAILED
