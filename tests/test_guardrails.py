"""Guardrail evaluation: every status path, concurrency, and the consecutive-breach tracker.

Most tests use a small fake MetricsSource whose answers are set per resolved query; a few run the
same guardrails against the simulator on a ManualClock.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.base import InstantValue, ManualClock, MetricsError, RangeSeries
from adapters.sim import SimMetricsSource, SimulatedService
from console.config import GuardrailSettings
from console.guardrails import (
    BreachTracker,
    GuardrailReading,
    Transition,
    evaluate,
    evaluate_all,
    format_value,
    resolve_query,
)

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
TS = NOW.timestamp()
SERVICE = "redaction-api"

Answer = list[InstantValue] | Exception | Callable[[], list[InstantValue]]


class FakeSource:
    """Answers set per resolved query; an unknown query answers nothing."""

    def __init__(self, answers: dict[str, Answer] | None = None) -> None:
        self.answers: dict[str, Answer] = dict(answers or {})
        self.asked: list[str] = []
        self._lock = threading.Lock()

    def query(self, query: str) -> list[InstantValue]:
        with self._lock:
            self.asked.append(query)
        answer = self.answers.get(query, [])
        if isinstance(answer, Exception):
            raise answer
        if callable(answer):
            return answer()
        return answer

    def query_range(
        self, query: str, start: datetime, end: datetime, step: float
    ) -> list[RangeSeries]:
        raise NotImplementedError


def iv(value: float, ts: float = TS, **labels: str) -> InstantValue:
    return InstantValue(labels=labels, ts=ts, value=value)


def err_rate(**kwargs: object) -> GuardrailSettings:
    values: dict[str, object] = {
        "name": "error rate",
        "query": 'err{service="$service", track="$track"}',
        "unit": "%",
        "scale": 100,
    }
    values.update(kwargs)
    return GuardrailSettings.model_validate(values)


def latency(**kwargs: object) -> GuardrailSettings:
    values: dict[str, object] = {
        "name": "p99 latency",
        "query": 'p99{service="$service", track="$track"}',
        "unit": "s",
        "max_ratio_to_baseline": 3.0,
    }
    values.update(kwargs)
    return GuardrailSettings.model_validate(values)


CANARY_ERR = 'err{service="redaction-api", track="canary"}'
BASELINE_ERR = 'err{service="redaction-api", track="baseline"}'
CANARY_P99 = 'p99{service="redaction-api", track="canary"}'
BASELINE_P99 = 'p99{service="redaction-api", track="baseline"}'
EVIDENCE = 'reqs{service="redaction-api", track="canary"}'
BASELINE_EVIDENCE = 'reqs{service="redaction-api", track="baseline"}'


def run(
    source: FakeSource, guardrail: GuardrailSettings, mode: str = "canary", max_age_s: float = 30
) -> GuardrailReading:
    return evaluate(source, guardrail, SERVICE, NOW, max_age_s, mode=mode)  # type: ignore[arg-type]


# --- resolve_query and format_value --------------------------------------------------------------


def test_resolve_query_fills_grafana_placeholders_only() -> None:
    template = 'sum(rate(x{service="$service",track="${track}"}[1m])) / $track_count ${service}'
    assert resolve_query(template, "api", "canary") == (
        'sum(rate(x{service="api",track="canary"}[1m])) / $track_count api'
    )


@pytest.mark.parametrize(
    ("value", "unit", "scale", "text"),
    [
        (0.0412, "%", 100, "4.12%"),
        (0.02, "%", 100, "2.00%"),
        (0.31, "s", 1, "0.31 s"),
        (200.4, "req/s", 1, "200 req/s"),
        (12.34, "", 1, "12.3"),
        (0.0031, "s", 1, "0.0031 s"),
        (0.0, "%", 100, "0.00%"),
        (math.nan, "", 1, "NaN"),
        (None, "s", 1, "n/a"),
    ],
)
def test_format_value(value: float | None, unit: str, scale: float, text: str) -> None:
    assert format_value(value, unit, scale) == text


# --- statuses ------------------------------------------------------------------------------------


def test_healthy_with_both_limits_ratio_binding() -> None:
    source = FakeSource({CANARY_ERR: [iv(0.0031)], BASELINE_ERR: [iv(0.003)]})
    reading = run(source, err_rate(max=0.02, max_ratio_to_baseline=3.0))
    assert reading.status == "healthy"
    assert reading.limit == pytest.approx(0.009)
    assert (reading.canary, reading.baseline) == (0.0031, 0.003)
    assert reading.detail == "canary 0.31% ≤ limit 0.90% (3.0× baseline 0.30%)"
    assert reading.queries == {"canary": CANARY_ERR, "baseline": BASELINE_ERR}
    assert reading.raw == {"canary": [0.0031], "baseline": [0.003]}
    assert reading.error is None and reading.ts == NOW and reading.is_healthy


def test_absolute_breach() -> None:
    source = FakeSource({CANARY_ERR: [iv(0.0412)], BASELINE_ERR: [iv(0.003)]})
    reading = run(source, err_rate(max=0.02))
    assert reading.status == "breach"
    assert reading.limit == 0.02
    assert reading.detail == "canary 4.12% > limit 2.00% (max)"


def test_ratio_breach() -> None:
    source = FakeSource({CANARY_P99: [iv(0.41)], BASELINE_P99: [iv(0.12)]})
    reading = run(source, latency())
    assert reading.status == "breach"
    assert reading.limit == pytest.approx(0.36)
    assert reading.detail == "canary 0.41 s > limit 0.36 s (3.0× baseline 0.12 s)"


def test_healthy_ratio_only() -> None:
    source = FakeSource({CANARY_P99: [iv(0.31)], BASELINE_P99: [iv(0.12)]})
    reading = run(source, latency())
    assert reading.status == "healthy"
    assert reading.detail == "canary 0.31 s ≤ limit 0.36 s (3.0× baseline 0.12 s)"


def test_both_limits_max_binding() -> None:
    # 3 × 0.30 s baseline would allow 0.90 s; the absolute max of 0.5 s is the lower.
    source = FakeSource({CANARY_P99: [iv(0.6)], BASELINE_P99: [iv(0.3)]})
    reading = run(source, latency(max=0.5))
    assert reading.status == "breach"
    assert reading.limit == 0.5
    assert reading.detail == "canary 0.60 s > limit 0.50 s (max)"


def test_insufficient_evidence() -> None:
    source = FakeSource(
        {CANARY_ERR: [iv(0.25)], BASELINE_ERR: [iv(0.003)], EVIDENCE: [iv(12.0)]}
    )
    guardrail = err_rate(
        max=0.02, evidence_query='reqs{service="$service", track="$track"}', min_evidence=50
    )
    reading = run(source, guardrail)
    assert reading.status == "insufficient"
    assert reading.evidence == 12.0
    assert reading.detail.startswith("only 12 requests on canary in window, need 50")
    assert reading.queries["evidence"] == EVIDENCE


def test_evidence_is_summed_over_series() -> None:
    source = FakeSource(
        {
            CANARY_ERR: [iv(0.003)],
            BASELINE_ERR: [iv(0.003)],
            EVIDENCE: [iv(30.0, pod="a"), iv(30.0, pod="b")],
        }
    )
    guardrail = err_rate(max=0.02, evidence_query="reqs{service=\"$service\", track=\"$track\"}",
                         min_evidence=50)
    reading = run(source, guardrail)
    assert reading.status == "healthy"
    assert reading.evidence == 60.0


def test_evidence_query_failure_cannot_evaluate() -> None:
    source = FakeSource(
        {CANARY_ERR: [iv(0.003)], BASELINE_ERR: [iv(0.003)], EVIDENCE: MetricsError("HTTP 400")}
    )
    guardrail = err_rate(max=0.02, evidence_query='reqs{service="$service", track="$track"}')
    reading = run(source, guardrail)
    assert reading.status == "cant_evaluate"
    assert reading.detail == "evidence query failed: HTTP 400"
    assert reading.error == "HTTP 400"


def test_empty_result_cannot_evaluate() -> None:
    source = FakeSource({BASELINE_ERR: [iv(0.003)]})
    reading = run(source, err_rate(max=0.02))
    assert reading.status == "cant_evaluate"
    assert reading.detail == "no data for track=canary"
    assert reading.canary is None and reading.baseline == 0.003


@pytest.mark.parametrize(
    ("bad", "word"), [(math.nan, "NaN"), (math.inf, "+Inf"), (-math.inf, "-Inf")]
)
def test_non_finite_values_cannot_evaluate(bad: float, word: str) -> None:
    source = FakeSource({CANARY_ERR: [iv(bad)], BASELINE_ERR: [iv(0.003)]})
    reading = run(source, err_rate(max=0.02))
    assert reading.status == "cant_evaluate"
    assert reading.detail == f"value is {word} for track=canary"
    assert reading.canary is None
    payload = reading.to_payload()
    json.dumps(payload, allow_nan=False)  # JSON-safe even with NaN in raw
    assert payload["raw"]["canary"] == [word]


def test_several_canary_series_cannot_evaluate_and_name_two() -> None:
    source = FakeSource(
        {CANARY_ERR: [iv(0.001, pod="a"), iv(math.nan, pod="b")], BASELINE_ERR: [iv(0.003)]}
    )
    reading = run(source, err_rate(max=0.02))
    assert reading.status == "cant_evaluate"
    assert reading.detail == ("query gives 2 series for track=canary, not one ({pod=a}, {pod=b}): "
                              "aggregate it, e.g. sum(...)")


def test_stale_sample_cannot_evaluate() -> None:
    source = FakeSource({CANARY_ERR: [iv(0.003, ts=TS - 31)], BASELINE_ERR: [iv(0.003)]})
    reading = run(source, err_rate(max=0.02), max_age_s=10)
    assert reading.status == "cant_evaluate"
    assert reading.detail == "data is 31 s old (limit 10 s) for track=canary"
    # Just within the limit is fine.
    source.answers[CANARY_ERR] = [iv(0.003, ts=TS - 10)]
    assert run(source, err_rate(max=0.02), max_age_s=10).status == "healthy"


def test_source_error_cannot_evaluate() -> None:
    source = FakeSource({CANARY_ERR: MetricsError("connection refused"), BASELINE_ERR: [iv(0.003)]})
    reading = run(source, err_rate(max=0.02))
    assert reading.status == "cant_evaluate"
    assert reading.detail == "query failed: connection refused"
    assert reading.error == "connection refused"


def test_unexpected_exception_cannot_evaluate_and_names_its_type() -> None:
    source = FakeSource({CANARY_ERR: RuntimeError("boom\nsecond line"), BASELINE_ERR: []})
    reading = run(source, err_rate(max=0.02))
    assert reading.status == "cant_evaluate"
    assert reading.detail == "query failed: RuntimeError: boom second line"


def test_several_series_are_never_a_breach_nor_healthy() -> None:
    """Which of three series would be judged? None: the query must aggregate."""
    for values in ([0.001, 0.05, 0.002], [0.001, 0.001, 0.002]):
        source = FakeSource({
            CANARY_ERR: [iv(v, pod=p) for v, p in zip(values, "abc", strict=True)],
            BASELINE_ERR: [iv(0.003)],
        })
        reading = run(source, err_rate(max=0.02))
        assert reading.status == "cant_evaluate"
        assert reading.detail.startswith("query gives 3 series for track=canary, not one "
                                         "({pod=a}, {pod=b}, ...)")
        assert reading.canary is None


def test_baseline_with_several_series_cannot_set_a_ratio_limit() -> None:
    source = FakeSource(
        {CANARY_P99: [iv(0.2)], BASELINE_P99: [iv(0.12, pod="a"), iv(0.3, pod="b")]}
    )
    reading = run(source, latency())
    assert reading.status == "cant_evaluate"
    assert "query gives 2 series for track=baseline" in reading.detail
    assert reading.detail.endswith("the ratio limit can't be checked")


def test_samples_from_the_future_cannot_evaluate() -> None:
    """Stamped ten minutes ahead: a clock is wrong, so the sample's age means nothing."""
    source = FakeSource({CANARY_ERR: [iv(0.003, ts=TS + 600)], BASELINE_ERR: [iv(0.003)]})
    reading = run(source, err_rate(max=0.02))
    assert reading.status == "cant_evaluate"
    assert reading.detail == ("data is stamped 600 s in the future (allowed clock skew 30 s) for "
                              "track=canary: a clock is wrong")
    # a breaching value from the future is not a breach either
    source.answers[CANARY_ERR] = [iv(0.5, ts=TS + 600)]
    assert run(source, err_rate(max=0.02)).status == "cant_evaluate"
    # within the allowance it is judged
    source.answers[CANARY_ERR] = [iv(0.003, ts=TS + 30)]
    assert run(source, err_rate(max=0.02)).status == "healthy"


