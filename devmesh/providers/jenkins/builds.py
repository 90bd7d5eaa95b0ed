"""Jenkins builds and queue items as the domain's builds.

=====================================  =============
a queue item (waiting, blocked)        queued
``building: true``                     running
SUCCESS                                succeeded
FAILURE                                failed
UNSTABLE                               failed (``JenkinsConfig.unstable_is``)
ABORTED                                cancelled
NOT_BUILT                              cancelled
=====================================  =============

UNSTABLE means the build ran but its test results or a quality gate marked it
(JUnit failures, say): failed by default, because an agent asked "did it pass?"
should look at it; a tool can count it as succeeded instead.

``metadata``: ``jenkins_result`` (Jenkins' own word), ``queue_id``, ``parameters``,
``causes`` (why it ran, and who aborted it), ``failure_reason`` (Jenkins' result in
words, plus the abort cause when there is one) and ``failed_stage``, always ``null``
here: a freestyle job has no stages, and a Pipeline's stages live in the Pipeline
Stage View plugin's own API, which this provider does not read (see the logs:
their steps are the Pipeline's stages when the console names them).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from devmesh.domain.models import Build, BuildStatus
from devmesh.providers.jenkins.ids import BuildRef, QueueRef
from devmesh.providers.jenkins.models import WireBuild, WireQueueItem

__all__ = ["build_of", "queued_build_of", "status_of"]

_RESULT: dict[str, BuildStatus] = {
    "SUCCESS": BuildStatus.SUCCEEDED,
    "FAILURE": BuildStatus.FAILED,
    "ABORTED": BuildStatus.CANCELLED,
    "NOT_BUILT": BuildStatus.CANCELLED,
}
_REASON = {
    "FAILURE": "a build step failed (Jenkins result FAILURE)",
    "UNSTABLE": "the build ran but was marked unstable, e.g. by failing tests (UNSTABLE)",
    "ABORTED": "the build was aborted (ABORTED)",
    "NOT_BUILT": "the build was not built, e.g. an earlier stage stopped it (NOT_BUILT)",
}


def status_of(build: WireBuild, *, unstable_is: Literal["failed", "succeeded"]) -> BuildStatus:
    if build.building or build.result is None:
        return BuildStatus.RUNNING
    if build.result == "UNSTABLE":
        return BuildStatus.FAILED if unstable_is == "failed" else BuildStatus.SUCCEEDED
    # An unknown (plugin-made) result is most likely something that went wrong.
    return _RESULT.get(build.result, BuildStatus.FAILED)


def _when(ms: int | None) -> datetime | None:
    return datetime.fromtimestamp(ms / 1000, tz=UTC) if ms else None


def build_of(
    ref: BuildRef, build: WireBuild, *, unstable_is: Literal["failed", "succeeded"]
) -> Build:
    status = status_of(build, unstable_is=unstable_is)
    started = _when(build.timestamp)
    finished = status.finished
    seconds = build.duration / 1000 if finished and build.duration is not None else None
    metadata: dict[str, Any] = {"jenkins_result": build.result, "failed_stage": None}
    if build.queueId is not None:
        metadata["queue_id"] = build.queueId
    parameters = build.parameters()
    if parameters:
        metadata["parameters"] = parameters
    causes = build.causes()
    if causes:
        metadata["causes"] = causes
    if build.result in _REASON and status is not BuildStatus.SUCCEEDED:
        aborted_by = [c for c in causes if c.lower().startswith("aborted by")]
        metadata["failure_reason"] = "; ".join([_REASON[build.result], *aborted_by])
    branch, commit = build.revision()
    return Build(
        id=str(ref),
        project=ref.job,
        number=build.number,
        branch=branch,
        commit=commit,
        status=status,
        status_text=build.result or "building",
        started_at=started,
        finished_at=(
            _when(build.timestamp + build.duration)
            if finished and build.timestamp and build.duration is not None
            else None
        ),
        duration=seconds,
        url=build.url,
        failure_reason=metadata.get("failure_reason"),
        metadata=metadata,
    )


def queued_build_of(ref: QueueRef, item: WireQueueItem) -> Build:
    """A build still in the queue (``why`` says what it waits for), or one the queue
    dropped (cancelled before it started)."""
    cancelled = bool(item.cancelled)
    metadata: dict[str, Any] = {"queue_id": item.id, "failed_stage": None}
    if cancelled:
        metadata["failure_reason"] = "the queued build was cancelled before it started"
    return Build(
        id=str(ref),
        project=ref.job,
        status=BuildStatus.CANCELLED if cancelled else BuildStatus.QUEUED,
        status_text="cancelled in the queue" if cancelled else (item.why or "queued"),
        failure_reason=metadata.get("failure_reason"),
        metadata=metadata,
    )
