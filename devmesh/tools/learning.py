"""What Developer Mesh learns from builds: contexts, indexed logs, failure analyses,
resolutions and capped auto-retry.

``BuildLearning`` is the one service behind the worker's knowledge handler
(``devmesh.tools.learner``) and the ``analyze_failure`` / ``record_resolution``
operations of REST and MCP. It reads builds and logs through ``ToolService`` (the
tool's stored credentials, the same resilience and metrics as any call) and writes
through ``ContextService``, whose writes replace by key: running it twice for one
build leaves the same contexts, so a redelivered event does no harm. The one effect
outside the store, an automatic retry, is claimed by a unique row and made with an
idempotency key, so it happens once per failure however often it is attempted.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import anyio
import structlog
from pydantic import BaseModel, Field
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from devmesh.config import KnowledgeSettings
from devmesh.domain.errors import Conflict, DevMeshError, InvalidInput
from devmesh.domain.models import Build, BuildStatus, LogLine, Tenant, ToolInstance
from devmesh.knowledge.analysis import (
    ExcerptLine,
    FailureAnalysis,
    PastOutcome,
    StepOutcome,
    adjust_for_history,
    analyze_log,
)
from devmesh.knowledge.history import (
    FAILURE_ANALYSIS,
    BuildHistory,
    BuildOutcome,
    analysis_key,
    build_key,
    build_log_key,
    build_type,
    resolution_key,
)
from devmesh.knowledge.logtext import LogChunk, chunk_lines, clean_lines
from devmesh.knowledge.service import ContextService
from devmesh.store.db import Database
from devmesh.store.rows import AutoRetryRow, utcnow
from devmesh.tools.models import AutoRetryPolicy
from devmesh.tools.service import ToolService

__all__ = ["AutoRetry", "BuildLearning", "FailureReport", "Resolution", "SimilarFailure"]

_log = structlog.get_logger(__name__)

SIMILAR_LIMIT = 5
_NOTE_MAX = 2000


class SimilarFailure(BaseModel):
    build_id: str
    tool: str | None
    project: str | None
    when: datetime
    match: Literal["signature", "search"] = Field(
        description="signature: the same error pattern; search: close by words and meaning."
    )
    resolution: str | dict[str, Any] | None = Field(
        default=None, description="How it was fixed, once known."
    )


class AutoRetry(BaseModel):
    retried: bool
    reason: str
    retry_build_id: str | None = None


class FailureReport(BaseModel):
    """``analyze_failure``'s answer: why the build failed, in a few hundred tokens."""

    build_id: str
    tool: str
    project: str | None
    branch: str | None
    commit: str | None
    url: str | None
    category: str
    failed_stage: str | None
    failure_reason: str
    excerpt: list[ExcerptLine] = Field(
        description="The lines that explain the failure, numbered as in the full log."
    )
    error_pattern: str
    retriable: bool
    confidence: float
    signals: list[str]
    similar: list[SimilarFailure] = Field(
        description="Earlier failures of this tenant: the same error pattern first, then "
        "the closest by search."
    )
    resolution: str | dict[str, Any] | None = None
    auto_retry: AutoRetry | None = None
    log_lines: int = Field(description="Lines in the build's log.")
    hint: str = Field(
        description="Where to read more: get_build_logs with a cursor opens the lines "
        "around the excerpt."
    )


class Resolution(BaseModel):
    build_id: str
    tool: str
    resolution: dict[str, Any]


