"""When a guardrail breaches, at its edges: exactly at a limit, a hair above, stale exactly at
max_age, evidence one short of min_evidence, a zero baseline, and what each reading says.

``judge`` is pure: answers by role in, a reading out. A canary *exceeds* its limit to breach
(config.example.toml: "breaches when the canary exceeds `max`"), so exactly at the limit is healthy.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.base import InstantValue, MetricsError
from console.config import GuardrailSettings
from console.guardrails import (
    DEFAULT_CLOCK_SKEW_S,
    Answer,
    GuardrailReading,
    judge,
    resolve_query,
)

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
TS = NOW.timestamp()
MAX_AGE = 30.0


def up(value: float) -> float:
    return math.nextafter(value, math.inf)


def down(value: float) -> float:
    return math.nextafter(value, -math.inf)


def iv(value: float, age_s: float = 0.0, **labels: str) -> InstantValue:
    return InstantValue(labels=labels, ts=TS - age_s, value=value)


def guardrail(**kwargs: Any) -> GuardrailSettings:
    values: dict[str, Any] = {"name": "error-ratio", "query": 'err{track="$track"}', "unit": "%",
                              "scale": 100}
    values.update(kwargs)
    return GuardrailSettings.model_validate(values)


def latency(**kwargs: Any) -> GuardrailSettings:
    values: dict[str, Any] = {"name": "p99", "query": 'p99{track="$track"}', "unit": "s"}
    values.update(kwargs)
    return GuardrailSettings.model_validate(values)


def run(g: GuardrailSettings, canary: Answer | None = None, baseline: Answer | None = None,
        evidence: Answer | None = None, mode: str = "canary", max_age_s: float = MAX_AGE,
        max_skew_s: float | None = None) -> GuardrailReading:
    answers: dict[str, Answer] = {}
    queries: dict[str, str] = {}
    for role, answer in (("canary", canary), ("baseline", baseline), ("evidence", evidence)):
        if answer is not None:
            answers[role] = answer
            queries[role] = f"{role}-query"
    if g.evidence_query and "evidence" not in queries:
        queries["evidence"] = "evidence-query"
        answers["evidence"] = []
    if max_skew_s is None:  # judge's own default
        return judge(g, answers, queries, NOW, max_age_s, mode)  # type: ignore[arg-type]
    return judge(g, answers, queries, NOW, max_age_s, mode,  # type: ignore[arg-type]
                 max_skew_s=max_skew_s)


# --- absolute max: exactly at it is healthy, a hair above breaches -------------------------------


def test_canary_exactly_at_max_is_healthy() -> None:
    reading = run(guardrail(max=0.02), [iv(0.02)], [iv(0.003)])
    assert reading.status == "healthy" and reading.is_healthy
    assert reading.detail == "canary 2.00% ≤ limit 2.00% (max)"
    assert (reading.canary, reading.baseline, reading.limit) == (0.02, 0.003, 0.02)


def test_canary_a_hair_above_max_breaches() -> None:
    reading = run(guardrail(max=0.02), [iv(up(0.02))], [iv(0.003)])
    assert reading.status == "breach" and not reading.is_healthy
    assert reading.detail == "canary 2.00% > limit 2.00% (max)"
    assert reading.limit == 0.02


def test_canary_a_hair_below_max_is_healthy() -> None:
    assert run(guardrail(max=0.02), [iv(down(0.02))], [iv(0.003)]).status == "healthy"


def test_a_max_of_zero_breaches_on_any_error_and_not_at_zero() -> None:
    assert run(guardrail(max=0), [iv(0.0)], [iv(0.0)]).status == "healthy"
    assert run(guardrail(max=0), [iv(1e-9)], [iv(0.0)]).status == "breach"


# --- ratio to baseline: exactly at the ratio is healthy, a hair above breaches -------------------


def test_canary_exactly_at_the_ratio_is_healthy() -> None:
    reading = run(latency(max_ratio_to_baseline=2.0), [iv(0.25)], [iv(0.125)])
    assert reading.status == "healthy"
    assert reading.detail == "canary 0.25 s ≤ limit 0.25 s (2.0× baseline 0.12 s)"
    assert reading.limit == 0.25


def test_canary_a_hair_above_the_ratio_breaches() -> None:
    reading = run(latency(max_ratio_to_baseline=2.0), [iv(up(0.25))], [iv(0.125)])
    assert reading.status == "breach"
    assert reading.detail == "canary 0.25 s > limit 0.25 s (2.0× baseline 0.12 s)"


def test_canary_a_hair_below_the_ratio_is_healthy() -> None:
    assert run(latency(max_ratio_to_baseline=2.0), [iv(down(0.25))],
               [iv(0.125)]).status == "healthy"


@pytest.mark.parametrize(("ratio", "shown"), [(3.0, "3.0×"), (1.25, "1.25×"), (2.5, "2.5×"),
                                              (10.0, "10.0×"), (1234567.5, "1234567.5×")])
def test_the_ratio_is_shown_as_a_person_reads_it(ratio: float, shown: str) -> None:
    reading = run(latency(max_ratio_to_baseline=ratio), [iv(0.1)], [iv(0.1)])
    assert reading.detail.endswith(f" ({shown} baseline 0.10 s)")


def test_the_lower_of_the_two_limits_judges() -> None:
    # max 0.5 s, 2× baseline 0.125 s = 0.25 s: the ratio binds
    g = latency(max=0.5, max_ratio_to_baseline=2.0)
    reading = run(g, [iv(0.3)], [iv(0.125)])
    assert (reading.status, reading.limit) == ("breach", 0.25)
    assert reading.detail == "canary 0.30 s > limit 0.25 s (2.0× baseline 0.12 s)"
    # baseline 0.5 s → 2× = 1 s: the max binds
    reading = run(g, [iv(0.6)], [iv(0.5)])
    assert (reading.status, reading.limit) == ("breach", 0.5)
    assert reading.detail == "canary 0.60 s > limit 0.50 s (max)"
    reading = run(g, [iv(0.5)], [iv(0.5)])
    assert (reading.status, reading.detail) == ("healthy", "canary 0.50 s ≤ limit 0.50 s (max)")


def test_equal_limits_are_one_limit_named_as_the_max() -> None:
    reading = run(latency(max=0.25, max_ratio_to_baseline=2.0), [iv(0.25)], [iv(0.125)])
    assert (reading.status, reading.limit) == ("healthy", 0.25)
    assert reading.detail == "canary 0.25 s ≤ limit 0.25 s (max)"


# --- zero, negative and missing baselines ---------------------------------------------------------


def test_a_zero_baseline_leaves_the_max_alone_to_judge_and_says_so() -> None:
    g = guardrail(max=0.02, max_ratio_to_baseline=3.0)
    reading = run(g, [iv(0.01)], [iv(0.0)])
    assert reading.status == "healthy"
    assert reading.detail == "canary 1.00% ≤ limit 2.00% (max); ratio limit n/a: baseline is 0"
    reading = run(g, [iv(0.03)], [iv(0.0)])
    assert reading.status == "breach"
    assert reading.detail == "canary 3.00% > limit 2.00% (max); ratio limit n/a: baseline is 0"


def test_a_negative_baseline_is_treated_as_zero() -> None:
    reading = run(guardrail(max=0.02, max_ratio_to_baseline=3.0), [iv(0.01)], [iv(-0.5)])
    assert reading.status == "healthy" and reading.limit == 0.02


def test_a_zero_baseline_without_a_max_cannot_evaluate() -> None:
    reading = run(latency(max_ratio_to_baseline=3.0), [iv(0.2)], [iv(0.0)])
    assert reading.status == "cant_evaluate"
    assert reading.detail == (
        "baseline is 0.00 s: a ratio limit of 3.0× is undefined and there is no absolute max")
    assert (reading.limit, reading.error, reading.canary, reading.baseline) == (None, None, 0.2, 0)


def test_the_smallest_positive_baseline_still_sets_a_ratio_limit() -> None:
    tiny = 5e-324
    reading = run(latency(max_ratio_to_baseline=2.0), [iv(0.0)], [iv(tiny)])
    assert reading.status == "healthy" and reading.limit == 2 * tiny


def test_a_missing_baseline_within_max_cannot_evaluate_and_says_what_was_checked() -> None:
    g = guardrail(max=0.02, max_ratio_to_baseline=3.0)
    reading = run(g, [iv(0.01)], [])
    assert reading.status == "cant_evaluate"
    assert reading.detail == (
        "canary 1.00% ≤ max 2.00%, but no data for track=baseline: the ratio limit can't be "
        "checked")
    assert (reading.limit, reading.error, reading.canary, reading.baseline) == (
        0.02, None, 0.01, None)


def test_a_missing_baseline_above_max_is_still_a_breach() -> None:
    g = guardrail(max=0.02, max_ratio_to_baseline=3.0)
    reading = run(g, [iv(0.05)], MetricsError("Prometheus 503"))
    assert reading.status == "breach"
    assert reading.detail == "canary 5.00% > limit 2.00% (max); baseline unknown"


def test_a_failed_baseline_query_keeps_its_error() -> None:
    reading = run(latency(max_ratio_to_baseline=3.0), [iv(0.2)], MetricsError("Prometheus 503"))
    assert reading.status == "cant_evaluate"
    assert reading.detail == (
        "query failed: Prometheus 503: the ratio limit can't be checked")
    assert reading.error == "Prometheus 503"


def test_no_baseline_answer_at_all_cannot_evaluate_a_ratio() -> None:
    reading = run(latency(max_ratio_to_baseline=3.0), [iv(0.2)])
    assert reading.status == "cant_evaluate"
    assert reading.detail == "no baseline value: the ratio limit can't be checked"
    assert (reading.baseline, reading.error) == (None, None)


def test_without_a_ratio_limit_the_baseline_is_not_needed() -> None:
    reading = run(guardrail(max=0.02), [iv(0.01)], [])
    assert (reading.status, reading.baseline) == ("healthy", None)


# --- staleness: exactly max_age old is fresh, a millisecond more is stale ------------------------


def test_a_sample_exactly_max_age_old_is_fresh() -> None:
    assert run(guardrail(max=0.02), [iv(0.01, age_s=MAX_AGE)], [iv(0.0)]).status == "healthy"


def test_a_sample_a_millisecond_older_than_max_age_cannot_evaluate() -> None:
    reading = run(guardrail(max=0.02), [iv(0.01, age_s=MAX_AGE + 0.001)], [iv(0.0)])
    assert reading.status == "cant_evaluate"
    assert reading.detail == "data is 30 s old (limit 30 s) for track=canary"
    assert reading.baseline == 0.0  # the graphs still get the baseline


def test_the_oldest_evidence_series_decides_staleness() -> None:
    reading = run(evidence_guardrail(), [iv(0.01)], [iv(0.0)],
                  [iv(60), iv(40, age_s=95, pod="b")])
    assert reading.detail == "evidence data is 95 s old (limit 30 s) for track=canary"


def test_a_stale_baseline_cannot_check_the_ratio() -> None:
    reading = run(latency(max_ratio_to_baseline=3.0), [iv(0.2)], [iv(0.1, age_s=61)])
    assert reading.detail == (
        "data is 61 s old (limit 30 s) for track=baseline: the ratio limit can't be checked")


def test_a_sample_from_the_future_is_not_stale() -> None:
    assert run(guardrail(max=0.02), [iv(0.01, age_s=-5)], [iv(0.0)]).status == "healthy"


# --- clock skew: a sample stamped exactly max_skew ahead is trusted, a millisecond more is not ----


def test_a_sample_stamped_exactly_the_allowed_skew_ahead_is_trusted() -> None:
    assert DEFAULT_CLOCK_SKEW_S == 30
    assert run(guardrail(max=0.02), [iv(0.01, age_s=-30)], [iv(0.0)]).status == "healthy"
    assert run(guardrail(max=0.02), [iv(0.01, age_s=-5)], [iv(0.0)],
               max_skew_s=5).status == "healthy"


def test_a_sample_stamped_a_millisecond_further_ahead_cannot_evaluate() -> None:
    reading = run(guardrail(max=0.02), [iv(0.01, age_s=-30.001)], [iv(0.0)])
    assert (reading.status, reading.detail) == (
        "cant_evaluate",
        "data is stamped 30 s in the future (allowed clock skew 30 s) for track=canary: a clock "
        "is wrong")
    reading = run(guardrail(max=0.02), [iv(0.01, age_s=-5.001)], [iv(0.0)], max_skew_s=5)
    assert reading.status == "cant_evaluate"


def test_skewed_evidence_and_a_skewed_baseline_cannot_be_trusted() -> None:
    reading = run(evidence_guardrail(), [iv(0.01)], [iv(0.0)],
                  [iv(60), iv(60, age_s=-40, pod="b")])
    assert reading.detail == (
        "evidence data is stamped 40 s in the future (allowed clock skew 30 s) for "
        "track=canary: a clock is wrong")
    reading = run(latency(max_ratio_to_baseline=2.0), [iv(0.2)], [iv(0.1, age_s=-40)])
    assert reading.detail == (
        "data is stamped 40 s in the future (allowed clock skew 30 s) for track=baseline: a "
        "clock is wrong: the ratio limit can't be checked")


# --- evidence: exactly min_evidence is enough, one request short is not ---------------------------


def evidence_guardrail(min_evidence: float = 100, **kwargs: Any) -> GuardrailSettings:
    return guardrail(max=0.02, evidence_query='reqs{track="$track"}', min_evidence=min_evidence,
                     **kwargs)


def test_evidence_exactly_at_min_evidence_is_enough() -> None:
    reading = run(evidence_guardrail(), [iv(0.01)], [iv(0.0)], [iv(100)])
    assert (reading.status, reading.evidence) == ("healthy", 100)


def test_evidence_one_request_short_is_insufficient() -> None:
    reading = run(evidence_guardrail(), [iv(0.01)], [iv(0.0)], [iv(99)])
    assert reading.status == "insufficient"
    assert reading.detail == "only 99 requests on canary in window, need 100 (canary 1.00%)"
    assert (reading.evidence, reading.canary, reading.baseline) == (99, 0.01, 0.0)
    assert reading.limit is None


def test_evidence_a_fraction_short_is_insufficient() -> None:
    reading = run(evidence_guardrail(min_evidence=5), [iv(0.01)], [iv(0.0)], [iv(4.5)])
    assert reading.detail == "only 4.5 requests on canary in window, need 5 (canary 1.00%)"
    reading = run(evidence_guardrail(min_evidence=12.5), [iv(0.01)], [iv(0.0)], [iv(12.25)])
    assert reading.detail == "only 12 requests on canary in window, need 12 (canary 1.00%)"
    # from 10 requests up, whole numbers: a person counts requests, not tenths of them
    reading = run(evidence_guardrail(min_evidence=11), [iv(0.01)], [iv(0.0)], [iv(10.25)])
    assert reading.detail == "only 10 requests on canary in window, need 11 (canary 1.00%)"
    reading = run(evidence_guardrail(min_evidence=11), [iv(0.01)], [iv(0.0)], [iv(9.75)])
    assert reading.detail == "only 9.8 requests on canary in window, need 11 (canary 1.00%)"


def test_evidence_is_summed_over_its_series() -> None:
    reading = run(evidence_guardrail(), [iv(0.01)], [iv(0.0)], [iv(60), iv(40, pod="b")])
    assert (reading.status, reading.evidence) == ("healthy", 100)


def test_insufficient_evidence_comes_before_a_breach() -> None:
    reading = run(evidence_guardrail(), [iv(0.5)], [iv(0.0)], [iv(3)])
    assert reading.status == "insufficient"


def test_a_value_we_cannot_read_comes_before_insufficient_evidence() -> None:
    reading = run(evidence_guardrail(), [], [iv(0.0)], [iv(3)])
    assert reading.status == "cant_evaluate"


def test_no_evidence_query_means_no_evidence_check() -> None:
    reading = run(guardrail(max=0.02, min_evidence=1000), [iv(0.01)], [iv(0.0)])
    assert (reading.status, reading.evidence) == ("healthy", None)


@pytest.mark.parametrize(("answer", "detail", "error"), [
    ([], "no evidence data for track=canary", None),
    (MetricsError("Prometheus 503"), "evidence query failed: Prometheus 503", "Prometheus 503"),
    ([iv(math.nan)], "evidence value is NaN for track=canary", None),
    ([iv(100, age_s=31)], "evidence data is 31 s old (limit 30 s) for track=canary", None),
])
def test_evidence_we_cannot_read_cannot_evaluate(answer: Answer, detail: str,
                                                 error: str | None) -> None:
    reading = run(evidence_guardrail(), [iv(0.01)], [iv(0.002)], answer)
    assert (reading.status, reading.detail, reading.error) == ("cant_evaluate", detail, error)
    assert (reading.canary, reading.baseline, reading.evidence) == (0.01, 0.002, None)


def test_stable_mode_counts_the_evidence_of_the_baseline_track() -> None:
    reading = run(evidence_guardrail(min_evidence=10), baseline=[iv(0.01)], evidence=[iv(5)],
                  mode="stable")
    assert reading.status == "insufficient"
    assert reading.detail == "only 5 requests on baseline in window, need 10 (baseline 1.00%)"
    assert (reading.canary, reading.baseline) == (None, 0.01)


# --- values we cannot judge ----------------------------------------------------------------------


@pytest.mark.parametrize(("value", "word"), [(math.nan, "NaN"), (math.inf, "+Inf"),
                                             (-math.inf, "-Inf")])
def test_a_non_finite_value_cannot_evaluate(value: float, word: str) -> None:
    reading = run(guardrail(max=0.02), [iv(value)], [iv(0.001)])
    assert reading.status == "cant_evaluate"
    assert reading.detail == f"value is {word} for track=canary"
    assert reading.baseline == 0.001


def test_one_non_finite_evidence_series_among_several_says_how_many() -> None:
    reading = run(evidence_guardrail(), [iv(0.01)], [iv(0.0)],
                  [iv(50), iv(math.nan, pod="b"), iv(50, pod="c")])
    assert reading.detail == "evidence value is NaN for track=canary (1 of 3 series)"
    reading = run(evidence_guardrail(), [iv(0.01)], [iv(0.0)], [iv(math.inf), iv(1, pod="b")])
    assert reading.detail == "evidence value is +Inf for track=canary (1 of 2 series)"


def test_an_empty_answer_cannot_evaluate() -> None:
    reading = run(guardrail(max=0.02), [], [iv(0.001)])
    assert (reading.status, reading.detail, reading.error) == (
        "cant_evaluate", "no data for track=canary", None)


def test_a_failed_query_cannot_evaluate_and_keeps_the_error() -> None:
    reading = run(guardrail(max=0.02), MetricsError("connection refused"), [iv(0.0)])
    assert (reading.status, reading.detail, reading.error) == (
        "cant_evaluate", "query failed: connection refused", "connection refused")


def test_a_timeout_is_an_adapter_failure_in_words() -> None:
    reading = run(guardrail(max=0.02), TimeoutError("query timed out after 2 s"), [iv(0.0)])
    assert reading.detail == "query failed: query timed out after 2 s"


@pytest.mark.parametrize(("error", "text"), [
    (ValueError("bad float"), "ValueError: bad float"),
    (KeyError("value"), "KeyError: 'value'"),
    (TimeoutError(), "TimeoutError"),
    (MetricsError(""), "MetricsError"),
    (RuntimeError("two\n  lines"), "RuntimeError: two lines"),
])
def test_an_unexpected_error_keeps_its_type(error: Exception, text: str) -> None:
    reading = run(guardrail(max=0.02), error, [iv(0.0)])
    assert (reading.detail, reading.error) == (f"query failed: {text}", text)


def test_an_error_of_exactly_200_characters_is_kept_and_201_is_cut() -> None:
    reading = run(guardrail(max=0.02), MetricsError("e" * 200), [iv(0.0)])
    assert reading.error == "e" * 200
    reading = run(guardrail(max=0.02), MetricsError("e" * 201), [iv(0.0)])
    assert reading.error == "e" * 199 + "…"


# --- several series: one value query must give exactly one series -----------------------------


def test_exactly_one_series_is_judged() -> None:
    reading = run(guardrail(max=0.02), [iv(0.01, pod="a")], [iv(0.0, pod="b")])
    assert (reading.status, reading.detail) == ("healthy", "canary 1.00% ≤ limit 2.00% (max)")


def test_two_canary_series_cannot_evaluate_and_name_what_to_aggregate() -> None:
    reading = run(guardrail(max=0.02),
                  [iv(0.01, pod="a", track="canary", service="api", __name__="err"),
                   iv(0.5, pod="b")],
                  [iv(0.0)])
    assert (reading.status, reading.detail, reading.canary) == (
        "cant_evaluate",
        "query gives 2 series for track=canary, not one ({pod=a}, {pod=b}): aggregate it, "
        "e.g. sum(...)", None)
    assert reading.raw == {"canary": [0.01, 0.5], "baseline": [0.0]}


def test_three_series_or_more_say_so_and_unlabelled_series_say_that() -> None:
    reading = run(guardrail(max=0.02), [iv(0.01), iv(0.02, track="canary"), iv(0.03)],
                  [iv(0.0)])
    assert reading.detail == (
        "query gives 3 series for track=canary, not one (no labels, no labels, ...): aggregate "
        "it, e.g. sum(...)")


def test_labels_are_sorted_and_cut_after_60_characters() -> None:
    exact = "x" * 58  # "a=" + 58 = 60 characters
    reading = run(guardrail(max=0.02), [iv(0.0, a=exact), iv(0.01, z="1", b="2")], [iv(0.0)])
    assert reading.detail == (
        f"query gives 2 series for track=canary, not one ({{a={exact}}}, {{b=2,z=1}}): aggregate "
        "it, e.g. sum(...)")
    reading = run(guardrail(max=0.02), [iv(0.0, a=exact + "y"), iv(0.01)], [iv(0.0)])
    assert f"({{a={exact[:57]}…}}, no labels)" in reading.detail


def test_several_baseline_series_cannot_check_a_ratio_but_a_breach_of_max_stands() -> None:
    reading = run(latency(max_ratio_to_baseline=2.0), [iv(0.3)], [iv(0.5), iv(0.125, pod="b")])
    assert (reading.status, reading.detail) == (
        "cant_evaluate",
        "query gives 2 series for track=baseline, not one (no labels, {pod=b}): aggregate it, "
        "e.g. sum(...): the ratio limit can't be checked")
    reading = run(latency(max=0.25, max_ratio_to_baseline=2.0), [iv(0.3)],
                  [iv(0.5), iv(0.125, pod="b")])
    assert (reading.status, reading.detail) == (
        "breach", "canary 0.30 s > limit 0.25 s (max); baseline unknown")


def test_several_stable_series_cannot_verify_a_rollback() -> None:
    reading = run(guardrail(max=0.02), baseline=[iv(0.0), iv(0.0, pod="b")], mode="stable")
    assert (reading.status, reading.mode) == ("cant_evaluate", "stable")
    assert reading.detail.startswith("query gives 2 series for track=baseline, not one")


# --- stable mode (verifying a rollback): the baseline against max only ---------------------------


def test_stable_mode_exactly_at_max_is_healthy_and_a_hair_above_breaches() -> None:
    g = guardrail(max=0.02, max_ratio_to_baseline=3.0)
    reading = run(g, baseline=[iv(0.02)], mode="stable")
    assert (reading.status, reading.detail, reading.limit) == (
        "healthy", "baseline 2.00% ≤ limit 2.00% (max)", 0.02)
    assert (reading.canary, reading.baseline, reading.mode) == (None, 0.02, "stable")
    reading = run(g, baseline=[iv(up(0.02))], mode="stable")
    assert (reading.status, reading.detail) == ("breach", "baseline 2.00% > limit 2.00% (max)")
    assert (reading.limit, reading.canary, reading.baseline) == (0.02, None, up(0.02))


def test_stable_mode_ignores_ratio_limits() -> None:
    reading = run(latency(max_ratio_to_baseline=2.0), baseline=[iv(9.0)], mode="stable")
    assert (reading.status, reading.limit, reading.canary, reading.baseline) == (
        "healthy", None, None, 9.0)
    assert reading.detail == "baseline 9.00 s; ratio limits do not apply to the stable track"


def test_stable_mode_cannot_evaluate_without_the_baseline() -> None:
    reading = run(guardrail(max=0.02), baseline=[iv(0.01, age_s=31)], mode="stable")
    assert reading.status == "cant_evaluate"
    assert reading.detail == "data is 31 s old (limit 30 s) for track=baseline"
    assert (reading.canary, reading.baseline) == (None, None)


# --- what a reading carries ----------------------------------------------------------------------


def test_judging_is_in_canary_mode_unless_told() -> None:
    reading = judge(guardrail(max=0.02), {"canary": [iv(0.01)], "baseline": [iv(0.5)]},
                    {"canary": "c", "baseline": "b"}, NOW, MAX_AGE)
    assert (reading.mode, reading.canary, reading.baseline, reading.status) == (
        "canary", 0.01, 0.5, "healthy")


def test_a_reading_carries_its_queries_raw_values_time_and_mode() -> None:
    reading = run(evidence_guardrail(), [iv(0.01)], [iv(0.002)], [iv(150)])
    assert reading.queries == {"canary": "canary-query", "baseline": "baseline-query",
                               "evidence": "evidence-query"}
    assert reading.raw == {"canary": [0.01], "baseline": [0.002], "evidence": [150]}
    assert (reading.ts, reading.mode, reading.name) == (NOW, "canary", "error-ratio")


def test_the_payload_is_json_with_nan_and_inf_written_as_prometheus_does() -> None:
    reading = GuardrailReading(
        name="g", status="cant_evaluate", canary=math.nan, baseline=math.inf, limit=-math.inf,
        evidence=3.0, detail="d", queries={"canary": "q"}, raw={"canary": [math.nan, 1.5]},
        error="e", ts=NOW + timedelta(milliseconds=123), mode="stable")
    payload = reading.to_payload()
    json.dumps(payload, allow_nan=False)
    assert payload == {
        "name": "g", "status": "cant_evaluate", "mode": "stable", "canary": "NaN",
        "baseline": "+Inf", "limit": "-Inf", "evidence": 3.0, "detail": "d",
        "queries": {"canary": "q"}, "raw": {"canary": ["NaN", 1.5]}, "error": "e",
        "ts": "2026-01-01T12:00:00.123Z",
    }
    assert GuardrailReading(name="g", status="healthy").to_payload()["canary"] is None


def test_placeholders_are_filled_grafana_style_only() -> None:
    template = ('x{service="$service",track="${track}"} / $track_count ${service} $service '
                '$services $track')
    assert resolve_query(template, "api", "canary") == (
        'x{service="api",track="canary"} / $track_count api api $services canary')


# --- relations ------------------------------------------------------------------------------------

VALUES = st.floats(0, 10, allow_nan=False)
LIMITS = st.one_of(st.none(), st.floats(0, 10, allow_nan=False))
RATIOS = st.one_of(st.none(), st.floats(0.1, 10, allow_nan=False))


def _guardrail_or_none(max_: float | None, ratio: float | None,
                       min_evidence: float) -> GuardrailSettings | None:
    if max_ is None and ratio is None:
        return None
    return latency(max=max_, max_ratio_to_baseline=ratio, evidence_query='r{track="$track"}',
                   min_evidence=min_evidence)


@settings(max_examples=200, deadline=None)
@given(canary=VALUES, baseline=VALUES, max_=LIMITS, ratio=RATIOS,
       min_evidence=st.floats(0, 1000), evidence=st.floats(0, 1000),
       more=st.floats(0, 1000))
def test_more_evidence_with_the_same_values_never_turns_a_breach_healthy(
        canary: float, baseline: float, max_: float | None, ratio: float | None,
        min_evidence: float, evidence: float, more: float) -> None:
    g = _guardrail_or_none(max_, ratio, min_evidence)
    if g is None:
        return
    before = run(g, [iv(canary)], [iv(baseline)], [iv(evidence)])
    after = run(g, [iv(canary)], [iv(baseline)], [iv(evidence), iv(more, pod="new")])
    if before.status != "insufficient":
        assert after.status == before.status
    if after.status == "insufficient":
        assert before.status == "insufficient"


@settings(max_examples=200, deadline=None)
@given(canary=VALUES, baseline=VALUES, max_=LIMITS, ratio=RATIOS, higher=st.floats(0, 10))
def test_a_higher_canary_never_turns_a_breach_healthy(
        canary: float, baseline: float, max_: float | None, ratio: float | None,
        higher: float) -> None:
    g = _guardrail_or_none(max_, ratio, 0)
    if g is None:
        return
    before = run(g, [iv(canary)], [iv(baseline)], [iv(1)])
    after = run(g, [iv(canary + higher)], [iv(baseline)], [iv(1)])
    if before.status == "breach":
        assert after.status == "breach"


@settings(max_examples=200, deadline=None)
@given(canary=VALUES, baseline=st.floats(0.001, 10), max_=LIMITS, ratio=RATIOS)
def test_a_breach_is_exactly_a_canary_above_the_lower_limit(
        canary: float, baseline: float, max_: float | None, ratio: float | None) -> None:
    g = _guardrail_or_none(max_, ratio, 0)
    if g is None:
        return
    limits = [x for x in (max_, None if ratio is None else ratio * baseline) if x is not None]
    reading = run(g, [iv(canary)], [iv(baseline)], [iv(1)])
    assert reading.limit == min(limits)
    assert reading.status == ("breach" if canary > min(limits) else "healthy")