def test_the_clock_skew_allowance_is_a_setting() -> None:
    from console.guardrails import evaluate

    source = FakeSource({CANARY_ERR: [iv(0.003, ts=TS + 5)], BASELINE_ERR: [iv(0.003)]})
    reading = evaluate(source, err_rate(max=0.02), SERVICE, NOW, 30, max_skew_s=2)
    assert reading.status == "cant_evaluate"
    assert "allowed clock skew 2 s" in reading.detail


def test_evidence_or_baseline_from_the_future_is_not_trusted() -> None:
    evidence_q = 'reqs{service="$service", track="$track"}'
    source = FakeSource({CANARY_ERR: [iv(0.003)], BASELINE_ERR: [iv(0.003)],
                         EVIDENCE: [iv(100, ts=TS + 600)]})
    reading = run(source, err_rate(max=0.02, evidence_query=evidence_q, min_evidence=50))
    assert reading.status == "cant_evaluate"
    assert reading.detail.startswith("evidence data is stamped 600 s in the future")
    source = FakeSource({CANARY_P99: [iv(0.2)], BASELINE_P99: [iv(0.12, ts=TS + 600)]})
    reading = run(source, latency())
    assert reading.status == "cant_evaluate"
    assert reading.detail.endswith("the ratio limit can't be checked")


