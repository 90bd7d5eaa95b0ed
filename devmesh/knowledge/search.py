"""Hybrid search over context chunks: full text and vectors, each ranked, then fused.

Two arms, each per backend:

* full text: SQLite FTS5 (bm25) or PostgreSQL ``tsvector`` (``ts_rank_cd``), the
  query's words OR-ed, so an exact identifier finds its line;
* vectors: PostgreSQL pgvector (HNSW, cosine), or on SQLite, which cannot load
  extensions here, a numpy scan of the tenant's matrix held in memory (see
  ``EmbeddedVectors`` for why not an ANN library).

Reciprocal rank fusion merges the two lists: a chunk's score is the sum over arms
of ``1 / (60 + rank)``, so agreement between meaning and text wins, and neither
arm's raw scores need calibrating. Every query is filtered by tenant in SQL;
another tenant's chunk can never be a candidate.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import anyio
import numpy as np
import numpy.typing as npt
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from devmesh.knowledge.embedding import DIMENSIONS, Vectors

__all__ = [
    "EmbeddedVectors",
    "Filters",
    "PostgresSearch",
    "SearchBackend",
    "SqliteSearch",
    "fuse",
    "query_terms",
]

_RRF_K = 60
_MAX_TERMS = 32
# Full-text ranking scores every chunk that matches, so a word found in most chunks
# ("error") costs a scan of the store. The text arm ranks at most about this many
# matching chunks: on SQLite the rarest terms are kept until their chunk counts
# reach it; on PostgreSQL, when no chunk has every term, the any-term matches are
# cut at it before ranking.
_RANKED_MATCHES = 10_000
_TERM = re.compile(r"[^\W_]+")


def query_terms(query: str) -> list[str]:
    """The query's words, lower-cased, unique, in order: letters and digits only, so
    nothing reaches FTS5 or ``to_tsquery`` as syntax."""
    seen: dict[str, None] = {}
    for term in _TERM.findall(query.lower()):
        seen.setdefault(term, None)
    return list(seen)[:_MAX_TERMS]


@dataclass(frozen=True, slots=True)
class Filters:
    """Conditions on the context a chunk belongs to (table alias ``c``)."""

    type: str | None = None
    scope: str | None = None
    project: str | None = None
    status: str | None = None
    since: datetime | None = None
    exclude_subject: str | None = None

    @property
    def any(self) -> bool:
        return any(
            value is not None
            for value in (
                self.type,
                self.scope,
                self.project,
                self.status,
                self.since,
                self.exclude_subject,
            )
        )

    def sql(self) -> tuple[str, dict[str, Any]]:
        clauses, params = [], {}
        for column in ("type", "scope", "project", "status"):
            value = getattr(self, column)
            if value is not None:
                clauses.append(f"c.{column} = :f_{column}")
                params[f"f_{column}"] = value
        if self.since is not None:
            clauses.append("c.updated_at >= :f_since")
            params["f_since"] = self.since
        if self.exclude_subject is not None:
            clauses.append("(c.subject IS NULL OR c.subject != :f_subject)")
            params["f_subject"] = self.exclude_subject
        return "".join(f" AND {clause}" for clause in clauses), params


def fuse(*ranked: list[int], limit: int) -> list[tuple[int, float]]:
    """Reciprocal rank fusion of id lists, best first."""
    scores: dict[int, float] = {}
    for ids in ranked:
        for rank, chunk_id in enumerate(ids, start=1):
            scores[chunk_id] = scores.get(chunk_id, 0.0) + 1.0 / (_RRF_K + rank)
    return sorted(scores.items(), key=lambda item: (-item[1], item[0]))[:limit]


class SearchBackend(Protocol):
    def encode(self, vector: Vectors) -> Any:
        """One row of ``embed`` as the ``embedding`` column takes it."""
        ...

    async def text_ranked(
        self, session: AsyncSession, tenant_id: str, terms: list[str], filters: Filters, k: int
    ) -> list[int]: ...

    async def vector_ranked(
        self, session: AsyncSession, tenant_id: str, vector: Vectors, filters: Filters, k: int
    ) -> list[int]: ...


_JOIN = "JOIN contexts c ON c.id = ch.context_id"


class PostgresSearch:
    def encode(self, vector: Vectors) -> Any:
        return "[" + ",".join(f"{x:.6g}" for x in vector.tolist()) + "]"

    async def text_ranked(
        self, session: AsyncSession, tenant_id: str, terms: list[str], filters: Filters, k: int
    ) -> list[int]:
        if not terms:
            return []
        where, params = filters.sql()
        params.update(t=tenant_id, k=k, cap=_RANKED_MATCHES)
        for glue in (" & ", " | "):
            rows = await session.execute(
                text(
                    "WITH q AS (SELECT to_tsquery('simple', :q) AS q), m AS ("
                    f"SELECT ch.id, ch.tsv FROM context_chunks ch {_JOIN}, q "
                    f"WHERE ch.tenant_id = :t AND ch.tsv @@ q.q{where} LIMIT :cap) "
                    "SELECT m.id FROM m, q ORDER BY ts_rank_cd(m.tsv, q.q) DESC, m.id LIMIT :k"
                ),
                {"q": glue.join(terms), **params},
            )
            ranked = [row[0] for row in rows]
            # Chunks holding every term first; only without any, chunks holding some.
            if ranked or len(terms) == 1:
                return ranked
        return []

    async def vector_ranked(
        self, session: AsyncSession, tenant_id: str, vector: Vectors, filters: Filters, k: int
    ) -> list[int]:
        where, params = filters.sql()
        # The HNSW scan filters by tenant after the graph walk: an iterative scan
        # (pgvector 0.8+) keeps walking until k rows pass the filters.
        await session.execute(text("SET LOCAL hnsw.iterative_scan = relaxed_order"))
        await session.execute(text("SET LOCAL hnsw.ef_search = 100"))
        rows = await session.execute(
            text(
                f"SELECT ch.id FROM context_chunks ch {_JOIN} "
                f"WHERE ch.tenant_id = :t{where} "
                "ORDER BY ch.embedding <=> CAST(:v AS vector) LIMIT :k"
            ),
            {"v": self.encode(vector), "t": tenant_id, "k": k, **params},
        )
        return [row[0] for row in rows]


class SqliteSearch:
    def __init__(self, vectors: EmbeddedVectors) -> None:
        self._vectors = vectors

    def encode(self, vector: Vectors) -> Any:
        return np.asarray(vector, dtype=np.float32).tobytes()

    async def text_ranked(
        self, session: AsyncSession, tenant_id: str, terms: list[str], filters: Filters, k: int
    ) -> list[int]:
        if not terms:
            return []
        terms = await _rare_terms(session, terms)
        if not terms:
            return []
        where, params = filters.sql()
        # The contexts join only when a filter needs it: FTS5 ranks every match, and
        # a join per match is most of a query's cost on a big store.
        join = _JOIN if filters.any else ""
        rows = await session.execute(
            text(
                "SELECT ch.id FROM context_chunks_fts f "
                f"JOIN context_chunks ch ON ch.id = f.rowid {join} "
                f"WHERE context_chunks_fts MATCH :q AND ch.tenant_id = :t{where} "
                "ORDER BY bm25(context_chunks_fts), ch.id LIMIT :k"
            ),
            {"q": " OR ".join(f'"{term}"' for term in terms), "t": tenant_id, "k": k, **params},
        )
        return [row[0] for row in rows]

    async def vector_ranked(
        self, session: AsyncSession, tenant_id: str, vector: Vectors, filters: Filters, k: int
    ) -> list[int]:
        ids, matrix = await self._vectors.matrix(session, tenant_id)
        if not len(ids):
            return []
        allowed: npt.NDArray[np.bool_] | None = None
        if filters.any:
            where, params = filters.sql()
            rows = await session.execute(
                text(f"SELECT ch.id FROM context_chunks ch {_JOIN} WHERE ch.tenant_id = :t{where}"),
                {"t": tenant_id, **params},
            )
            allowed = np.isin(ids, np.fromiter((row[0] for row in rows), dtype=np.int64))
        return await anyio.to_thread.run_sync(_top_k, ids, matrix, vector, allowed, k)


async def _rare_terms(session: AsyncSession, terms: list[str]) -> list[str]:
    """The query's terms that some chunk holds, rarest first, while their chunk counts
    add up to at most ``_RANKED_MATCHES``. A term in more chunks than that tells
    little by its words; the vector arm still ranks those chunks by meaning."""
    marks = ",".join(f":w{i}" for i in range(len(terms)))
    rows = await session.execute(
        text(f"SELECT term, doc FROM context_chunks_terms WHERE term IN ({marks})"),
        {f"w{i}": term for i, term in enumerate(terms)},
    )
    kept: list[str] = []
    total = 0
    for term, count in sorted(rows, key=lambda row: (row[1], row[0])):
        if total + count > _RANKED_MATCHES:
            break
        kept.append(term)
        total += count
    return kept


def _top_k(
    ids: npt.NDArray[np.int64],
    matrix: Vectors,
    vector: Vectors,
    allowed: npt.NDArray[np.bool_] | None,
    k: int,
) -> list[int]:
    scores = matrix @ vector.reshape(-1)
    if allowed is not None:
        scores = np.where(allowed, scores, -np.inf)
    k = min(k, len(scores))
    top = np.argpartition(-scores, k - 1)[:k]
    top = top[np.argsort(-scores[top], kind="stable")]
    return [int(ids[i]) for i in top if np.isfinite(scores[i])]


class EmbeddedVectors:
    """Each tenant's chunk vectors as one float32 matrix in memory, scanned exactly.

    Why a scan and not an ANN index (usearch, hnswlib): at the embedded default's
    sizes an exact scan is quick (see bench/log_search.py and docs/knowledge.md),
    needs no native dependency, is always exact, and filters are a mask rather than
    a post-filter that can return too few. Production uses pgvector's HNSW.

    The matrix is reloaded when the tenant's chunks change; a stamp (count and
    largest id) read with each search tells, so writes by another process show too.
    """

    def __init__(self) -> None:
        self._cache: dict[str, tuple[tuple[int, int], npt.NDArray[np.int64], Vectors]] = {}
        self._lock = anyio.Lock()

    def forget(self, tenant_id: str) -> None:
        self._cache.pop(tenant_id, None)

    async def matrix(
        self, session: AsyncSession, tenant_id: str
    ) -> tuple[npt.NDArray[np.int64], Vectors]:
        row = (
            await session.execute(
                text("SELECT count(*), max(id) FROM context_chunks WHERE tenant_id = :t"),
                {"t": tenant_id},
            )
        ).one()
        stamp = (int(row[0]), int(row[1] or 0))
        async with self._lock:
            cached = self._cache.get(tenant_id)
            if cached is not None and cached[0] == stamp:
                return cached[1], cached[2]
            rows = (
                await session.execute(
                    text(
                        "SELECT id, embedding FROM context_chunks WHERE tenant_id = :t ORDER BY id"
                    ),
                    {"t": tenant_id},
                )
            ).all()
            ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
            blob = b"".join(r[1] for r in rows)
            matrix = np.frombuffer(blob, dtype=np.float32).reshape(len(rows), DIMENSIONS)
            self._cache[tenant_id] = (stamp, ids, matrix)
            return ids, matrix
