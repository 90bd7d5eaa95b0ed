"""GitLab tool configuration, and the parts of GitLab's REST API v4 JSON this provider reads.

The wire models follow GitLab's documented entities (``pipeline/detail``, ``job``,
``pipeline_schedule``) and ignore fields they do not name, so a newer GitLab that adds
fields still parses; one that drops a field we need fails loudly, as an unexpected answer.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "GitLabConfig",
    "WireArtifactFile",
    "WireJob",
    "WirePipeline",
    "WirePipelineRef",
    "WireProject",
    "WireSchedule",
    "WireUser",
    "WireVariable",
]


class GitLabConfig(BaseModel):
    """Settings of one GitLab tool instance; every one is optional."""

    model_config = ConfigDict(extra="forbid")

    projects: list[str] = Field(
        default_factory=list,
        max_length=50,
        description="Projects (paths like 'group/app' or numeric ids) whose pipeline "
        "schedules list_pipelines shows; by default the projects the token is a developer of.",
    )
    request_timeout: float = Field(
        default=30.0, gt=0, le=300, description="Seconds to wait for one GitLab request."
    )
    max_log_lines: int = Field(
        default=50_000,
        ge=100,
        le=1_000_000,
        description="Most log lines read for one pipeline; beyond it the end of the log is kept.",
    )
    max_trace_bytes: int = Field(
        default=4 * 1024 * 1024,
        ge=64 * 1024,
        le=64 * 1024 * 1024,
        description="Most bytes read of one job's trace; beyond it the end is kept.",
    )


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class WireProject(_Wire):
    id: int
    path_with_namespace: str
    web_url: str | None = None
    default_branch: str | None = None


class WireUser(_Wire):
    username: str | None = None


class WirePipeline(_Wire):
    """A pipeline, as ``GET …/pipelines/:id`` (detail) or a list (basic) shows it."""

    id: int
    iid: int | None = None
    project_id: int
    sha: str | None = None
    ref: str | None = None
    status: str
    source: str | None = None
    tag: bool | None = None
    web_url: str | None = None
    created_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    duration: float | None = None
    user: WireUser | None = None


class WireArtifactFile(_Wire):
    """One entry of a job's ``artifacts``: the archive, its metadata, a trace or a report."""

    file_type: str
    size: int | None = None
    filename: str
    file_format: str | None = None


class WirePipelineRef(_Wire):
    """A pipeline as other entities name it: a job's ``pipeline``, a schedule's
    ``last_pipeline``."""

    id: int
    status: str | None = None


class WireJob(_Wire):
    id: int
    pipeline: WirePipelineRef | None = None
    name: str
    stage: str
    status: str
    allow_failure: bool = False
    failure_reason: str | None = None
    web_url: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    duration: float | None = None
    artifacts: list[WireArtifactFile] = Field(default_factory=list)
    artifacts_expire_at: datetime | None = None


class WireVariable(_Wire):
    key: str


class WireSchedule(_Wire):
    id: int
    description: str | None = None
    ref: str
    cron: str | None = None
    active: bool = True
    last_pipeline: WirePipelineRef | None = None
    variables: list[WireVariable] = Field(default_factory=list)
