"""Plain domain models shared by every layer. No I/O here."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "ApiKey",
    "Artifact",
    "Build",
    "BuildRequest",
    "BuildStatus",
    "Credentials",
    "LogLine",
    "LogMatch",
    "LogPage",
    "LogSearchResult",
    "Pipeline",
    "PipelineRun",
    "Tenant",
    "ToolInstance",
]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True)


class Tenant(_Model):
    id: str
    name: str
    created_at: datetime


class ApiKey(_Model):
    """An API key's public facts. The secret is never kept, only its hash."""

    id: str
    tenant_id: str
    name: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None = None


class BuildStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (BuildStatus.SUCCEEDED, BuildStatus.FAILED, BuildStatus.CANCELLED)


class Build(_Model):
    id: str = Field(description="Pass this id to the other build operations.")
    project: str = Field(description="The job, builder or workflow the build belongs to.")
    pipeline_id: str | None = None
    number: int | None = Field(default=None, description="The number the CI system shows.")
    branch: str | None = None
    commit: str | None = None
    status: BuildStatus
    status_text: str | None = Field(default=None, description="The CI system's own words.")
    started_at: datetime | None = None
    finished_at: datetime | None = None
    duration: float | None = Field(default=None, description="Seconds, once finished.")
    url: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)


class BuildRequest(_Model):
    project: str
    branch: str | None = None
    commit: str | None = None
    parameters: dict[str, Any] = Field(default_factory=dict)
    reason: str | None = None


class Pipeline(_Model):
    id: str
    name: str
    url: str | None = None


class PipelineRun(_Model):
    id: str
    pipeline_id: str
    status: BuildStatus
    started_at: datetime | None = None
    finished_at: datetime | None = None
    url: str | None = None
    builds: list[Build] = Field(default_factory=list)


class Artifact(_Model):
    id: str
    name: str
    build_id: str
    size: int | None = None
    url: str | None = None


class LogLine(_Model):
    number: int = Field(description="1-based line number within the build's log.")
    step: str | None = None
    stream: Literal["stdout", "stderr", "header"] = "stdout"
    text: str


class LogPage(_Model):
    build_id: str
    lines: list[LogLine]
    total_lines: int | None = None
    truncated: bool = Field(description="True when more lines exist than were returned.")
    next_cursor: str | None = Field(
        default=None, description="Pass as `cursor` to read the lines after these."
    )
    hint: str | None = Field(default=None, description="How to get more, when truncated.")


class LogMatch(_Model):
    line: LogLine
    before: list[LogLine] = Field(default_factory=list)
    after: list[LogLine] = Field(default_factory=list)


class LogSearchResult(_Model):
    build_id: str
    pattern: str
    matches: list[LogMatch]
    truncated: bool
    hint: str | None = None


class Credentials(_Model):
    """What a tenant stores for one tool instance. Never logged, never returned."""

    type: Literal["personal_access_token", "bearer", "basic", "api_key"] = "bearer"
    token: str | None = None
    username: str | None = None
    password: str | None = None
    api_key: str | None = None

    @model_validator(mode="after")
    def _complete(self) -> Credentials:
        needed = {
            "personal_access_token": ("token",),
            "bearer": ("token",),
            "basic": ("username", "password"),
            "api_key": ("api_key",),
        }[self.type]
        missing = [name for name in needed if not getattr(self, name)]
        if missing:
            raise ValueError(f"type {self.type!r} needs {' and '.join(missing)}")
        return self

    def __repr__(self) -> str:
        return f"Credentials(type={self.type!r}, ...)"

    __str__ = __repr__


class ToolInstance(_Model):
    id: str
    tenant_id: str
    name: str
    provider: str
    base_url: str
    config: dict[str, Any] = Field(default_factory=dict)
    credential_mode: Literal["stored", "passthrough", "either"] = "either"
    resilience: dict[str, Any] = Field(
        default_factory=dict, description="The resilience settings that differ from defaults."
    )
    has_credentials: bool = False
    created_at: datetime
    updated_at: datetime