def test_ratio_without_baseline_cannot_evaluate() -> None:
    source = FakeSource({CANARY_P99: [iv(0.2)]})
    reading = run(source, latency())
    assert reading.status == "cant_evaluate"
    assert reading.detail == "no data for track=baseline: the ratio limit can't be checked"


def test_ratio_with_nan_baseline_but_within_max_cannot_evaluate() -> None:
    source = FakeSource({CANARY_P99: [iv(0.2)], BASELINE_P99: [iv(math.nan)]})
    reading = run(source, latency(max=0.5))
    assert reading.status == "cant_evaluate"
    assert reading.detail == (
        "canary 0.20 s ≤ max 0.50 s, but value is NaN for track=baseline: "
        "the ratio limit can't be checked"
    )


def test_above_max_is_a_breach_even_without_baseline() -> None:
    source = FakeSource({CANARY_P99: [iv(0.9)], BASELINE_P99: MetricsError("timeout")})
    reading = run(source, latency(max=0.5))
    assert reading.status == "breach"
    assert reading.detail == "canary 0.90 s > limit 0.50 s (max); baseline unknown"


def test_zero_baseline_with_max_judges_on_max() -> None:
    source = FakeSource({CANARY_ERR: [iv(0.001)], BASELINE_ERR: [iv(0.0)]})
    reading = run(source, err_rate(max=0.02, max_ratio_to_baseline=3.0))
    assert reading.status == "healthy"
    assert reading.limit == 0.02
    assert reading.detail == "canary 0.10% ≤ limit 2.00% (max); ratio limit n/a: baseline is 0"


