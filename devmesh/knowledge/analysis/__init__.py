"""The failure analyser: why a build failed, in a few lines a developer can paste.

``analyze_log`` reads a failed build's log and returns a ``FailureAnalysis``:
a category, the failed stage, one sentence, an excerpt of at most 40 numbered
lines, a signature equal across builds failing the same way, and whether a retry
is likely to help. ``adjust_for_history`` revises that last answer with the
project's other builds. Both are pure and synchronous: no I/O, no model.
"""

from devmesh.knowledge.analysis.analyzer import EXCERPT_MAX, MAX_LINES, analyze_log
from devmesh.knowledge.analysis.models import (
    CATEGORIES,
    Category,
    ExcerptLine,
    FailureAnalysis,
    PastOutcome,
    StepOutcome,
)
from devmesh.knowledge.analysis.retry import adjust_for_history

__all__ = [
    "CATEGORIES",
    "EXCERPT_MAX",
    "MAX_LINES",
    "Category",
    "ExcerptLine",
    "FailureAnalysis",
    "PastOutcome",
    "StepOutcome",
    "adjust_for_history",
    "analyze_log",
]
