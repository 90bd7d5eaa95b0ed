"""CodeBuild webhooks: EventBridge's "CodeBuild Build State Change" events, delivered by
an EventBridge API destination that sends the tool's secret in a header.

CodeBuild has no webhooks out of its own; it publishes state changes to EventBridge
(the "Build notifications input format" page of the CodeBuild user guide:
``{"detail-type": "CodeBuild Build State Change", "source": "aws.codebuild",
"region", "detail": {"build-status", "project-name", "build-id": <build ARN>,
"current-phase", "additional-information": {"build-start-time", "phases": [...],
"logs": {"group-name", "stream-name"}, "source-version", ...}}}``). A rule matching
them targets an API destination whose connection uses API key authorisation: the key
name is ``X-DevMesh-Webhook-Secret`` and its value the tool's webhook secret, compared
here in constant time (and, naming a secret, never stored by the service). EventBridge
signs nothing and sets no delivery id header; a repeat has the same body, so the
service's body digest drops it.

IN_PROGRESS → ``build.started``, SUCCEEDED and STOPPED → ``build.completed``,
FAILED, FAULT and TIMED_OUT → ``build.failed``; data is the build as
``get_build_status`` shows it (``failed_stage`` from the phases). Phase-change events
and anything else make none.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from devmesh.adapters.webhooks import build_event_type, header, same_secret
from devmesh.providers.codebuild.builds import build_of

__all__ = ["SECRET_HEADER", "CodeBuildWebhookNormaliser", "CodeBuildWebhookVerifier"]

SECRET_HEADER = "X-DevMesh-Webhook-Secret"
_DETAIL_TYPE = "CodeBuild Build State Change"


class CodeBuildWebhookVerifier:
    def verify(self, *, secret: str, headers: Mapping[str, str], body: bytes) -> bool:
        return same_secret(secret, header(headers, SECRET_HEADER))

    def delivery_id(self, headers: Mapping[str, str]) -> str | None:
        return None  # EventBridge's event id is in the body; its digest stands in


def _when(text: Any) -> datetime | None:
    """EventBridge's CodeBuild times: ``Sep 1, 2017 4:12:29 PM`` (UTC)."""
    if not isinstance(text, str):
        return None
    try:
        return datetime.strptime(text, "%b %d, %Y %I:%M:%S %p").replace(tzinfo=UTC)
    except ValueError:
        return None


def _wire(event: dict[str, Any]) -> dict[str, Any] | None:
    """The event as ``BatchGetBuilds`` would show the build, or ``None``."""
    detail = event.get("detail")
    if event.get("detail-type") != _DETAIL_TYPE or not isinstance(detail, dict):
        return None
    arn = detail.get("build-id")
    if not isinstance(arn, str) or "build/" not in arn:
        return None
    info = detail.get("additional-information")
    info = info if isinstance(info, dict) else {}
    phases = [
        {
            "phaseType": phase.get("phase-type"),
            "phaseStatus": phase.get("phase-status"),
            "contexts": [
                {"message": str(context)}
                for context in phase.get("phase-context") or []
                if context and str(context) != ": "
            ],
            "endTime": _when(phase.get("end-time")),
        }
        for phase in info.get("phases") or []
        if isinstance(phase, dict)
    ]
    ends = [phase["endTime"] for phase in phases if phase["endTime"] is not None]
    found = info.get("logs")
    logs: dict[str, Any] = found if isinstance(found, dict) else {}
    return {
        "id": arn.split("build/", 1)[1],
        "arn": arn,
        "projectName": detail.get("project-name"),
        "buildStatus": detail.get("build-status"),
        "currentPhase": detail.get("current-phase"),
        "startTime": _when(info.get("build-start-time")),
        "endTime": max(ends) if ends and info.get("build-complete") else None,
        "phases": phases,
        "sourceVersion": info.get("source-version"),
        "logs": {"groupName": logs.get("group-name"), "streamName": logs.get("stream-name")},
    }


class CodeBuildWebhookNormaliser:
    def normalise(self, *, headers: Mapping[str, str], payload: Any) -> Sequence[Mapping[str, Any]]:
        if not isinstance(payload, dict):
            return []
        wire = _wire(payload)
        if wire is None:
            return []
        region = str(payload.get("region") or "us-east-1")
        try:
            build = build_of(wire, region=region)
        except ValidationError:
            return []
        return [
            {
                "type": build_event_type(build.status, queued="build.started"),
                "data": build.model_dump(mode="json"),
            }
        ]
