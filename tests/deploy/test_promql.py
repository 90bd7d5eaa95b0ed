"""The PromQL tokenizer the monitoring test relies on reads what it must."""

import pytest

from tests.deploy.promql import selectors


def test_an_aggregation_over_a_rate_selects_one_metric_with_its_labels() -> None:
    found, grouping = selectors('sum by (provider) (rate(m_total{outcome!="ok",a=~"x|y"}[5m]))')
    assert [(s.metric, s.labels) for s in found] == [("m_total", {"outcome", "a"})]
    assert grouping == {"provider"}


def test_functions_keywords_numbers_and_durations_are_not_metrics() -> None:
    expr = "histogram_quantile(0.95, sum without (x) (rate(h_bucket[$__rate_interval]))) > 1e3"
    found, _ = selectors(expr + " and on (job) up offset 5m")
    assert [s.metric for s in found] == ["h_bucket", "up"]


def test_a_label_value_that_looks_like_a_metric_is_not_one() -> None:
    found, _ = selectors('c_total{route="/api/v1/webhooks/{tool}", status="401"} * 60')
    assert [(s.metric, s.labels) for s in found] == [("c_total", {"route", "status"})]


def test_text_it_cannot_read_fails_instead_of_passing() -> None:
    with pytest.raises(ValueError, match="cannot read"):
        selectors("m_total{status=401}")
