"""Workflow runs as the domain's builds: statuses, and which job failed.

A build is a workflow run; its steps are its jobs (each with steps of its own). A run
has a ``status`` and, once ``completed``, a ``conclusion``:

=============================================================  =============
requested, queued, pending, waiting (an environment's review)  queued
in_progress                                                    running
completed + success, neutral                                   succeeded
completed + failure, timed_out, startup_failure,               failed
action_required
completed + cancelled, skipped, stale                          cancelled
=============================================================  =============

``metadata`` keeps what failure analysis reads: ``failed_stage`` (the first job, by
start, that failed), ``failed_step`` (its first failed step), ``failure_reason`` (that
job's conclusion: ``failure``, ``timed_out``, ``startup_failure``), ``failed_jobs``,
and every job with its steps' outcomes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from devmesh.domain.models import Build, BuildStatus
from devmesh.providers.github_actions.ids import RunRef
from devmesh.providers.github_actions.models import WireJob, WireRun

__all__ = ["FAILED_CONCLUSIONS", "GITHUB_STATUSES", "build_of", "ordered", "status_of"]

_WAITING = {"requested", "queued", "pending", "waiting"}
_CONCLUSIONS: dict[str, BuildStatus] = {
    "success": BuildStatus.SUCCEEDED,
    "neutral": BuildStatus.SUCCEEDED,
    "failure": BuildStatus.FAILED,
    "timed_out": BuildStatus.FAILED,
    "startup_failure": BuildStatus.FAILED,
    "action_required": BuildStatus.FAILED,
    "cancelled": BuildStatus.CANCELLED,
    "skipped": BuildStatus.CANCELLED,
    "stale": BuildStatus.CANCELLED,
}
FAILED_CONCLUSIONS = frozenset(k for k, v in _CONCLUSIONS.items() if v is BuildStatus.FAILED)

# What ``list_builds`` asks GitHub for, per domain status (its ``status`` takes one
# status or conclusion; ``startup_failure`` is not among them).
GITHUB_STATUSES: dict[BuildStatus, tuple[str, ...]] = {
    BuildStatus.QUEUED: ("queued", "requested", "waiting", "pending"),
    BuildStatus.RUNNING: ("in_progress",),
    BuildStatus.SUCCEEDED: ("success", "neutral"),
    BuildStatus.FAILED: ("failure", "timed_out", "action_required"),
    BuildStatus.CANCELLED: ("cancelled", "skipped", "stale"),
}


def status_of(status: str | None, conclusion: str | None) -> BuildStatus:
    if status == "completed":
        # A conclusion GitHub adds later is most likely a kind of failure to look at.
        return _CONCLUSIONS.get(conclusion or "", BuildStatus.FAILED)
    if status == "in_progress":
        return BuildStatus.RUNNING
    return BuildStatus.QUEUED


def ordered(jobs: Sequence[WireJob]) -> list[WireJob]:
    """Jobs in the order they started (GitHub's ids grow with creation)."""
    return sorted(jobs, key=lambda job: (job.started_at, job.id))


def _failed(job: WireJob) -> bool:
    return job.status == "completed" and job.conclusion in FAILED_CONCLUSIONS


def _job(job: WireJob) -> dict[str, Any]:
    shown: dict[str, Any] = {"id": job.id, "name": job.name, "status": job.status}
    if job.conclusion:
        shown["conclusion"] = job.conclusion
    if job.html_url:
        shown["url"] = job.html_url
    shown["steps"] = [
        {"name": step.name, "status": step.status, "conclusion": step.conclusion}
        for step in job.steps
    ]
    return shown


def build_of(ref: RunRef, run: WireRun, jobs: Sequence[WireJob] | None = None) -> Build:
    status = status_of(run.status, run.conclusion)
    metadata: dict[str, Any] = {
        "github_status": run.status,
        "conclusion": run.conclusion,
        "run_id": run.id,
        "run_attempt": run.run_attempt,
        "workflow": (run.path or "").partition("@")[0] or None,
        "event": run.event,
    }
    if run.display_title:
        metadata["title"] = run.display_title
    if jobs is not None:
        metadata["jobs"] = [_job(job) for job in ordered(jobs)]
        failed = [job for job in ordered(jobs) if _failed(job)]
        if failed:
            first = failed[0]
            metadata["failed_stage"] = first.name
            metadata["failure_reason"] = first.conclusion
            step = next((s.name for s in first.steps if s.conclusion in FAILED_CONCLUSIONS), None)
            if step is not None:
                metadata["failed_step"] = step
            metadata["failed_jobs"] = [
                {"id": job.id, "name": job.name, "conclusion": job.conclusion} for job in failed
            ]
    started = run.run_started_at or run.created_at
    finished = run.updated_at if status.finished else None
    return Build(
        id=str(ref),
        project=ref.repo,
        number=run.run_number,
        branch=run.head_branch,
        commit=run.head_sha,
        status=status,
        status_text=run.conclusion or run.status,
        started_at=started if status is not BuildStatus.QUEUED else None,
        finished_at=finished,
        duration=max(0.0, (finished - started).total_seconds()) if finished else None,
        url=run.html_url,
        failed_stage=metadata.get("failed_stage"),
        failure_reason=metadata.get("failure_reason"),
        metadata=metadata,
    )
