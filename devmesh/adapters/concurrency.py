"""The provider kit's fan-out: many upstream reads side by side, a few at a time."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable
from typing import TypeVar

__all__ = ["CONCURRENT_READS", "gather_bounded"]

T = TypeVar("T")

CONCURRENT_READS = 8


async def gather_bounded(
    calls: Iterable[Awaitable[T]], *, limit: int = CONCURRENT_READS
) -> list[T]:
    """The results of ``calls`` in order, at most ``limit`` running at once, so a long
    build's hundred steps cannot flood the upstream."""
    gate = asyncio.Semaphore(limit)

    async def one(call: Awaitable[T]) -> T:
        async with gate:
            return await call

    return list(await asyncio.gather(*(one(call) for call in calls)))
