"""Just enough PromQL to list the series selectors of an expression.

``promtool`` is not on these machines and PyPI has no maintained PromQL parser, so
the monitoring test reads expressions with this small tokenizer: it finds every
metric name a query selects, with the label names it matches on and groups by.
Functions, aggregations, keywords, numbers, durations and string literals are told
apart by their shape; anything it cannot place fails loudly rather than passing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = ["Selector", "selectors"]

_TOKEN = re.compile(
    r"""
    (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
  | (?P<range>\[[^\]]*\])
  | (?P<matchers>\{(?:[^}"']|"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')*\})
  | (?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?(?:ms|s|m|h|d|w|y)?)
  | (?P<name>[A-Za-z_:][A-Za-z0-9_:]*)
  | (?P<op>==|!=|>=|<=|=~|!~|[-+*/%^<>(),=])
  | (?P<space>\s+)
    """,
    re.VERBOSE,
)
_MATCHER = re.compile(
    r"""\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*("(?:[^"\\]|\\.)*"|'[^']*')\s*,?"""
)
# Words that are never metric names where they stand.
_KEYWORDS = frozenset(
    {"by", "without", "on", "ignoring", "group_left", "group_right", "offset", "bool"}
    | {"and", "or", "unless", "atan2", "inf", "nan"}
)
_GROUPING = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})
# What follows a function or an aggregation's name (``sum by (x) (...)``).
_CALLED = frozenset({"(", "by", "without"})


@dataclass
class Selector:
    metric: str
    labels: set[str] = field(default_factory=set)


def _tokens(expr: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    pos = 0
    while pos < len(expr):
        match = _TOKEN.match(expr, pos)
        if match is None or match.lastgroup is None:
            raise ValueError(f"cannot read PromQL at {expr[pos:]!r}")
        if match.lastgroup != "space":
            tokens.append((match.lastgroup, match.group()))
        pos = match.end()
    return tokens


def _matcher_labels(text: str) -> set[str]:
    body = text[1:-1].strip()
    labels: set[str] = set()
    pos = 0
    while pos < len(body):
        match = _MATCHER.match(body, pos)
        if match is None:
            raise ValueError(f"cannot read label matchers {text!r}")
        labels.add(match.group(1))
        pos = match.end()
    return labels


def selectors(expr: str) -> tuple[list[Selector], set[str]]:
    """The series selectors in ``expr``, and every label name it groups or joins by."""
    tokens = _tokens(expr)
    found: list[Selector] = []
    grouping: set[str] = set()
    i = 0
    while i < len(tokens):
        kind, text = tokens[i]
        following = tokens[i + 1] if i + 1 < len(tokens) else ("", "")
        if kind == "name" and text in _GROUPING:
            if following[1] == "(":
                close = next(j for j in range(i + 2, len(tokens)) if tokens[j][1] == ")")
                grouping |= {t for k, t in tokens[i + 2 : close] if k == "name"}
                i = close + 1
                continue
        elif kind == "name" and text not in _KEYWORDS and following[1] not in _CALLED:
            selector = Selector(text)
            if following[0] == "matchers":
                selector.labels = _matcher_labels(following[1])
                i += 1
            found.append(selector)
        elif kind == "matchers":
            raise ValueError(f"a selector without a metric name: {text!r}")
        i += 1
    return found, grouping
