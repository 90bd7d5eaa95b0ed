"""CodeBuild builds (``BatchGetBuilds``' ``Build`` shape) as the domain's builds.

==================================================  =============
``IN_PROGRESS``, ``currentPhase`` SUBMITTED/QUEUED   queued
``IN_PROGRESS``, any later phase                     running
``SUCCEEDED``                                        succeeded
``FAILED``, ``FAULT``, ``TIMED_OUT``                 failed
``STOPPED``                                          cancelled
==================================================  =============

``failed_stage`` is the first phase (``phases[].phaseType``: INSTALL, PRE_BUILD,
BUILD, ...) whose ``phaseStatus`` is not SUCCEEDED (FAILED, FAULT, TIMED_OUT,
CLIENT_ERROR); ``failure_reason`` is that phase's ``contexts[].message``, else the
build status in words. ``duration`` is ``endTime - startTime`` once it finished.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import quote

from devmesh.domain.models import Build, BuildStatus

__all__ = ["build_of", "failed_phase", "status_of"]

_FINAL: dict[str, BuildStatus] = {
    "SUCCEEDED": BuildStatus.SUCCEEDED,
    "FAILED": BuildStatus.FAILED,
    "FAULT": BuildStatus.FAILED,
    "TIMED_OUT": BuildStatus.FAILED,
    "STOPPED": BuildStatus.CANCELLED,
}
_WAITING = {"SUBMITTED", "QUEUED"}
_BAD_PHASE = {"FAILED", "FAULT", "TIMED_OUT", "CLIENT_ERROR", "STOPPED"}
_REASON = {
    "FAILED": "the build failed (FAILED)",
    "FAULT": "CodeBuild itself failed running the build (FAULT)",
    "TIMED_OUT": "the build ran past its timeout (TIMED_OUT)",
    "STOPPED": "the build was stopped (STOPPED)",
}
_SHA = set("0123456789abcdef")


def status_of(build: dict[str, Any]) -> BuildStatus:
    status = str(build.get("buildStatus") or "IN_PROGRESS")
    if status in _FINAL:
        return _FINAL[status]
    if str(build.get("currentPhase") or "QUEUED") in _WAITING:
        return BuildStatus.QUEUED
    return BuildStatus.RUNNING


def failed_phase(build: dict[str, Any]) -> dict[str, Any] | None:
    for phase in build.get("phases") or []:
        if isinstance(phase, dict) and phase.get("phaseStatus") in _BAD_PHASE:
            return phase
    return None


def _console_url(build: dict[str, Any], region: str) -> str | None:
    arn = str(build.get("arn") or "")
    parts = arn.split(":")
    if len(parts) < 6 or not build.get("id"):
        return None
    account = parts[4]
    project = str(build.get("projectName") or "")
    return (
        f"https://{region}.console.aws.amazon.com/codesuite/codebuild/{account}/projects/"
        f"{quote(project, safe='')}/build/{quote(str(build['id']), safe='')}/?region={region}"
    )


def _branch_and_commit(build: dict[str, Any]) -> tuple[str | None, str | None]:
    version = build.get("sourceVersion")
    resolved = build.get("resolvedSourceVersion")
    branch: str | None = None
    if isinstance(version, str) and version:
        looks_like_commit = len(version) >= 7 and set(version.lower()) <= _SHA
        if not looks_like_commit:
            branch = version.removeprefix("refs/heads/")
        elif not resolved:
            resolved = version
    return branch, resolved if isinstance(resolved, str) else None


def build_of(build: dict[str, Any], *, region: str) -> Build:
    status = status_of(build)
    started = build.get("startTime")
    ended = build.get("endTime")
    started_at = started if isinstance(started, datetime) else None
    finished_at = ended if isinstance(ended, datetime) and status.finished else None
    duration = (
        max(0.0, (finished_at - started_at).total_seconds())
        if started_at is not None and finished_at is not None
        else None
    )
    phase = failed_phase(build) if status is BuildStatus.FAILED else None
    metadata: dict[str, Any] = {
        "codebuild_status": build.get("buildStatus"),
        "current_phase": build.get("currentPhase"),
        "failed_stage": phase.get("phaseType") if phase is not None else None,
    }
    if status in (BuildStatus.FAILED, BuildStatus.CANCELLED):
        said = [
            str(context.get("message"))
            for context in (phase or {}).get("contexts") or []
            if isinstance(context, dict) and context.get("message")
        ]
        reason = _REASON.get(str(build.get("buildStatus")), "the build did not succeed")
        metadata["failure_reason"] = "; ".join(said) if said else reason
    logs = build.get("logs") or {}
    if logs.get("groupName") and logs.get("streamName"):
        metadata["log_group"] = logs["groupName"]
        metadata["log_stream"] = logs["streamName"]
    parameters = {
        variable["name"]: variable.get("value")
        for variable in (build.get("environment") or {}).get("environmentVariables") or []
        # Only plain values: the others name a secret's place, not its value, anyway.
        if isinstance(variable, dict) and variable.get("type", "PLAINTEXT") == "PLAINTEXT"
    }
    if parameters:
        metadata["parameters"] = parameters
    branch, commit = _branch_and_commit(build)
    number = build.get("buildNumber")
    return Build(
        id=str(build.get("id")),
        project=str(build.get("projectName") or ""),
        number=number if isinstance(number, int) else None,
        branch=branch,
        commit=commit,
        status=status,
        status_text=f"{build.get('buildStatus')} ({build.get('currentPhase')})",
        started_at=started_at,
        finished_at=finished_at,
        duration=duration,
        url=_console_url(build, region),
        failed_stage=metadata.get("failed_stage"),
        failure_reason=metadata.get("failure_reason"),
        metadata=metadata,
    )
