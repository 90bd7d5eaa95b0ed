"""CircleCI tool configuration, and the parts of CircleCI's API JSON this provider reads.

The v2 wire models follow CircleCI's API v2 OpenAPI description (``Pipeline``,
``Workflow``, ``Job``, ``Artifact``, ``PipelineCreation``); the v1.1 ones follow the
"Single Job" answer of API v1.1 (its ``steps[].actions[]``, where each step's
``output_url`` is). They ignore fields they do not name.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "CircleCIConfig",
    "WireAction",
    "WireArtifact",
    "WireJob",
    "WireJobDetail",
    "WirePipeline",
    "WirePipelineCreated",
    "WireStep",
    "WireWorkflow",
]


class CircleCIConfig(BaseModel):
    """Settings of one CircleCI tool instance; every one is optional."""

    model_config = ConfigDict(extra="forbid")

    request_timeout: float = Field(
        default=30.0, gt=0, le=300, description="Seconds to wait for one CircleCI request."
    )
    app_url: str = Field(
        default="https://app.circleci.com",
        max_length=200,
        pattern=r"^https?://[^\s/?#]+$",
        description="Where CircleCI's web app is, for the links builds carry.",
    )
    max_log_lines: int = Field(
        default=50_000,
        ge=100,
        le=1_000_000,
        description="Most log lines read for one build; beyond it the end of the log is kept.",
    )
    max_step_bytes: int = Field(
        default=4 * 1024 * 1024,
        ge=64 * 1024,
        le=64 * 1024 * 1024,
        description="Most bytes read of one step's output; beyond it the step's start is kept.",
    )


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class WirePipelineCreated(_Wire):
    id: str
    state: str
    number: int
    created_at: str


class WirePipeline(_Wire):
    id: str
    number: int
    project_slug: str
    state: str
    created_at: str
    updated_at: str | None = None
    errors: list[dict[str, Any]] = Field(default_factory=list)
    vcs: dict[str, Any] | None = None
    trigger_parameters: dict[str, Any] | None = None

    @property
    def branch(self) -> str | None:
        value = (self.vcs or {}).get("branch")
        return value if isinstance(value, str) else None

    @property
    def revision(self) -> str | None:
        value = (self.vcs or {}).get("revision")
        return value if isinstance(value, str) else None


class WireWorkflow(_Wire):
    id: str
    name: str
    pipeline_id: str
    pipeline_number: int
    project_slug: str
    status: str
    created_at: str
    stopped_at: str | None = None
    canceled_by: str | None = None


class WireJob(_Wire):
    id: str
    name: str
    status: str
    type: str = "build"
    job_number: int | None = None  # approval jobs have none
    started_at: str | None = None
    stopped_at: str | None = None


class WireArtifact(_Wire):
    path: str
    node_index: int = 0
    url: str


class WireAction(_Wire):
    name: str | None = None
    index: int = 0
    step: int | None = None
    status: str | None = None
    failed: bool | None = None
    exit_code: int | None = None
    has_output: bool | None = None
    output_url: str | None = None


class WireStep(_Wire):
    name: str
    actions: list[WireAction] = Field(default_factory=list)


class WireJobDetail(_Wire):
    """API v1.1's single job: its steps, each with its actions (one per parallel node)."""

    build_num: int
    status: str | None = None
    steps: list[WireStep] = Field(default_factory=list)
