"""The suite's own guards hold when it runs in worker processes, as scripts/test runs it
(pytest-xdist): a canary leaked in a worker fails the whole run, and so does a test a
worker skipped in CI."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).parents[1]


def test_a_canary_leaked_in_a_worker_process_fails_the_run_and_is_named(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    pytester.makepyfile(
        test_leak="""
        from tests.support.canary import CANARY, watch

        def test_leaks():
            watch("a place it must not be", CANARY)

        def test_keeps_quiet():
            pass
        """
    )

    result = pytester.runpytest_subprocess(
        "-n", "1", "-p", "tests.support.canary", "-p", "no:cacheprovider"
    )

    result.assert_outcomes(passed=2)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*FAILED: the canary secret leaked: a place it must not be*"])


def test_a_test_skipped_in_a_worker_process_in_ci_fails_the_run_and_is_named(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    monkeypatch.setenv("CI", "1")
    pytester.makepyfile(
        test_skips="""
        import pytest

        def test_skips():
            pytest.skip("no backend here")

        def test_runs():
            pass
        """
    )

    result = pytester.runpytest_subprocess(
        "-n", "1", "-p", "tests.conftest", "-p", "no:cacheprovider"
    )

    result.assert_outcomes(passed=1, skipped=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        ["*FAILED: a skipped test in CI is a failure: test_skips.py::test_skips*"]
    )
