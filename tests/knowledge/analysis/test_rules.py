"""Single rules, each on a line as its tool prints it."""

from __future__ import annotations

from devmesh.knowledge.analysis import analyze_log
from devmesh.knowledge.analysis.rules import match_rules


def _names(line: str) -> set[str]:
    return {rule.name for rule in match_rules(line)}


def test_the_docker_cli_s_daemon_error_is_a_failure_line() -> None:
    line = (
        "docker: Error response from daemon: pull access denied for acme/builder, "
        "repository does not exist or may require 'docker login'."
    )
    assert "docker-daemon" in _names(line)


def test_a_container_whose_entrypoint_is_missing_is_a_configuration_failure() -> None:
    lines = [
        "$ docker run -v $PWD:/src acme/builder -c make",
        "docker: Error response from daemon: OCI runtime create failed: container_linux.go:349: "
        'starting container process caused "exec: \\"-c\\": executable file not found in $PATH": '
        "unknown.",
        'The command "docker run -v $PWD:/src acme/builder -c make" exited with 127.',
    ]
    analysis = analyze_log(lines)
    assert analysis.category == "configuration"
    assert lines[1] in [e.text for e in analysis.excerpt]


def test_a_linter_s_coded_violation_is_a_lint_failure() -> None:
    lines = [
        "$ npm test",
        "pages/common/tar.md:7: TLDR004 Command descriptions should end in a period",
        "pages/common/tar.md:9: TLDR003 Descriptions should start with a capital letter",
        "npm ERR! Test failed.  See above for more details.",
        'The command "npm test" exited with 1.',
    ]
    analysis = analyze_log(lines)
    assert analysis.category == "lint"
    assert lines[1] in [e.text for e in analysis.excerpt]


def test_the_xunit_console_summary_counts_failed_tests() -> None:
    assert "xunit-summary" in _names("1745 total, 1 failed, 0 skipped, took 32.006 seconds")
    assert "xunit-summary" in _names(
        "=== TEST EXECUTION SUMMARY === Total: 12, Errors: 0, Failed: 2"
    )
    assert "xunit-summary" not in _names("1745 total, 0 failed, 0 skipped, took 32.006 seconds")
