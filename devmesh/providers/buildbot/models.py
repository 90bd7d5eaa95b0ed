"""Buildbot tool configuration, and the parts of Buildbot's JSON this provider reads.

The wire models ignore fields they do not name, so a newer master that adds fields
still parses; a master that drops one we need fails loudly, as an unexpected answer.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "BuildbotConfig",
    "WireBuild",
    "WireBuildData",
    "WireBuildRequest",
    "WireBuilder",
    "WireBuildset",
    "WireField",
    "WireForceScheduler",
    "WireLog",
    "WireLogChunk",
    "WireStep",
    "WireStepUrl",
]


class BuildbotConfig(BaseModel):
    """Settings of one Buildbot tool instance; every one is optional."""

    model_config = ConfigDict(extra="forbid")

    scheduler: str | None = Field(
        default=None,
        description="Force scheduler to trigger builds with; by default the one that "
        "serves the builder.",
    )
    request_timeout: float = Field(
        default=30.0, gt=0, le=300, description="Seconds to wait for one Buildbot request."
    )
    max_log_lines: int = Field(
        default=50_000,
        ge=100,
        le=1_000_000,
        description="Most log lines read for one build; beyond it the end of the log is kept.",
    )


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


class WireBuilder(_Wire):
    builderid: int
    name: str


class WireField(_Wire):
    """One field of a force scheduler's form; ``nested`` fields group others."""

    name: str = ""
    full_name: str | None = Field(default=None, alias="fullName")
    type: str = ""
    default: Any = None
    multiple: bool = False
    fields: list[WireField] = Field(default_factory=list)


class WireForceScheduler(_Wire):
    name: str
    label: str | None = None
    builder_names: list[str] = Field(default_factory=list)
    all_fields: list[WireField] = Field(default_factory=list)


class WireBuild(_Wire):
    buildid: int
    builderid: int
    buildrequestid: int
    number: int
    complete: bool
    results: int | None = None
    started_at: float | None = None
    complete_at: float | None = None
    state_string: str | None = None
    properties: dict[str, Any] = Field(default_factory=dict)


class WireBuildRequest(_Wire):
    buildrequestid: int
    builderid: int
    buildsetid: int
    claimed: bool = False
    complete: bool = False
    results: int | None = None
    submitted_at: float | None = None
    complete_at: float | None = None


class WireBuildset(_Wire):
    bsid: int
    complete: bool
    results: int | None = None  # -1 until complete
    reason: str | None = None
    submitted_at: float | None = None
    complete_at: float | None = None


class WireStepUrl(_Wire):
    name: str
    url: str


class WireStep(_Wire):
    stepid: int
    buildid: int
    number: int
    name: str
    results: int | None = None
    complete: bool = False
    urls: list[WireStepUrl] = Field(default_factory=list)


class WireLog(_Wire):
    logid: int
    stepid: int
    name: str
    slug: str
    type: str
    num_lines: int = 0
    complete: bool = False


class WireBuildData(_Wire):
    """A blob a step stored with ``setBuildData``; listings leave out its value."""

    buildid: int
    name: str
    length: int
    source: str | None = None


class WireLogChunk(_Wire):
    content: str
    firstline: int