def test_zero_baseline_without_max_cannot_evaluate() -> None:
    source = FakeSource({CANARY_ERR: [iv(0.001)], BASELINE_ERR: [iv(0.0)]})
    reading = run(source, err_rate(max_ratio_to_baseline=3.0))
    assert reading.status == "cant_evaluate"
    assert "baseline is 0.00%" in reading.detail and "no absolute max" in reading.detail


def test_insufficient_comes_after_cant_evaluate() -> None:
    guardrail = err_rate(
        max=0.02, evidence_query='reqs{service="$service", track="$track"}', min_evidence=50
    )
    source = FakeSource({CANARY_ERR: [], BASELINE_ERR: [iv(0.003)], EVIDENCE: [iv(1.0)]})
    assert run(source, guardrail).status == "cant_evaluate"


# --- stable mode ---------------------------------------------------------------------------------


def test_stable_mode_checks_the_baseline_against_max() -> None:
    guardrail = err_rate(
        max=0.02,
        max_ratio_to_baseline=3.0,
        evidence_query='reqs{service="$service", track="$track"}',
        min_evidence=50,
    )
    source = FakeSource({BASELINE_ERR: [iv(0.003)], BASELINE_EVIDENCE: [iv(900.0)]})
    reading = run(source, guardrail, mode="stable")
    assert reading.status == "healthy"
    assert reading.mode == "stable"
    assert reading.queries == {"baseline": BASELINE_ERR, "evidence": BASELINE_EVIDENCE}
    assert reading.baseline == 0.003 and reading.canary is None and reading.limit == 0.02
    assert reading.detail == "baseline 0.30% ≤ limit 2.00% (max)"
    assert CANARY_ERR not in source.asked

    source.answers[BASELINE_ERR] = [iv(0.04)]
    reading = run(source, guardrail, mode="stable")
    assert reading.status == "breach"
    assert reading.detail == "baseline 4.00% > limit 2.00% (max)"

    source.answers[BASELINE_EVIDENCE] = [iv(3.0)]
    reading = run(source, guardrail, mode="stable")
    assert reading.status == "insufficient"
    assert reading.detail.startswith("only 3 requests on baseline in window, need 50")


