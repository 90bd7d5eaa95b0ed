"""error_pattern: equal across builds failing the same way, different across different failures."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from devmesh.knowledge.analysis import analyze_log
from devmesh.knowledge.analysis.signature import mask

LOGS = Path(__file__).resolve().parents[2] / "fixtures" / "logs"
NAMES = sorted(p.stem for p in LOGS.glob("*.log"))


def _another_run(text: str) -> str:
    """The same failure on another day, runner and checkout: other numbers, paths, hashes, times."""
    text = text.replace("/builds/acme/shop", "/home/runner/work/shop/shop")
    text = re.sub(r"\b\d+\.\d+( ?)(m?s|sec|seconds)\b", r"7.25\1\2", text)
    text = re.sub(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:\.\d+)?Z?", "2027-02-03T04:05:06Z", text)
    text = re.sub(r"\b[0-9a-f]{8,40}\b", "0123abcd9876fedc", text)
    text = re.sub(r"\(\d{3,6}\)", "(31337)", text)  # thread and process ids
    return text


@pytest.mark.parametrize("name", NAMES)
def test_the_pattern_is_equal_for_the_same_failure_in_another_run(name: str) -> None:
    text = (LOGS / f"{name}.log").read_text(encoding="utf-8")
    first = analyze_log(text.splitlines())
    second = analyze_log(_another_run(text).splitlines())
    assert first.error_pattern == second.error_pattern


def test_the_patterns_of_different_failures_differ() -> None:
    patterns = {
        name: analyze_log((LOGS / f"{name}.log").read_text(encoding="utf-8").splitlines())
        for name in NAMES
    }
    distinct = {analysis.error_pattern for analysis in patterns.values()}
    assert len(distinct) == len(NAMES)


def test_another_failing_test_of_the_same_suite_has_another_pattern() -> None:
    text = (LOGS / "go-test.log").read_text(encoding="utf-8")
    other = text.replace("TestTotal/adds_tax", "TestTotal/rounds_down").replace(
        "cart_test.go:21: total([10 5]) = 18, want 17", "cart_test.go:34: round(2.5) = 3, want 2"
    )
    assert (
        analyze_log(text.splitlines()).error_pattern
        != analyze_log(other.splitlines()).error_pattern
    )


def test_masking_keeps_the_file_name_and_message_but_not_the_run() -> None:
    line = (
        "2026-11-30T22:41:07.512Z /home/travis/build/acme/shop/src/cart.c:41:9: error: "
        "bad pointer 0x7ffc53357450 in job 6f1c2e0a-4b7d-4c1e-9a55-0d6f9b1e2c3d at 3f9a2b7c1d"
    )
    assert mask(line) == (
        "<ts> <path>/cart.c:<n>:<n>: error: bad pointer <addr> in job <uuid> at <hex>"
    )
