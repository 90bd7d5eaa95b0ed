"""The error signature: a log line with what changes from run to run masked.

Two builds failing the same way print the same message with different
timestamps, temp paths, addresses, durations, pids and hashes; masking those
leaves a string that is equal for both and still names the failing test, file
(base name) and message, so different failures stay apart.
"""

from __future__ import annotations

import re

__all__ = ["mask", "template"]

_STEPS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\x1b\[[0-9;]*[A-Za-z]|\[\d+(?:;\d+)*m"), ""),  # colour codes, ESC stripped or not
    (
        re.compile(
            r"\d{4}-\d\d-\d\d[T _]\d\d:\d\d(?::\d\d(?:[.,]\d+)?)?(?:Z|[+-]\d\d:?\d\d)?|"
            r"\d{4}[-/.]\d\d[-/.]\d\d|\b\d\d:\d\d:\d\d(?:[.,]\d+)?\b"
        ),
        "<ts>",
    ),
    (re.compile(r"\b[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}\b"), "<uuid>"),
    (re.compile(r"\b0x[0-9a-fA-F]+\b"), "<addr>"),
    (re.compile(r"\b(?=[0-9a-fA-F]*\d)(?=[0-9a-fA-F]*[a-fA-F])[0-9a-fA-F]{7,}\b"), "<hex>"),
    (re.compile(r"https?://[^\s'\"<>()]+"), "<url>"),
    # A path keeps its last part: the file names the failure, the directories name the runner.
    (re.compile(r"(?:[A-Za-z]:)?(?:[\w.@+~-]*[\\/])+(?=[\w.@+-]+)"), "<path>/"),
    (re.compile(r"\b\d+(?:[.,]\d+)*"), "<n>"),
    (re.compile(r"\s+"), " "),
)

_MAX = 240


def mask(text: str) -> str:
    """``text`` with times, ids, hashes, addresses, URLs, directories and numbers masked."""
    for pattern, replacement in _STEPS:
        text = pattern.sub(replacement, text)
    return text.strip()[:_MAX]


def template(text: str) -> str:
    """A cheaper mask for comparing whole logs line by line: digits and hex runs only."""
    return _TEMPLATE.sub("0", text).strip()


_TEMPLATE = re.compile(r"[0-9a-fA-F]{6,}|\d+")