def test_stable_mode_ratio_only_guardrail() -> None:
    source = FakeSource({BASELINE_P99: [iv(0.12)]})
    reading = run(source, latency(), mode="stable")
    assert reading.status == "healthy"
    assert "ratio limits do not apply to the stable track" in reading.detail
    assert reading.limit is None

    reading = run(FakeSource({}), latency(), mode="stable")
    assert reading.status == "cant_evaluate"
    assert reading.detail == "no data for track=baseline"


# --- payloads ------------------------------------------------------------------------------------


def test_payload_is_json_safe() -> None:
    source = FakeSource({CANARY_ERR: [iv(0.0412)], BASELINE_ERR: [iv(0.003)]})
    payload = run(source, err_rate(max=0.02)).to_payload()
    text = json.dumps(payload, allow_nan=False)
    assert json.loads(text)["status"] == "breach"
    assert payload["ts"] == "2026-01-01T12:00:00.000Z"
    assert payload["limit"] == 0.02 and payload["queries"]["canary"] == CANARY_ERR


# --- evaluate_all --------------------------------------------------------------------------------


def test_evaluate_all_runs_every_query_concurrently() -> None:
    # Nine queries that each answer only once all nine are in flight: run one after another, the
    # first would wait at the barrier until it breaks and its guardrail could not be evaluated.
    in_flight = threading.Barrier(9, timeout=30)

    def together(value: float) -> Callable[[], list[InstantValue]]:
        def answer() -> list[InstantValue]:
            in_flight.wait()
            return [iv(value)]

        return answer

    guardrails = []
    answers: dict[str, Answer] = {}
    for name in ("g1", "g2", "g3"):
        guardrails.append(
            GuardrailSettings(
                name=name,
                query=f'{name}{{track="$track"}}',
                max=1.0,
                evidence_query=f'{name}_n{{track="$track"}}',
                min_evidence=10,
            )
        )
        answers[f'{name}{{track="canary"}}'] = together(0.5)
        answers[f'{name}{{track="baseline"}}'] = together(0.4)
        answers[f'{name}_n{{track="canary"}}'] = together(100.0)
    source = FakeSource(answers)
    readings = evaluate_all(source, guardrails, SERVICE, NOW, 30)
    assert len(source.asked) == 9
    assert not in_flight.broken, "queries ran one after another"
    assert [r.name for r in readings] == ["g1", "g2", "g3"]
    assert all(r.status == "healthy" for r in readings), [r.detail for r in readings]


