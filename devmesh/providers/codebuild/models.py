"""CodeBuild tool configuration, and how a build id and a project name look."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field

from devmesh.domain.errors import UpstreamInvalidArgument

__all__ = ["CodeBuildConfig", "checked_build_id", "checked_project"]

# CodeBuild's own rules: a project name is 2-255 of these (CreateProject), a build
# id is "<project>:<uuid>" (StartBuild's answer).
_PROJECT = re.compile(r"[A-Za-z0-9][A-Za-z0-9\-_]{1,254}")
_BUILD_ID = re.compile(r"(?P<project>[A-Za-z0-9][A-Za-z0-9\-_]{1,254}):[0-9a-f\-]{36}")


class CodeBuildConfig(BaseModel):
    """Settings of one CodeBuild tool instance."""

    model_config = ConfigDict(extra="forbid")

    region: str = Field(
        default="us-east-1",
        pattern=r"^[a-z]{2}(-[a-z]+)+-[0-9]{1,2}$",
        description="The AWS region the projects are in (us-east-1, eu-west-2, ...).",
    )
    request_timeout: float = Field(
        default=30.0, gt=0, le=300, description="Seconds to wait for one AWS request."
    )
    max_log_lines: int = Field(
        default=10_000,
        ge=100,
        le=10_000,
        description="Most log events read for one build (GetLogEvents answers at most "
        "10,000); beyond it the end of the log is kept.",
    )


def checked_project(project: str, *, field: str = "project") -> str:
    value = project.strip()
    if not _PROJECT.fullmatch(value):
        raise UpstreamInvalidArgument(
            f"{field} must be a CodeBuild project name: 2 to 255 letters, digits, '-' or "
            "'_', starting with a letter or digit",
            details={"field": field},
        )
    return value


def checked_build_id(build_id: str) -> str:
    """A CodeBuild build id (``project:uuid``), or an error naming ``build_id``."""
    value = build_id.strip()
    if not _BUILD_ID.fullmatch(value):
        raise UpstreamInvalidArgument(
            f"build_id {build_id[:80]!r} is not a CodeBuild build id; use the id "
            "trigger_build or list_builds returned, like 'my-project:<uuid>'",
            details={"field": "build_id"},
        )
    return value


def project_of(build_id: str) -> str:
    return build_id.rsplit(":", 1)[0]
