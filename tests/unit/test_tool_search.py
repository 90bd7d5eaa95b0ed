"""Ranking operations against a query (devmesh.tools.tool_search)."""

from __future__ import annotations

from devmesh.tools.tool_search import Candidate, rank, words


def candidate(name: str, text: str = "", *params: str) -> Candidate:
    return Candidate(
        name=name, text=text, input_schema={"properties": {p: {"type": "string"} for p in params}}
    )


def test_words_split_names_on_separators_and_case() -> None:
    assert words("ci_trigger_build triggerBuild gl-list.x") == [
        *("ci", "trigger", "build", "trigger", "build", "gl", "list", "x")
    ]


def test_rank_puts_the_operation_sharing_most_words_first_and_drops_those_sharing_none() -> None:
    found = rank(
        [
            candidate("ci_get_build_logs", "A build's log", "build_id"),
            candidate("ci_trigger_build", "Start a build of a project", "project", "branch"),
            candidate("gl_trigger_build", "Start a build of a project", "project"),
            candidate("store_context", "Store a note"),
        ],
        "trigger a build of runtests on ci",
        limit=10,
    )
    assert [c.name for c in found][:1] == ["ci_trigger_build"]
    assert "store_context" not in [c.name for c in found]


def test_parameter_names_count_as_words_of_the_operation() -> None:
    found = rank(
        [candidate("a_run", "Run it"), candidate("b_run", "Run it", "pattern")],
        "pattern",
        limit=5,
    )
    assert [c.name for c in found] == ["b_run"]


def test_rank_returns_at_most_limit_and_nothing_for_an_empty_query() -> None:
    many = [candidate(f"t{i}_list_builds", "Recent builds") for i in range(10)]
    assert len(rank(many, "builds", limit=3)) == 3
    assert rank(many, "  ", limit=3) == []


def test_similarity_brings_in_an_operation_sharing_no_word_and_words_still_rank_first() -> None:
    candidates = [
        candidate("ci_retry_build", "Run a finished build again"),
        candidate("ci_cancel_build", "Stop a running build"),
        candidate("ci_trigger_build", "Start a build"),
    ]
    by_meaning = rank(candidates, "rerun it", limit=3, similarity=[0.6, 0.2, 0.4])
    by_name = rank(candidates, "trigger", limit=3, similarity=[0.6, 0.2, 0.4])
    assert [c.name for c in by_meaning] == ["ci_retry_build", "ci_trigger_build"]
    assert by_name[0].name == "ci_trigger_build"
