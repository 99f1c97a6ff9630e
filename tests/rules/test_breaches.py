"""Sustained breaches (N in a row) at N-1 / N / N+1, and one evaluation cycle end to end.

The tracker acts on the N-th consecutive breach exactly once; only a healthy reading resets the
count. ``evaluate_all`` asks each distinct query once, in parallel, and turns every failure
(a timeout, a refused pool, a bug in judging) into a can't-evaluate reading rather than raising.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import pytest

from adapters.base import InstantValue, RangeSeries
from console.config import GuardrailSettings
from console.guardrails import (
    BreachTracker,
    GuardrailReading,
    Transition,
    evaluate,
    evaluate_all,
)

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def reading(status: str, name: str = "g") -> GuardrailReading:
    return GuardrailReading(name=name, status=status, ts=NOW)  # type: ignore[arg-type]


def statuses(tracker: BreachTracker, *seq: str, name: str = "g") -> list[list[Transition]]:
    return [tracker.update([reading(status, name)]) for status in seq]


# --- consecutive breaches: N-1 is not sustained, N is, once --------------------------------------


@pytest.mark.parametrize("n", [1, 2, 3, 5])
def test_n_minus_one_breaches_are_not_sustained_and_the_nth_is(n: int) -> None:
    tracker = BreachTracker({"g": n})
    for count in range(1, n):
        transitions = tracker.update([reading("breach")])
        assert [t.sustained for t in transitions] == ([False] if count == 1 else [])
        assert tracker.breaches("g") == count
        assert not tracker.is_sustained("g")
    [t] = tracker.update([reading("breach")])
    assert (t.sustained, t.breaches, t.consecutive) == (True, n, n)
    assert tracker.is_sustained("g")
    assert t.changed == (n == 1)
    assert tracker.update([reading("breach")]) == []  # the N+1-th says nothing new
    assert tracker.breaches("g") == n + 1 and tracker.is_sustained("g")


@pytest.mark.parametrize("between", ["cant_evaluate", "insufficient"])
def test_readings_we_cannot_judge_neither_add_nor_reset(between: str) -> None:
    tracker = BreachTracker({"g": 3})
    statuses(tracker, "breach", "breach", between)
    assert tracker.breaches("g") == 2 and tracker.status("g") == between
    [t] = tracker.update([reading("breach")])
    assert (t.sustained, t.breaches, t.previous) == (True, 3, between)


def test_a_healthy_reading_resets_the_count_one_short_of_the_bar() -> None:
    tracker = BreachTracker({"g": 3})
    statuses(tracker, "breach", "breach", "healthy")
    assert tracker.breaches("g") == 0
    results = statuses(tracker, "breach", "breach")
    assert [t.sustained for ts in results for t in ts] == [False]
    [t] = tracker.update([reading("breach")])
    assert t.sustained


def test_the_first_reading_is_a_change_from_unknown() -> None:
    tracker = BreachTracker({"g": 3})
    assert (tracker.status("g"), tracker.breaches("g"), tracker.budget("g")) == (
        "unknown", 0, "breaches 0/3")
    first = reading("healthy")
    [t] = tracker.update([first])
    assert (t.previous, t.status, t.breaches, t.sustained, t.changed) == (
        "unknown", "healthy", 0, False, True)
    assert t.reading is first
    assert tracker.update([reading("healthy")]) == []


def test_a_guardrail_the_tracker_does_not_know_acts_on_its_first_breach() -> None:
    tracker = BreachTracker({"g": 3})
    assert tracker.consecutive("other") == 1
    [t] = tracker.update([reading("breach", "other")])
    assert (t.sustained, t.consecutive) == (True, 1)


def test_the_tracker_reads_the_budget_from_the_config() -> None:
    config = [GuardrailSettings.model_validate({"name": "g", "query": "q{t=\"$track\"}",
                                                "max": 1, "consecutive": 4})]
    tracker = BreachTracker(config)
    assert tracker.consecutive("g") == 4 and tracker.budget("g") == "breaches 0/4"
    statuses(tracker, "breach", "breach")
    assert tracker.budget("g") == "breaches 2/4"


def test_restore_resumes_the_count_and_never_below_zero() -> None:
    tracker = BreachTracker({"g": 3})
    tracker.restore("g", "breach", 2)
    assert (tracker.status("g"), tracker.breaches("g")) == ("breach", 2)
    [t] = tracker.update([reading("breach")])
    assert (t.sustained, t.changed, t.breaches) == (True, False, 3)
    tracker.restore("g", "healthy", -4)
    assert tracker.breaches("g") == 0


def test_guardrails_are_counted_apart_and_reported_in_reading_order() -> None:
    tracker = BreachTracker({"a": 2, "b": 2})
    first = tracker.update([reading("breach", "b"), reading("breach", "a")])
    assert [(t.name, t.breaches) for t in first] == [("b", 1), ("a", 1)]
    second = tracker.update([reading("breach", "b"), reading("healthy", "a")])
    assert [(t.name, t.status, t.sustained) for t in second] == [
        ("b", "breach", True), ("a", "healthy", False)]


def test_a_transition_payload_carries_the_figures_and_the_count() -> None:
    full = GuardrailReading(name="g", status="breach", canary=0.05, baseline=0.01, limit=0.02,
                            evidence=120.0, detail="canary 5.00% > limit 2.00% (max)", ts=NOW)
    t = Transition("g", "healthy", "breach", 3, 3, True, full)
    assert t.to_payload() == {
        "canary": 0.05, "baseline": 0.01, "limit": 0.02, "evidence": 120.0,
        "detail": "canary 5.00% > limit 2.00% (max)", "name": "g", "status": "breach",
        "previous": "healthy", "breaches": 3, "consecutive": 3, "sustained": True,
    }
    assert t.record("rollback").to_payload() == {**t.to_payload(), "on_breach": "rollback"}
    bare = Transition("g", "breach", "breach", 4, 3, False)
    assert bare.to_payload() == {"name": "g", "status": "breach", "previous": "breach",
                                 "detail": "", "breaches": 4, "consecutive": 3,
                                 "sustained": False}
    assert not bare.changed


# --- one evaluation cycle -------------------------------------------------------------------------


class Source:
    """Answers by resolved query; a callable answer runs in the worker thread."""

    def __init__(self, answers: dict[str, Any]) -> None:
        self.answers = answers
        self.asked: list[str] = []
        self.threads: set[str] = set()
        self._lock = threading.Lock()

    def query(self, query: str) -> list[InstantValue]:
        with self._lock:
            self.asked.append(query)
            self.threads.add(threading.current_thread().name)
        answer = self.answers.get(query, [])
        if isinstance(answer, Exception):
            raise answer
        return answer() if callable(answer) else answer

    def query_range(self, query: str, start: datetime, end: datetime,
                    step: float) -> list[RangeSeries]:
        raise NotImplementedError


def value(v: float) -> list[InstantValue]:
    return [InstantValue(labels={}, ts=NOW.timestamp(), value=v)]


def g(name: str, metric: str, **kwargs: Any) -> GuardrailSettings:
    return GuardrailSettings.model_validate(
        {"name": name, "query": f'{metric}{{service="$service",track="$track"}}', **kwargs})


def q(metric: str, track: str) -> str:
    return f'{metric}{{service="api",track="{track}"}}'


def test_a_cycle_asks_each_distinct_query_once_and_answers_in_config_order() -> None:
    source = Source({q("err", "canary"): value(0.03), q("err", "baseline"): value(0.001),
                     q("p99", "canary"): value(0.1), q("p99", "baseline"): value(0.1),
                     q("reqs", "canary"): value(500)})
    guardrails = [
        g("p99", "p99", max_ratio_to_baseline=2.0),
        g("err", "err", max=0.02, evidence_query='reqs{service="$service",track="$track"}',
          min_evidence=100),
        g("err-again", "err", max=0.05),
    ]
    readings = evaluate_all(source, guardrails, "api", NOW, 30)
    assert [(r.name, r.status) for r in readings] == [
        ("p99", "healthy"), ("err", "breach"), ("err-again", "healthy")]
    assert readings[1].evidence == 500
    assert sorted(source.asked) == sorted(set(source.asked))
    assert len(source.asked) == 5
    # the private pool's threads say what they are (a stack dump of a stuck console names them)
    assert source.threads and all(name.startswith("guardrail") for name in source.threads)


def test_stable_mode_asks_only_the_baseline_track() -> None:
    source = Source({q("err", "baseline"): value(0.001), q("reqs", "baseline"): value(50)})
    guardrail = g("err", "err", max=0.02, evidence_query='reqs{service="$service",track="$track"}',
                  min_evidence=10)
    [r] = evaluate_all(source, [guardrail], "api", NOW, 30, mode="stable")
    assert (r.status, r.mode, r.evidence) == ("healthy", "stable", 50)
    assert sorted(source.asked) == [q("err", "baseline"), q("reqs", "baseline")]
    one = evaluate(source, guardrail, "api", NOW, 30, mode="stable")
    assert (one.status, one.mode, one.baseline) == ("healthy", "stable", 0.001)


def test_no_guardrails_no_queries() -> None:
    source = Source({})
    assert evaluate_all(source, [], "api", NOW, 30) == []
    assert source.asked == []


def test_a_hung_query_times_out_into_cant_evaluate_without_holding_the_cycle() -> None:
    release = threading.Event()

    def hang() -> list[InstantValue]:
        release.wait(30)
        return value(0.0)

    source = Source({q("err", "canary"): hang, q("err", "baseline"): value(0.0),
                     q("p99", "canary"): value(0.1), q("p99", "baseline"): value(0.1)})
    try:
        err, p99 = evaluate_all(source, [g("err", "err", max=0.02), g("p99", "p99", max=1)],
                                "api", NOW, 30, timeout_s=0.2)
        one = evaluate(source, g("err", "err", max=0.02), "api", NOW, 30, timeout_s=0.2)
    finally:
        release.set()
    assert (err.status, err.detail, err.error) == (
        "cant_evaluate", "query failed: query timed out after 0.2 s",
        "query timed out after 0.2 s")
    assert p99.status == "healthy"
    assert one.detail == "query failed: query timed out after 0.2 s"


def test_queries_beyond_the_private_pool_that_never_started_are_cancelled() -> None:
    """34 distinct queries, 32 threads: the last two are still queued when the cycle gives up."""
    release = threading.Event()

    def hang() -> list[InstantValue]:
        release.wait(30)
        return value(0.0)

    guardrails = [g(f"g{i}", f"m{i}", max=1) for i in range(17)]  # 34 distinct queries
    source = Source({q(f"m{i}", track): hang for i in range(17)
                     for track in ("canary", "baseline")})
    try:
        readings = evaluate_all(source, guardrails, "api", NOW, 30, timeout_s=1.0)
    finally:
        release.set()
    details = [r.detail for r in readings]
    assert all(r.status == "cant_evaluate" for r in readings)
    # a reading shows its first problem: the canary's (timed out), except for the last
    # guardrail, whose canary query was the 33rd submitted
    assert details.count("query failed: query was cancelled") == 1
    assert details.count("query failed: query timed out after 1 s") == 16


def test_a_shared_executor_is_used_and_left_running() -> None:
    source = Source({q("err", "canary"): value(0.01), q("err", "baseline"): value(0.0)})
    with ThreadPoolExecutor(max_workers=1) as pool:
        for _ in range(2):
            r = evaluate(source, g("err", "err", max=0.02), "api", NOW, 30, executor=pool)
            assert r.status == "healthy"


def test_a_pool_that_was_shut_down_gives_cant_evaluate() -> None:
    pool = ThreadPoolExecutor(max_workers=1)
    pool.shutdown()
    r = evaluate(Source({}), g("err", "err", max=0.02), "api", NOW, 30, executor=pool)
    assert r.status == "cant_evaluate"
    assert r.detail == "query failed: RuntimeError: cannot schedule new futures after shutdown"


def test_a_failing_source_gives_cant_evaluate_with_its_error() -> None:
    source = Source({q("err", "canary"): ConnectionError("refused")})
    r = evaluate(source, g("err", "err", max=0.02), "api", NOW, 30)
    assert (r.status, r.error) == ("cant_evaluate", "ConnectionError: refused")


def test_a_bug_while_judging_gives_cant_evaluate_not_an_exception() -> None:
    weird: Callable[[], list[Any]] = lambda: [object()]  # noqa: E731
    source = Source({q("err", "canary"): weird, q("err", "baseline"): value(0.0)})
    guardrails = [g("err", "err", max=0.02), g("p99", "p99", max=1)]
    broken, other = evaluate_all(source, guardrails, "api", NOW, 30, mode="canary")
    assert broken.status == "cant_evaluate"
    assert broken.detail == (
        "evaluation failed: AttributeError: 'object' object has no attribute 'value'")
    assert broken.error == "AttributeError: 'object' object has no attribute 'value'"
    assert broken.queries == {"canary": q("err", "canary"), "baseline": q("err", "baseline")}
    assert (broken.ts, broken.mode, broken.name) == (NOW, "canary", "err")
    assert other.name == "p99"
    stable = Source({q("err", "baseline"): weird})
    [broken] = evaluate_all(stable, [g("err", "err", max=0.02)], "api", NOW, 30, mode="stable")
    assert (broken.status, broken.mode) == ("cant_evaluate", "stable")


def test_the_allowed_clock_skew_reaches_every_judgement() -> None:
    ahead = [InstantValue(labels={}, ts=NOW.timestamp() + 6, value=0.01)]
    source = Source({q("err", "canary"): ahead, q("err", "baseline"): ahead})
    guardrail = g("err", "err", max=0.02)
    assert evaluate(source, guardrail, "api", NOW, 30).status == "healthy"
    for reading in (evaluate(source, guardrail, "api", NOW, 30, max_skew_s=5),
                    evaluate_all(source, [guardrail], "api", NOW, 30, max_skew_s=5)[0]):
        assert (reading.status, reading.detail) == (
            "cant_evaluate",
            "data is stamped 6 s in the future (allowed clock skew 5 s) for track=canary: a "
            "clock is wrong")
