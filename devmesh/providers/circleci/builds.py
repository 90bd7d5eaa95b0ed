"""CircleCI pipelines (with their workflows and jobs) as the domain's builds.

A build's status is its workflows' statuses rolled up (the kit's ``roll_up``):

=======================================  =============
pipeline ``pending``/``setup…``, or no   queued
workflow yet
workflow ``running``, ``failing``,       running
``on_hold``
``success``                              succeeded
``failed``, ``error``, ``unauthorized``  failed
``canceled``, ``not_run``                cancelled
pipeline ``errored`` (config error)      failed
=======================================  =============

``failed_stage`` is the first failed job's name (``null`` unless it failed);
``failure_reason`` names the failed workflows and jobs, or the pipeline's errors.
``duration`` runs from the first workflow's ``created_at`` to the last one's
``stopped_at``. ``metadata`` also has ``pipeline_number``, CircleCI's ``state`` and
the ``workflows`` (id, name, status).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from devmesh.adapters.rollup import roll_up
from devmesh.domain.models import Build, BuildStatus
from devmesh.providers.circleci.ids import BuildRef
from devmesh.providers.circleci.models import WireJob, WirePipeline, WireWorkflow

__all__ = ["build_of", "status_of_workflow"]

_WORKFLOW: dict[str, BuildStatus] = {
    "running": BuildStatus.RUNNING,
    "failing": BuildStatus.RUNNING,
    "on_hold": BuildStatus.RUNNING,
    "success": BuildStatus.SUCCEEDED,
    "failed": BuildStatus.FAILED,
    "error": BuildStatus.FAILED,
    "unauthorized": BuildStatus.FAILED,
    "canceled": BuildStatus.CANCELLED,
    "not_run": BuildStatus.CANCELLED,
}
_FAILED_JOB = {"failed", "infrastructure_fail", "timedout", "unauthorized", "terminated-unknown"}


def status_of_workflow(status: str) -> BuildStatus:
    # An unknown (newer) status of a workflow that has not stopped is still running.
    return _WORKFLOW.get(status, BuildStatus.RUNNING)


def _when(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def build_of(
    ref: BuildRef,
    pipeline: WirePipeline,
    workflows: list[WireWorkflow],
    *,
    failed_jobs: list[WireJob],
    app_url: str,
) -> Build:
    statuses = [status_of_workflow(w.status) for w in workflows]
    status = roll_up(statuses)
    if pipeline.state == "errored":
        status = BuildStatus.FAILED
    elif status is None:
        status = BuildStatus.QUEUED
    started = min((t for w in workflows if (t := _when(w.created_at))), default=None)
    stops = [_when(w.stopped_at) for w in workflows]
    finished = max(t for t in stops if t) if status.finished and stops and all(stops) else None
    metadata: dict[str, Any] = {
        "pipeline_number": pipeline.number,
        "state": pipeline.state,
        "workflows": [{"id": w.id, "name": w.name, "status": w.status} for w in workflows],
        "failed_stage": None,
    }
    if ref.workflows:
        metadata["rerun_workflows"] = list(ref.workflows)
    if status is BuildStatus.FAILED:
        jobs = [j for j in failed_jobs if j.status in _FAILED_JOB]
        metadata["failed_stage"] = jobs[0].name if jobs else None
        reasons = [
            f"workflow {w.name!r} {w.status}"
            for w in workflows
            if _WORKFLOW.get(w.status) is BuildStatus.FAILED
        ]
        reasons += [f"job {j.name!r} {j.status}" for j in jobs]
        reasons += [
            f"pipeline error ({e.get('type')}): {e.get('message')}" for e in pipeline.errors
        ]
        metadata["failure_reason"] = "; ".join(reasons) or "the pipeline failed"
    elif status is BuildStatus.CANCELLED:
        metadata["failure_reason"] = "; ".join(
            f"workflow {w.name!r} {w.status}"
            for w in workflows
            if w.status in ("canceled", "not_run")
        )
    words = ", ".join(f"{w.name}: {w.status}" for w in workflows) or pipeline.state
    return Build(
        id=str(ref),
        project=pipeline.project_slug,
        number=pipeline.number,
        branch=pipeline.branch,
        commit=pipeline.revision,
        status=status,
        status_text=words,
        started_at=started,
        finished_at=finished,
        duration=(finished - started).total_seconds() if finished and started else None,
        url=f"{app_url.rstrip('/')}/pipelines/{_app_slug(pipeline.project_slug)}/{pipeline.number}",
        failed_stage=metadata["failed_stage"],
        failure_reason=metadata.get("failure_reason"),
        metadata=metadata,
    )


def _app_slug(slug: str) -> str:
    vcs, _, rest = slug.partition("/")
    return f"{ {'gh': 'github', 'bb': 'bitbucket'}.get(vcs, vcs) }/{rest}"
