"""Ranking a caller's operations against a query, for MCP's search mode.

BM25 (``rank_bm25``'s BM25+ variant) over each operation's words: its exposed name,
instance, operation, toolset, summary, provider and parameter names, split on
``_``, ``-`` and case. BM25+ rather than Okapi: Okapi's IDF is zero or below for a
word in half the documents, so in a tenant with two instances the instance's name
("on ci") would count for nothing; BM25+'s IDF stays positive. A tenant has tens to
a few hundred operations, so the index is built per search, from the catalog the
caller sees: nothing to keep in step when a tool is registered or removed.

When the knowledge layer's embedder runs in process, the caller passes each
candidate's cosine similarity to the query too: words find an operation by its name
("trigger build on ci"), meaning finds it by a paraphrase ("rerun the failed job"
finds ``retry_build``). The BM25 score, scaled to the best one, counts fully and the
similarity by ``SEMANTIC_WEIGHT``: a named instance still wins over a near synonym.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rank_bm25 import BM25Plus

__all__ = ["MIN_SIMILARITY", "SEMANTIC_WEIGHT", "Candidate", "rank", "words"]

SEMANTIC_WEIGHT = 0.5
# Below this an operation shares too little meaning to be shown without a shared word.
MIN_SIMILARITY = 0.3

_WORD = re.compile(r"[a-z0-9]+")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
# Words every summary and request has ("start a build of a project"): matching on
# them would rank an operation for sharing grammar with the query, not meaning.
_STOP = frozenset(
    [
        "a",
        "an",
        "and",
        "as",
        "at",
        "by",
        "for",
        "from",
        "in",
        "is",
        "it",
        "its",
        "of",
        "on",
        "or",
        "the",
        "to",
        "with",
        "this",
        "that",
    ]
)


@dataclass(frozen=True, slots=True)
class Candidate:
    """One operation as search sees it: ``name`` is what ``call_tool`` takes."""

    name: str
    text: str
    input_schema: dict[str, Any]


def words(text: str) -> list[str]:
    """Lower-case words, but the commonest English ones; ``ci_trigger_build`` and
    ``triggerBuild`` give their parts."""
    return [word for word in _WORD.findall(_CAMEL.sub(" ", text).lower()) if word not in _STOP]


def document(candidate: Candidate) -> list[str]:
    properties = candidate.input_schema.get("properties", {})
    return words(" ".join([candidate.name, candidate.text, *properties]))


def rank(
    candidates: Sequence[Candidate],
    query: str,
    *,
    limit: int,
    similarity: Sequence[float] | None = None,
) -> list[Candidate]:
    """The best ``limit`` candidates for ``query``, best first. ``similarity``: each
    candidate's cosine similarity to the query, when an embedder gave them. Candidates
    sharing no word with the query (nor, with ``similarity``, enough meaning) are left
    out. Ties keep the catalog's order."""
    terms = words(query)
    if not candidates or (not terms and similarity is None):
        return []
    corpus = [document(candidate) for candidate in candidates]
    scores = [float(score) for score in BM25Plus(corpus).get_scores(terms)] if terms else []
    best = max(scores, default=0.0)
    wanted = set(terms)
    scored = []
    for index, doc in enumerate(corpus):
        lexical = scores[index] / best if wanted.intersection(doc) and best > 0 else 0.0
        semantic = max(similarity[index], 0.0) if similarity is not None else 0.0
        if lexical > 0 or semantic >= MIN_SIMILARITY:
            scored.append((lexical + SEMANTIC_WEIGHT * semantic, index))
    scored.sort(key=lambda pair: (-pair[0], pair[1]))
    return [candidates[index] for _, index in scored[:limit]]
