"""Buildbot's result codes and build properties, read as the domain's statuses.

Buildbot's results map as success, warnings and skipped → succeeded; failure and
exception → failed; cancelled → cancelled; retry → queued (Buildbot will run the
request again, and the build id follows it). An unfinished build is running; a
request without a build is queued.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from devmesh.domain.models import BuildStatus

__all__ = [
    "BUILD_PROPERTIES",
    "FAILED_STEP_RESULTS",
    "RESULTS_FOR_STATUS",
    "RETRY",
    "build_property",
    "result_name",
    "status_of",
    "time_of",
]

# Buildbot's result codes, in its own order (buildbot.process.results).
SUCCESS, WARNINGS, FAILURE, SKIPPED, EXCEPTION, RETRY, CANCELLED = range(7)
_RESULT_NAMES = ("success", "warnings", "failure", "skipped", "exception", "retry", "cancelled")
_STATUS = {
    SUCCESS: BuildStatus.SUCCEEDED,
    WARNINGS: BuildStatus.SUCCEEDED,
    FAILURE: BuildStatus.FAILED,
    SKIPPED: BuildStatus.SUCCEEDED,
    EXCEPTION: BuildStatus.FAILED,
    RETRY: BuildStatus.QUEUED,
    CANCELLED: BuildStatus.CANCELLED,
}
RESULTS_FOR_STATUS: dict[BuildStatus, tuple[int, ...]] = {
    BuildStatus.SUCCEEDED: (SUCCESS, WARNINGS, SKIPPED),
    BuildStatus.FAILED: (FAILURE, EXCEPTION),
    BuildStatus.CANCELLED: (CANCELLED,),
}
# A step "failed" for failed_only if it is where the build went wrong or was stopped.
FAILED_STEP_RESULTS = frozenset({FAILURE, EXCEPTION, CANCELLED})
BUILD_PROPERTIES = ("branch", "revision", "got_revision")


def time_of(epoch: float | None) -> datetime | None:
    return datetime.fromtimestamp(epoch, UTC) if epoch is not None else None


def result_name(results: int | None) -> str | None:
    if results is None or not 0 <= results < len(_RESULT_NAMES):
        return None
    return _RESULT_NAMES[results]


def status_of(complete: bool, results: int | None, started: bool) -> BuildStatus:
    if not complete:
        return BuildStatus.RUNNING if started else BuildStatus.QUEUED
    # An unknown result code is a newer Buildbot's; call it failed rather than hide it.
    return _STATUS.get(results if results is not None else EXCEPTION, BuildStatus.FAILED)


def build_property(properties: dict[str, Any], name: str) -> str | None:
    # Buildbot sends each property as [value, source]; multi-codebase values are dicts.
    value = properties.get(name)
    if isinstance(value, list) and value and isinstance(value[0], str) and value[0]:
        return value[0]
    return None