class BuildLearning:
    def __init__(
        self,
        *,
        db: Database,
        tools: ToolService,
        contexts: ContextService,
        history: BuildHistory,
        settings: KnowledgeSettings,
    ) -> None:
        self._db = db
        self._tools = tools
        self._contexts = contexts
        self._history = history
        self._settings = settings

    # --- the worker's side ----------------------------------------------------------

    async def learn(self, tenant: Tenant, tool: str, build: Build) -> FailureReport | None:
        """Remember a final build: its context and log; for a failure, the analysis and
        perhaps an automatic retry; for a success, the failures it resolves."""
        instance = await self._tools.get_tool(tenant, tool)
        if build.status is BuildStatus.FAILED and build.failed_stage is None:
            build = await self._refreshed(tenant, instance, build)
        fixed: list[BuildOutcome] = []
        if build.status is BuildStatus.SUCCEEDED and build.project:
            fixed = await self._history.unresolved_failures(
                tenant.id, instance.id, instance.provider, build.project, build.branch
            )
        lines, total, why_unread = await self._read_log(tenant, instance.name, instance, build)
        if lines:
            await self._index(tenant, instance.name, build, lines)
        report: FailureReport | None = None
        if build.status is BuildStatus.FAILED:
            report = await self._analyse(tenant, instance.name, instance.id, build, lines, total)
        await self._store_build(tenant, instance.name, instance.provider, build, report, why_unread)
        for failure in fixed:
            await self._resolve(tenant, instance.name, failure, build)
        if report is not None:
            policy = AutoRetryPolicy.model_validate(instance.auto_retry)
            decision = await self._auto_retry(
                tenant, instance.id, instance.name, build, report, policy
            )
            if decision is not None:
                report = report.model_copy(update={"auto_retry": decision})
                await self._contexts.update_data(
                    tenant.id,
                    analysis_key(build.id),
                    tool=instance.name,
                    changes={"auto_retry": decision.model_dump(mode="json")},
                )
        return report

    async def _refreshed(self, tenant: Tenant, instance: ToolInstance, build: Build) -> Build:
        """The build as the tool reports it now: a webhook's payload may lack what only
        the tool's API says (Buildbot's failed step)."""
        if instance.credential_mode == "passthrough":
            return build
        try:
            return Build.model_validate(
                await self._tools.execute(
                    tenant, instance.id, "get_build_status", {"build_id": build.id}
                )
            )
        except DevMeshError:
            return build

    # --- analyze_failure and record_resolution ------------------------------------------

    async def analyze_failure(self, tenant: Tenant, tool: str, build_id: str) -> FailureReport:
        """The analysis of a failed build: the stored one when the worker made it, else
        made now (and stored)."""
        instance = await self._tools.get_tool(tenant, tool)
        stored = await self._stored_report(tenant, instance.name, build_id)
        if stored is not None:
            return stored
        build = Build.model_validate(
            await self._tools.execute(
                tenant, instance.id, "get_build_status", {"build_id": build_id}
            )
        )
        if build.status is not BuildStatus.FAILED:
            raise Conflict(
                f"build {build_id!r} is {build.status.value}, not failed: there is no failure "
                "to analyse",
                details={"build_id": build_id, "status": build.status.value},
            )
        lines, total, _ = await self._read_log(tenant, instance.name, instance, build)
        return await self._analyse(tenant, instance.name, instance.id, build, lines, total)

    async def record_resolution(
        self, tenant: Tenant, tool: str, build_id: str, note: str
    ) -> Resolution:
        """Say how a failure was fixed: kept on the build's contexts (shown on search
        hits) and stored as a ``resolution`` context of its own, found by searching
        for the fix."""
        note = note.strip()
        if not note:
            raise InvalidInput("note must say how the failure was fixed", field="note")
        if len(note) > _NOTE_MAX:
            raise InvalidInput(f"note is at most {_NOTE_MAX} characters", field="note")
        instance = await self._tools.get_tool(tenant, tool)
        earlier: dict[str, Any] = {}
        analysis = await self._context_data(tenant, instance.name, analysis_key(build_id))
        if analysis is not None and isinstance(analysis.get("resolution"), dict):
            earlier = analysis["resolution"]
        resolution = {
            **earlier,
            "note": note,
            "noted_at": _iso(utcnow()),
            "by": "person" if not earlier else f"{earlier.get('by', 'worker')}+person",
        }
        await self._mark_resolved(tenant, instance.name, build_id, resolution)
        await self._contexts.store_context(
            tenant.id,
            key=resolution_key(build_id),
            type="resolution",
            data={
                "build_id": build_id,
                "note": note,
                "failure_reason": (analysis or {}).get("failure_reason"),
                "error_pattern": (analysis or {}).get("error_pattern"),
                "resolution": resolution,
            },
            tool=instance.name,
            subject=build_id,
            project=(analysis or {}).get("project"),
            status="resolved",
        )
        return Resolution(build_id=build_id, tool=instance.name, resolution=resolution)

    # --- reading and indexing -------------------------------------------------------------

    async def _read_log(
        self, tenant: Tenant, tool: str, instance: ToolInstance, build: Build
    ) -> tuple[list[LogLine], int, str | None]:
        """The log's tail (lines, total) or why it could not be read."""
        if instance.credential_mode == "passthrough":
            # No caller, so no caller's token: a passthrough-only tool cannot be read.
            return [], 0, "passthrough-only tool: no stored credentials to read the log with"
        try:
            lines, total = await self._tools.read_build_log(
                tenant, tool, build.id, max_lines=self._settings.log_max_lines
            )
        except DevMeshError as exc:
            _log.info("build_log_unread", tool=tool, build_id=build.id, error=exc.code)
            return [], 0, f"{exc.code}: the log could not be read"
        return lines, total, None

    async def _index(
        self, tenant: Tenant, tool: str, build: Build, lines: Sequence[LogLine]
    ) -> None:
        chunks = await anyio.to_thread.run_sync(_chunks, list(lines))
        await self._contexts.index_log_chunks(
            tenant.id,
            tool,
            build.id,
            chunks,
            context_key=build_log_key(build.id),
            project=build.project,
            status=build.status.value,
            data={"build_id": build.id, "branch": build.branch, "commit": build.commit},
        )

    async def _store_build(
        self,
        tenant: Tenant,
        tool: str,
        provider: str,
        build: Build,
        report: FailureReport | None,
        why_unread: str | None,
    ) -> None:
        data: dict[str, Any] = {
            "build_id": build.id,
            "id": build.id,
            "project": build.project,
            "branch": build.branch,
            "commit": build.commit,
            "status": build.status.value,
            "duration": build.duration,
            "started_at": _iso(build.started_at),
            "finished_at": _iso(build.finished_at),
            "url": build.url,
            "failed_stage": build.failed_stage,
            "failure_reason": build.failure_reason,
        }
        if report is not None:
            data |= {
                "category": report.category,
                "failed_stage": report.failed_stage or build.failed_stage,
                "failure_reason": report.failure_reason,
                "error_pattern": report.error_pattern,
            }
        if why_unread is not None:
            data["log"] = why_unread
        earlier = await self._context_data(tenant, tool, build_key(build.id))
        if earlier is not None and earlier.get("resolution"):
            data["resolution"] = earlier["resolution"]
        await self._contexts.store_context(
            tenant.id,
            key=build_key(build.id),
            type=build_type(provider),
            data=data,
            tool=tool,
            subject=build.id,
            project=build.project,
            status=build.status.value,
        )

    # --- analysis ---------------------------------------------------------------------------

    async def _analyse(
        self,
        tenant: Tenant,
        tool: str,
        tool_id: str,
        build: Build,
        lines: Sequence[LogLine],
        total: int,
    ) -> FailureReport:
        provider = (await self._tools.get_tool(tenant, tool)).provider
        passing = (
            await self._history.passing_log(tenant.id, tool_id, build.project)
            if build.project
            else None
        )
        analysis = await anyio.to_thread.run_sync(_analyse_lines, list(lines), build, passing)
        if build.project:
            past = [
                outcome
                for outcome in await self._history.outcomes(
                    tenant.id, tool_id, provider, build.project
                )
                if outcome.build_id != build.id
            ]
            analysis = adjust_for_history(analysis, [_past(o, build) for o in past])
        similar = await self._similar(tenant, build, analysis)
        earlier = await self._context_data(tenant, tool, analysis_key(build.id)) or {}
        report = FailureReport(
            build_id=build.id,
            tool=tool,
            project=build.project,
            branch=build.branch,
            commit=build.commit,
            url=build.url,
            category=analysis.category,
            failed_stage=analysis.failed_stage or build.failed_stage,
            failure_reason=analysis.failure_reason,
            excerpt=analysis.excerpt,
            error_pattern=analysis.error_pattern,
            retriable=analysis.retriable,
            confidence=analysis.confidence,
            signals=analysis.signals,
            similar=similar,
            resolution=earlier.get("resolution"),
            auto_retry=AutoRetry.model_validate(earlier["auto_retry"])
            if earlier.get("auto_retry")
            else None,
            log_lines=total,
            hint=_hint(build.id, analysis.excerpt, total),
        )
        await self._contexts.store_context(
            tenant.id,
            key=analysis_key(build.id),
            type=FAILURE_ANALYSIS,
            data=report.model_dump(mode="json", exclude={"similar", "hint"}),
            tool=tool,
            subject=build.id,
            project=build.project,
            status="failed",
            signature=analysis.error_pattern,
        )
        return report

    async def _similar(
        self, tenant: Tenant, build: Build, analysis: FailureAnalysis
    ) -> list[SimilarFailure]:
        found = [
            SimilarFailure(
                build_id=same.build_id,
                tool=same.tool,
                project=same.project,
                when=same.when,
                match="signature",
                resolution=same.resolution,
            )
            for same in await self._history.same_signature(
                tenant.id, analysis.error_pattern, exclude_build=build.id, limit=SIMILAR_LIMIT
            )
        ]
        if len(found) < SIMILAR_LIMIT:
            seen = {(s.tool, s.build_id) for s in found}
            query = "\n".join([analysis.failure_reason, *(e.text for e in analysis.excerpt[-8:])])
            for hit in await self._contexts.similar(
                tenant.id,
                query[:1000],
                type=FAILURE_ANALYSIS,
                exclude_subject=build.id,
                limit=SIMILAR_LIMIT,
            ):
                if hit.subject is None or (hit.tool, hit.subject) in seen:
                    continue
                seen.add((hit.tool, hit.subject))
                found.append(
                    SimilarFailure(
                        build_id=hit.subject,
                        tool=hit.tool,
                        project=hit.project,
                        when=hit.updated_at,
                        match="search",
                        resolution=hit.resolution,
                    )
                )
                if len(found) == SIMILAR_LIMIT:
                    break
        return found

    async def _stored_report(
        self, tenant: Tenant, tool: str, build_id: str
    ) -> FailureReport | None:
        data = await self._context_data(tenant, tool, analysis_key(build_id))
        if data is None:
            return None
        stored = FailureReport.model_validate(
            {**data, "similar": [], "hint": _hint(build_id, [], int(data.get("log_lines", 0)))}
        )
        analysis = FailureAnalysis(
            category=stored.category,  # type: ignore[arg-type]
            failed_stage=stored.failed_stage,
            failure_reason=stored.failure_reason,
            excerpt=stored.excerpt,
            error_pattern=stored.error_pattern,
            retriable=stored.retriable,
            confidence=stored.confidence,
            signals=stored.signals,
        )
        build = Build(id=build_id, project=stored.project or "", status=BuildStatus.FAILED)
        return stored.model_copy(
            update={
                # Similar failures and resolutions change after the analysis: read anew.
                "similar": await self._similar(tenant, build, analysis),
                "hint": _hint(build_id, stored.excerpt, stored.log_lines),
            }
        )

    # --- resolutions ------------------------------------------------------------------------

    async def _resolve(self, tenant: Tenant, tool: str, failure: BuildOutcome, fix: Build) -> None:
        same_commit = bool(failure.commit and failure.commit == fix.commit)
        resolution: dict[str, Any] = {
            "fixed_by_build": fix.id,
            "fixed_at": _iso(fix.finished_at) or _iso(utcnow()),
            "url": fix.url,
            "failed_commit": failure.commit,
            "fixed_commit": fix.commit,
            "commits": None
            if same_commit or not (failure.commit and fix.commit)
            else f"{failure.commit}..{fix.commit}",
            "summary": (
                f"the same commit passed in build {fix.id}: the failure did not "
                "depend on the code (flaky or infrastructure)"
                if same_commit
                else f"fixed by build {fix.id}" + (f" at commit {fix.commit}" if fix.commit else "")
            ),
            "by": "worker",
        }
        await self._mark_resolved(tenant, tool, failure.build_id, resolution)

    async def _mark_resolved(
        self, tenant: Tenant, tool: str, build_id: str, resolution: dict[str, Any]
    ) -> None:
        for key in (build_key(build_id), analysis_key(build_id)):
            await self._contexts.update_data(
                tenant.id, key, tool=tool, changes={"resolution": resolution}
            )

    # --- auto-retry -------------------------------------------------------------------------

    async def _auto_retry(
        self,
        tenant: Tenant,
        tool_id: str,
        tool: str,
        build: Build,
        report: FailureReport,
        policy: AutoRetryPolicy,
    ) -> AutoRetry | None:
        if not policy.enabled:
            return None
        if not report.retriable or report.confidence < policy.min_confidence:
            return AutoRetry(
                retried=False,
                reason=f"not retried: retriable={report.retriable} with confidence "
                f"{report.confidence} (the policy needs {policy.min_confidence})",
            )
        async with self._db.session() as session:
            existing = await session.scalar(
                select(AutoRetryRow).where(
                    AutoRetryRow.tool_id == tool_id, AutoRetryRow.build_id == build.id
                )
            )
            parent = await session.scalar(
                select(AutoRetryRow.depth).where(
                    AutoRetryRow.tool_id == tool_id, AutoRetryRow.retry_build_id == build.id
                )
            )
            recent = await session.scalar(
                select(func.count())
                .select_from(AutoRetryRow)
                .where(
                    AutoRetryRow.tool_id == tool_id,
                    AutoRetryRow.project == build.project,
                    AutoRetryRow.created_at >= utcnow() - timedelta(hours=1),
                )
            )
        if existing is None:
            depth = (parent or 0) + 1
            if depth > policy.max_per_build:
                return AutoRetry(
                    retried=False,
                    reason=f"not retried: this build is retry {depth - 1} of a failure and "
                    f"the policy allows {policy.max_per_build} per build",
                )
            if (recent or 0) >= policy.max_per_project_per_hour:
                return AutoRetry(
                    retried=False,
                    reason=f"not retried: {recent} automatic retries of {build.project!r} in "
                    f"the last hour (the policy allows {policy.max_per_project_per_hour})",
                )
            existing = await self._claim(tenant, tool_id, build, depth)
        if existing.retry_build_id is not None:
            return _retried(existing.retry_build_id)
        # The claim is ours, or a claimer died before retrying: the idempotency key makes
        # the retry happen once whoever gets here, however often.
        retry = await self._tools.execute(
            tenant,
            tool_id,
            "retry_build",
            {"build_id": build.id},
            idempotency_key=f"devmesh-auto-retry:{tool_id}:{build.id}",
        )
        retry_id = str(retry.get("id"))
        async with self._db.session() as session:
            row = await session.get(AutoRetryRow, existing.id)
            if row is not None:
                row.retry_build_id = retry_id
        _log.info("build_auto_retried", tool=tool, build_id=build.id, retry_build_id=retry_id)
        return _retried(retry_id)

    async def _claim(self, tenant: Tenant, tool_id: str, build: Build, depth: int) -> AutoRetryRow:
        try:
            async with self._db.session() as session:
                row = AutoRetryRow(
                    id=str(uuid.uuid4()),
                    tenant_id=tenant.id,
                    tool_id=tool_id,
                    build_id=build.id,
                    project=build.project,
                    depth=depth,
                    created_at=utcnow(),
                )
                session.add(row)
            return row
        except IntegrityError:
            async with self._db.session() as session:
                won = await session.scalar(
                    select(AutoRetryRow).where(
                        AutoRetryRow.tool_id == tool_id, AutoRetryRow.build_id == build.id
                    )
                )
            assert won is not None  # the unique row another claimer just wrote
            return won

    async def _context_data(self, tenant: Tenant, tool: str, key: str) -> dict[str, Any] | None:
        try:
            return (await self._contexts.get_context(tenant.id, key, tool=tool)).data
        except DevMeshError:
            return None


