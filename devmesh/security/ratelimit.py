"""Inbound rate limit: requests per API key per minute, on /api/v1 and /mcp alike.

A moving window (limits), in memory or in Redis so every replica counts together.
Keys are counted by their public prefix; the secret never reaches the limiter.
"""

from __future__ import annotations

import math
import time

from limits import RateLimitItem, RateLimitItemPerSecond
from limits.aio.storage import Storage
from limits.aio.strategies import MovingWindowRateLimiter

from devmesh.config import RateLimitSettings
from devmesh.domain.errors import RateLimited
from devmesh.observability.metrics import Metrics
from devmesh.security.apikeys import split_key

__all__ = ["InboundRateLimiter"]


def _window(settings: RateLimitSettings) -> RateLimitItem | None:
    per_minute = settings.requests_per_minute
    if per_minute is None:
        return None
    # A burst narrows the window so the long-run rate stays per_minute.
    burst = min(settings.burst or per_minute, per_minute)
    return RateLimitItemPerSecond(burst, max(1, round(60 * burst / per_minute)))


class InboundRateLimiter:
    def __init__(self, settings: RateLimitSettings, storage: Storage, metrics: Metrics) -> None:
        self._limiter = MovingWindowRateLimiter(storage)
        self._metrics = metrics
        self._item = _window(settings)

    async def check(self, raw_key: str, *, face: str) -> None:
        """Count one request by an authenticated key; ``RateLimited`` when over."""
        if self._item is None:
            return
        parts = split_key(raw_key)
        who = parts[0] if parts else "unknown"
        if await self._limiter.hit(self._item, "key", who):
            return
        self._metrics.rate_limited.labels(face, "inbound").inc()
        stats = await self._limiter.get_window_stats(self._item, "key", who)
        wait = max(1, math.ceil(stats.reset_time - time.time()))
        raise RateLimited(
            f"too many requests with this API key; retry after {wait}s",
            retry_after=wait,
        )
