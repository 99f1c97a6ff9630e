"""Judgement per guardrail (issue 16) against a real Prometheus: the warn band, each
``on_no_data`` policy on a real empty answer and a real NaN, the evidence counter's figure, and
a gating Mann-Whitney comparison over samples read from the server.

The shared server scrapes the scenarios of tests/integration/conftest.py.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from scipy.stats import mannwhitneyu

from console.config import GuardrailSettings
from console.guardrails import compare, evaluate, with_comparison
from tests.integration.test_guardrails_prometheus import (
    ERRORS,
    EVIDENCE,
    MAX_AGE_S,
    source_for,
)
from tests.support.prometheus_server import PrometheusServer

pytestmark = pytest.mark.prometheus


def now() -> datetime:
    return datetime.now(UTC)


def test_a_canary_in_the_warn_band_is_warn(scraped: PrometheusServer) -> None:
    # healthy: canary 1 % against a limit of 2 × baseline 1 % = 2 %; the band starts at 0.8 %.
    reading = evaluate(source_for(scraped.url), ERRORS.model_copy(update={"warn": 0.4}),
                       "healthy", now(), MAX_AGE_S)
    assert reading.status == "warn", reading.detail
    assert reading.warn_limit == pytest.approx(0.008, rel=1e-6)
    assert reading.detail.endswith(": a person decides")
    # With the band above the canary, the same data is healthy.
    assert evaluate(source_for(scraped.url), ERRORS.model_copy(update={"warn": 0.6}),
                    "healthy", now(), MAX_AGE_S).status == "healthy"


@pytest.mark.parametrize(("on_no_data", "status"), [
    ("cant_evaluate", "cant_evaluate"), ("hold", "cant_evaluate"), ("breach", "breach")])
def test_each_no_data_policy_on_a_service_prometheus_has_never_seen(
        scraped: PrometheusServer, on_no_data: str, status: str) -> None:
    guardrail = ERRORS.model_copy(update={"on_no_data": on_no_data})
    reading = evaluate(source_for(scraped.url), guardrail, "no-such-service", now(), MAX_AGE_S)
    assert reading.status == status, reading.detail
    assert reading.no_data is True
    assert reading.detail.startswith("no data for track=canary")


def test_a_real_nan_is_no_data(scraped: PrometheusServer) -> None:
    scraped.wait_for('test_value{service="nan"}', lambda r: len(r) == 2, timeout=20)
    gauge = GuardrailSettings(name="test value", query='test_value{service="$service",'
                              'track="$track"}', max=1.0, on_no_data="breach")
    reading = evaluate(source_for(scraped.url), gauge, "nan", now(), MAX_AGE_S)
    assert reading.status == "breach" and reading.no_data is True
    assert "value is NaN" in reading.detail


def test_the_evidence_behind_the_counter(scraped: PrometheusServer) -> None:
    thin = ERRORS.model_copy(update={"evidence_query": EVIDENCE, "min_evidence": 1000})
    reading = evaluate(source_for(scraped.url), thin, "thin", now(), MAX_AGE_S)
    assert reading.status == "insufficient"
    assert reading.evidence is not None and 0 < reading.evidence < 1000
    assert "evidence" in reading.queries


def test_a_gating_mann_whitney_on_samples_read_from_prometheus(
        scraped: PrometheusServer) -> None:
    guardrail = ERRORS.model_copy(update={"max_ratio_to_baseline": None, "max": 0.5})
    gated = guardrail.model_copy(update={"mann_whitney": {"gate": True, "min_samples": 5}})
    gated = GuardrailSettings.model_validate(gated.model_dump())
    readings = [evaluate(source_for(scraped.url), gated, "ratio-breach", now(), MAX_AGE_S)
                for _ in range(5)]
    canary = [r.canary for r in readings]
    baseline = [r.baseline for r in readings]
    assert all(r.status == "healthy" for r in readings)  # 4 % is far under the max of 50 %
    comparison = compare(gated, canary, baseline)
    assert comparison is not None and comparison.p is not None
    expected = mannwhitneyu([c for c in canary if c is not None],
                            [b for b in baseline if b is not None],
                            alternative="greater").pvalue
    assert comparison.p == pytest.approx(expected)
    judged = with_comparison(readings[-1], comparison)
    assert judged.status == "breach"  # the canary (4 %) is consistently above the baseline (1 %)
    assert judged.detail.startswith("Mann-Whitney: canary higher")