def test_evaluate_all_times_out_a_hung_query() -> None:
    release = threading.Event()

    def hung() -> list[InstantValue]:
        release.wait(10)
        return [iv(0.003)]

    source = FakeSource({CANARY_ERR: hung, BASELINE_ERR: [iv(0.003)], CANARY_P99: [iv(0.1)],
                         BASELINE_P99: [iv(0.1)]})
    try:
        readings = evaluate_all(
            source, [err_rate(max=0.02), latency()], SERVICE, NOW, 30, timeout_s=0.2
        )
    finally:
        release.set()
    assert readings[0].status == "cant_evaluate"
    assert readings[0].detail == "query failed: query timed out after 0.2 s"
    assert readings[1].status == "healthy"


def test_evaluate_all_shares_a_query_used_twice() -> None:
    source = FakeSource({CANARY_ERR: [iv(0.003)], BASELINE_ERR: [iv(0.003)]})
    guardrails = [err_rate(max=0.02), err_rate(name="error rate again", max=0.01)]
    readings = evaluate_all(source, guardrails, SERVICE, NOW, 30)
    assert [r.status for r in readings] == ["healthy", "healthy"]
    assert sorted(source.asked) == sorted([CANARY_ERR, BASELINE_ERR])


def test_evaluate_all_with_a_shared_executor() -> None:
    from concurrent.futures import ThreadPoolExecutor

    source = FakeSource({CANARY_ERR: [iv(0.003)], BASELINE_ERR: [iv(0.003)]})
    with ThreadPoolExecutor(max_workers=1) as pool:  # a tiny pool must not deadlock
        for _ in range(2):
            [reading] = evaluate_all(source, [err_rate(max=0.02)], SERVICE, NOW, 30, executor=pool)
            assert reading.status == "healthy"


def test_evaluate_all_of_nothing() -> None:
    assert evaluate_all(FakeSource(), [], SERVICE, NOW, 30) == []


# --- against the simulator -----------------------------------------------------------------------

SIM_GUARDRAILS = [
    GuardrailSettings(
        name="error rate",
        query='sim:error_ratio{service="$service", track="$track"}',
        unit="%",
        scale=100,
        max=0.02,
        max_ratio_to_baseline=3.0,
        evidence_query='sim:requests{service="$service", track="$track"}',
        min_evidence=50,
        consecutive=3,
        on_breach="rollback",
    ),
    GuardrailSettings(
        name="p99 latency",
        query='sim:latency_p99_seconds{service="$service", track="$track"}',
        unit="s",
        max=0.5,
        max_ratio_to_baseline=2.0,
        consecutive=3,
    ),
]


def _sim(scenario: str, **kwargs: object) -> tuple[ManualClock, SimulatedService]:
    clock = ManualClock()
    return clock, SimulatedService(seed=7, clock=clock, scenario=scenario, **kwargs)  # type: ignore[arg-type]


