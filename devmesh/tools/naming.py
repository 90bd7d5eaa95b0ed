"""How tool instances and their operations are named, and how a name finds them again.

The original, canonical name of an operation is ``{instance}.{operation}``
(``ci.trigger_build``): REST, the client SDK and logs use it. MCP clients are
stricter than the MCP specification: Claude Desktop, Claude's API, OpenAI's API
(so Codex) and GitHub Copilot CLI accept only ``^[a-zA-Z0-9_-]{1,64}$``, and
Gemini also wants a letter or ``_`` first. So MCP exposes
``{instance}{separator}{operation}`` with a configurable separator (``_`` by
default: ``ci_trigger_build``), and keeps every exposed name unambiguous and
within 64 characters:

* Instance and operation names may themselves contain the separator, so two
  pairs can join to one string (``a_b`` + ``c`` and ``a`` + ``b_c``). Nothing is
  parsed back: the names are computed from the catalog, which knows every pair,
  and a name that more than one pair would get is shortened for all of them.
* A name longer than 64 characters is shortened deterministically: a prefix and
  eight hex digits of the SHA-256 of the canonical name. The tool's title keeps
  the canonical name, so a person can still tell what it is.

This lives with the catalog, not the MCP face, because it is about catalog
entries only and needs no protocol; the MCP server applies it.

Tool ids are UUID4 strings and share the namespace of references (``{tool}`` in
REST routes is a name or an id). ``looks_like_id`` tells them apart: a reference
shaped like an id is looked up as an id only, and no name may have that shape.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from devmesh.tools.models import CatalogEntry

__all__ = [
    "CANONICAL_SEPARATOR",
    "MAX_NAME_LENGTH",
    "Separator",
    "ToolNames",
    "looks_like_id",
]

CANONICAL_SEPARATOR = "."
MAX_NAME_LENGTH = 64
Separator = Literal["_", "-", ".", "__"]

_ID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_HASH_DIGITS = 8


def looks_like_id(ref: str) -> bool:
    """True for the shape of a tool id (a UUID, any case), whether or not it exists."""
    return _ID.match(ref) is not None


class ToolNames:
    """The exposed names of one catalog, both ways round.

    Built per catalog (cheap: a dict over its entries). ``name(entry)`` is what
    tools/list shows; ``find(name)`` accepts that name or the canonical dotted one.
    """

    def __init__(self, entries: Iterable[CatalogEntry], *, separator: Separator = "_") -> None:
        self.separator = separator
        entries = list(entries)
        plain: dict[str, list[CatalogEntry]] = {}
        for entry in entries:
            plain.setdefault(_join(entry, separator), []).append(entry)
        self._names: dict[str, str] = {}
        for joined, same in plain.items():
            for entry in same:
                clash = len(same) > 1 or len(joined) > MAX_NAME_LENGTH
                self._names[entry.qualified_name] = (
                    _shortened(joined, entry.qualified_name, separator) if clash else joined
                )
        self._entries: Mapping[str, CatalogEntry] = {
            self._names[entry.qualified_name]: entry for entry in entries
        }
        self._canonical: Mapping[str, CatalogEntry] = {
            entry.qualified_name: entry for entry in entries
        }

    def name(self, entry: CatalogEntry) -> str:
        return self._names[entry.qualified_name]

    def shortened(self, entry: CatalogEntry) -> bool:
        return self.name(entry) != _join(entry, self.separator)

    def find(self, name: str) -> CatalogEntry | None:
        """The entry an exposed or canonical name stands for, if the catalog has it."""
        return self._entries.get(name) or self._canonical.get(name)


def _join(entry: CatalogEntry, separator: str) -> str:
    joined = f"{entry.tool}{separator}{entry.operation.name}"
    # Gemini wants a letter or '_' first; names made before that rule may start
    # with a digit, and '_' keeps them distinct from every newer name.
    return joined if joined[0].isalpha() or joined[0] == "_" else f"_{joined}"


def _shortened(joined: str, canonical: str, separator: str) -> str:
    digest = hashlib.sha256(canonical.encode()).hexdigest()[:_HASH_DIGITS]
    glue = "-" if separator == "-" else "_"
    prefix = joined[: MAX_NAME_LENGTH - _HASH_DIGITS - len(glue)]
    return f"{prefix}{glue}{digest}"
