"""Per-ecosystem error rules: which log lines say why a build failed, and of what kind.

Each rule is general knowledge of what a tool prints when it fails (pytest's
``E   `` lines, cargo's ``error[E0425]:``, Maven's ``<<< FAILURE!``, ...), never
knowledge of one project. A rule gives its line a weight (how surely the line
explains the failure: 5 is the tool's own failure headline, 1 a bare word such
as "error") and, when the line says so, a category. Lines must first be
``candidates``, found by a cheap keyword search, so that a 40,000-line log costs one regex per
line plus the full rule set on the few hundred lines that look like errors.
"""

# One rule per line reads best as a table, so long patterns stay on their line.
# ruff: noqa: E501

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import accumulate

from devmesh.knowledge.analysis.models import Category

__all__ = ["RULES", "Rule", "candidates", "is_benign", "match_rules"]


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    pattern: re.Pattern[str]
    weight: float
    category: Category | None


def _r(name: str, pattern: str, weight: float, category: Category | None, flags: int = 0) -> Rule:
    return Rule(name, re.compile(pattern, flags), weight, category)


_I = re.IGNORECASE

# Cheap first pass: a line holding none of these words (lower-cased) and not
# starting like a numbered failure or a diff is not looked at again. Searched with
# str.find over the whole text, which is far faster than a regex alternation.
_KEYWORDS: tuple[str, ...] = (
    "err", "fail", "panic", "exception", "fatal", "abort", "traceback", "violation",
    "warn", "denied", "refused", "not found", "no such", "not defined", "undefined",
    "unknown", "unexpected", "invalid", "cannot", "can't", "could not", "couldn't",
    "unable", "timed out", "timeout", "time limit", "killed", "oom-kill", "oomkill",
    "out of memory", "allocate memory", "segment", "expected", "assert", "broken",
    "missing", "exited with", "exit code", "exit status", "no output", "**", "<<<",
    "✗", "✕", "✖", "\u00d7", "●", "offen", "problem", "mismatch", "differ", "not in order",
    "not match", "limit", "429", "502", "503", "504", "reset by", "econnreset",
    "resolve", "conflict", "depend", "require", "sc1", "sc2", "md0", "standard style",
    ".rb:", "(quotes)", "(semi)", "not ok",
)  # fmt: skip
_KEYWORD_BYTES = tuple(keyword.encode("utf-8") for keyword in _KEYWORDS)
# Numbered failures, pytest's E lines, phpt diffs, and file:line[:col] messages
# (linters often print no error word at all).
_LINE_START = re.compile(r"\s*\d+\) |E  |\d{3}[+-] |\s*[\w./\\-]+\.\w+:\d+(?::\d+)?:? ")


def candidates(lines: Sequence[str]) -> list[int]:
    """Indices of the lines that may match a rule, in order."""
    # Searching UTF-8 bytes is several times faster than searching a str that
    # holds one non-ASCII character (which makes every character wide).
    data = "\n".join(lines).lower().encode("utf-8", "replace")
    sizes = (
        len(line) if line.isascii() else len(line.lower().encode("utf-8", "replace"))
        for line in lines
    )
    ends = [end - 1 for end in accumulate(size + 1 for size in sizes)]  # offsets of each "\n"
    found: set[int] = set()
    for keyword in _KEYWORD_BYTES:
        at = data.find(keyword)
        while at != -1:
            index = bisect_left(ends, at)
            found.add(index)
            at = data.find(keyword, ends[index] + 1)
    for index, line in enumerate(lines):
        if index not in found and _LINE_START.match(line):
            found.add(index)
    return sorted(found)


# Lines that look like errors but report success or configure error handling.
_BENIGN = re.compile(
    r"\b0 (?:errors?|failures?|failed|problems?|offen[cs]es?)\b|"
    r"(?:errors?|failures?|failed|skipped)[:=]\s*0\b|"
    r"\.\.\. ok$|\bPASS(?:ED)?\b|✓|✔|"
    r"-W(?:no-)?error|error_reporting|errexit|--fail-fast|continue-on-error|"
    r"^\s*(?:npm )?WARN (?:deprecated|optional|notsup)|"
    r"\bwarning: (?:unused|deprecated)|^\s*(?:checking|Checking) |"
    r"Using worker:|^\s*\$ |^\+ |travis_(?:fold|time)|^Setting environment",
    _I,
)
# A count that is not zero: "Failures: 14, Errors: 0" still reports failures.
_NONZERO = re.compile(
    r"(?:errors?|failures?|failed)[:=]\s*[1-9]|\b[1-9]\d* (?:errors?|failures?|failed)\b", _I
)


