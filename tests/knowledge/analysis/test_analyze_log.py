"""analyze_log's inputs besides the log: window offset, steps, status, the last passing log."""

from __future__ import annotations

from pathlib import Path

from devmesh.knowledge.analysis import MAX_LINES, StepOutcome, analyze_log

LOGS = Path(__file__).resolve().parents[2] / "fixtures" / "logs"


def _lines(name: str) -> list[str]:
    return (LOGS / f"{name}.log").read_text(encoding="utf-8").splitlines()


def test_excerpt_line_numbers_count_from_first_line_of_a_fetched_window() -> None:
    lines = _lines("gcc-make")
    whole = analyze_log(lines)
    window = analyze_log(lines, first_line=5001)
    assert [e.line for e in window.excerpt] == [e.line + 5000 for e in whole.excerpt]


def test_the_failed_step_names_the_stage() -> None:
    lines = _lines("pytest")
    steps = [
        StepOutcome(name="checkout", status="succeeded", first_line=1, last_line=8),
        StepOutcome(name="unit tests", status="failed", first_line=9, last_line=len(lines)),
    ]
    assert analyze_log(lines, steps=steps).failed_stage == "unit tests"


def test_an_explicit_failed_stage_wins() -> None:
    assert analyze_log(_lines("jest"), failed_stage="test:js").failed_stage == "test:js"


def test_the_runner_echo_of_the_failed_command_names_the_stage_without_steps() -> None:
    assert analyze_log(_lines("shell-not-found")).failed_stage == "./scripts/deploy.sh"


def test_a_line_the_last_passing_build_also_printed_gives_way_to_a_new_one() -> None:
    noise = "ERROR: ld.so: object 'libfaketime.so.1' from LD_PRELOAD cannot be preloaded: ignored."
    failing = [
        "$ ./run-checks.sh",
        noise,
        "checking links...",
        "",
        "ERROR: Could not open requirements file: requirements-dev.txt",
        "ERROR: Job failed: exit code 1",
    ]
    passing = ["$ ./run-checks.sh", noise, "checking links...", "all checks passed"]
    assert analyze_log(failing).excerpt[0].text == noise
    diffed = analyze_log(failing, passing_log=passing)
    assert "Could not open requirements file" in diffed.excerpt[0].text


def test_a_log_without_any_error_line_shows_its_last_lines() -> None:
    lines = [
        "$ ./build.sh",
        *[f"step {n} done" for n in range(40)],
        "ERROR: Job failed: exit code 3",
    ]
    analysis = analyze_log(lines)
    assert analysis.excerpt[-1].text == "ERROR: Job failed: exit code 3"


def test_an_empty_log_gives_an_empty_excerpt() -> None:
    analysis = analyze_log([])
    assert analysis.excerpt == []
    assert analysis.category == "other"


def test_a_log_longer_than_the_cap_is_read_from_its_end_with_true_line_numbers() -> None:
    filler = [f"[{n:06d}] compiling module_{n}.o" for n in range(MAX_LINES + 20_000)]
    lines = filler + _lines("gcc-make")
    analysis = analyze_log(lines)
    key = next(e for e in analysis.excerpt if "error:" in e.text)
    assert lines[key.line - 1] == key.text
    assert key.line > MAX_LINES


def test_the_same_log_gives_the_same_analysis() -> None:
    lines = _lines("maven-surefire")
    assert analyze_log(lines) == analyze_log(lines)


def test_a_summary_with_failures_counts_though_a_passing_one_of_the_same_shape_came_first() -> None:
    lines = [
        "$ mono xunit.console.exe Cart.Tests.dll",
        "12 total, 0 failed, 0 skipped, took 1.204 seconds",
        "Tests complete: 15 of 15",
        "15 total, 1 failed, 0 skipped, took 2.310 seconds",
        'The command "mono xunit.console.exe Cart.Tests.dll" exited with 1.',
    ]
    analysis = analyze_log(lines)
    assert analysis.category == "test"
    assert lines[3] in [e.text for e in analysis.excerpt]
