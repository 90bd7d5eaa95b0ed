"""Each ecosystem's failure, as its tool prints it: the right category and the key line shown.

The logs are in tests/fixtures/logs/ (see its README for where each comes from).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from devmesh.knowledge.analysis import EXCERPT_MAX, analyze_log

LOGS = Path(__file__).resolve().parents[2] / "fixtures" / "logs"

# fixture, category, a line the excerpt must show, retriable
CASES = [
    ("pytest", "test", "E       AssertionError: assert 18.0 == 17", False),
    ("unittest", "test", "FAIL: test_discount (__main__.CartTest.test_discount)", False),
    ("jest", "test", "● cart total \u203a adds tax to the sum of the items", False),
    (
        "mocha",
        "test",
        "AssertionError [ERR_ASSERTION]: Expected values to be strictly equal:",
        False,
    ),
    (
        "node-assert",
        "test",
        "AssertionError [ERR_ASSERTION]: Expected values to be strictly equal:",
        False,
    ),
    ("maven-surefire", "test", "CartTest.addsTax -- Time elapsed: 0.012 s <<< FAILURE!", False),
    ("cargo-test", "test", "panicked at src/lib.rs:11:9:", False),
    ("go-test", "test", "cart_test.go:21: total([10 5]) = 18, want 17", False),
    ("rspec", "test", "Failure/Error: expect(cart.total).to eq(17)", False),
    ("xcodebuild", "test", 'XCTAssertEqual failed: ("18") is not equal to ("17")', False),
    ("gcc-make", "compile", "main.c:4:20: error: \u2018cuont\u2019 undeclared", False),
    ("cargo-build", "compile", "error[E0425]: cannot find value `price` in this scope", False),
    ("gradle-compile", "compile", "Cart.java:12: error: cannot find symbol", False),
    ("ruff", "lint", "app.py:1:8: F401 [*] `os` imported but unused", False),
    ("eslint", "lint", "'unused' is assigned a value but never used", False),
    (
        "npm-404",
        "dependency",
        "npm ERR! 404 Not Found - GET https://registry.npmjs.org/left-padd",
        False,
    ),
    ("pip-no-version", "dependency", "No matching distribution found for flask==9.9.9", False),
    ("bundler-missing", "dependency", "Could not find gem 'rails (= 9.0.0)'", False),
    ("yarn-network", "dependency", "read ECONNRESET", True),
    ("shell-not-found", "configuration", "kubectl: command not found", False),
    ("runner-lost", "infrastructure", "lost communication with the runner", True),
    ("oom-killed", "infrastructure", "JavaScript heap out of memory", True),
    ("docker-429", "infrastructure", "toomanyrequests", True),
    ("travis-timeout", "timeout", "No output has been received in the last 10m0s", True),
]


def _lines(name: str) -> list[str]:
    return (LOGS / f"{name}.log").read_text(encoding="utf-8").splitlines()


@pytest.mark.parametrize(("name", "category", "key", "retriable"), CASES, ids=[c[0] for c in CASES])
def test_the_failure_gets_its_category(name: str, category: str, key: str, retriable: bool) -> None:
    assert analyze_log(_lines(name)).category == category


@pytest.mark.parametrize(("name", "category", "key", "retriable"), CASES, ids=[c[0] for c in CASES])
def test_the_excerpt_shows_the_key_line_with_its_number(
    name: str, category: str, key: str, retriable: bool
) -> None:
    lines = _lines(name)
    excerpt = analyze_log(lines).excerpt
    assert 0 < len(excerpt) <= EXCERPT_MAX
    shown = [e for e in excerpt if key in e.text]
    assert shown, [e.text for e in excerpt]
    assert all(lines[e.line - 1] == e.text for e in excerpt)


@pytest.mark.parametrize(("name", "category", "key", "retriable"), CASES, ids=[c[0] for c in CASES])
def test_retriable_follows_the_infrastructure_signals(
    name: str, category: str, key: str, retriable: bool
) -> None:
    analysis = analyze_log(_lines(name))
    assert analysis.retriable is retriable
    assert bool(analysis.signals) is retriable
    assert 0.0 <= analysis.confidence <= 1.0


@pytest.mark.parametrize(("name", "category", "key", "retriable"), CASES, ids=[c[0] for c in CASES])
def test_the_reason_is_one_sentence_naming_the_key_error(
    name: str, category: str, key: str, retriable: bool
) -> None:
    reason = analyze_log(_lines(name)).failure_reason
    assert reason.endswith(".")
    assert "\n" not in reason
    assert len(reason) < 300
