"""Prometheus metrics, on a registry owned by one app (so tests can build many apps).

Labels are bounded: route templates, never raw paths, ids or anything secret.
"""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, values
from prometheus_client.multiprocess import MultiProcessCollector

__all__ = ["Metrics", "share_across_processes"]

# Set in each process of ``devmesh serve --workers N`` (devmesh/supervisor.py).
_shared_dir: str | None = None


def share_across_processes(directory: str) -> None:
    """From now on, metrics made in this process keep their values in files under
    ``directory`` (prometheus_client's multiprocess mode), and ``render`` sums the
    files of every process: each of N serving processes answers ``/metrics`` for all.

    Call before any ``Metrics`` is made: the value class is chosen when a metric is."""
    global _shared_dir
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
    values.ValueClass = values.MultiProcessValue()  # type: ignore[no-untyped-call]
    _shared_dir = directory


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.http_requests = Counter(
            "devmesh_http_requests_total",
            "HTTP requests served, by route template and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.http_duration = Histogram(
            "devmesh_http_request_duration_seconds",
            "HTTP request latency, by route template.",
            ["method", "route"],
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )

        # Tool calls are labelled by provider and operation, never by tenant, tool
        # name, build id or URL: those are unbounded and some are the tenant's business.
        self.tool_calls = Counter(
            "devmesh_tool_calls_total",
            "Tool operations run, by provider, operation and outcome (ok or an error code).",
            ["provider", "operation", "outcome"],
            registry=self.registry,
        )
        self.tool_call_duration = Histogram(
            "devmesh_tool_call_duration_seconds",
            "Tool operation latency including retries and waits.",
            ["provider", "operation", "outcome"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
        )
        self.tool_retries = Counter(
            "devmesh_tool_retries_total",
            "Retries of tool operations after a retriable upstream error.",
            ["provider", "operation"],
            registry=self.registry,
        )
        self.breakers_open = Gauge(
            "devmesh_circuit_breakers_open",
            "Tool instances whose circuit breaker this process saw open and not yet probed.",
            ["provider"],
            registry=self.registry,
            # Summed over the live processes of one `serve --workers N` (not per pid).
            multiprocess_mode="livesum",
        )
        self.breaker_transitions = Counter(
            "devmesh_circuit_breaker_transitions_total",
            "Circuit breaker state changes, by the state entered.",
            ["provider", "state"],
            registry=self.registry,
        )
        self.rate_limited = Counter(
            "devmesh_rate_limited_total",
            "Calls held back by a rate limit: outbound ones wait, inbound ones get 429.",
            ["scope", "direction"],
            registry=self.registry,
        )
        # Webhook deliveries in, by the tool's provider (never its id, name or tenant)
        # and what became of them; "unknown" when the tool was not found or not looked
        # up. unverified is the one to alert on: a sender with a wrong secret, or
        # someone guessing.
        self.webhook_deliveries = Counter(
            "devmesh_webhook_deliveries_total",
            "Webhook deliveries received, by provider and outcome (accepted, duplicate, "
            "unverified, unknown_tool, too_large, unparseable).",
            ["provider", "outcome"],
            registry=self.registry,
        )
        # Events are labelled by type and handler: both are bounded sets named in code.
        self.events_handled = Counter(
            "devmesh_events_handled_total",
            "Event deliveries settled, by event type, handler and outcome "
            "(handled, duplicate, failed, dead_lettered).",
            ["type", "handler", "outcome"],
            registry=self.registry,
        )
        self.event_handler_duration = Histogram(
            "devmesh_event_handler_duration_seconds",
            "Time a handler took, with its transaction.",
            ["handler"],
            registry=self.registry,
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        self.events_queue_depth = Gauge(
            "devmesh_events_queue_depth",
            "Event deliveries not yet settled, plus events not yet dispatched.",
            registry=self.registry,
            # Processes that read these read the same tables: one value, not a sum.
            multiprocess_mode="livemax",
        )
        self.events_lag = Gauge(
            "devmesh_events_lag_seconds",
            "Age of the oldest unsettled delivery or undispatched event.",
            registry=self.registry,
            multiprocess_mode="livemax",
        )
        self.events_dead = Gauge(
            "devmesh_events_dead_letters",
            "Deliveries in the dead-letter queue.",
            registry=self.registry,
            multiprocess_mode="livemax",
        )

    def render(self) -> bytes:
        if _shared_dir is None:
            return generate_latest(self.registry)
        every_process = CollectorRegistry()
        MultiProcessCollector(every_process, path=_shared_dir)  # type: ignore[no-untyped-call]
        return generate_latest(every_process)
