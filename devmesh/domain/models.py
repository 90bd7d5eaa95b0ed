"""Plain domain models shared by every layer. No I/O here."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from devmesh.domain.limits import MAX_CREDENTIAL_FIELD

__all__ = [
    "ApiKey",
    "Artifact",
    "ArtifactChunk",
    "ArtifactContent",
    "Build",
    "BuildRequest",
    "BuildStatus",
    "Credentials",
    "LogLine",
    "LogMatch",
    "LogPage",
    "LogSearchResult",
    "Pipeline",
    "PipelineRequest",
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
    read_only: bool = False


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
    build_id: str = Field(
        default="",
        description="The same as `id`, under the name callers of the original client read.",
    )
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
    failed_stage: str | None = Field(
        default=None,
        description="Where a failed build failed, when the CI says: the stage (GitLab) or "
        "the step (Buildbot).",
    )
    failure_reason: str | None = Field(
        default=None,
        description="Why a failed build failed, in the CI's own terms "
        "(GitLab: script_failure, runner_system_failure, …; Buildbot: failure, exception).",
    )
    metadata: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _build_id_is_id(cls, data: Any) -> Any:
        # Always the id, whatever was passed: two names for one value, never two values.
        if isinstance(data, dict) and "id" in data:
            return {**data, "build_id": data["id"]}
        return data


class BuildRequest(_Model):
    project: str
    branch: str | None = None
    commit: str | None = None
    parameters: dict[str, Any] = Field(default_factory=dict)
    reason: str | None = None


class Pipeline(_Model):
    """Something that starts several builds at once, e.g. a Buildbot force scheduler."""

    id: str = Field(description="Pass this as `pipeline` to trigger_pipeline.")
    name: str = Field(description="The name the CI system shows.")
    url: str | None = None
    projects: list[str] = Field(
        default_factory=list, description="The jobs or builders one run of it starts."
    )
    parameters: list[str] = Field(
        default_factory=list, description="Names trigger_pipeline accepts in `parameters`."
    )


class PipelineRequest(_Model):
    pipeline: str
    branch: str | None = None
    commit: str | None = None
    parameters: dict[str, Any] = Field(default_factory=dict)
    reason: str | None = None


class PipelineRun(_Model):
    id: str = Field(description="Pass this id to get_pipeline.")
    pipeline_id: str | None = Field(
        default=None, description="The pipeline this run belongs to, when the CI says."
    )
    status: BuildStatus = Field(
        description="queued until a build starts; running until every build has finished; "
        "then failed if any build failed, else cancelled if any was cancelled, else succeeded."
    )
    status_text: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    url: str | None = None
    builds: list[Build] = Field(
        default_factory=list, description="One per project; use their ids with the build tools."
    )
    metadata: dict[str, Any] = Field(default_factory=dict)


class Artifact(_Model):
    """A file a build left behind: an uploaded file, a log, or a link to something kept
    elsewhere."""

    id: str = Field(description="Pass this with the build id to download_artifact.")
    name: str
    build_id: str
    kind: Literal["file", "log", "link"] = Field(
        description="file: stored by the CI; log: a step's log; link: a URL the build "
        "published, kept outside the CI."
    )
    size: int | None = Field(default=None, description="Bytes, when the CI says.")
    content_type: str | None = None
    url: str | None = Field(
        default=None, description="Where it lives; for a link the only way to reach it."
    )
    downloadable: bool = Field(description="Whether download_artifact can read it.")
    step: str | None = Field(default=None, description="The step that made it, when known.")
    metadata: dict[str, Any] = Field(default_factory=dict)


class ArtifactChunk(_Model):
    """Raw bytes of an artifact from ``offset``, as an adapter read them; the shaping for
    callers (text or base64, hints) happens in ``devmesh.adapters.artifacts``."""

    data: bytes
    offset: int
    size: int | None = Field(default=None, description="The whole artifact's bytes, if known.")
    more: bool = Field(description="True when bytes follow the ones read.")
    content_type: str | None = None


class ArtifactContent(_Model):
    build_id: str
    artifact_id: str
    offset: int = Field(description="Where `content` starts, in bytes from the start.")
    length: int = Field(description="How many bytes of the artifact `content` holds.")
    encoding: Literal["utf-8", "base64"] = Field(
        description="utf-8: `content` is the text itself; base64: the bytes were not UTF-8 "
        "text and `content` is their base64."
    )
    content: str
    content_type: str | None = None
    size: int | None = Field(default=None, description="The whole artifact's bytes, if known.")
    truncated: bool = Field(description="True when the artifact goes on after these bytes.")
    next_offset: int | None = Field(
        default=None, description="Pass as `offset` to read the bytes after these."
    )
    hint: str | None = Field(default=None, description="How to get more, or why nothing came.")


class LogLine(_Model):
    number: int = Field(description="1-based line number within the build's log.")
    step: str | None = None
    stream: Literal["stdout", "stderr", "header"] = "stdout"
    text: str


class LogPage(_Model):
    build_id: str
    lines: list[LogLine]
    content: str = Field(
        default="",
        description="The same lines as one text, joined by newlines: handy for reading, "
        "while `lines` keeps numbers, steps and streams.",
    )
    error_pattern: str | None = Field(
        default=None,
        description="The error the failure analysis found in this build's log; null until "
        "that analysis has run for the build.",
    )
    total_lines: int | None = None
    truncated: bool = Field(description="True when more lines exist than were returned.")
    next_cursor: str | None = Field(
        default=None, description="Pass as `cursor` to read the lines after these."
    )
    hint: str | None = Field(default=None, description="How to get more, when truncated.")

    @model_validator(mode="before")
    @classmethod
    def _content_is_lines(cls, data: Any) -> Any:
        # Derived from `lines` every time, so the two can never disagree.
        if not isinstance(data, dict) or not isinstance(data.get("lines"), list | tuple):
            return data
        texts = []
        for line in data["lines"]:
            if isinstance(line, LogLine):
                texts.append(line.text)
            elif isinstance(line, Mapping):
                texts.append(str(line.get("text", "")))
            else:
                return data  # not a line: the field's own validation says so
        return {**data, "content": "\n".join(texts)}


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
    """What a tenant stores for one tool instance. Never logged, never returned.

    Which types a tool takes, and which fields each needs, is its provider's to say
    (``adapters.credentials.CredentialScheme``); ToolService checks them against it.
    """

    type: str = Field(
        default="bearer",
        pattern=r"^[a-z][a-z0-9_]{0,31}$",
        description="A credential type the tool's provider takes, e.g. basic, bearer.",
    )
    token: str | None = Field(default=None, max_length=MAX_CREDENTIAL_FIELD)
    username: str | None = Field(default=None, max_length=MAX_CREDENTIAL_FIELD)
    password: str | None = Field(default=None, max_length=MAX_CREDENTIAL_FIELD)
    api_key: str | None = Field(default=None, max_length=MAX_CREDENTIAL_FIELD)

    @model_validator(mode="after")
    def _something(self) -> Credentials:
        if not (self.token or self.username or self.password or self.api_key):
            raise ValueError("credentials need a token, username, password or api_key")
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
    verify_tls: bool = True
    credential_mode: Literal["stored", "passthrough", "either"] = "either"
    resilience: dict[str, Any] = Field(
        default_factory=dict, description="The resilience settings that differ from defaults."
    )
    auto_retry: dict[str, Any] = Field(
        default_factory=dict, description="The auto-retry settings that differ from defaults."
    )
    has_credentials: bool = False
    toolsets: list[str] | None = Field(
        default=None,
        description="The toolsets an MCP connection that names none lists of this instance; "
        "unset: the service's default (the `toolsets` setting).",
    )
    managed_by: str | None = Field(
        default=None,
        description="'config': declared in the service's configuration file and kept by "
        "`devmesh apply`, which may change it back; unset: made through the API.",
    )
    created_at: datetime
    updated_at: datetime
