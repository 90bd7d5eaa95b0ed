"""The one wrapper every adapter call goes through.

From the outside in::

    deadline → retry → circuit breaker → rate limit → bulkhead → attempt timeout → call

so every attempt is counted by the breaker and paced by the limiter, and no retry,
wait or queue outlives the deadline. An *attempt* is one operation of an adapter,
which may be several HTTP requests to the upstream.

Libraries, each for its one job: tenacity for the retry loop (its ``wait`` and
``stop`` take our functions, so ``Retry-After`` and the deadline decide), purgatory
for the breaker (async, with a Redis store so replicas share one state), limits
for the outbound rate limit (a moving window, in memory or in Redis; a caller over
the rate waits for the window to free a slot instead of failing).

What is retried: reads whose error is retriable (connection errors, timeouts,
502/503/504, 429). A mutation is retried only after a 429, which says the upstream
refused it without acting; anything else might have started a build already.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import structlog
from cachetools import LRUCache
from limits import RateLimitItemPerSecond
from limits.aio.storage import MemoryStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from opentelemetry.trace import Status, StatusCode, Tracer
from purgatory import AsyncCircuitBreakerFactory, AsyncInMemoryUnitOfWork, AsyncRedisUnitOfWork
from purgatory.domain.model import Context, OpenedState
from purgatory.service._async.repository import AsyncRedisRepository
from purgatory.service._async.unit_of_work import AsyncAbstractUnitOfWork
from purgatory.typing import CircuitName
from pydantic import BaseModel, ConfigDict, Field, model_validator
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception

from devmesh.domain.errors import (
    AdapterError,
    DevMeshError,
    UpstreamRateLimited,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from devmesh.observability.metrics import Metrics

__all__ = ["CircuitOpen", "Resilience", "ResiliencePolicy", "ToolCall"]

T = TypeVar("T")
_log = structlog.get_logger(__name__)
_MIN_PACE_S = 0.005
_BULKHEADS = 10_000


class ResiliencePolicy(BaseModel):
    """How one tool instance is called. Every field has a default; set what differs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    deadline: float = Field(
        default=30.0, gt=0, le=600, description="Seconds a whole call may take, retries included."
    )
    attempt_timeout: float = Field(
        default=10.0, gt=0, le=600, description="Seconds one attempt may take."
    )
    max_retries: int = Field(default=3, ge=0, le=10, description="Retries after the first try.")
    backoff_initial: float = Field(
        default=0.2, ge=0, le=60, description="First backoff in seconds; doubles, with jitter."
    )
    backoff_max: float = Field(default=5.0, ge=0, le=300, description="Longest backoff.")
    max_failures: int = Field(
        default=5, ge=1, le=1000, description="Failures in a row that open the circuit."
    )
    reset_timeout: float = Field(
        default=30.0, gt=0, le=3600, description="Seconds the circuit stays open before a probe."
    )
    requests_per_second: float | None = Field(
        default=None, gt=0, le=10_000, description="Outbound rate limit; unset means none."
    )
    burst: int | None = Field(
        default=None,
        ge=1,
        le=100_000,
        description="Calls allowed at once under the rate limit: at least one second's worth "
        "(the default), since the limit counts whole seconds.",
    )
    max_concurrent: int = Field(
        default=16, ge=1, le=1000, description="Calls in flight at once (the bulkhead)."
    )

    @model_validator(mode="after")
    def _consistent(self) -> ResiliencePolicy:
        if self.attempt_timeout > self.deadline:
            raise ValueError("attempt_timeout cannot exceed deadline")
        if self.burst is None:
            return self
        if self.requests_per_second is None:
            raise ValueError("burst needs requests_per_second")
        if self.burst < self.requests_per_second:
            raise ValueError("burst must be at least requests_per_second (a second's worth)")
        return self


@dataclass(frozen=True)
class ToolCall:
    """What the wrapper needs to know about a call. Labels stay bounded: no ids here
    reach metrics except ``provider`` and ``operation``."""

    tool_id: str
    tool: str  # the tenant's name for it, for messages
    provider: str
    operation: str
    read_only: bool


class CircuitOpen(UpstreamUnavailable):
    """The breaker is open: failing fast, without calling the upstream."""

    code = "circuit_open"


def _retry_after(exc: BaseException | None) -> float:
    if isinstance(exc, AdapterError) and exc.retry_after is not None:
        return max(0.0, exc.retry_after)
    return 0.0


def _should_retry(call: ToolCall) -> Callable[[BaseException], bool]:
    def decide(exc: BaseException) -> bool:
        if isinstance(exc, CircuitOpen) or not isinstance(exc, AdapterError):
            return False
        if not exc.retriable:
            return False
        return call.read_only or isinstance(exc, UpstreamRateLimited)

    return decide


def _counts_as_failure(exc: BaseException) -> bool:
    # The breaker tracks the upstream's health: a 404 or a refused argument is a
    # healthy upstream answering, and a cancelled call says nothing about it.
    return isinstance(exc, AdapterError) and exc.retriable and not isinstance(exc, CircuitOpen)


