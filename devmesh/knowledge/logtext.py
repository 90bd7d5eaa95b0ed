"""Build logs made fit to index: noise removed, then cut into line-aware chunks.

A chunk keeps the 1-based line span it came from, so a search hit can be opened
again with the provider's ``get_build_logs(cursor=…, lines=…)``: the cursor of a
log page is the 0-based index of its first line (``devmesh.adapters.logs``), so a
chunk starting at line ``n`` opens at ``cursor=str(n - 1)``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["MAX_CHUNK_CHARS", "MAX_CHUNK_LINES", "LogChunk", "chunk_lines", "clean_lines"]

# About 400 tokens of log text: the shipped model reads at most 512 tokens a text,
# so a chunk is embedded whole, and a hit points at a screenful of lines.
MAX_CHUNK_LINES = 30
MAX_CHUNK_CHARS = 1600
# A single line longer than this is clipped in its chunk (the log keeps it whole):
# minified output or a base64 blob says nothing a search needs past its start.
_MAX_LINE_CHARS = 1000

# CSI (colours, cursor moves), OSC (titles, hyperlinks; ended by BEL or ST), and the
# two-byte escapes (charset selection, keypad modes).
_ESCAPES = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)"
    r"|\x1b[PX^_][^\x1b]*\x1b\\"
    r"|\x1b[@-Z\\-_]"
    r"|\x1b[()][0-9A-Za-z]"
    r"|\x9b[0-?]*[ -/]*[@-~]"
)
# C0 and C1 controls other than tab, newline and carriage return (handled apart).
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


@dataclass(frozen=True, slots=True)
class LogChunk:
    """Consecutive lines ``first_line``..``last_line`` (1-based, inclusive) of one log."""

    first_line: int
    last_line: int
    text: str
    step: str | None = None

    @property
    def cursor(self) -> str:
        """What ``get_build_logs`` takes as ``cursor`` to open this chunk."""
        return str(self.first_line - 1)

    @property
    def line_count(self) -> int:
        return self.last_line - self.first_line + 1


def clean_lines(text: str) -> list[str]:
    """The log's lines as a reader sees them at the end.

    Escape sequences go; a carriage return that redraws a line (progress bars,
    spinners) keeps only the last drawing; ``\\r\\n`` is a plain newline; other
    control characters except tab go. Line count follows the newlines, so line
    numbers match the provider's.
    """
    text = _ESCAPES.sub("", text.replace("\r\n", "\n"))
    lines = []
    for raw in text.split("\n"):
        if "\r" in raw:
            # The terminal shows what the last redraw wrote over the earlier ones;
            # a trailing \r (cursor home, nothing after) leaves the previous drawing.
            drawings = [part for part in raw.split("\r") if part]
            raw = drawings[-1] if drawings else ""
        lines.append(_CONTROLS.sub("", raw))
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def chunk_lines(
    lines: Sequence[str],
    *,
    first_line: int = 1,
    step: str | None = None,
    max_lines: int = MAX_CHUNK_LINES,
    max_chars: int = MAX_CHUNK_CHARS,
) -> list[LogChunk]:
    """Cut ``lines`` (numbered from ``first_line``) into chunks of whole lines.

    A chunk ends at ``max_lines`` lines or before the line that would take it past
    ``max_chars``; a line is never split (an overlong one is clipped in its chunk).
    Blank-only chunks are dropped: nothing in them can be searched for.
    """
    if max_lines < 1 or max_chars < 1:
        raise ValueError("max_lines and max_chars must be positive")
    chunks: list[LogChunk] = []
    start = first_line
    body: list[str] = []
    size = 0

    def flush() -> None:
        if body and any(line.strip() for line in body):
            chunks.append(LogChunk(start, start + len(body) - 1, "\n".join(body), step))

    for offset, line in enumerate(lines):
        line = line if len(line) <= _MAX_LINE_CHARS else line[:_MAX_LINE_CHARS] + " …"
        if body and (len(body) >= max_lines or size + len(line) + 1 > max_chars):
            flush()
            start, body, size = first_line + offset, [], 0
        body.append(line)
        size += len(line) + 1
    flush()
    return chunks
