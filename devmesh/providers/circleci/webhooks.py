"""CircleCI webhooks: ``workflow-completed`` and ``job-completed``, signed with HMAC.

CircleCI's "Webhooks" page: each delivery's body is JSON with ``type``, ``id`` (one per
event: a retry repeats it), ``happened_at``, ``project {id, name, slug}``,
``organization``, ``pipeline {id, number, created_at, trigger, vcs}``, ``workflow {id,
name, status, created_at, stopped_at, url}`` and, for ``job-completed``, ``job {id,
name, number, status, started_at, stopped_at}``. The header ``circleci-signature`` is
``v1=<hex HMAC-SHA256 of the body, keyed by the webhook's signing secret>`` (several
comma-separated ``<version>=<hex>`` pairs may come; only ``v1`` is defined). The
delivery id is the body's ``id``.

Events: ``workflow-completed`` becomes ``build.completed`` (``success``, ``canceled``)
or ``build.failed`` with the build as far as the workflow tells it (id: the pipeline
id, as ``trigger_build`` returned it; a pipeline with several workflows sends one per
workflow, each with its own status). ``job-completed`` makes no event of its own: the
workflow's follows it, and one event per outcome is what a subscriber wants; a failed
job's name becomes ``failed_stage`` only through ``get_build_status``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from devmesh.adapters.webhooks import build_event_type, header
from devmesh.domain.errors import UpstreamInvalidArgument
from devmesh.providers.circleci.builds import build_of
from devmesh.providers.circleci.ids import BuildRef, parse_build_id
from devmesh.providers.circleci.models import WirePipeline, WireWorkflow

__all__ = ["CircleCIWebhookNormaliser", "CircleCIWebhookVerifier"]

_MAX_ID = 200


class CircleCIWebhookVerifier:
    def verify(self, *, secret: str, headers: Mapping[str, str], body: bytes) -> bool:
        sent = header(headers, "circleci-signature")
        if not secret or not sent:
            return False
        expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        signatures = [
            value.strip()
            for version, _, value in (part.strip().partition("=") for part in sent.split(","))
            if version == "v1"
        ]
        # Every v1 signature is compared, so how many were sent is all timing can tell.
        return any([hmac.compare_digest(s.encode(), expected.encode()) for s in signatures])

    def delivery_id(self, headers: Mapping[str, str]) -> str | None:
        return None  # CircleCI's id is in the body (delivery_id_in_body)

    def delivery_id_in_body(self, body: bytes) -> str | None:
        try:
            payload = json.loads(body)
        except ValueError:
            return None
        found = payload.get("id") if isinstance(payload, dict) else None
        return found if isinstance(found, str) and 0 < len(found) <= _MAX_ID else None


class CircleCIWebhookNormaliser:
    def normalise(self, *, headers: Mapping[str, str], payload: Any) -> Sequence[Mapping[str, Any]]:
        if not isinstance(payload, dict) or payload.get("type") != "workflow-completed":
            return []
        pipeline, workflow, project = (
            payload.get(key) for key in ("pipeline", "workflow", "project")
        )
        if not (
            isinstance(pipeline, dict) and isinstance(workflow, dict) and isinstance(project, dict)
        ):
            return []
        try:
            ref = parse_build_id(str(pipeline.get("id") or ""))
            wire_pipeline = WirePipeline(
                id=ref.pipeline,
                number=pipeline["number"],
                project_slug=project["slug"],
                state="created",
                created_at=pipeline.get("created_at") or "",
                vcs=pipeline.get("vcs") if isinstance(pipeline.get("vcs"), dict) else None,
            )
            wire_workflow = WireWorkflow(
                id=workflow["id"],
                name=workflow["name"],
                pipeline_id=ref.pipeline,
                pipeline_number=pipeline["number"],
                project_slug=project["slug"],
                status=workflow["status"],
                created_at=workflow.get("created_at") or "",
                stopped_at=workflow.get("stopped_at"),
            )
        except (KeyError, TypeError, ValidationError, UpstreamInvalidArgument):
            return []
        build = build_of(
            BuildRef(ref.pipeline), wire_pipeline, [wire_workflow], failed_jobs=[], app_url=""
        )
        event = build_event_type(build.status, queued=None)
        if event is None:
            return []
        url = workflow.get("url")
        data = build.model_dump(mode="json")
        data["url"] = url if isinstance(url, str) else None
        return [{"type": event, "data": data}]