def _evaluate_sim(
    clock: ManualClock, service: SimulatedService, mode: str = "canary"
) -> list[GuardrailReading]:
    return evaluate_all(
        SimMetricsSource(service), SIM_GUARDRAILS, service.service, clock.now(), 15,
        mode=mode,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize("weight", [1, 10, 50])
def test_sim_good_build_is_healthy(weight: int) -> None:
    clock, service = _sim("good")
    service.set_weight(weight)
    clock.advance(60)
    assert [r.status for r in _evaluate_sim(clock, service)] == ["healthy", "healthy"]


@pytest.mark.parametrize("weight", [1, 10, 50])
def test_sim_bad_build_breaches(weight: int) -> None:
    clock, service = _sim("bad")
    service.set_weight(weight)
    clock.advance(60)
    errors, p99 = _evaluate_sim(clock, service)
    # 3 × a 0.3 % baseline is below the 2 % max: the ratio limit binds.
    assert errors.status == "breach" and "3.0× baseline" in errors.detail
    assert p99.status == "breach" and "2.0× baseline" in p99.detail


def test_sim_too_little_traffic_is_insufficient() -> None:
    clock, service = _sim("bad")
    service.set_weight(1)
    clock.advance(10)  # about 20 canary requests so far
    errors, _p99 = _evaluate_sim(clock, service)
    assert errors.status == "insufficient"
    assert errors.detail.startswith("only 20 requests on canary in window, need 50")


def test_sim_weight_zero_cannot_evaluate() -> None:
    clock, service = _sim("good")
    clock.advance(60)
    readings = _evaluate_sim(clock, service)
    assert [r.detail for r in readings] == ["no data for track=canary"] * 2
    assert all(r.baseline is not None for r in readings)


def test_sim_metrics_down_cannot_evaluate() -> None:
    clock, service = _sim("good")
    service.set_weight(10)
    clock.advance(60)
    service.metrics_down = True
    readings = _evaluate_sim(clock, service)
    assert [r.detail for r in readings] == ["query failed: simulated metrics source is down"] * 2


def test_sim_stable_mode_after_rollback() -> None:
    clock, service = _sim("bad", rollback_seconds=6)
    service.set_weight(100)
    clock.advance(60)
    # Promoted: the stable track serves nothing, so there is nothing to verify yet.
    errors, _p99 = _evaluate_sim(clock, service, "stable")
    assert errors.status == "cant_evaluate"
    service.rollback("v1.4.2")
    clock.advance(6 + 60)
    readings = _evaluate_sim(clock, service, "stable")
    assert [r.status for r in readings] == ["healthy", "healthy"]


def test_sim_stable_mode_after_a_failed_rollback() -> None:
    clock, service = _sim("bad", fail_rollback=True)
    service.set_weight(100)
    clock.advance(60)
    service.rollback("v1.4.2")
    clock.advance(120)
    errors, _p99 = _evaluate_sim(clock, service, "stable")
    assert errors.status == "breach"


def test_example_config_guardrails_work_on_the_simulator() -> None:
    """The demo runs config.example.toml's conventional PromQL against the simulator."""
    from pathlib import Path

    from console.config import parse_config

    example = Path(__file__).resolve().parents[1] / "config.example.toml"
    if not example.is_file():
        pytest.skip("config.example.toml is not there yet")
    guardrails = parse_config(example.read_text(encoding="utf-8"), example).guardrails
    assert guardrails
    for scenario, expected in (("good", {"healthy"}), ("bad", {"healthy", "breach"})):
        clock, service = _sim(scenario)
        service.set_weight(10)
        clock.advance(60)
        readings = evaluate_all(
            SimMetricsSource(service), guardrails, service.service, clock.now(), 15
        )
        statuses = {reading.status for reading in readings}
        assert statuses <= expected, [reading.detail for reading in readings]
        if scenario == "bad":
            assert "breach" in statuses


# --- BreachTracker -------------------------------------------------------------------------------


def r(status: str, name: str = "error rate") -> GuardrailReading:
    return GuardrailReading(name=name, status=status, ts=NOW)  # type: ignore[arg-type]


def test_tracker_transitions_and_sustained_signal() -> None:
    tracker = BreachTracker([err_rate(max=0.02, consecutive=3)])
    assert tracker.status("error rate") == "unknown"
    assert tracker.budget("error rate") == "breaches 0/3"

    [t] = tracker.update([r("healthy")])
    assert (t.previous, t.status, t.breaches, t.sustained) == ("unknown", "healthy", 0, False)
    assert tracker.update([r("healthy")]) == []

    [t] = tracker.update([r("breach")])
    assert (t.previous, t.status, t.breaches, t.sustained) == ("healthy", "breach", 1, False)
    assert tracker.budget("error rate") == "breaches 1/3"
    assert tracker.update([r("breach")]) == []

    # Can't evaluate: a status change, but the count neither grows nor resets.
    [t] = tracker.update([r("cant_evaluate")])
    assert (t.status, t.breaches, t.sustained) == ("cant_evaluate", 2, False)
    [t] = tracker.update([r("insufficient")])
    assert (t.previous, t.status, t.breaches) == ("cant_evaluate", "insufficient", 2)

    [t] = tracker.update([r("breach")])
    assert (t.previous, t.status, t.breaches, t.consecutive, t.sustained) == (
        "insufficient", "breach", 3, 3, True,
    )
    assert tracker.is_sustained("error rate")
    assert tracker.update([r("breach")]) == []  # sustained fires once
    assert tracker.budget("error rate") == "breaches 4/3"

    [t] = tracker.update([r("healthy")])
    assert (t.status, t.breaches) == ("healthy", 0)
    tracker.update([r("breach")])
    tracker.update([r("breach")])
    [t] = tracker.update([r("breach")])
    assert t.sustained and not t.changed  # the sustained moment alone is a transition


def test_tracker_consecutive_one_merges_change_and_sustained() -> None:
    tracker = BreachTracker({"error rate": 1})
    [t] = tracker.update([r("breach")])
    assert t.changed and t.sustained and t.breaches == 1


def test_tracker_keeps_guardrails_apart_and_in_order() -> None:
    tracker = BreachTracker({"a": 2, "b": 2})
    transitions = tracker.update([r("breach", "a"), r("healthy", "b")])
    assert [(t.name, t.status) for t in transitions] == [("a", "breach"), ("b", "healthy")]
    [t] = tracker.update([r("breach", "a"), r("healthy", "b")])
    assert (t.name, t.sustained) == ("a", True)
    assert tracker.breaches("b") == 0


def test_tracker_restore_and_unknown_names() -> None:
    tracker = BreachTracker({"a": 3})
    tracker.restore("a", "breach", 2)
    [t] = tracker.update([r("breach", "a")])
    assert t.sustained and t.breaches == 3 and not t.changed
    # A guardrail the tracker was not told about acts on its first breach.
    [t] = tracker.update([r("breach", "new")])
    assert t.sustained and t.consecutive == 1


def test_transition_payload() -> None:
    source = FakeSource({CANARY_ERR: [iv(0.0412)], BASELINE_ERR: [iv(0.003)]})
    reading = run(source, err_rate(max=0.02, consecutive=1))
    [t] = BreachTracker([err_rate(max=0.02, consecutive=1)]).update([reading])
    payload = t.to_payload()
    json.dumps(payload, allow_nan=False)
    assert payload == {
        "name": "error rate",
        "status": "breach",
        "previous": "unknown",
        "canary": 0.0412,
        "baseline": 0.003,
        "limit": 0.02,
        "detail": "canary 4.12% > limit 2.00% (max)",
        "breaches": 1,
        "consecutive": 1,
        "sustained": True,
        # Why, at a glance (issue 16): the rule that decided and the queries as sent.
        "rule": "max",
        "queries": {"canary": 'err{service="redaction-api", track="canary"}',
                    "baseline": 'err{service="redaction-api", track="baseline"}'},
        # ...and the samples the queries answered, the verdict was judged on
        "samples": {"canary": [0.0412], "baseline": [0.003]},
    }
    assert isinstance(t, Transition)


STATUSES = st.sampled_from(["healthy", "breach", "insufficient", "cant_evaluate"])


@given(statuses=st.lists(STATUSES, max_size=40), consecutive=st.integers(1, 5))
def test_tracker_sustained_fires_exactly_when_breaches_since_healthy_reach_the_bar(
    statuses: list[str], consecutive: int
) -> None:
    tracker = BreachTracker({"g": consecutive})
    since_healthy = 0
    previous = "unknown"
    for status in statuses:
        transitions = tracker.update([r(status, "g")])
        if status == "breach":
            since_healthy += 1
        elif status == "healthy":
            since_healthy = 0
        fired = status == "breach" and since_healthy == consecutive
        assert [t.sustained for t in transitions] == ([fired] if transitions else [])
        assert bool(transitions) == (fired or status != previous)
        assert tracker.breaches("g") == since_healthy
        previous = status
