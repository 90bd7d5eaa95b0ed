"""Buildbot tool configuration."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["BuildbotConfig"]


class BuildbotConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    scheduler: str | None = Field(
        default=None,
        description="Force scheduler to trigger with; by default the one serving the builder.",
    )
    max_log_lines: int = Field(
        default=50_000, ge=100, le=1_000_000, description="Most log lines read for one build."
    )
