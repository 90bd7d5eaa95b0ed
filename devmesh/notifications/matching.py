"""Which subscriptions want an event type: exact names or globs such as ``build.*``."""

from __future__ import annotations

import re
from collections.abc import Iterable
from fnmatch import fnmatchcase

__all__ = ["EVENT_TYPE_PATTERN", "wants"]

# Lowercase names with dots, and ``*`` as a wildcard: ``build.failed``, ``build.*``, ``*``.
EVENT_TYPE_PATTERN = r"^[a-z0-9*][a-z0-9_.*-]{0,63}$"
_PATTERN = re.compile(EVENT_TYPE_PATTERN)


def wants(patterns: Iterable[str], event_type: str) -> bool:
    # fnmatchcase: no case folding and no dependence on the platform.
    return any(_PATTERN.match(p) and fnmatchcase(event_type, p) for p in patterns)
