"""The shipped alerts and dashboard name only metrics and labels the service exports.

The exported names are read from a live ``Metrics`` registry, not from a list kept
here, so renaming a metric in code fails this test until the monitoring follows.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.metrics import MetricWrapperBase

from devmesh.observability.metrics import Metrics
from tests.deploy.promql import selectors

DEPLOY = Path(__file__).parents[2] / "deploy"
ALERTS = DEPLOY / "prometheus" / "alerts.yml"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "devmesh.json"
# Series Prometheus makes itself, and labels it adds to every scraped series.
PROMETHEUS_OWN = {"up": {"job", "instance"}}
TARGET_LABELS = {"job", "instance"}
# The alerts the issue asks for, by the metric each must watch.
REQUIRED_ALERTS = {
    "DevmeshCircuitBreakerOpen": "devmesh_circuit_breakers_open",
    "DevmeshHttpErrorRate": "devmesh_http_requests_total",
    "DevmeshEventQueueLag": "devmesh_events_lag_seconds",
    "DevmeshDeadLettersGrowing": "devmesh_events_dead_letters",
    "DevmeshWebhookVerificationFailures": "devmesh_webhook_deliveries_total",
}

_SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
    "gauge": ("",),
}


def exported() -> dict[str, set[str]]:
    """Every series name the service's registry exposes, with its label names."""
    series: dict[str, set[str]] = dict(PROMETHEUS_OWN)
    for collector in vars(Metrics()).values():
        if not isinstance(collector, MetricWrapperBase):
            continue
        # A labelled metric with no children has no samples to read names and labels
        # from, so they come from the collector itself (prometheus_client's own fields).
        name, kind = collector._name, collector._type
        labels = set(collector._labelnames) | TARGET_LABELS
        for suffix in _SUFFIXES[kind]:
            series[name + suffix] = labels | ({"le"} if suffix == "_bucket" else set())
    return series


def alert_rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(ALERTS.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def dashboard_queries() -> list[str]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [target["expr"] for panel in panels for target in panel["targets"]]


def _unknown(expr: str, series: dict[str, set[str]]) -> list[str]:
    found, grouping = selectors(expr)
    problems = [s.metric for s in found if s.metric not in series]
    for selector in found:
        problems += [
            f"{selector.metric}{{{label}}}"
            for label in sorted(selector.labels - series.get(selector.metric, set()))
        ]
    known_labels = set().union(*(series.get(s.metric, set()) for s in found)) | {"le"}
    problems += [f"by ({label})" for label in sorted(grouping - known_labels)]
    if not found:
        problems.append("selects no metric")
    return problems


def test_the_registry_names_the_metrics_the_monitoring_relies_on() -> None:
    series = exported()
    assert "devmesh_http_requests_total" in series
    assert {"method", "route", "status"} <= series["devmesh_http_requests_total"]
    assert "devmesh_tool_call_duration_seconds_bucket" in series


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda rule: rule["alert"])
def test_every_alert_names_only_exported_metrics_and_labels(rule: dict[str, Any]) -> None:
    assert _unknown(rule["expr"], exported()) == []


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda rule: rule["alert"])
def test_every_alert_has_a_severity_and_a_summary(rule: dict[str, Any]) -> None:
    assert rule["labels"]["severity"] in {"warning", "critical"}
    assert rule["annotations"]["summary"]


def test_the_alerts_the_production_checklist_asks_for_are_there() -> None:
    rules = {rule["alert"]: rule["expr"] for rule in alert_rules()}
    for alert, metric in REQUIRED_ALERTS.items():
        assert alert in rules
        assert metric in {s.metric for s in selectors(rules[alert])[0]}


@pytest.mark.parametrize("expr", dashboard_queries())
def test_every_dashboard_query_names_only_exported_metrics_and_labels(expr: str) -> None:
    assert _unknown(expr, exported()) == []


def test_every_exported_devmesh_metric_is_on_the_dashboard() -> None:
    shown = {s.metric for expr in dashboard_queries() for s in selectors(expr)[0]}
    families = {family.name for family in Metrics().registry.collect()}
    missing = [name for name in families if not any(series.startswith(name) for series in shown)]
    assert missing == []


def test_prometheus_loads_the_alert_file_and_scrapes_the_service() -> None:
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    assert config["rule_files"] == ["/etc/prometheus/alerts.yml"]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == {"devmesh", "devmesh-workers"}
    assert {job["metrics_path"] for job in jobs.values()} == {"/metrics"}
