"""Prometheus metrics, on a registry owned by one app (so tests can build many apps).

Labels are bounded: route templates, never raw paths, ids or anything secret.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

__all__ = ["Metrics"]


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

    def render(self) -> bytes:
        return generate_latest(self.registry)
