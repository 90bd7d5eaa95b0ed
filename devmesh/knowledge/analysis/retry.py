"""Is a failure worth retrying? Signals in the log, then the project's history.

A retry helps when the cause was outside the change: the runner went away, the
network or a registry failed, the machine ran out of memory, a step hit its time
limit, or a test known to be flaky failed. History is stronger evidence than any
line: the same commit passing elsewhere, or the same signature alternating
between pass and fail, means the failure does not follow the code.
"""

# One rule per line reads best as a table, so long patterns stay on their line.
# ruff: noqa: E501

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from devmesh.knowledge.analysis.models import FailureAnalysis, PastOutcome

__all__ = ["Signal", "adjust_for_history", "find_signals"]


@dataclass(frozen=True, slots=True)
class Signal:
    name: str
    pattern: re.Pattern[str]
    strength: float  # how likely a retry passes when this is the cause


def _s(name: str, pattern: str, strength: float) -> Signal:
    return Signal(name, re.compile(pattern, re.IGNORECASE), strength)


SIGNALS: tuple[Signal, ...] = (
    _s(
        "runner lost",
        r"runner system failure|lost communication with|job was not acquired|"
        r"(?:runner|agent) has (?:received a shutdown|lost)|worker (?:lost|disconnected)|"
        r"connection to the worker (?:was )?lost|slave lost|remote host closed the connection",
        0.9,
    ),
    _s(
        "network reset",
        r"ECONNRESET|Connection reset by peer|remote end hung up|unexpected EOF|"
        r"Connection (?:timed out|refused)|ETIMEDOUT|ESOCKETTIMEDOUT|Read timed out|"
        r"TLS handshake timeout|Network is unreachable",
        0.7,
    ),
    _s(
        "dns failure",
        r"Could not resolve host|Temporary failure in name resolution|EAI_AGAIN|"
        r"getaddrinfo ENOTFOUND|no such host",
        0.7,
    ),
    _s(
        "registry rate limit",
        r"429 Too Many Requests|toomanyrequests|rate limit exceeded|\bHTTP 429\b|status code 429",
        0.8,
    ),
    _s(
        "registry unavailable",
        r"\b(?:503 Service Unavailable|502 Bad Gateway|504 Gateway Time-?out)\b|"
        r"status code 50[234]\b|returned error: 50[234]",
        0.75,
    ),
    _s(
        "oom kill",
        r"Out of memory|OOMKilled|oom-kill|Cannot allocate memory|heap out of memory|"
        r"exit code 137|signal 9\b|^Killed$|java\.lang\.OutOfMemoryError",
        0.7,
    ),
    _s(
        "timeout",
        r"exited with 124\b|No output has been received in the last|"
        r"exceeded the maximum (?:time|execution time)|execution took longer than|"
        r"(?:job|build|step) (?:has )?timed out",
        0.55,
    ),
    _s(
        "docker daemon error",
        r"Cannot connect to the Docker daemon|Error response from daemon: (?:Get|Head|i/o|net/http|.*timeout)",
        0.6,
    ),
    _s("known flaky test", r"\bflaky\b|\bintermittent(?:ly)? fail", 0.6),
)


def find_signals(lines: Sequence[str]) -> list[Signal]:
    """The signals found in ``lines``, each once, strongest first."""
    found: dict[str, Signal] = {}
    for line in lines:
        for signal in SIGNALS:
            if signal.name not in found and signal.pattern.search(line):
                found[signal.name] = signal
    return sorted(found.values(), key=lambda s: -s.strength)


def combine(strengths: Sequence[float]) -> float:
    """Independent evidence: the chance that at least one signal is right."""
    miss = 1.0
    for strength in strengths:
        miss *= 1.0 - strength
    return 1.0 - miss


def adjust_for_history(
    analysis: FailureAnalysis, history: Sequence[PastOutcome]
) -> FailureAnalysis:
    """``analysis`` with ``retriable`` and ``confidence`` revised by other builds.

    ``history`` holds other builds of the same project in time order (the
    analysed build not included). A cancelled build stays not retriable.
    """
    if analysis.category == "cancelled-by-user" or not history:
        return analysis
    signals = list(analysis.signals)
    evidence: list[float] = []
    if any(past.same_commit and past.status == "succeeded" for past in history):
        signals.append("same commit passed")
        evidence.append(0.85)
    if _alternates(analysis.error_pattern, history):
        signals.append("signature alternates pass/fail")
        evidence.append(0.75)
    if evidence:
        prior = analysis.confidence if analysis.retriable else 0.0
        confidence = round(combine([prior, *evidence]), 3)
        return analysis.model_copy(
            update={"retriable": True, "confidence": confidence, "signals": signals}
        )
    if _repeats(analysis.error_pattern, history) and analysis.retriable:
        # The same failure every time, no pass between: a retry is unlikely to help.
        signals.append("same signature failed repeatedly")
        confidence = round(max(0.5, 1.0 - analysis.confidence), 3)
        return analysis.model_copy(
            update={"retriable": False, "confidence": confidence, "signals": signals}
        )
    return analysis


def _alternates(pattern: str, history: Sequence[PastOutcome]) -> bool:
    """Earlier failures with this signature have a pass after them: fail, pass, fail."""
    seen_same_failure = False
    for past in history:
        if past.status == "failed" and past.error_pattern == pattern:
            seen_same_failure = True
        elif past.status == "succeeded" and seen_same_failure:
            return True
    return False


def _repeats(pattern: str, history: Sequence[PastOutcome]) -> bool:
    """The last three builds all failed with this signature."""
    recent = [past for past in history if past.status != "cancelled"][-3:]
    return len(recent) == 3 and all(
        past.status == "failed" and past.error_pattern == pattern for past in recent
    )
