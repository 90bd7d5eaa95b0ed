"""The context store: what the knowledge layer remembers, per tenant, and finding it.

A context is unique per (tenant, scope, key), where the scope is the tool
instance's id for a tool-bound context and "" for a tenant-wide one; storing a key
again replaces it. Each context is searchable through its chunks: one text for
most contexts, the line spans of a log for ``build_log`` contexts
(``index_log_chunks``). ``search_contexts`` and ``similar`` rank chunks with
``devmesh.knowledge.search`` and answer one hit per context.

Every method takes the tenant first and filters by it in SQL: no method can read,
count or change another tenant's contexts.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from devmesh.domain.errors import Conflict, InvalidInput, NotFound
from devmesh.knowledge.embedding import Embedder
from devmesh.knowledge.logtext import LogChunk
from devmesh.knowledge.models import Context, ContextHit, ContextQuery, LineSpan, SearchResults
from devmesh.knowledge.search import (
    EmbeddedVectors,
    Filters,
    PostgresSearch,
    SearchBackend,
    SqliteSearch,
    fuse,
    query_terms,
)
from devmesh.store.db import Database
from devmesh.store.rows import ContextRow, ToolRow, utcnow

__all__ = ["BUILD_LOG", "MAX_DATA_BYTES", "ContextService"]

BUILD_LOG = "build_log"
MAX_DATA_BYTES = 256 * 1024
MAX_CHUNKS = 20_000
_SNIPPET_CHARS = 300
_DOC_CHARS = 4000
# Candidates each arm brings to the fusion, per hit asked for.
_CANDIDATES_PER_HIT = 8
_MIN_CANDIDATES = 50


class ContextService:
    def __init__(self, *, db: Database, embedder: Embedder) -> None:
        self._db = db
        self._embedder = embedder
        self._search: SearchBackend = (
            SqliteSearch(EmbeddedVectors()) if db.is_sqlite else PostgresSearch()
        )

    # --- storing -----------------------------------------------------------------

    @property
    def embedder(self) -> Embedder:
        """The embedder contexts and logs are indexed with (search_tools uses it too)."""
        return self._embedder

    async def store_context(
        self,
        tenant_id: str,
        *,
        key: str,
        type: str,
        data: dict[str, Any],
        tool: str | None = None,
        subject: str | None = None,
        project: str | None = None,
        status: str | None = None,
        signature: str | None = None,
    ) -> Context:
        """Store or replace the context ``key`` (of ``tool``, or tenant-wide).

        ``signature`` (a failure's error pattern) lets ``devmesh.knowledge.history``
        find contexts of the same kind by an index."""
        _check_size(data)
        document = _document(key, type, subject, project, status, data)
        [vector] = await self._embedder.embed([document])
        async with self._db.session() as session:
            tool_id = await self._tool_id(session, tenant_id, tool)
            row = await self._upsert(
                session,
                tenant_id,
                tool_id=tool_id,
                tool=tool,
                key=key,
                type=type,
                data=data,
                subject=subject,
                project=project,
                status=status,
                signature=signature,
            )
            await self._replace_chunks(session, row, [(None, None, None, document)], [vector])
            return _context(row)

    async def update_data(
        self, tenant_id: str, key: str, *, tool: str | None, changes: dict[str, Any]
    ) -> Context | None:
        """Merge ``changes`` into the data of context ``key`` (and re-index it);
        None when there is no such context."""
        async with self._db.session() as session:
            scope = await self._tool_id(session, tenant_id, tool)
            row = await session.scalar(
                select(ContextRow).where(
                    ContextRow.tenant_id == tenant_id,
                    ContextRow.scope == (scope or ""),
                    ContextRow.key == key,
                )
            )
            if row is None:
                return None
            data = {**row.data, **changes}
            _check_size(data)
            document = _document(key, row.type, row.subject, row.project, row.status, data)
            [vector] = await self._embedder.embed([document])
            row.data = data
            row.updated_at = utcnow()
            if row.type != BUILD_LOG:
                await self._replace_chunks(session, row, [(None, None, None, document)], [vector])
            return _context(row)

    async def index_log_chunks(
        self,
        tenant_id: str,
        tool: str,
        subject: str,
        chunks: Sequence[LogChunk],
        *,
        context_key: str,
        project: str | None = None,
        status: str | None = None,
        data: dict[str, Any] | None = None,
    ) -> Context:
        """Make a build's log searchable: embeds ``chunks`` and stores them, with full
        text, under the ``build_log`` context ``context_key`` in one transaction.

        Idempotent per (tool, subject): indexing the same build again replaces its
        chunks, and any other ``build_log`` context of that build."""
        if len(chunks) > MAX_CHUNKS:
            raise InvalidInput(f"at most {MAX_CHUNKS} chunks per log", field="chunks")
        meta = {
            **(data or {}),
            "chunks": len(chunks),
            "lines": chunks[-1].last_line if chunks else 0,
        }
        _check_size(meta)
        vectors = await self._embedder.embed([chunk.text for chunk in chunks])
        async with self._db.session() as session:
            tool_id = await self._tool_id(session, tenant_id, tool)
            await session.execute(
                delete(ContextRow).where(
                    ContextRow.tenant_id == tenant_id,
                    ContextRow.scope == tool_id,
                    ContextRow.type == BUILD_LOG,
                    ContextRow.subject == subject,
                    ContextRow.key != context_key,
                )
            )
            row = await self._upsert(
                session,
                tenant_id,
                tool_id=tool_id,
                tool=tool,
                key=context_key,
                type=BUILD_LOG,
                data=meta,
                subject=subject,
                project=project,
                status=status,
            )
            spans = [(c.first_line, c.last_line, c.step, c.text) for c in chunks]
            await self._replace_chunks(session, row, spans, list(vectors))
            return _context(row)

    async def _upsert(
        self, session: AsyncSession, tenant_id: str, *, tool_id: str | None, **fields: Any
    ) -> ContextRow:
        scope = tool_id or ""
        row = await session.scalar(
            select(ContextRow).where(
                ContextRow.tenant_id == tenant_id,
                ContextRow.scope == scope,
                ContextRow.key == fields["key"],
            )
        )
        now = utcnow()
        if row is None:
            row = ContextRow(
                id=str(uuid.uuid4()),
                tenant_id=tenant_id,
                scope=scope,
                tool_id=tool_id,
                created_at=now,
                **fields,
            )
            session.add(row)
        else:
            for name, value in fields.items():
                setattr(row, name, value)
        row.updated_at = now
        await session.flush()
        return row

    async def _replace_chunks(
        self,
        session: AsyncSession,
        row: ContextRow,
        spans: Sequence[tuple[int | None, int | None, str | None, str]],
        vectors: Sequence[Any],
    ) -> None:
        await session.execute(
            text("DELETE FROM context_chunks WHERE context_id = :c"), {"c": row.id}
        )
        if not spans:
            return
        cast = "CAST(:e AS vector)" if not self._db.is_sqlite else ":e"
        await session.execute(
            text(
                "INSERT INTO context_chunks "
                "(context_id, tenant_id, first_line, last_line, step, text, embedding) "
                f"VALUES (:c, :t, :first, :last, :step, :text, {cast})"
            ),
            [
                {
                    "c": row.id,
                    "t": row.tenant_id,
                    "first": first,
                    "last": last,
                    "step": step,
                    "text": body,
                    "e": self._search.encode(vector),
                }
                for (first, last, step, body), vector in zip(spans, vectors, strict=True)
            ],
        )

    # --- reading -----------------------------------------------------------------

    async def get_context(self, tenant_id: str, key: str, *, tool: str | None = None) -> Context:
        async with self._db.session() as session:
            return _context(await self._find(session, tenant_id, key, tool))

    async def delete_context(self, tenant_id: str, key: str, *, tool: str | None = None) -> None:
        async with self._db.session() as session:
            await session.delete(await self._find(session, tenant_id, key, tool))

    async def count(self, tenant_id: str, *, type: str | None = None) -> int:
        query = select(func.count()).select_from(ContextRow)
        query = query.where(ContextRow.tenant_id == tenant_id)
        if type is not None:
            query = query.where(ContextRow.type == type)
        async with self._db.session() as session:
            return int(await session.scalar(query) or 0)

    async def _find(
        self, session: AsyncSession, tenant_id: str, key: str, tool: str | None
    ) -> ContextRow:
        query = select(ContextRow).where(ContextRow.tenant_id == tenant_id, ContextRow.key == key)
        if tool is not None:
            query = query.where(ContextRow.scope == await self._tool_id(session, tenant_id, tool))
        rows = list(await session.scalars(query.limit(20)))
        if not rows:
            where = f" of tool {tool!r}" if tool else ""
            raise NotFound(f"no context {key!r}{where}", details={"key": key})
        if len(rows) > 1:
            names = sorted(row.tool or "" for row in rows)
            raise Conflict(
                f"context {key!r} exists for several tools; pass tool, one of: "
                + ", ".join(name or "(tenant-wide: omit tool)" for name in names),
                details={"key": key, "field": "tool", "tools": names},
            )
        return rows[0]

    async def _tool_id(self, session: AsyncSession, tenant_id: str, tool: str | None) -> str | None:
        if tool is None:
            return None
        tool_id = await session.scalar(
            select(ToolRow.id).where(ToolRow.tenant_id == tenant_id, ToolRow.name == tool)
        )
        if tool_id is None:
            raise InvalidInput(f"no tool named {tool!r}", field="tool")
        return tool_id

    # --- searching ---------------------------------------------------------------

    async def search_contexts(self, tenant_id: str, query: ContextQuery) -> SearchResults:
        hits = await self.similar(
            tenant_id,
            query.query,
            type=query.type,
            tool=query.tool,
            project=query.project,
            status=query.status,
            since=query.since,
            limit=query.limit,
        )
        return SearchResults(results=hits, hint=await self._hint(tenant_id, query, len(hits)))

    async def similar(
        self,
        tenant_id: str,
        text_: str,
        *,
        type: str | None = None,
        tool: str | None = None,
        project: str | None = None,
        status: str | None = None,
        since: datetime | None = None,
        exclude_subject: str | None = None,
        limit: int = 5,
    ) -> list[ContextHit]:
        """The contexts best matching ``text_`` by words and meaning, one hit per
        context, best first. ``exclude_subject`` leaves out the build asked about."""
        [vector] = await self._embedder.embed([text_])
        terms = query_terms(text_)
        k = max(_MIN_CANDIDATES, limit * _CANDIDATES_PER_HIT)
        async with self._db.session() as session:
            scope = await self._tool_id(session, tenant_id, tool)
            filters = Filters(type, scope, project, status, since, exclude_subject)
            by_text = await self._search.text_ranked(session, tenant_id, terms, filters, k)
            by_meaning = await self._search.vector_ranked(session, tenant_id, vector, filters, k)
            fused = fuse(by_text, by_meaning, limit=2 * k)
            return await self._hits(session, tenant_id, fused, terms, limit)

    async def _hits(
        self,
        session: AsyncSession,
        tenant_id: str,
        fused: list[tuple[int, float]],
        terms: list[str],
        limit: int,
    ) -> list[ContextHit]:
        if not fused:
            return []
        ids = [chunk_id for chunk_id, _ in fused]
        rows = await session.execute(
            text(
                "SELECT ch.id, ch.first_line, ch.last_line, ch.text, ch.context_id "
                "FROM context_chunks ch WHERE ch.tenant_id = :t AND ch.id IN "
                f"({','.join(str(int(i)) for i in ids)})"
            ),
            {"t": tenant_id},
        )
        chunks = {row.id: row for row in rows}
        best: dict[str, tuple[Any, float]] = {}
        for chunk_id, score in fused:
            chunk = chunks.get(chunk_id)
            if chunk is not None and chunk.context_id not in best:
                best[chunk.context_id] = (chunk, score)
                if len(best) == limit:
                    break
        contexts = {
            row.id: row
            for row in await session.scalars(
                select(ContextRow).where(
                    ContextRow.tenant_id == tenant_id, ContextRow.id.in_(list(best))
                )
            )
        }
        return [
            _hit(contexts[context_id], chunk, score, terms)
            for context_id, (chunk, score) in best.items()
            if context_id in contexts
        ]

    async def _hint(self, tenant_id: str, query: ContextQuery, found: int) -> str | None:
        if found == query.limit:
            return (
                f"showing the best {found}; raise limit (up to 50) or add filters "
                "(type, tool, project, status, since) for others. get_context(key) "
                "returns a whole context; for log hits, get_build_logs with the hit's "
                "lines.cursor opens the lines."
            )
        if found:
            return None
        if query.type is not None and not await self.count(tenant_id, type=query.type):
            async with self._db.session() as session:
                types = sorted(
                    await session.scalars(
                        select(ContextRow.type)
                        .where(ContextRow.tenant_id == tenant_id)
                        .distinct()
                        .limit(20)
                    )
                )
            stored = ", ".join(types) or "none yet"
            return f"no contexts of type {query.type!r}; types stored: {stored}"
        return "nothing matched; try other words or fewer filters"


def _check_size(data: dict[str, Any]) -> None:
    size = len(json.dumps(data, separators=(",", ":"), default=str).encode())
    if size > MAX_DATA_BYTES:
        raise InvalidInput(
            f"data is {size} bytes as JSON; at most {MAX_DATA_BYTES} are stored",
            field="data",
        )


def _document(
    key: str,
    type: str,
    subject: str | None,
    project: str | None,
    status: str | None,
    data: dict[str, Any],
) -> str:
    """The searchable text of a context: its labels, then its data's values."""
    parts = [type.replace("_", " "), key]
    parts += [label for label in (subject, project, status) if label]
    _flatten(data, parts, budget=[_DOC_CHARS])
    return "\n".join(parts)[:_DOC_CHARS]


def _flatten(value: Any, parts: list[str], *, budget: list[int], name: str = "") -> None:
    if budget[0] <= 0:
        return
    if isinstance(value, dict):
        for key, item in value.items():
            _flatten(item, parts, budget=budget, name=str(key))
    elif isinstance(value, list):
        for item in value:
            _flatten(item, parts, budget=budget, name=name)
    elif value is not None and not isinstance(value, bool):
        line = f"{name.replace('_', ' ')}: {value}" if name else str(value)
        parts.append(line)
        budget[0] -= len(line)


def _context(row: ContextRow) -> Context:
    return Context(
        key=row.key,
        type=row.type,
        tool=row.tool,
        subject=row.subject,
        project=row.project,
        status=row.status,
        data=row.data,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _snippet(body: str, terms: list[str]) -> str:
    """A window of the chunk from the first line holding a query word."""
    lower = body.lower()
    starts = [lower.find(term) for term in terms]
    found = [at for at in starts if at >= 0]
    start = lower.rfind("\n", 0, min(found)) + 1 if found else 0
    window = body[start : start + _SNIPPET_CHARS]
    return window + ("…" if start + _SNIPPET_CHARS < len(body) else "")


def _resolution(value: Any) -> str | dict[str, Any] | None:
    if value is None or isinstance(value, str | dict):
        return value
    return json.dumps(value)


def _hit(row: ContextRow, chunk: Any, score: float, terms: list[str]) -> ContextHit:
    lines = None
    if chunk.first_line is not None and chunk.last_line is not None:
        lines = LineSpan(
            first=chunk.first_line, last=chunk.last_line, cursor=str(chunk.first_line - 1)
        )
    buildish = "build" in row.type or row.type in (BUILD_LOG, "failure_analysis", "resolution")
    data = row.data if isinstance(row.data, dict) else {}
    return ContextHit(
        key=row.key,
        type=row.type,
        tool=row.tool,
        subject=row.subject,
        build_id=row.subject if buildish else None,
        project=row.project,
        status=row.status,
        resolution=_resolution(data.get("resolution")),
        snippet=_snippet(chunk.text, terms),
        lines=lines,
        score=round(score, 6),
        updated_at=row.updated_at,
    )
