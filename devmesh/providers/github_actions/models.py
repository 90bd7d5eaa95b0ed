"""GitHub Actions tool configuration, and the parts of GitHub's REST API JSON this provider reads.

The wire models follow GitHub's published OpenAPI description (``workflow-run``,
``job``, ``artifact``, ``installation-token``) and ignore fields they do not name, so a
GitHub that adds fields still parses; one that drops a field we need fails loudly, as
an unexpected answer.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "GitHubActionsConfig",
    "WireArtifact",
    "WireDispatch",
    "WireJob",
    "WireRepository",
    "WireRun",
    "WireRunRef",
    "WireStep",
    "WireToken",
    "WireWorkflow",
]


class GitHubActionsConfig(BaseModel):
    """Settings of one GitHub Actions tool instance; every one is optional."""

    model_config = ConfigDict(extra="forbid")

    installation_id: int | None = Field(
        default=None,
        ge=1,
        description="For github_app credentials: the app's installation to act as.",
    )
    request_timeout: float = Field(
        default=30.0, gt=0, le=300, description="Seconds to wait for one GitHub request."
    )
    max_log_lines: int = Field(
        default=50_000,
        ge=100,
        le=1_000_000,
        description="Most log lines read for one run; beyond it the end of the log is kept.",
    )
    max_job_log_bytes: int = Field(
        default=4 * 1024 * 1024,
        ge=64 * 1024,
        le=64 * 1024 * 1024,
        description="Most bytes read of one job's log; beyond it the end is kept.",
    )
    max_archive_bytes: int = Field(
        default=64 * 1024 * 1024,
        ge=1024 * 1024,
        le=1024 * 1024 * 1024,
        description="Largest artifact zip opened to list or read its entries.",
    )


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class WireRepository(_Wire):
    full_name: str
    default_branch: str | None = None


class WireWorkflow(_Wire):
    id: int
    name: str
    path: str
    state: str


class WireRun(_Wire):
    id: int
    name: str | None = None
    run_number: int
    run_attempt: int | None = None
    event: str
    status: str | None = None
    conclusion: str | None = None
    head_branch: str | None = None
    head_sha: str
    path: str | None = None  # absent from older webhook payloads
    workflow_id: int
    html_url: str
    display_title: str | None = None
    created_at: datetime
    updated_at: datetime
    run_started_at: datetime | None = None


class WireStep(_Wire):
    name: str
    status: str
    conclusion: str | None = None
    number: int


class WireJob(_Wire):
    id: int
    run_id: int
    run_attempt: int | None = None
    name: str
    status: str
    conclusion: str | None = None
    html_url: str | None = None
    started_at: datetime
    completed_at: datetime | None = None
    steps: list[WireStep] = Field(default_factory=list)


class WireRunRef(_Wire):
    id: int


class WireArtifact(_Wire):
    id: int
    name: str
    size_in_bytes: int
    expired: bool
    archive_download_url: str
    expires_at: datetime | None = None
    workflow_run: WireRunRef | None = None


class WireDispatch(_Wire):
    """The answer to a dispatch with ``return_run_details`` (current API versions)."""

    workflow_run_id: int
    html_url: str | None = None


class WireToken(_Wire):
    token: str
    expires_at: datetime
