"""Jenkins webhooks: the Notification plugin's JSON, proved by a token in the URL.

The Notification plugin (plugins.jenkins.io/notification, its README) POSTs, per
job endpoint, ``{"name", "url": "job/team/job/app/", "build": {"full_url", "number",
"queue_id", "phase", "status", "timestamp", "duration", "parameters", "scm"}}`` at
each phase: QUEUED, STARTED, COMPLETED and FINALIZED. It signs nothing and sets no
header of its own, so the endpoint URL carries the tool's webhook secret:
``…/api/v1/webhooks/<tool id>?token=<secret>``, compared in constant time (the
service hands the query parameter over as ``URL_TOKEN_HEADER``). It sends no delivery
id either: a retry repeats the body, so the service's body digest drops it.

Phases become events with the build as ``get_build_status`` shows it: QUEUED →
``build.triggered`` (id ``team/app#queue-<id>``, as ``trigger_build`` returned it),
STARTED → ``build.started``, FINALIZED → ``build.completed`` or ``build.failed``.
COMPLETED makes none: FINALIZED follows it once post-build steps (archiving
artifacts) are done, and one event per outcome is what a subscriber wants.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import unquote

from pydantic import ValidationError

from devmesh.adapters.webhooks import URL_TOKEN_HEADER, build_event_type, header, same_secret
from devmesh.domain.errors import UpstreamInvalidArgument
from devmesh.domain.models import Build, BuildStatus
from devmesh.providers.jenkins.builds import build_of
from devmesh.providers.jenkins.ids import BuildRef, QueueRef, checked_job
from devmesh.providers.jenkins.models import WireBuild

__all__ = ["JenkinsWebhookNormaliser", "JenkinsWebhookVerifier", "job_of_url"]


class JenkinsWebhookVerifier:
    def verify(self, *, secret: str, headers: Mapping[str, str], body: bytes) -> bool:
        return same_secret(secret, header(headers, URL_TOKEN_HEADER))

    def delivery_id(self, headers: Mapping[str, str]) -> str | None:
        return None  # the plugin sends none; the body's digest stands in


def job_of_url(url: str) -> str | None:
    """``team/app`` from a job's relative URL (``job/team/job/app/``), else ``None``."""
    parts = [part for part in url.strip("/").split("/") if part]
    if len(parts) < 2 or len(parts) % 2 or any(p != "job" for p in parts[::2]):
        return None
    try:
        return checked_job("/".join(unquote(name) for name in parts[1::2]))
    except UpstreamInvalidArgument:
        return None


def _build(payload: dict[str, Any]) -> Build | None:
    job = job_of_url(str(payload.get("url") or ""))
    build = payload.get("build")
    if job is None or not isinstance(build, dict):
        return None
    phase = build.get("phase")
    queue_id = build.get("queue_id")
    if phase == "QUEUED" and isinstance(queue_id, int):
        return Build(
            id=str(QueueRef(job, queue_id)),
            project=job,
            status=BuildStatus.QUEUED,
            status_text="queued",
            metadata={"queue_id": queue_id, "failed_stage": None},
        )
    if phase not in ("STARTED", "FINALIZED"):
        return None
    scm = build.get("scm") if isinstance(build.get("scm"), dict) else {}
    parameters = build.get("parameters") if isinstance(build.get("parameters"), dict) else {}
    try:
        wire = WireBuild(
            number=build["number"],
            url=build.get("full_url"),
            building=phase == "STARTED",
            result=build.get("status") if phase == "FINALIZED" else None,
            timestamp=build.get("timestamp"),
            duration=build.get("duration"),
            queueId=queue_id if isinstance(queue_id, int) else None,
            actions=[
                {"parameters": [{"name": k, "value": v} for k, v in (parameters or {}).items()]},
                {
                    "lastBuiltRevision": {
                        "SHA1": scm.get("commit"),
                        "branch": [{"name": scm.get("branch")}],
                    }
                }
                if scm and scm.get("commit")
                else None,
            ],
        )
    except (KeyError, TypeError, ValidationError):
        return None
    return build_of(BuildRef(job, wire.number), wire, unstable_is="failed")


class JenkinsWebhookNormaliser:
    def normalise(self, *, headers: Mapping[str, str], payload: Any) -> Sequence[Mapping[str, Any]]:
        if not isinstance(payload, dict):
            return []
        build = _build(payload)
        if build is None:
            return []
        return [{"type": build_event_type(build.status), "data": build.model_dump(mode="json")}]
