"""GitLab pipelines as the domain's builds: statuses, stages and what failed.

A build is a pipeline; its steps are jobs, grouped in stages. GitLab's statuses map:

==========================================================  =============
created, waiting_for_resource, preparing, pending,          queued
scheduled (a delayed job), manual (blocked on a manual job)
running, canceling                                          running
success                                                     succeeded
failed                                                      failed
canceled, skipped                                           cancelled
==========================================================  =============

A pipeline blocked on a manual job stays ``queued`` with ``status_text`` saying so:
it will not finish until someone plays the job.

``metadata`` keeps what failure analysis reads: ``failed_stage`` (the first stage, in
pipeline order, with a job that failed and was not allowed to), ``failure_reason`` (that
job's own, e.g. ``script_failure``, ``runner_system_failure``,
``stuck_or_timeout_failure``), ``failed_jobs``, and every stage with its jobs and a
status rolled up from them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from devmesh.adapters.rollup import roll_up
from devmesh.domain.models import Build, BuildStatus
from devmesh.providers.gitlab.ids import PipelineRef
from devmesh.providers.gitlab.models import WireJob, WirePipeline

__all__ = ["GITLAB_STATUSES", "build_of", "failed_stage", "status_of", "within_stages"]

_STATUS: dict[str, BuildStatus] = {
    "created": BuildStatus.QUEUED,
    "waiting_for_resource": BuildStatus.QUEUED,
    "preparing": BuildStatus.QUEUED,
    "pending": BuildStatus.QUEUED,
    "scheduled": BuildStatus.QUEUED,
    "manual": BuildStatus.QUEUED,
    "running": BuildStatus.RUNNING,
    "canceling": BuildStatus.RUNNING,
    "success": BuildStatus.SUCCEEDED,
    "failed": BuildStatus.FAILED,
    "canceled": BuildStatus.CANCELLED,
    "skipped": BuildStatus.CANCELLED,
}

# The GitLab statuses ``list_builds`` asks for, per domain status (GitLab filters by one).
GITLAB_STATUSES: dict[BuildStatus, tuple[str, ...]] = {
    status: tuple(name for name, mapped in _STATUS.items() if mapped is status)
    for status in BuildStatus
}

_WORDS = {
    "manual": "manual: waiting for someone to play a manual job",
    "scheduled": "scheduled: a delayed job waits for its time",
    "waiting_for_resource": "waiting for a resource group",
    "canceling": "canceling",
}


def status_of(gitlab_status: str) -> BuildStatus:
    # An unknown (newer) status is most likely one more way of waiting.
    return _STATUS.get(gitlab_status, BuildStatus.QUEUED)


def within_stages(jobs: Sequence[WireJob]) -> list[tuple[str, list[WireJob]]]:
    """Jobs by stage, stages in pipeline order (GitLab creates jobs stage by stage, so
    a stage's lowest job id gives its place), jobs in creation order."""
    stages: dict[str, list[WireJob]] = {}
    for job in sorted(jobs, key=lambda j: j.id):
        stages.setdefault(job.stage, []).append(job)
    return list(stages.items())


def _failed(job: WireJob) -> bool:
    return job.status == "failed" and not job.allow_failure


def failed_stage(jobs: Sequence[WireJob]) -> str | None:
    for stage, members in within_stages(jobs):
        if any(_failed(job) for job in members):
            return stage
    return None


def _job(job: WireJob) -> dict[str, Any]:
    shown: dict[str, Any] = {"id": job.id, "name": job.name, "status": job.status}
    if job.failure_reason:
        shown["failure_reason"] = job.failure_reason
    if job.allow_failure:
        shown["allow_failure"] = True
    if job.web_url:
        shown["url"] = job.web_url
    return shown


def _stages(jobs: Sequence[WireJob]) -> list[dict[str, Any]]:
    shown = []
    for stage, members in within_stages(jobs):
        # allow_failure jobs never fail their stage, as in GitLab's own view.
        statuses = [
            BuildStatus.SUCCEEDED
            if job.allow_failure and job.status == "failed"
            else status_of(job.status)
            for job in members
        ]
        rolled = roll_up(statuses)
        shown.append(
            {
                "name": stage,
                "status": str(rolled) if rolled else None,
                "jobs": [_job(job) for job in members],
            }
        )
    return shown


def build_of(
    ref: PipelineRef,
    pipeline: WirePipeline,
    jobs: Sequence[WireJob] | None = None,
    *,
    all_jobs: bool = True,
) -> Build:
    """The build a pipeline is; ``jobs`` (when read) add what failed, and its stages
    unless they are only some of its jobs (``all_jobs=False``: its failed ones)."""
    metadata: dict[str, Any] = {
        "gitlab_status": pipeline.status,
        "pipeline_id": pipeline.id,
        "project_id": pipeline.project_id,
    }
    if pipeline.source:
        metadata["source"] = pipeline.source
    if pipeline.tag:
        metadata["tag"] = pipeline.ref
    if pipeline.user is not None and pipeline.user.username:
        metadata["user"] = pipeline.user.username
    if jobs is not None:
        if all_jobs:
            metadata["stages"] = _stages(jobs)
        stage = failed_stage(jobs)
        failed = [job for job in sorted(jobs, key=lambda j: j.id) if _failed(job)]
        if stage is not None:
            metadata["failed_stage"] = stage
            first = next(job for job in failed if job.stage == stage)
            if first.failure_reason:
                metadata["failure_reason"] = first.failure_reason
        if failed:
            metadata["failed_jobs"] = [
                {"id": job.id, "name": job.name, "stage": job.stage}
                | ({"failure_reason": job.failure_reason} if job.failure_reason else {})
                for job in failed
            ]
    finished = status_of(pipeline.status).finished
    return Build(
        id=str(ref),
        project=ref.project,
        number=pipeline.iid,
        branch=None if pipeline.tag else pipeline.ref,
        commit=pipeline.sha,
        status=status_of(pipeline.status),
        status_text=_WORDS.get(pipeline.status, pipeline.status),
        started_at=pipeline.started_at or (pipeline.created_at if finished else None),
        finished_at=pipeline.finished_at if finished else None,
        duration=pipeline.duration if finished else None,
        url=pipeline.web_url,
        failed_stage=metadata.get("failed_stage"),
        failure_reason=metadata.get("failure_reason"),
        metadata=metadata,
    )