def _retried(retry_build_id: str) -> AutoRetry:
    return AutoRetry(
        retried=True,
        reason="retried automatically: the analysis found it retriable",
        retry_build_id=retry_build_id,
    )


def _chunks(lines: list[LogLine]) -> list[LogChunk]:
    """Line-aware chunks of the log, each within one step, numbered as the log is."""
    chunks: list[LogChunk] = []
    start = 0
    for end in range(1, len(lines) + 1):
        if (
            end == len(lines)
            or lines[end].step != lines[start].step
            or (lines[end].number != lines[end - 1].number + 1)
        ):
            run = lines[start:end]
            texts = [_clean(line.text) for line in run]
            chunks += chunk_lines(texts, first_line=run[0].number, step=run[0].step)
            start = end
    return chunks


def _clean(text: str) -> str:
    # A provider's line is one line already; cleaning drops colours and redraws.
    return (clean_lines(text) or [""])[0]


# Of a CI's own header lines (Buildbot's "h" stream: the command, its argv, working
# directory and environment), the analysis keeps those that report an outcome. The
# rest echo the command's text, which may quote any error message the script can
# print, and must not be read as output.
_OUTCOME_HEADER = re.compile(r"exit code|exit status|timed? ?out|killed|signal", re.IGNORECASE)


