"""Bounded views of a build log, the same for every provider.

Agents drown in unbounded logs (GitHub MCP #608, Jenkins MCP #147, Buildkite MCP
#26): every view here is capped and says how to get more.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from devmesh.domain.errors import InvalidInput
from devmesh.domain.models import LogLine, LogMatch, LogPage, LogSearchResult

__all__ = ["MAX_LINES", "MAX_MATCHES", "page", "search"]

MAX_LINES = 1000
MAX_MATCHES = 50
_MAX_LINE_CHARS = 2000


def _clip(line: LogLine) -> LogLine:
    if len(line.text) <= _MAX_LINE_CHARS:
        return line
    return line.model_copy(update={"text": line.text[:_MAX_LINE_CHARS] + " …[line clipped]"})


def _parse_cursor(cursor: str) -> int:
    if not cursor.isdigit():
        raise InvalidInput("cursor must be a value returned as next_cursor", field="cursor")
    return int(cursor)


def page(
    build_id: str,
    lines: Sequence[LogLine],
    *,
    tail: int = 100,
    cursor: str | None = None,
    limit: int | None = None,
) -> LogPage:
    """The last ``tail`` lines, or with ``cursor`` the ``limit`` lines after it."""
    total = len(lines)
    if cursor is None:
        count = max(0, min(tail, MAX_LINES))
        chosen = list(lines[total - count :]) if count else []
        first = total - len(chosen)
        truncated = first > 0
        hint = (
            f"showing the last {len(chosen)} of {total} lines; pass cursor='0' to read from "
            "the start, or use search_build_logs to find specific lines"
            if truncated
            else None
        )
        return LogPage(
            build_id=build_id,
            lines=[_clip(line) for line in chosen],
            total_lines=total,
            truncated=truncated,
            next_cursor=None,
            hint=hint,
        )
    start = _parse_cursor(cursor)
    size = max(1, min(limit or tail, MAX_LINES))
    chosen = list(lines[start : start + size])
    end = start + len(chosen)
    more = end < total
    return LogPage(
        build_id=build_id,
        lines=[_clip(line) for line in chosen],
        total_lines=total,
        truncated=more,
        next_cursor=str(end) if more else None,
        hint=f"lines {start + 1}-{end} of {total}; pass cursor='{end}' for more" if more else None,
    )


def search(
    build_id: str,
    lines: Sequence[LogLine],
    *,
    pattern: str,
    context: int = 2,
    max_matches: int = 20,
    ignore_case: bool = True,
) -> LogSearchResult:
    try:
        regex = re.compile(pattern, re.IGNORECASE if ignore_case else 0)
    except re.error as exc:
        raise InvalidInput(
            f"pattern is not a valid regular expression: {exc}", field="pattern"
        ) from exc
    context = max(0, min(context, 20))
    cap = max(1, min(max_matches, MAX_MATCHES))
    matches: list[LogMatch] = []
    truncated = False
    for index, line in enumerate(lines):
        if not regex.search(line.text):
            continue
        if len(matches) == cap:
            truncated = True
            break
        matches.append(
            LogMatch(
                line=_clip(line),
                before=[_clip(x) for x in lines[max(0, index - context) : index]],
                after=[_clip(x) for x in lines[index + 1 : index + 1 + context]],
            )
        )
    hint = None
    if truncated:
        hint = f"stopped at {cap} matches; narrow the pattern or raise max_matches (≤{MAX_MATCHES})"
    elif not matches:
        hint = "no line matched; patterns are Python regular expressions, case-insensitive"
    return LogSearchResult(
        build_id=build_id, pattern=pattern, matches=matches, truncated=truncated, hint=hint
    )
