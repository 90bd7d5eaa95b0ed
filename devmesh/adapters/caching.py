"""The provider kit's small caches: catalogs an upstream changes rarely (builders,
projects, schedulers), read once and reused for a while.

``Refreshing`` holds one value and reloads it when older than the age asked for.
``find`` looks something up in it twice: in the value if it is younger than ``ttl``,
then, on a miss, in a value at most ``miss_age`` old. So a new entry is found at once,
a run of misses (say, builds of a deleted builder) does not reload per miss, and
``ttl`` catches renames and an upstream rebuilt under the same URL.

A provider keeps these per adapter (so per tool instance and credentials): never in
a module global, where one tenant's catalog would answer another's call.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

__all__ = ["CATALOG_TTL_S", "MISS_AGE_S", "Refreshing"]

T = TypeVar("T")
R = TypeVar("R")

CATALOG_TTL_S = 300.0
MISS_AGE_S = 5.0


class Refreshing(Generic[T]):
    """A value loaded by ``load`` and kept until it is older than asked for."""

    def __init__(
        self,
        load: Callable[[], Awaitable[T]],
        *,
        empty: T,
        ttl: float = CATALOG_TTL_S,
        miss_age: float = MISS_AGE_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._load = load
        self._ttl = ttl
        self._miss_age = miss_age
        self._clock = clock
        self._value = empty
        self._loaded_at: float | None = None

    @property
    def last(self) -> T:
        """The value as last loaded (``empty`` before the first load), without loading."""
        return self._value

    async def get(self, *, max_age: float | None = None) -> T:
        """The value, reloaded first if older than ``max_age`` (default ``ttl``; 0: now)."""
        limit = self._ttl if max_age is None else max_age
        if self._loaded_at is None or self._clock() - self._loaded_at >= limit:
            self._value = await self._load()
            self._loaded_at = self._clock()
        return self._value

    async def find(self, match: Callable[[T], R | None]) -> R | None:
        """``match`` over the value, reloading once if it misses in a value older than
        ``miss_age``; ``None`` if it misses in a fresh one too."""
        for max_age in (self._ttl, self._miss_age):
            found = match(await self.get(max_age=max_age))
            if found is not None:
                return found
        return None