def _analysed_text(line: LogLine) -> str:
    if line.stream == "header" and not _OUTCOME_HEADER.search(line.text):
        return ""
    return _clean(line.text)


def _analyse_lines(
    lines: list[LogLine], build: Build, passing: list[str] | None
) -> FailureAnalysis:
    texts = [_analysed_text(line) for line in lines]
    steps = _steps(lines, build.failed_stage)
    return analyze_log(
        texts,
        first_line=lines[0].number if lines else 1,
        failed_stage=build.failed_stage,
        steps=steps,
        status=build.status.value,
        passing_log=passing,
    )


def _steps(lines: Sequence[LogLine], failed: str | None) -> list[StepOutcome]:
    spans: dict[str, list[int]] = {}
    for line in lines:
        if line.step is not None:
            span = spans.setdefault(line.step, [line.number, line.number])
            span[1] = line.number
    return [
        StepOutcome(
            name=name,
            status="failed" if name == failed else "succeeded",
            first_line=first,
            last_line=last,
        )
        for name, (first, last) in spans.items()
    ]


def _past(outcome: BuildOutcome, build: Build) -> PastOutcome:
    status = outcome.status if outcome.status in ("succeeded", "failed", "cancelled") else "failed"
    return PastOutcome(
        status=status,  # type: ignore[arg-type]
        same_commit=bool(build.commit and outcome.commit == build.commit),
        error_pattern=outcome.error_pattern,
    )


def _hint(build_id: str, excerpt: Sequence[ExcerptLine], total: int) -> str:
    if not excerpt:
        return f"get_build_logs(build_id={build_id!r}) shows the log's last lines"
    first = max(1, excerpt[0].line - 20)
    return (
        f"the excerpt is lines {excerpt[0].line}-{excerpt[-1].line} of {total}; "
        f"get_build_logs(build_id={build_id!r}, cursor='{first - 1}', lines=60) reads "
        "around them"
    )


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.isoformat().replace("+00:00", "Z")
