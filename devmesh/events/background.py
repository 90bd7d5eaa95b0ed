"""Loops that run beside the service (the worker, the build watcher, the notifier).

Each is started with a block and stopped gently when it ends: the loop is told to
stop, may finish the cycle it is in, and is cancelled only after a grace period.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any

import structlog

__all__ = ["in_background", "pause"]

_log = structlog.get_logger(__name__)


@asynccontextmanager
async def in_background(
    run: Callable[[asyncio.Event], Coroutine[Any, Any, None]],
    *,
    name: str,
    grace: float = 10.0,
    on_stop: Callable[[], None] | None = None,
) -> AsyncIterator[None]:
    """Run ``run(stop)`` as a task for the duration of the block. On exit ``stop`` is
    set and ``on_stop`` called (e.g. to wake a loop that waits for work), the current
    cycle gets up to ``grace`` seconds to finish, and then the task is cancelled."""
    stop = asyncio.Event()
    task = asyncio.create_task(run(stop), name=name)
    try:
        yield
    finally:
        stop.set()
        if on_stop is not None:
            on_stop()
        try:
            await asyncio.wait_for(task, grace)
        except TimeoutError:
            _log.warning("background_task_cancelled", task=name, grace=grace)


async def pause(stop: asyncio.Event, seconds: float) -> None:
    """Sleep ``seconds``, or less if ``stop`` is set meanwhile."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
