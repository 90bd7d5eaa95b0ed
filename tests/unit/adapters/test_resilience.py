"""The resilience wrapper's promises, one per test, with in-process state.

The same wrapper over a real upstream and over Redis is tested in
tests/integration/test_faults.py.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from devmesh.adapters.resilience import CircuitOpen, Resilience, ResiliencePolicy, ToolCall
from devmesh.domain.errors import (
    UpstreamNotFound,
    UpstreamRateLimited,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from devmesh.observability.metrics import Metrics

pytestmark = pytest.mark.anyio

READ = ToolCall(tool_id="t1", tool="ci", provider="buildbot", operation="get", read_only=True)
WRITE = ToolCall(tool_id="t1", tool="ci", provider="buildbot", operation="trigger", read_only=False)
FAST = {"backoff_initial": 0.01, "backoff_max": 0.02}


class Upstream:
    """Answers with the scripted outcomes in order, then ``ok``; records call times."""

    def __init__(self, *outcomes: BaseException | float) -> None:
        self.outcomes = list(outcomes)
        self.calls: list[float] = []
        self.in_flight = 0
        self.most_in_flight = 0

    async def __call__(self) -> str:
        self.calls.append(time.monotonic())
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            outcome = self.outcomes.pop(0) if self.outcomes else None
            if isinstance(outcome, BaseException):
                raise outcome
            await asyncio.sleep(outcome or 0)
            return "ok"
        finally:
            self.in_flight -= 1


@pytest.fixture
def spans() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def metrics() -> Metrics:
    return Metrics()


@pytest.fixture
async def resilience(metrics: Metrics, spans: InMemorySpanExporter) -> AsyncIterator[Resilience]:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    wrapper = Resilience(metrics=metrics, tracer=provider.get_tracer("test"))
    await wrapper.start()
    yield wrapper
    await wrapper.close()


def policy(**fields: Any) -> ResiliencePolicy:
    return ResiliencePolicy.model_validate({**FAST, **fields})


def sample(metrics: Metrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(name, labels)
    return value or 0.0


async def test_a_read_is_retried_after_retriable_errors_and_succeeds(
    resilience: Resilience, metrics: Metrics
) -> None:
    upstream = Upstream(UpstreamUnavailable("503"), UpstreamTimeout("slow"))

    assert await resilience.run(READ, policy(), upstream) == "ok"

    assert len(upstream.calls) == 3
    assert sample(metrics, "devmesh_tool_retries_total", provider="buildbot", operation="get") == 2
    labels = {"provider": "buildbot", "operation": "get", "outcome": "ok"}
    assert sample(metrics, "devmesh_tool_calls_total", **labels) == 1


async def test_retries_stop_at_max_retries_with_the_upstream_error(resilience: Resilience) -> None:
    upstream = Upstream(*[UpstreamUnavailable("503")] * 5)

    with pytest.raises(UpstreamUnavailable, match="503"):
        await resilience.run(READ, policy(max_retries=2), upstream)

    assert len(upstream.calls) == 3


async def test_a_read_failing_once_is_retried_once_and_counted_once(
    resilience: Resilience, metrics: Metrics
) -> None:
    upstream = Upstream(UpstreamUnavailable("503"))

    assert await resilience.run(READ, policy(), upstream) == "ok"

    assert len(upstream.calls) == 2
    assert sample(metrics, "devmesh_tool_retries_total", provider="buildbot", operation="get") == 1


async def test_with_no_retries_allowed_the_first_failure_is_the_answer(
    resilience: Resilience, metrics: Metrics
) -> None:
    upstream = Upstream(UpstreamUnavailable("503"))

    with pytest.raises(UpstreamUnavailable, match="503"):
        await resilience.run(READ, policy(max_retries=0), upstream)

    assert len(upstream.calls) == 1
    assert sample(metrics, "devmesh_tool_retries_total", provider="buildbot", operation="get") == 0


async def test_an_error_that_is_not_retriable_is_not_retried(resilience: Resilience) -> None:
    upstream = Upstream(UpstreamNotFound("no build 42"))

    with pytest.raises(UpstreamNotFound):
        await resilience.run(READ, policy(), upstream)

    assert len(upstream.calls) == 1


async def test_a_mutation_is_not_retried_after_an_error_that_may_have_acted(
    resilience: Resilience,
) -> None:
    upstream = Upstream(UpstreamUnavailable("502 from the proxy"))

    with pytest.raises(UpstreamUnavailable):
        await resilience.run(WRITE, policy(), upstream)

    assert len(upstream.calls) == 1


async def test_a_mutation_is_retried_after_429_which_means_refused(resilience: Resilience) -> None:
    upstream = Upstream(UpstreamRateLimited("slow down", retry_after=0.05))

    assert await resilience.run(WRITE, policy(), upstream) == "ok"

    assert len(upstream.calls) == 2


async def test_retry_after_is_honoured_before_the_next_attempt(resilience: Resilience) -> None:
    upstream = Upstream(UpstreamRateLimited("slow down", retry_after=0.3))

    await resilience.run(READ, policy(), upstream)

    assert upstream.calls[1] - upstream.calls[0] >= 0.3


async def test_a_retry_after_past_the_deadline_fails_at_once_with_the_upstream_error(
    resilience: Resilience,
) -> None:
    upstream = Upstream(UpstreamRateLimited("slow down", retry_after=60))

    with pytest.raises(UpstreamRateLimited):
        await resilience.run(READ, policy(deadline=2, attempt_timeout=1), upstream)

    assert len(upstream.calls) == 1


async def test_an_attempt_that_hangs_times_out_and_is_retried(resilience: Resilience) -> None:
    upstream = Upstream(5.0)

    assert await resilience.run(READ, policy(attempt_timeout=0.1), upstream) == "ok"

    assert len(upstream.calls) == 2


async def test_the_deadline_bounds_the_whole_call_and_names_itself(resilience: Resilience) -> None:
    upstream = Upstream(*[5.0] * 10)

    with pytest.raises(UpstreamTimeout, match="deadline"):
        await resilience.run(READ, policy(deadline=0.3, attempt_timeout=0.2), upstream)


async def test_the_breaker_opens_after_max_failures_and_then_fails_fast(
    resilience: Resilience, metrics: Metrics
) -> None:
    upstream = Upstream(*[UpstreamUnavailable("503")] * 3)
    rules = policy(max_retries=0, max_failures=3, reset_timeout=30)
    for _ in range(3):
        with pytest.raises(UpstreamUnavailable):
            await resilience.run(READ, rules, upstream)

    with pytest.raises(CircuitOpen) as opened:
        await resilience.run(READ, rules, upstream)

    assert len(upstream.calls) == 3
    assert "ci is unavailable" in opened.value.message
    assert "retry after 30s" in opened.value.message
    assert opened.value.retry_after == 30
    assert sample(metrics, "devmesh_circuit_breakers_open", provider="buildbot") == 1


async def test_the_breaker_half_opens_after_reset_timeout_and_closes_on_success(
    resilience: Resilience, metrics: Metrics
) -> None:
    upstream = Upstream(UpstreamUnavailable("503"), UpstreamUnavailable("503"))
    rules = policy(max_retries=0, max_failures=2, reset_timeout=0.3)
    for _ in range(2):
        with pytest.raises(UpstreamUnavailable):
            await resilience.run(READ, rules, upstream)
    with pytest.raises(CircuitOpen):
        await resilience.run(READ, rules, upstream)

    await asyncio.sleep(0.4)

    assert await resilience.run(READ, rules, upstream) == "ok"
    assert await resilience.run(READ, rules, upstream) == "ok"
    assert sample(metrics, "devmesh_circuit_breakers_open", provider="buildbot") == 0
    transitions = "devmesh_circuit_breaker_transitions_total"
    assert sample(metrics, transitions, provider="buildbot", state="half-opened") == 1
    assert sample(metrics, transitions, provider="buildbot", state="closed") == 1


async def test_answers_from_a_healthy_upstream_never_open_the_breaker(
    resilience: Resilience,
) -> None:
    upstream = Upstream(*[UpstreamNotFound("no such build")] * 5)
    rules = policy(max_retries=0, max_failures=2)
    for _ in range(5):
        with pytest.raises(UpstreamNotFound):
            await resilience.run(READ, rules, upstream)

    assert await resilience.run(READ, rules, upstream) == "ok"


async def test_calls_over_the_rate_limit_wait_for_their_turn_instead_of_failing(
    resilience: Resilience, metrics: Metrics
) -> None:
    upstream = Upstream()
    rules = policy(requests_per_second=10, burst=10)

    results = await asyncio.gather(*(resilience.run(READ, rules, upstream) for _ in range(25)))

    assert results == ["ok"] * 25
    starts = sorted(upstream.calls)
    # No more than the burst in any window of burst/rate = 1 s.
    for i in range(len(starts) - 10):
        assert starts[i + 10] - starts[i] >= 1.0 - 0.02
    assert sample(metrics, "devmesh_rate_limited_total", scope="buildbot", direction="outbound")


async def test_the_bulkhead_bounds_calls_in_flight(resilience: Resilience) -> None:
    upstream = Upstream(*[0.05] * 20)

    await asyncio.gather(
        *(resilience.run(READ, policy(max_concurrent=3), upstream) for _ in range(20))
    )

    assert upstream.most_in_flight == 3


async def test_each_call_is_a_span_with_provider_operation_and_outcome(
    resilience: Resilience, spans: InMemorySpanExporter
) -> None:
    await resilience.run(READ, policy(), Upstream())
    with pytest.raises(UpstreamNotFound):
        await resilience.run(READ, policy(), Upstream(UpstreamNotFound("gone")))

    ok, failed = spans.get_finished_spans()
    assert ok.attributes == {
        "devmesh.provider": "buildbot",
        "devmesh.operation": "get",
        "devmesh.outcome": "ok",
    }
    assert failed.attributes is not None
    assert failed.attributes["devmesh.outcome"] == "upstream_not_found"
    assert not failed.status.is_ok


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"deadline": 1, "attempt_timeout": 2}, "attempt_timeout cannot exceed deadline"),
        ({"burst": 5}, "burst needs requests_per_second"),
        ({"requests_per_second": 10, "burst": 5}, "burst must be at least"),
    ],
)
def test_a_policy_rejects_settings_that_contradict_each_other(
    fields: dict[str, float], problem: str
) -> None:
    with pytest.raises(ValueError, match=problem):
        ResiliencePolicy.model_validate(fields)
