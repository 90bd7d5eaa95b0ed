"""What the knowledge faces take and answer: contexts, search queries and hits.

REST and MCP share these models, so a hit reads the same on both faces.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

__all__ = [
    "KEY_PATTERN",
    "MAX_LIMIT",
    "TYPE_PATTERN",
    "Context",
    "ContextHit",
    "ContextQuery",
    "ContextWrite",
    "LineSpan",
    "SearchResults",
]

MAX_LIMIT = 50
# Keys travel in URL paths (/contexts/{key}): no slash, nothing to escape.
KEY_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,254}$"
TYPE_PATTERN = r"^[a-z][a-z0-9_.-]{0,63}$"
_NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"


def _utc(value: datetime | None) -> datetime | None:
    # A time without a zone is taken as UTC, the zone every stored time is in.
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must contain something to search for")
    return value


Key = Annotated[str, Field(pattern=KEY_PATTERN, description="e.g. build-42, failure-analysis-42")]
Type = Annotated[
    str,
    Field(
        pattern=TYPE_PATTERN,
        description="build (or per provider, e.g. gitlab_build), build_log, "
        "failure_analysis, resolution, or a type of your own.",
    ),
]
ToolName = Annotated[str, Field(pattern=_NAME, description="A tool instance's name.")]
Label = Annotated[str, Field(min_length=1, max_length=255)]


class ContextWrite(BaseModel):
    """The body of ``PUT /contexts/{key}``: storing a key again replaces it."""

    model_config = ConfigDict(extra="forbid")

    type: Type
    data: dict[str, Any] = Field(
        description="Any JSON object, up to 256 KiB. A `resolution` field is shown on search hits."
    )
    tool: ToolName | None = Field(
        default=None, description="The tool instance this is about; unset: tenant-wide."
    )
    subject: Label | None = Field(
        default=None, description="What it is about within the tool, e.g. the build id."
    )
    project: Label | None = None
    status: Annotated[str, Field(min_length=1, max_length=64)] | None = None


class Context(BaseModel):
    key: str
    type: str
    tool: str | None
    subject: str | None
    project: str | None
    status: str | None
    data: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class ContextQuery(BaseModel):
    """A search: the query, then filters that all must hold."""

    model_config = ConfigDict(extra="forbid")

    query: Annotated[str, Field(min_length=1, max_length=1000), AfterValidator(_not_blank)] = Field(
        description="Words, an error message, an identifier: matched by meaning and text."
    )
    type: Type | None = None
    tool: ToolName | None = None
    project: Label | None = None
    status: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    since: Annotated[datetime | None, AfterValidator(_utc)] = Field(
        default=None, description="Only contexts updated at or after this ISO 8601 time."
    )
    limit: int = Field(default=5, ge=1, le=MAX_LIMIT, description=f"1 to {MAX_LIMIT}.")


class LineSpan(BaseModel):
    first: int
    last: int
    cursor: str = Field(
        description="Pass as get_build_logs' cursor (with lines=last-first+1) to read these lines."
    )


class ContextHit(BaseModel):
    key: str
    type: str
    tool: str | None
    subject: str | None
    build_id: str | None = Field(description="The subject, for build contexts and logs.")
    project: str | None
    status: str | None
    resolution: str | dict[str, Any] | None = Field(
        default=None,
        description="data.resolution, when there is one (other than text or an object: as text).",
    )
    snippet: str
    lines: LineSpan | None = Field(description="For log hits: where in the log the text is.")
    score: float = Field(description="Reciprocal rank fusion of text and meaning; higher first.")
    updated_at: datetime


class SearchResults(BaseModel):
    results: list[ContextHit]
    hint: str | None = None
