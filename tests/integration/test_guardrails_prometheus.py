"""console.guardrails over PrometheusMetrics and a real Prometheus: every status, end to end.

The shared server scrapes one exporter whose services are the scenarios (see conftest.py): the
guardrails are the conventional error-ratio and p99 queries, written as a config would write them.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from adapters.prometheus import PrometheusMetrics
from adapters.settings import PrometheusSettings
from console.config import GuardrailSettings
from console.guardrails import evaluate, evaluate_all
from tests.integration.conftest import ERROR_RATIO, P99, SCENARIOS
from tests.support.delay_proxy import DelayProxy
from tests.support.exporter import TestExporter
from tests.support.prometheus_server import PrometheusServer

pytestmark = pytest.mark.prometheus

MAX_AGE_S = 60.0

ERRORS = GuardrailSettings(
    name="error ratio",
    query=ERROR_RATIO.format(service="$service", track="$track"),
    unit="%",
    scale=100,
    max=0.05,
    max_ratio_to_baseline=2.0,
)
LATENCY = GuardrailSettings(
    name="p99 latency",
    query=P99.format(service="$service", track="$track"),
    unit="s",
    max=1.0,
    max_ratio_to_baseline=1.5,
)
EVIDENCE = 'sum(increase(http_requests_total{service="$service",track="$track"}[1m]))'


def source_for(url: str, timeout_s: float = 2.0, retries: int = 0) -> PrometheusMetrics:
    return PrometheusMetrics(PrometheusSettings(url=url, timeout_s=timeout_s, retries=retries))


def now() -> datetime:
    return datetime.now(UTC)


def test_healthy(scraped: PrometheusServer) -> None:
    reading = evaluate(source_for(scraped.url), ERRORS, "healthy", now(), MAX_AGE_S)
    assert reading.status == "healthy", reading.detail
    assert reading.canary == pytest.approx(0.01, rel=1e-6)
    assert reading.baseline == pytest.approx(0.01, rel=1e-6)
    assert reading.limit == pytest.approx(0.02, rel=1e-6)  # 2 × baseline, below max 0.05


def test_absolute_breach(scraped: PrometheusServer) -> None:
    reading = evaluate(source_for(scraped.url), ERRORS, "abs-breach", now(), MAX_AGE_S)
    assert reading.status == "breach", reading.detail
    assert reading.canary == pytest.approx(0.30, rel=1e-6)
    only_max = ERRORS.model_copy(update={"max_ratio_to_baseline": None})
    reading = evaluate(source_for(scraped.url), only_max, "abs-breach", now(), MAX_AGE_S)
    assert reading.status == "breach", reading.detail
    assert reading.limit == 0.05


def test_ratio_to_baseline_breach(scraped: PrometheusServer) -> None:
    # Canary 4 % is under the absolute max of 5 %, but 4 × the baseline's 1 %.
    reading = evaluate(source_for(scraped.url), ERRORS, "ratio-breach", now(), MAX_AGE_S)
    assert reading.status == "breach", reading.detail
    assert reading.canary == pytest.approx(0.04, rel=1e-6)
    assert reading.baseline == pytest.approx(0.01, rel=1e-6)
    assert reading.limit == pytest.approx(0.02, rel=1e-6)


def test_p99_latency_ratio_breach_and_evaluate_all(scraped: PrometheusServer) -> None:
    readings = evaluate_all(source_for(scraped.url), [ERRORS, LATENCY], "s", now(), MAX_AGE_S)
    by_name = {reading.name: reading for reading in readings}
    assert [reading.name for reading in readings] == ["error ratio", "p99 latency"]
    canary_latency, baseline_latency = SCENARIOS["s"]["canary"][2], SCENARIOS["s"]["baseline"][2]
    latency = by_name["p99 latency"]
    assert latency.status == "breach", latency.detail
    assert latency.canary == pytest.approx(TestExporter.expected_quantile(0.99, canary_latency))
    assert latency.baseline == pytest.approx(
        TestExporter.expected_quantile(0.99, baseline_latency)
    )
    errors = by_name["error ratio"]
    assert errors.canary == pytest.approx(0.02, rel=1e-6)
    assert errors.baseline == pytest.approx(0.01, rel=1e-6)


def test_insufficient_evidence(scraped: PrometheusServer) -> None:
    thin = ERRORS.model_copy(update={"evidence_query": EVIDENCE, "min_evidence": 1000})
    reading = evaluate(source_for(scraped.url), thin, "thin", now(), MAX_AGE_S)
    assert reading.status == "insufficient", reading.detail
    assert reading.evidence is not None and 0 < reading.evidence < 1000
    # The same evidence bar over a busy service is met.
    busy = evaluate(source_for(scraped.url), thin.model_copy(update={"min_evidence": 10}),
                    "healthy", now(), MAX_AGE_S)
    assert busy.status == "healthy", busy.detail


def test_nan_is_cant_evaluate(scraped: PrometheusServer) -> None:
    scraped.wait_for('test_value{service="nan"}', lambda r: len(r) == 2, timeout=20)
    gauge = GuardrailSettings(
        name="test value", query='test_value{service="$service",track="$track"}', max=1.0
    )
    reading = evaluate(source_for(scraped.url), gauge, "nan", now(), MAX_AGE_S)
    assert reading.status == "cant_evaluate"
    assert "NaN" in reading.detail


def test_bad_promql_is_cant_evaluate_with_the_parse_error(prometheus: PrometheusServer) -> None:
    broken = GuardrailSettings(
        name="broken", query='sum(rate(http_requests_total{track="$track"}[1m])', max=1.0
    )
    reading = evaluate(source_for(prometheus.url), broken, "s", now(), MAX_AGE_S)
    assert reading.status == "cant_evaluate"
    assert "parse error" in reading.detail
    assert reading.error is not None and "parse error" in reading.error


def test_slow_prometheus_is_cant_evaluate_within_the_timeout(
    prometheus: PrometheusServer,
) -> None:
    with DelayProxy(("127.0.0.1", prometheus.port), delay=3.0) as proxy:
        source = source_for(proxy.url, timeout_s=0.5, retries=1)
        started = time.monotonic()
        reading = evaluate(source, ERRORS, "healthy", now(), MAX_AGE_S)
        assert time.monotonic() - started < 1.5
    assert reading.status == "cant_evaluate"
    assert "did not answer within 0.5 s" in reading.detail


def test_prometheus_killed_is_cant_evaluate() -> None:
    with PrometheusServer() as own:
        source = source_for(own.url, timeout_s=1.0, retries=1)
        always = GuardrailSettings(name="always", query='vector(0) + 0 * vector(1) # $track',
                                   max=1.0)
        assert evaluate(source, always, "s", now(), MAX_AGE_S).status == "healthy"
        own.kill()
        started = time.monotonic()
        reading = evaluate(source, always, "s", now(), MAX_AGE_S)
        assert time.monotonic() - started < 2.0
    assert reading.status == "cant_evaluate"
    assert "unreachable" in reading.detail