def is_benign(line: str) -> bool:
    """Whether a line that looks like an error reports success or configures error handling."""
    return _BENIGN.search(line) is not None and _NONZERO.search(line) is None


RULES: tuple[Rule, ...] = (
    # --- CI runners: the failing command and whole-job verdicts -------------
    _r("timeout-exit", r"exited with 124\b|\bexit (?:code|status) 124\b", 5, "timeout"),
    _r(
        "ci-no-output",
        r"No output has been received in the last \d+|"
        r"exceeded the maximum (?:time|execution time|log length)|"
        r"(?:job|build|step) (?:has )?(?:timed out|exceeded (?:the )?(?:time|timeout))|"
        r"execution took longer than .* seconds|ERROR: Job failed: execution took longer",
        5,
        "timeout",
        _I,
    ),
    _r(
        "test-timeout",
        r"\btimeout of \d+\s*ms exceeded|\bTests? timed out\b|\btimed out after\b",
        4,
        "test",
        _I,
    ),
    _r("process-timeout", r"\bprocess timed out\b|\btimed out\b", 2, None, _I),
    _r(
        "runner-lost",
        r"runner system failure|lost communication with|job was not acquired|"
        r"The (?:runner|agent) has (?:received a shutdown|lost)|worker (?:lost|disconnected)|"
        r"connection to the worker (?:was )?lost",
        4,
        "infrastructure",
        _I,
    ),
    _r(
        "ci-command-failed",
        r'^The command ".*" (?:failed|exited with [1-9]\d*)\.?$|^" exited with [1-9]',
        1.5,
        None,
    ),
    _r(
        "job-failed",
        r"^ERROR: (?:Job|Build) failed|Process completed with exit code [1-9]",
        1.5,
        None,
    ),
    _r(
        "exit-nonzero",
        r"\bexit(?:ed)? (?:with )?(?:code|status)? ?[1-9]\d*\b|returned non-zero exit status",
        1,
        None,
        _I,
    ),
    # --- pytest / unittest / Python ----------------------------------------
    _r("pytest-failed", r"^(?:FAILED|ERROR) \S+::\S+", 4, "test"),
    _r("pytest-e-line", r"^E {2,}\S", 4, "test"),
    _r(
        "pytest-header",
        r"^_{3,} (?:ERROR collecting |Test|test)\S* .*_{3,}$|^_{3,} \S+ _{3,}$",
        3,
        "test",
    ),
    _r(
        "pytest-summary",
        r"^=+ (?:FAILURES|ERRORS|short test summary info) =+$|^=+ .*\b\d+ (?:failed|errors?)\b.* =+$",
        2,
        "test",
    ),
    _r("unittest-fail", r"^(?:FAIL|ERROR): \w+ \([\w.]+\)", 5, "test"),
    _r("unittest-summary", r"^FAILED \((?:failures|errors)=\d+", 2, "test"),
    _r("py-traceback", r"^\s*Traceback \(most recent call last\):", 3, None),
    _r("py-exception", r"^(?:\w+\.)*\w*(?:Error|Exception|Exit|Interrupt)(?:: .*)?$", 3, None),
    _r("py-assert", r"\bAssertionError\b", 3, "test"),
    _r("py-module", r"ModuleNotFoundError|ImportError: No module named", 4, "dependency"),
    # --- JavaScript: jest / mocha / node / npm / yarn -----------------------
    _r("jest-bullet", r"^\s*● \S", 4, "test"),
    _r("jest-x", r"^\s*[✕\u00d7✗✖] \S", 3, "test"),
    _r("jest-summary", r"^Tests?:\s+\d+ failed|^Test Suites:\s+\d+ failed", 2, "test"),
    _r("mocha-numbered", r"^\s{0,6}\d+\) \S.*", 3, "test"),
    _r("mocha-failing", r"^\s*\d+ failing\b", 3, "test"),
    _r("js-error", r"^\s*(?:Uncaught )?(?:\w+)?(?:Error|Exception)(?: \[\w+\])?: \S", 3, None),
    _r("js-syntax", r"\bSyntaxError\b|Unexpected token", 3, "compile"),
    # At run time (in tests, mostly): the category comes from around it.
    _r(
        "js-runtime",
        r"is not defined\b|is not a function\b|Cannot (?:find module|read propert)",
        3,
        None,
    ),
    _r(
        "npm-missing-pkg",
        r"npm ERR! (?:code )?(?:E404|ETARGET|ERESOLVE|ENOTFOUND|EAI_AGAIN)|npm ERR! 404|No matching version found|Could not resolve dependency",
        5,
        "dependency",
    ),
    _r(
        "npm-err",
        r"^npm ERR! (?!(?:A complete log|     |This is (?:probably|most)|Tell the author|You can get|Please include|Failed at the|Exit status|code ELIFECYCLE|errno \d|Make sure you have|\s*$))",
        1.5,
        None,
    ),
    _r(
        "yarn-err",
        r"^error (?:An unexpected error|Couldn't find|Command failed|.*\bnot found\b)",
        2,
        None,
    ),
    _r(
        "yarn-pkg",
        r'^error (?:Couldn\'t find package|Package ".*" not found)|^error .* (?:ETIMEDOUT|ECONNRESET|ESOCKETTIMEDOUT)',
        4,
        "dependency",
    ),
    _r("eslint-line", r"^\s+\d+:\d+\s+error\s+.+\s[\w@/-]+$", 4, "lint"),
    _r("eslint-warning", r"^\s+\d+:\d+\s+warning\s+.+\s[\w@/-]+$", 1.5, "lint"),
    _r("eslint-summary", r"^[✖\u00d7] \d+ problems? \(\d+ errors?", 3, "lint"),
    _r(
        "standard",
        r"^standard: Use JavaScript Standard Style|^\s*\S+\.\w+:\d+(?::\d+)?:? .+ \([\w/@-]+\)$",
        3,
        "lint",
    ),
    # --- JVM: maven / gradle / junit / sbt / scalatest ----------------------
    _r("junit-fail", r"<<< (?:FAILURE|ERROR)!", 5, "test"),
    _r("junit-testcase", r"^\s*\w+\.\w+:\d+ .*(?:expected|Expected)", 4, "test"),
    _r(
        "maven-tests",
        r"^Tests run: \d+, Failures: [1-9]|^Tests run: \d+, Failures: \d+, Errors: [1-9]|^(?:Failed tests|Tests in error):",
        2,
        "test",
    ),
    _r("maven-build-failure", r"^\[ERROR\] (?:BUILD FAILURE|Failed to execute goal)", 2, None),
    _r(
        "maven-compile",
        r"^\[ERROR\] .*\.(?:java|kt|scala):\[?\d+[,\]]|COMPILATION ERROR",
        5,
        "compile",
    ),
    _r(
        "maven-dependency",
        r"Could not resolve dependencies|Could not (?:find|transfer) artifact|Failed to collect dependencies|Non-resolvable parent POM",
        5,
        "dependency",
    ),
    _r("maven-error", r"^\[ERROR\] \S", 1.5, None),
    _r("gradle-task", r"^> Task \S+ FAILED$|^\S+ > \S+ FAILED$", 4, None),
    _r("gradle-wrong", r"^\* What went wrong:", 3, None),
    _r("gradle-build", r"^(?:BUILD FAILED|FAILURE: Build failed)", 1.5, None),
    _r("scalatest-failed", r"\*\*\* FAILED \*\*\*|\*\*\* ABORTED \*\*\*", 5, "test"),
    _r(
        "sbt-error",
        r"^\[error\] (?!Total time|\(.*\) sbt\.|Failed: Total|Error during tests)\S",
        2,
        None,
    ),
    _r("sbt-failed-tests", r"^\[error\] Failed tests:|^\[error\] Error during tests:", 2, "test"),
    _r(
        "java-exception",
        r"^(?:Caused by: )?(?:[a-z]\w*\.)+\w*(?:Exception|Error|Failure)(?:: .*)?$",
        3,
        None,
    ),
    # --- Rust / Go / C / C++ / Haskell / Swift / other compilers -----------
    _r("rust-error", r"^error\[E\d{4}\]: ", 5, "compile"),
    # Many tools print "error: ..." (cargo, git, clang's driver, yarn, doc checkers).
    _r("error-colon", r"^error: (?!test failed|could not compile|aborting due)", 4, None),
    _r("rust-location", r"^\s*--> \S+:\d+:\d+$", 2, "compile"),
    _r("rust-could-not-compile", r"^error: (?:could not compile|aborting due)", 2, "compile"),
    _r("rust-panic", r"^thread '.*'(?: \(\d+\))? panicked at", 5, "test"),
    _r(
        "rust-test-failed",
        r"^test \S+ \.\.\. FAILED$|^test result: FAILED|^error: test failed",
        3,
        "test",
    ),
    _r("rust-failures", r"^failures:$", 2, "test"),
    # A top-level test that failed only through its subtests prints its own line first.
    _r("go-fail", r"^\s+--- FAIL: \S+", 5, "test"),
    _r("go-fail-top", r"^--- FAIL: \S+", 4, "test"),
    _r("go-fail-pkg", r"^FAIL\s+\S+\s+[\d.]+s$|^FAIL$", 1.5, "test"),
    _r("go-test-line", r"^\s+\w+_test\.go:\d+: ", 4, "test"),
    _r("go-panic", r"^panic: |^fatal error: ", 4, None),
    _r("go-build", r"^# \S+$|^\S+\.go:\d+:\d+: ", 3, "compile"),
    _r(
        "go-module",
        r"cannot find (?:module|package)|unknown revision|missing go\.sum entry|go: \S+@\S+: (?:reading|verifying)",
        5,
        "dependency",
    ),
    _r("c-error", r"^\S+?:\d+(?::\d+)?: (?:fatal )?error:", 5, "compile"),
    _r("c-error-bare", r"^\S+?:\d+:\d+: error:$", 5, "compile"),
    _r(
        "linker",
        r"undefined reference to|ld returned \d+ exit status|ld: symbol\(s\) not found|Undefined symbols for architecture",
        5,
        "compile",
    ),
    _r(
        "make-error",
        r"^(?:g?make|ninja)(?:\[\d+\])?: \*\*\* .*(?:Error \d+|Stop\.)|^ninja: build stopped",
        1.5,
        None,
    ),
    _r("cmake-error", r"^CMake Error\b", 5, "configuration"),
    _r("configure-error", r"^configure: error:", 5, "configuration"),
    _r(
        "missing-lib",
        r"Could NOT find \w+ \(missing|No package '\S+' found|Package \S+ was not found in the pkg-config",
        5,
        "dependency",
    ),
    _r(
        "sanitizer",
        r"(?:==\d+==)?ERROR: (?:Address|Leak|Memory|Thread|UndefinedBehavior)Sanitizer",
        5,
        "test",
    ),
    _r("segfault", r"Segmentation fault|SIGSEGV|core dumped|Aborted \(core", 3, None),
    _r("xcode-failed", r"^\*\* (?:BUILD|TEST|ARCHIVE) FAILED \*\*|Testing failed:", 2, None),
    _r("xctest-case", r"^Test Case '.*' failed|^\S+:\d+: error: -\[\S+ \S+\] :", 5, "test"),
    _r("xcpretty-fail", r"^\s*(?:\x1b\[\d+m)?[✗✕\u00d7]", 3, "test"),
    _r("swiftlint", r"^\S+\.swift:\d+:\d+: (?:warning|error): .* Violation", 4, "lint"),
    _r("haskell-error", r"^\S+\.hs:\d+:\d+: error", 5, "compile"),
    _r(
        "cabal-dependency",
        r"Could not resolve dependencies:|rejecting: |unknown package:|Dependency error",
        3,
        "dependency",
    ),
    # --- Ruby: rspec / minitest / bundler / rubocop --------------------------
    _r("ruby-backtrace", r"^\S+\.rb:\d+:in `", 1.5, None),
    _r("rake-aborted", r"^rake aborted!$", 3, None),
    _r("rspec-failure", r"^\s*Failure/Error:", 5, "test"),
    _r("rspec-rerun", r"^rspec \./\S+:\d+", 2, "test"),
    _r("rspec-summary", r"^\d+ examples?, [1-9]\d* failures?", 2, "test"),
    _r("minitest-failure", r"^\s*\d+\) (?:Failure|Error):|^(?:Failure|Error):$", 4, "test"),
    _r(
        "minitest-summary",
        r"^\d+ (?:runs|tests), \d+ assertions, [1-9]\d* failures|^\d+ (?:runs|tests), \d+ assertions, \d+ failures, [1-9]\d* errors",
        2,
        "test",
    ),
    _r(
        "bundler",
        r"Could not find (?:gem|\S+ in any of the sources)|Bundler could not find|Gem::\w+Error|An error occurred while installing|Could not fetch specs",
        5,
        "dependency",
    ),
    _r(
        "rubocop",
        r"^\S+\.rb:\d+:\d+: [CWEF]: |\d+ files? inspected, [1-9]\d* offen[cs]es? detected",
        4,
        "lint",
    ),
    # --- PHP / Elixir / Erlang / Perl / R / misc test runners ----------------
    _r("phpunit-numbered", r"^\d+\) [\w\\]+::\w+", 4, "test"),
    _r(
        "phpunit-summary",
        r"^There (?:was|were) \d+ (?:failures?|errors?):|^FAILURES!$|^ERRORS!$",
        3,
        "test",
    ),
    _r("phpt-fail", r"^FAIL .+ \[\S+\.phpt\]", 5, "test"),
    _r("phpt-diff", r"^\d{3}[+-] ", 2, "test"),
    _r(
        "phpstan",
        r"^\s*-+ -+\s*$|^\s*Line\s+\S+\.php\s*$|^ \[ERROR\] Found \d+ errors?",
        1.5,
        "lint",
    ),
    _r("elixir-raise", r"^\*\* \(\w[\w.]*\)", 5, None),
    _r("elixir-format", r"mix format failed|--check-formatted", 5, "lint"),
    _r("exunit-failure", r"^\s*\d+\) test .+ \(\S+\)$", 5, "test"),
    _r("ct-failed", r"^\S+:\S+ failed(?: on line \d+)?$|^\S+ failed on line \d+", 5, "test"),
    _r("ct-reason", r"^Reason: ", 3, "test"),
    _r(
        "eunit",
        r"^\s*\*failed\*|^Failed: \d+\.\s+Skipped|^\*\*error:|=== (?:FAILED|Failed)",
        3,
        "test",
    ),
    _r(
        "perl-test",
        r"^not ok \d+|^#\s+Failed test|^Failed \d+/\d+ (?:test|subtest)|^Result: FAIL|Dubious, test returned",
        4,
        "test",
    ),
    _r(
        "r-check",
        r"^\* checking .* \.\.\. ERROR$|^\s*ERROR$|^Status: \d+ ERRORs?|R CMD check.*(?:failed|ERROR)|^Running the tests in .* failed",
        4,
        "test",
    ),
    _r("r-check-warning", r"^\* checking .* \.\.\. WARNING$", 1.5, None),
    _r("r-error", r"^Error(?: in \S+)?(?: \(.*\))?\s*:|^Execution halted$", 3, None),
    _r("tap-fail", r"^not ok \d+ ", 4, "test"),
    _r(
        "vim-test",
        r"^\s*(?:Found errors in \S+:|function RunTheTest\S*.* line \d+:)|Flaky test failed",
        4,
        "test",
    ),
    _r("qunit", r"^(?:not ok|Module Failed:|Test Failed:|\s*actual:|\s*expected:)", 3, "test"),
    # xUnit.net's console runner (1.x: "N total, N failed, ..."; 2.x: "Total: N, Errors: N, Failed: N").
    _r(
        "xunit-summary",
        r"^\s*\d+ total, [1-9]\d* failed, \d+ skipped|\bTotal: \d+, Errors: \d+, Failed: [1-9]",
        2,
        "test",
    ),
    _r("generic-failed-test", r"^\s*(?:FAIL|FAILED|FAILURE|ERROR)[:!]? \S", 2, "test"),
    # --- dependency fetching / network ----------------------------------------
    _r(
        "pip",
        r"No matching distribution found|Could not find a version that satisfies|ResolutionImpossible|Cannot install .* because these package versions have conflicting",
        5,
        "dependency",
    ),
    _r("http-404", r"\b404 Not Found\b|\bFailure 404\b|returned error: 404", 3, "dependency"),
    _r(
        "manifest-missing",
        r"manifest for \S+ not found|manifest unknown|pull access denied|repository does not exist",
        5,
        "configuration",
    ),
    _r(
        "apt",
        r"^E: (?:Unable to locate package|Package '.*' has no installation candidate|Failed to fetch|Unable to fetch)",
        5,
        "dependency",
    ),
    # --- shell / configuration ------------------------------------------------
    _r(
        "command-not-found",
        r"\bcommand not found\b|: not found$|executable file not found in \$PATH",
        4,
        "configuration",
    ),
    # The docker CLI's own failure line; what kind it is comes from the rest of it.
    _r("docker-daemon", r"^docker: Error response from daemon: ", 4, None),
    _r("no-such-file", r"No such file or directory", 3, "configuration"),
    _r("permission", r"Permission denied|EACCES", 3, "configuration"),
    _r(
        "env-missing",
        r"(?:variable|env(?:ironment)?(?: variable)?) \S+ (?:is )?(?:not set|unset|undefined)|unbound variable",
        4,
        "configuration",
    ),
    _r(
        "yaml-invalid",
        r"(?:is not a valid|invalid|could not parse) (?:\.?\w+\.ya?ml|YAML|configuration)|jobs config contains errors|yaml: line \d+",
        5,
        "configuration",
    ),
    # --- linters ---------------------------------------------------------------
    _r("flake8", r"^\S+\.py:\d+:\d+: [EWFCN]\d{3} ", 5, "lint"),
    _r("pylint", r"^\S+\.py:\d+:\d+: [CRWEF]\d{4}: |^\*{13} Module ", 4, "lint"),
    _r("mypy", r"^\S+\.py:\d+: error: ", 4, "lint"),
    _r(
        "gofmt",
        r"is not gofmted|\(gofmt\)$|\(golint\)$|\(vet\)$|\(errcheck\)$|\(staticcheck\)$|\(ineffassign\)$|\(misspell\)$|\(govet\)$",
        5,
        "lint",
    ),
    _r("shellcheck", r"^In \S+ line \d+:|\bSC\d{4}\b", 4, "lint"),
    # Many linters print "path:line[:col]: CODE message" with a rule code (TLDR003, DL3008, SC2086...).
    _r("lint-coded", r"^\S+\.\w+:\d+(?::\d+)?:? [A-Z]{1,6}\d{3,4}\b", 4, "lint"),
    _r("markdownlint", r"^\S+\.md:? ?\d+(?::\d+)?:? MD\d{3}", 5, "lint"),
    _r("stylelint", r"^\s*\d+:\d+\s+[✖\u00d7⚠]\s|CssSyntaxError", 4, "lint"),
    _r(
        "prettier-check",
        r"Code style issues found|Forgot to run Prettier|\[warn\] \S+\.\w+$",
        4,
        "lint",
    ),
    _r(
        "lint-failed",
        r"\blint(?:ing)? (?:failed|errors?)\b|\bstyle (?:check|violations?) failed|\bbroken links?\b",
        3,
        "lint",
        _I,
    ),
    # --- resources / signals ----------------------------------------------------
    _r(
        "oom",
        r"Out of memory|OOMKilled|Cannot allocate memory|JavaScript heap out of memory|MemoryError|exit code 137|signal 9\b|^Killed$",
        5,
        "infrastructure",
        _I,
    ),
    _r(
        "network",
        r"ECONNRESET|ETIMEDOUT|ESOCKETTIMEDOUT|EAI_AGAIN|Connection reset by peer|Could not resolve host|Temporary failure in name resolution|TLS handshake timeout|Connection timed out|Network is unreachable|Read timed out|remote end hung up",
        3,
        "infrastructure",
        _I,
    ),
    _r(
        "rate-limit",
        r"\b(?:429 Too Many Requests|toomanyrequests|rate limit exceeded|503 Service Unavailable|502 Bad Gateway|504 Gateway Time-?out)\b",
        4,
        "infrastructure",
        _I,
    ),
    # --- the generic last resort ---------------------------------------------
    _r("generic-error", r"\b(?:error|ERROR|Error)\b", 1, None),
    _r("generic-fail", r"\b(?:fail(?:ed|ure|s)?|FAIL(?:ED|URE)?|Fail(?:ed|ure)?)\b", 1, None),
    _r("generic-fatal", r"\b(?:fatal|FATAL|Fatal|panic|abort(?:ed|ing)?|ABORTING)\b", 1, None),
    _r("generic-exception", r"Exception\b|\bException", 1, None),
)


def match_rules(line: str) -> list[Rule]:
    """The rules that match a candidate line: none when it looks benign."""
    if is_benign(line):
        return []
    return [rule for rule in RULES if rule.pattern.search(line)]