def _outcome(exc: BaseException | None) -> str:
    if exc is None:
        return "ok"
    if isinstance(exc, DevMeshError):
        return exc.code
    return "internal"


def _rate_item(policy: ResiliencePolicy) -> RateLimitItemPerSecond:
    rate = policy.requests_per_second
    assert rate is not None
    # limits counts whole calls over whole seconds: a window of burst/rate seconds
    # holding `burst` calls keeps the long-run rate and allows that burst.
    burst = policy.burst or max(1, math.ceil(rate))
    window = max(1, round(burst / rate))
    return RateLimitItemPerSecond(max(1, round(rate * window)), window)


class Resilience:
    """Retries, breakers, rate limits and bulkheads for every tool instance.

    One per process. With ``redis_url`` the breaker and rate-limit state live in
    Redis, shared by every replica; bulkheads are per process by nature.
    """

    def __init__(
        self,
        *,
        metrics: Metrics,
        tracer: Tracer,
        limits_storage: Storage | None = None,
        redis_url: str | None = None,
    ) -> None:
        """``limits_storage`` holds rate-limit windows (memory by default); with
        ``redis_url`` the breakers live in Redis too."""
        self._metrics = metrics
        self._tracer = tracer
        self._uow: AsyncAbstractUnitOfWork = (
            _RedisUnitOfWork(redis_url) if redis_url else AsyncInMemoryUnitOfWork()
        )
        self._breakers = AsyncCircuitBreakerFactory(
            uow=self._uow, exclude=[(BaseException, lambda exc: not _counts_as_failure(exc))]
        )
        self._breakers.add_listener(self._on_breaker_event)
        self._limiter = MovingWindowRateLimiter(limits_storage or MemoryStorage())
        # Bounded: a semaphore per instance in use; an evicted idle one is simply remade.
        self._bulkheads: LRUCache[tuple[str, int], asyncio.Semaphore] = LRUCache(_BULKHEADS)

    async def start(self) -> None:
        await self._breakers.initialize()

    async def close(self) -> None:
        # purgatory opens a Redis client of its own and offers no way to close it.
        own = getattr(getattr(self._uow, "contexts", None), "redis", None)
        if own is not None:
            await own.aclose()

    async def run(
        self, call: ToolCall, policy: ResiliencePolicy, attempt: Callable[[], Awaitable[T]]
    ) -> T:
        labels = (call.provider, call.operation)
        started = time.perf_counter()
        error: BaseException | None = None
        with self._tracer.start_as_current_span(
            f"tool {call.operation}",
            attributes={"devmesh.provider": call.provider, "devmesh.operation": call.operation},
        ) as span:
            try:
                return await self._with_deadline(call, policy, attempt)
            except BaseException as exc:
                error = exc
                raise
            finally:
                outcome = (
                    _outcome(error)
                    if not isinstance(error, asyncio.CancelledError)
                    else ("cancelled")
                )
                elapsed = time.perf_counter() - started
                self._metrics.tool_calls.labels(*labels, outcome).inc()
                self._metrics.tool_call_duration.labels(*labels, outcome).observe(elapsed)
                span.set_attribute("devmesh.outcome", outcome)
                if error is not None:
                    span.set_status(Status(StatusCode.ERROR, outcome))

    # --- the layers, outside in ------------------------------------------------------

    async def _with_deadline(
        self, call: ToolCall, policy: ResiliencePolicy, attempt: Callable[[], Awaitable[T]]
    ) -> T:
        deadline_at = time.monotonic() + policy.deadline
        try:
            async with asyncio.timeout(policy.deadline):
                return await self._with_retries(call, policy, attempt, deadline_at)
        except TimeoutError:
            raise UpstreamTimeout(
                f"{call.tool}.{call.operation} did not finish within its {policy.deadline:g}s "
                "deadline; try again later or raise resilience.deadline for this tool",
                retriable=True,
                details={"tool": call.tool, "deadline": policy.deadline},
            ) from None

    async def _with_retries(
        self,
        call: ToolCall,
        policy: ResiliencePolicy,
        attempt: Callable[[], Awaitable[T]],
        deadline_at: float,
    ) -> T:
        # The first attempt runs outside tenacity: most calls succeed at once, and
        # AsyncRetrying's loop (its state, outcome futures and callbacks) cost more CPU
        # than the rest of this wrapper. Only a failure worth retrying enters the loop,
        # which replays that failure as its attempt 1, so the waits, the stop and the
        # counting are exactly what they were with every attempt inside.
        should_retry = _should_retry(call)
        try:
            return await self._through_breaker(call, policy, attempt)
        except BaseException as exc:
            if not should_retry(exc):
                raise
            first: BaseException | None = exc

        async def again() -> T:
            nonlocal first
            if first is not None:
                failed, first = first, None
                raise failed
            return await self._through_breaker(call, policy, attempt)

        def backoff(state: RetryCallState) -> float:
            exponential = min(
                policy.backoff_max, policy.backoff_initial * 2.0 ** (state.attempt_number - 1)
            )
            jittered = exponential / 2 + _jitter(exponential / 2)
            return max(jittered, _retry_after(_exception(state)))

        def stop(state: RetryCallState) -> bool:
            if state.attempt_number > policy.max_retries:
                return True
            # Waiting past the deadline would only turn the upstream's answer into ours.
            least_wait = _retry_after(_exception(state))
            return time.monotonic() + least_wait >= deadline_at

        def count_retry(state: RetryCallState) -> None:
            self._metrics.tool_retries.labels(call.provider, call.operation).inc()
            _log.info(
                "tool_call_retry",
                tool=call.tool,
                operation=call.operation,
                attempt=state.attempt_number,
                error=_outcome(_exception(state)),
            )

        retrying = AsyncRetrying(
            retry=retry_if_exception(should_retry),
            stop=stop,
            wait=backoff,
            before_sleep=count_retry,
            reraise=True,
        )
        result: T = await retrying(again)
        return result

    async def _through_breaker(
        self, call: ToolCall, policy: ResiliencePolicy, attempt: Callable[[], Awaitable[T]]
    ) -> T:
        # The circuit's name carries its settings, since purgatory fixes them when it first
        # creates a circuit (a changed policy must start a new one), and the provider, for
        # the metrics its state changes feed.
        circuit = f"{call.provider}:{call.tool_id}:{policy.max_failures}:{policy.reset_timeout:g}"
        breaker = await self._breakers.get_breaker(
            circuit, threshold=policy.max_failures, ttl=policy.reset_timeout
        )
        try:
            async with breaker:
                await self._pace(call, policy)
                return await self._in_bulkhead(call, policy, attempt)
        except OpenedState as opened:
            wait = max(1, math.ceil(opened.opened_at + policy.reset_timeout - time.time()))
            raise CircuitOpen(
                f"{call.tool} is unavailable: its last {policy.max_failures} calls failed, so "
                f"calls are paused; retry after {wait}s",
                retry_after=wait,
                details={"tool": call.tool},
            ) from None

    async def _pace(self, call: ToolCall, policy: ResiliencePolicy) -> None:
        if policy.requests_per_second is None:
            return
        item = _rate_item(policy)
        counted = False
        while not await self._limiter.hit(item, "tool", call.tool_id):
            if not counted:
                self._metrics.rate_limited.labels(call.provider, "outbound").inc()
                counted = True
            stats = await self._limiter.get_window_stats(item, "tool", call.tool_id)
            # Spread the wake-ups a little: every waiter sees the same reset time.
            await asyncio.sleep(max(_MIN_PACE_S, stats.reset_time - time.time()) + _jitter(0.01))

    async def _in_bulkhead(
        self, call: ToolCall, policy: ResiliencePolicy, attempt: Callable[[], Awaitable[T]]
    ) -> T:
        key = (call.tool_id, policy.max_concurrent)
        gate = self._bulkheads.get(key)
        if gate is None:
            gate = self._bulkheads[key] = asyncio.Semaphore(policy.max_concurrent)
        async with gate:
            try:
                async with asyncio.timeout(policy.attempt_timeout):
                    return await attempt()
            except TimeoutError:
                raise UpstreamTimeout(
                    f"{call.tool} did not answer {call.operation} within "
                    f"{policy.attempt_timeout:g}s",
                    retriable=True,
                    details={"tool": call.tool, "attempt_timeout": policy.attempt_timeout},
                ) from None

    # --- metrics ---------------------------------------------------------------------

    def _on_breaker_event(self, circuit: str, event_name: str, event: Any) -> None:
        if event_name != "state_changed":
            return
        provider = circuit.partition(":")[0]
        state = str(event.state)
        self._metrics.breaker_transitions.labels(provider, state).inc()
        if state == "opened":
            self._metrics.breakers_open.labels(provider).inc()
            _log.warning("circuit_opened", provider=provider)
        elif state == "half-opened":
            self._metrics.breakers_open.labels(provider).dec()
        elif state == "closed":
            _log.info("circuit_closed", provider=provider)


class _RedisBreakers(AsyncRedisRepository):
    """purgatory's Redis store of circuits, reading one in a single round trip.

    Every call reads its circuit before the attempt; purgatory's ``get`` asks Redis
    twice (the circuit, then its failure count). One ``MGET`` reads both keys, at the
    same instant, into the same ``Context`` the original builds."""

    async def get(self, name: CircuitName) -> Context | None:
        key = f"{self.prefix}{name}"
        data, failures = await self.redis.mget(key, f"{key}::failure_count")
        if not data:
            return None
        breaker = json.loads(data)
        if failures:
            breaker["failure_count"] = int(failures)
        return Context(**breaker)


class _RedisUnitOfWork(AsyncRedisUnitOfWork):
    def __init__(self, url: str) -> None:
        # Not the parent's: it would open a client for its own repository, unused.
        self.contexts = _RedisBreakers(url)


def _exception(state: RetryCallState) -> BaseException | None:
    if state.outcome is None:
        return None
    exc: BaseException | None = state.outcome.exception()
    return exc


def _jitter(scale: float) -> float:
    return random.uniform(0, scale)
