"""The provider kit's status roll-up: one status for a run of several builds.

Every provider with pipelines, workflows or stages answers ``get_pipeline`` the same
way (as ``PipelineRun.status`` documents): queued until a build starts; running until
every build has finished; then failed if any failed, else cancelled if any was
cancelled, else succeeded.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from devmesh.domain.models import BuildStatus

__all__ = ["roll_up", "summary"]


def roll_up(statuses: Sequence[BuildStatus]) -> BuildStatus | None:
    """The run's status from its builds' statuses; ``None`` for a run without builds
    (the provider's own verdict is all that is left then)."""
    if not statuses:
        return None
    if all(status.finished for status in statuses):
        for worst in (BuildStatus.FAILED, BuildStatus.CANCELLED):
            if worst in statuses:
                return worst
        return BuildStatus.SUCCEEDED
    if any(status is not BuildStatus.QUEUED for status in statuses):
        return BuildStatus.RUNNING
    return BuildStatus.QUEUED


def summary(statuses: Iterable[BuildStatus]) -> str:
    """ "3 builds: 1 running, 2 succeeded": counts in the order of ``BuildStatus``."""
    counts: dict[BuildStatus, int] = {}
    for status in statuses:
        counts[status] = counts.get(status, 0) + 1
    total = sum(counts.values())
    parts = [f"{counts[status]} {status}" for status in BuildStatus if status in counts]
    noun = "build" if total == 1 else "builds"
    return f"{total} {noun}: {', '.join(parts) or 'none'}"
