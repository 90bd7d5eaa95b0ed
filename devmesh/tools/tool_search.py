"""Ranking a caller's operations against a query, for MCP's search mode.

BM25 (``rank_bm25``'s Okapi variant) over each operation's words: its exposed name,
instance, operation, toolset, summary, provider and parameter names, split on
``_``, ``-`` and case. A tenant has tens to a few hundred operations, so the index
is built per search, from the catalog the caller sees: nothing to keep in step when
a tool is registered or removed.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rank_bm25 import BM25Okapi

__all__ = ["Candidate", "rank", "words"]

_WORD = re.compile(r"[a-z0-9]+")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


@dataclass(frozen=True, slots=True)
class Candidate:
    """One operation as search sees it: ``name`` is what ``call_tool`` takes."""

    name: str
    text: str
    input_schema: dict[str, Any]


def words(text: str) -> list[str]:
    """Lower-case words; ``ci_trigger_build`` and ``triggerBuild`` give their parts."""
    return _WORD.findall(_CAMEL.sub(" ", text).lower())


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
    scores = BM25Okapi(corpus).get_scores(terms)
    wanted = set(terms)
    scored = [
        (float(score), index)
        for index, (score, doc) in enumerate(zip(scores, corpus, strict=True))
        if wanted.intersection(doc)
    ]
    scored.sort(key=lambda pair: (-pair[0], pair[1]))
    return [candidates[index] for _, index in scored[:limit]]
