"""Inbound rate limits, on /api/v1 and /mcp alike: requests per API key per minute,
and failed authentications per client address and per key prefix.

A moving window (limits), in memory or in Redis so every replica counts together.
Keys are counted by their public prefix; the secret never reaches the limiter.
"""

from __future__ import annotations

import math
import time

from limits import RateLimitItem, RateLimitItemPerMinute, RateLimitItemPerSecond
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


def _per_minute(count: int | None) -> RateLimitItem | None:
    return None if count is None else RateLimitItemPerMinute(count)


class InboundRateLimiter:
    def __init__(self, settings: RateLimitSettings, storage: Storage, metrics: Metrics) -> None:
        self._limiter = MovingWindowRateLimiter(storage)
        self._metrics = metrics
        self._item = _window(settings)
        self._per_address = _per_minute(settings.failed_auth_per_address)
        self._per_prefix = _per_minute(settings.failed_auth_per_key_prefix)

    async def check_failures(self, *, address: str, raw_key: str, face: str) -> None:
        """Before a key is verified: ``RateLimited`` when its client address or its key
        prefix failed too often lately, so guessing costs us no query and no hash."""
        for item, subject in self._failure_windows(address, raw_key):
            if await self._limiter.test(item, "auth-failure", *subject):
                continue
            self._metrics.rate_limited.labels(face, "auth_failure").inc()
            stats = await self._limiter.get_window_stats(item, "auth-failure", *subject)
            wait = max(1, math.ceil(stats.reset_time - time.time()))
            raise RateLimited(
                f"too many failed authentications; retry after {wait}s", retry_after=wait
            )

    async def count_failure(self, *, address: str, raw_key: str) -> None:
        """Count one failed authentication; successful ones are never counted."""
        for item, subject in self._failure_windows(address, raw_key):
            await self._limiter.hit(item, "auth-failure", *subject)

    def _failure_windows(
        self, address: str, raw_key: str
    ) -> list[tuple[RateLimitItem, tuple[str, str]]]:
        windows = []
        if self._per_address is not None:
            windows.append((self._per_address, ("address", address)))
        parts = split_key(raw_key)
        if self._per_prefix is not None and parts is not None:
            windows.append((self._per_prefix, ("prefix", parts[0])))
        return windows

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
