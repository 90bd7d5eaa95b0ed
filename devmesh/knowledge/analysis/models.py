"""What the failure analyser returns, and what it is fed besides the log."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "CATEGORIES",
    "Category",
    "ExcerptLine",
    "FailureAnalysis",
    "PastOutcome",
    "StepOutcome",
]

Category = Literal[
    "test",
    "compile",
    "lint",
    "dependency",
    "configuration",
    "infrastructure",
    "timeout",
    "cancelled-by-user",
    "other",
]
CATEGORIES: tuple[Category, ...] = (
    "test",
    "compile",
    "lint",
    "dependency",
    "configuration",
    "infrastructure",
    "timeout",
    "cancelled-by-user",
    "other",
)


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True)


class ExcerptLine(_Model):
    line: int = Field(description="The line's number in the full log, from 1.")
    text: str


class StepOutcome(_Model):
    """One step (Buildbot step, GitLab job or stage) as the provider reports it."""

    name: str
    status: str = Field(description="The provider's word: failed, succeeded, cancelled, ...")
    first_line: int | None = Field(
        default=None, description="The step's first line in the full log, when known."
    )
    last_line: int | None = None


class PastOutcome(_Model):
    """An earlier or later build of the same project, as the store remembers it."""

    status: Literal["succeeded", "failed", "cancelled"]
    same_commit: bool = Field(
        default=False, description="Built the same commit as the analysed build."
    )
    error_pattern: str | None = Field(
        default=None, description="Its failure's error_pattern, when it failed and was analysed."
    )


class FailureAnalysis(_Model):
    category: Category
    failed_stage: str | None = Field(description="The failed step, job or stage, when known.")
    failure_reason: str = Field(description="One human sentence.")
    excerpt: list[ExcerptLine] = Field(
        description="The lines that explain the failure (about 30 at most), in log order."
    )
    error_pattern: str = Field(
        description="The key error with numbers, hashes, paths, times and ids masked: "
        "equal across builds failing the same way."
    )
    retriable: bool
    confidence: float = Field(ge=0.0, le=1.0, description="Confidence in `retriable`.")
    signals: list[str] = Field(
        default_factory=list, description="Why: the signals found, e.g. 'network reset'."
    )
