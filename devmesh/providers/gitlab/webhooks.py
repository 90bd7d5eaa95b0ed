"""GitLab webhooks: pipeline and job hooks, checked by their secret token.

GitLab sends the hook's secret token as is in ``X-Gitlab-Token`` (no signature over
the body), so verifying is a constant-time comparison. A delivery's id is its
``Idempotency-Key`` (GitLab 17.4+, the same on every retry of one event), else
``X-Gitlab-Event-UUID``.

Pipeline hooks (``X-Gitlab-Event: Pipeline Hook``) become build events: the pipeline
as ``get_build_status`` shows it, with the ``failed_stage`` and ``failure_reason`` its
jobs (``builds``) tell. Job hooks are verified and recorded but make no event of
their own: every job's outcome reaches its pipeline's hook too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from devmesh.adapters.webhooks import build_event_type, header, same_secret
from devmesh.providers.gitlab.builds import build_of
from devmesh.providers.gitlab.ids import PipelineRef
from devmesh.providers.gitlab.models import WireJob, WirePipeline

__all__ = ["GitLabWebhookNormaliser", "GitLabWebhookVerifier"]


class GitLabWebhookVerifier:
    def verify(self, *, secret: str, headers: Mapping[str, str], body: bytes) -> bool:
        return same_secret(secret, header(headers, "X-Gitlab-Token"))

    def delivery_id(self, headers: Mapping[str, str]) -> str | None:
        return header(headers, "Idempotency-Key") or header(headers, "X-Gitlab-Event-UUID")


class GitLabWebhookNormaliser:
    def normalise(self, *, headers: Mapping[str, str], payload: Any) -> Sequence[Mapping[str, Any]]:
        if not isinstance(payload, dict) or payload.get("object_kind") != "pipeline":
            return []
        attributes = payload.get("object_attributes")
        project = payload.get("project")
        if not isinstance(attributes, dict) or not isinstance(project, dict):
            return []
        try:
            # Hook timestamps are not ISO 8601 ("2024-01-01 10:00:00 UTC"): left out.
            pipeline = WirePipeline(
                id=attributes["id"],
                iid=attributes.get("iid"),
                project_id=project["id"],
                sha=attributes.get("sha"),
                ref=attributes.get("ref"),
                tag=attributes.get("tag"),
                status=attributes["status"],
                source=attributes.get("source"),
                web_url=attributes.get("url"),
                duration=attributes.get("duration"),
            )
            jobs = [
                WireJob(
                    id=job["id"],
                    name=job["name"],
                    stage=job["stage"],
                    status=job["status"],
                    allow_failure=bool(job.get("allow_failure")),
                    failure_reason=job.get("failure_reason"),
                )
                for job in payload.get("builds") or []
                if isinstance(job, dict)
            ]
            path = str(project.get("path_with_namespace") or project["id"])
        except (KeyError, TypeError, ValidationError):
            return []
        build = build_of(PipelineRef(path, pipeline.id), pipeline, jobs)
        return [{"type": build_event_type(build.status), "data": build.model_dump(mode="json")}]
