"""What the store remembers about a project's builds, read back for the analysis.

The knowledge handlers store one build context per final build (``build-{id}``,
type ``{provider}_build``), its log (``build_log``) and, for a failure, its
analysis (``failure-analysis-{id}``, with the error pattern as ``signature``).
These queries turn them into what the analysis and the resolution tracking need:
a project's recent outcomes, earlier failures of the same kind, the last passing
log, and the failures a later success has fixed. Every query is scoped to one
tenant in SQL.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, select, text

from devmesh.store.db import Database
from devmesh.store.rows import ContextRow

__all__ = [
    "FAILURE_ANALYSIS",
    "BuildHistory",
    "BuildOutcome",
    "SameFailure",
    "analysis_key",
    "build_key",
    "build_log_key",
    "build_type",
    "key_part",
    "resolution_key",
]

FAILURE_ANALYSIS = "failure_analysis"
# Outcomes read for history; more than the analysis looks at, fewer than a page.
_HISTORY = 20
_PASSING_LOG_LINES = 5000


# A key holds letters, digits and ._:@- (it is a URL segment); build ids such as
# GitLab's "group/app#1234" map to "group:app@1234". The subject keeps the real id.
_KEY_SAFE = str.maketrans({"/": ":", "#": "@", " ": "-"})


def key_part(build_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9._:@-]", "-", build_id.translate(_KEY_SAFE))


def build_key(build_id: str) -> str:
    return f"build-{key_part(build_id)}"


def build_log_key(build_id: str) -> str:
    return f"build-log-{key_part(build_id)}"


def analysis_key(build_id: str) -> str:
    return f"failure-analysis-{key_part(build_id)}"


def resolution_key(build_id: str) -> str:
    return f"resolution-{key_part(build_id)}"


def build_type(provider: str) -> str:
    return f"{provider}_build"


@dataclass(frozen=True, slots=True)
class BuildOutcome:
    build_id: str
    status: str
    branch: str | None
    commit: str | None
    error_pattern: str | None
    finished_at: str | None
    resolution: Any


@dataclass(frozen=True, slots=True)
class SameFailure:
    build_id: str
    tool: str | None
    project: str | None
    when: datetime
    resolution: Any


class BuildHistory:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def outcomes(
        self, tenant_id: str, tool_id: str, provider: str, project: str
    ) -> list[BuildOutcome]:
        """The project's last final builds on this tool, oldest first."""
        rows = await self._newest(
            ContextRow.tenant_id == tenant_id,
            ContextRow.scope == tool_id,
            ContextRow.type == build_type(provider),
            ContextRow.project == project,
            limit=_HISTORY,
        )
        return [_outcome(row) for row in reversed(rows)]

    async def same_signature(
        self, tenant_id: str, signature: str, *, exclude_build: str, limit: int
    ) -> list[SameFailure]:
        """Earlier analysed failures with this error pattern, newest first, any tool
        of the tenant."""
        rows = await self._newest(
            ContextRow.tenant_id == tenant_id,
            ContextRow.signature == signature,
            ContextRow.type == FAILURE_ANALYSIS,
            ContextRow.subject != exclude_build,
            limit=limit,
        )
        return [
            SameFailure(
                build_id=row.subject or "",
                tool=row.tool,
                project=row.project,
                when=row.created_at,
                resolution=(row.data or {}).get("resolution"),
            )
            for row in rows
        ]

    async def _newest(self, *where: ColumnElement[bool], limit: int) -> list[ContextRow]:
        async with self._db.session() as session:
            query = select(ContextRow).where(*where).order_by(ContextRow.created_at.desc())
            return list(await session.scalars(query.limit(limit)))

    async def error_pattern(self, tenant_id: str, tool_id: str, build_id: str) -> str | None:
        """The error pattern the analysis found for this build, if it ran."""
        async with self._db.session() as session:
            return await session.scalar(
                select(ContextRow.signature).where(
                    ContextRow.tenant_id == tenant_id,
                    ContextRow.scope == tool_id,
                    ContextRow.key == analysis_key(build_id),
                )
            )

    async def passing_log(self, tenant_id: str, tool_id: str, project: str) -> list[str] | None:
        """The lines of the project's last indexed log of a build that passed."""
        async with self._db.session() as session:
            context_id = await session.scalar(
                select(ContextRow.id)
                .where(
                    ContextRow.tenant_id == tenant_id,
                    ContextRow.scope == tool_id,
                    ContextRow.type == "build_log",
                    ContextRow.project == project,
                    ContextRow.status == "succeeded",
                )
                .order_by(ContextRow.updated_at.desc())
                .limit(1)
            )
            if context_id is None:
                return None
            texts = await session.scalars(
                text(
                    "SELECT text FROM context_chunks WHERE context_id = :c AND tenant_id = :t "
                    "ORDER BY first_line"
                ),
                {"c": context_id, "t": tenant_id},
            )
            lines: list[str] = []
            for body in texts:
                lines.extend(str(body).split("\n"))
                if len(lines) >= _PASSING_LOG_LINES:
                    break
        return lines[-_PASSING_LOG_LINES:]

    async def unresolved_failures(
        self, tenant_id: str, tool_id: str, provider: str, project: str, branch: str | None
    ) -> list[BuildOutcome]:
        """The project's (and branch's) failures since its last success that no
        resolution has been recorded for yet, oldest first."""
        unresolved: list[BuildOutcome] = []
        for outcome in await self.outcomes(tenant_id, tool_id, provider, project):
            if branch is not None and outcome.branch not in (None, branch):
                continue
            if outcome.status == "succeeded":
                unresolved = []
            elif outcome.status == "failed" and not outcome.resolution:
                unresolved.append(outcome)
        return unresolved


def _outcome(row: ContextRow) -> BuildOutcome:
    data: dict[str, Any] = row.data if isinstance(row.data, dict) else {}
    return BuildOutcome(
        build_id=row.subject or "",
        status=row.status or "",
        branch=data.get("branch"),
        commit=data.get("commit"),
        error_pattern=data.get("error_pattern"),
        finished_at=data.get("finished_at"),
        resolution=data.get("resolution"),
    )
