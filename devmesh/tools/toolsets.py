"""Toolsets and connection views: which of a tenant's operations a client sees.

A tenant with six CI instances has some eighty operations; listing every one costs
an agent tens of thousands of tokens before it has done anything. So each operation
belongs to a toolset (``Operation.toolset``: ``builds``, ``logs``, ``pipelines``,
``artifacts``; ``knowledge`` for the tenant-wide operations; an OpenAPI tag for an
OpenAPI tool), and each connection says what it wants to see:

* ``toolsets``: the sets to list (``all`` for every one); unset, the defaults.
* ``search``: list only the meta-tools ``search_tools``, ``call_tool`` and
  ``list_toolsets`` (``devmesh.tools.tool_search`` ranks the operations).
* ``read_only``: only operations hinted read-only are listed, and only they run;
  a read-only API key makes every connection of it read-only.

This is about catalog entries only and needs no protocol; the MCP faces apply it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from devmesh.domain.errors import InvalidInput
from devmesh.tools.models import CatalogEntry

__all__ = [
    "ALL",
    "DEFAULT_TOOLSETS",
    "KNOWLEDGE",
    "STANDARD_TOOLSETS",
    "View",
    "entry_toolset",
    "parse_toolsets",
]

ALL = "all"
KNOWLEDGE = "knowledge"
STANDARD_TOOLSETS = ("builds", "logs", "pipelines", "artifacts", KNOWLEDGE, "admin")
# What a connection that chooses nothing sees. Every instance's builds would cost
# some 1,000 tokens each: with six instances the default list alone would pass the
# 3,000 an agent should spend on it. The knowledge operations are tenant-wide (a
# handful, whatever the number of instances); everything else is one search away.
DEFAULT_TOOLSETS: frozenset[str] = frozenset({KNOWLEDGE})

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def entry_toolset(entry: CatalogEntry) -> str:
    """The set an instance's operation belongs to; an operation that names none is in
    its provider's own set."""
    return entry.operation.toolset or entry.provider


def parse_toolsets(text: str | Iterable[str] | None, *, field: str) -> frozenset[str] | None:
    """``builds,logs`` (or a list) as a set of names; ``None`` when nothing is chosen.

    Unknown names are kept, not refused: an OpenAPI tool brings its own sets, and a
    set the tenant has no operation in simply lists nothing. Malformed ones are
    refused, naming ``field``."""
    if text is None:
        return None
    parts = text.split(",") if isinstance(text, str) else list(text)
    names = frozenset(part.strip().lower() for part in parts if part.strip())
    if not names:
        return None
    for name in sorted(names):
        if not _NAME.match(name):
            raise InvalidInput(
                f"{name!r} is not a toolset name; list_toolsets shows them", field=field
            )
    return names


@dataclass(frozen=True, slots=True)
class View:
    """What one connection sees and may call."""

    toolsets: frozenset[str] | None = None
    search: bool = False
    read_only: bool = False

    def chosen(self, defaults: frozenset[str]) -> frozenset[str] | None:
        """The sets to list; ``None`` means every one."""
        # Search mode ranks everything the caller may call, unless told otherwise.
        sets = (None if self.search else defaults) if self.toolsets is None else self.toolsets
        return None if sets is None or ALL in sets else sets

    def shows(self, toolset: str, *, read_only: bool, defaults: frozenset[str]) -> bool:
        if self.read_only and not read_only:
            return False
        sets = self.chosen(defaults)
        return sets is None or toolset in sets
