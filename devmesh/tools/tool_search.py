"""Ranking a caller's operations against a query, for MCP's search mode.

BM25 (``rank_bm25``'s BM25+ variant) over each operation's words: its exposed name,
instance, operation, toolset, summary, provider and parameter names, split on
``_``, ``-`` and case. BM25+ rather than Okapi: Okapi's IDF is zero or below for a
word in half the documents, so in a tenant with two instances the instance's name
("on ci") would count for nothing; BM25+'s IDF stays positive. A tenant has tens to
a few hundred operations, so the index is built per search, from the catalog the
caller sees: nothing to keep in step when a tool is registered or removed.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rank_bm25 import BM25Plus

__all__ = ["Candidate", "rank", "words"]

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


def rank(candidates: Sequence[Candidate], query: str, *, limit: int) -> list[Candidate]:
    """The best ``limit`` candidates for ``query``, best first; those sharing no word
    with it are left out. Ties keep the catalog's order."""
    terms = words(query)
    if not candidates or not terms:
        return []
    corpus = [document(candidate) for candidate in candidates]
    scores = BM25Plus(corpus).get_scores(terms)
    wanted = set(terms)
    scored = [
        (float(score), index)
        for index, (score, doc) in enumerate(zip(scores, corpus, strict=True))
        if wanted.intersection(doc)
    ]
    scored.sort(key=lambda pair: (-pair[0], pair[1]))
    return [candidates[index] for _, index in scored[:limit]]
