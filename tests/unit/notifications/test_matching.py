"""Which event types a subscription's patterns want."""

from __future__ import annotations

import pytest

from devmesh.notifications.matching import wants


@pytest.mark.parametrize(
    ("patterns", "event_type", "wanted"),
    [
        (["build.failed"], "build.failed", True),
        (["build.failed"], "build.completed", False),
        (["build.*"], "build.completed", True),
        (["build.*"], "pipeline.finished", False),
        (["*"], "webhook.received", True),
        (["pipeline.*", "build.failed"], "build.failed", True),
        (["Build.*"], "build.failed", False),
    ],
)
def test_a_pattern_matches_exact_names_and_globs_only(
    patterns: list[str], event_type: str, wanted: bool
) -> None:
    assert wants(patterns, event_type) is wanted
