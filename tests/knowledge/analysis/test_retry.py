"""retriable and confidence: infrastructure signals, cancelled builds, and the project's history."""

from __future__ import annotations

from pathlib import Path

from devmesh.knowledge.analysis import PastOutcome, adjust_for_history, analyze_log

LOGS = Path(__file__).resolve().parents[2] / "fixtures" / "logs"


def _lines(name: str) -> list[str]:
    return (LOGS / f"{name}.log").read_text(encoding="utf-8").splitlines()


def test_a_cancelled_build_is_never_retriable_even_with_infrastructure_signals() -> None:
    analysis = analyze_log(_lines("runner-lost"), status="cancelled")
    assert analysis.category == "cancelled-by-user"
    assert analysis.retriable is False


def test_a_cancelled_build_stays_not_retriable_whatever_the_history() -> None:
    analysis = analyze_log(_lines("pytest"), status="cancelled")
    history = [PastOutcome(status="succeeded", same_commit=True)]
    assert adjust_for_history(analysis, history).retriable is False


def test_a_network_blip_the_setup_survived_does_not_make_a_test_failure_retriable() -> None:
    blip = [
        "Fetching changes with git depth set to 20...",
        "error: RPC failed; curl 56 Recv failure: Connection reset by peer",
        "Retrying fetch (attempt 2 of 3)...",
        *[f"Receiving objects: {n}% ({n}/100)" for n in range(100)],
    ]
    analysis = analyze_log(blip + _lines("pytest"))
    assert analysis.category == "test"
    assert analysis.retriable is False


def test_the_same_commit_passing_elsewhere_makes_a_failure_retriable() -> None:
    analysis = analyze_log(_lines("pytest"))
    history = [
        PastOutcome(status="failed", error_pattern="test:other"),
        PastOutcome(status="succeeded", same_commit=True),
    ]
    adjusted = adjust_for_history(analysis, history)
    assert adjusted.retriable is True
    assert "same commit passed" in adjusted.signals
    assert adjusted.confidence >= 0.85


def test_a_signature_alternating_with_passes_makes_a_failure_retriable() -> None:
    analysis = analyze_log(_lines("go-test"))
    history = [
        PastOutcome(status="failed", error_pattern=analysis.error_pattern),
        PastOutcome(status="succeeded"),
        PastOutcome(status="succeeded"),
    ]
    adjusted = adjust_for_history(analysis, history)
    assert adjusted.retriable is True
    assert "signature alternates pass/fail" in adjusted.signals


def test_the_same_signature_failing_every_time_outweighs_a_weak_signal() -> None:
    analysis = analyze_log(_lines("travis-timeout"))
    assert analysis.retriable is True
    history = [PastOutcome(status="failed", error_pattern=analysis.error_pattern)] * 3
    adjusted = adjust_for_history(analysis, history)
    assert adjusted.retriable is False
    assert "same signature failed repeatedly" in adjusted.signals


def test_an_empty_history_changes_nothing() -> None:
    analysis = analyze_log(_lines("npm-404"))
    assert adjust_for_history(analysis, []) == analysis
