"""Judgement per guardrail (issue 16), at its edges: the warn band, ``on_no_data``, shadow
guardrails, the initial delay after a stage change, and the Mann-Whitney comparison.

The pure parts (``judge``, ``compare``, the fold, ``advance_blocks``) are pinned here exactly at
each boundary; the engine's parts (pausing on missing data, never acting for a shadow) run on
the engine rig (a real store, a scripted metrics source).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from scipy.stats import mannwhitneyu

from adapters.base import InstantValue, MetricsError
from console import policy
from console.config import Config, GuardrailSettings
from console.guardrails import (
    BreachTracker,
    Comparison,
    GuardrailReading,
    compare,
    format_p,
    with_comparison,
)
from console.model import Kind
from console.stats import mann_whitney_u
from tests.rules.test_guardrail_judge import down, guardrail, iv, latency, run, up

from .engine_rig import Rig
from .support import CONFIG, Timeline, at_first_stage, codes, declared

# --- the warn band: WARN above warn × the limit, a breach above the limit -----------------------


def warned(**kwargs: Any) -> GuardrailSettings:
    return guardrail(max=0.02, warn=0.5, **kwargs)  # the band starts at 1.00%


def test_exactly_at_the_start_of_the_warn_band_is_healthy() -> None:
    reading = run(warned(), [iv(0.01)])
    assert reading.status == "healthy"
    assert reading.warn_limit == 0.01
    assert reading.detail == "canary 1.00% ≤ warn 1.00% < limit 2.00% (max)"


def test_a_hair_above_the_start_of_the_band_is_warn_and_says_a_person_decides() -> None:
    reading = run(warned(), [iv(up(0.01))])
    assert reading.status == "warn"
    assert reading.detail == ("canary 1.00% > warn 1.00% (50% of limit 2.00%, max): "
                              "a person decides")


def test_exactly_at_the_limit_is_still_warn_and_a_hair_above_breaches() -> None:
    assert run(warned(), [iv(0.02)]).status == "warn"
    breach = run(warned(), [iv(up(0.02))])
    assert breach.status == "breach" and breach.detail.startswith("canary 2.00% > limit 2.00%")


def test_the_band_follows_the_effective_limit_of_a_ratio() -> None:
    g = latency(max_ratio_to_baseline=2.0, warn=0.8)  # baseline 0.1 s → limit 0.2 s, band 0.16
    band = 0.8 * (2.0 * 0.1)
    assert run(g, [iv(band)], [iv(0.1)]).status == "healthy"
    reading = run(g, [iv(up(band))], [iv(0.1)])
    assert reading.status == "warn"
    assert reading.warn_limit == band
    assert "(80% of limit 0.20 s, 2.0× baseline 0.10 s)" in reading.detail


def test_without_a_band_nothing_is_warn() -> None:
    assert run(guardrail(max=0.02), [iv(0.02)]).status == "healthy"
    assert run(guardrail(max=0.02), [iv(0.02)]).warn_limit is None


@pytest.mark.parametrize("warn", [0.0, 1.0, -0.1, 1.5])
def test_a_band_must_lie_strictly_between_nothing_and_the_limit(warn: float) -> None:
    with pytest.raises(ValueError, match="warn"):
        guardrail(max=0.02, warn=warn)


def test_stable_mode_has_no_band() -> None:
    assert run(warned(), baseline=[iv(0.015)], mode="stable").status == "healthy"


def test_a_warn_neither_adds_to_nor_resets_the_breach_count() -> None:
    tracker = BreachTracker({"error-ratio": 3})

    def cycle(status: str) -> int:
        tracker.update([GuardrailReading("error-ratio", status)])  # type: ignore[arg-type]
        return tracker.breaches("error-ratio")

    assert [cycle(s) for s in ("breach", "warn", "breach", "warn", "healthy")] == [1, 1, 2, 2, 0]


# --- on_no_data ----------------------------------------------------------------------------------

NO_DATA_ANSWERS = {
    "no series": [],
    "NaN (0/0: no requests)": [iv(math.nan)],
}


@pytest.mark.parametrize("answer", NO_DATA_ANSWERS.values(), ids=NO_DATA_ANSWERS.keys())
@pytest.mark.parametrize(("policy_name", "status", "words"), [
    ("cant_evaluate", "cant_evaluate", ""),
    ("hold", "cant_evaluate", ": the canary holds until the commander resumes (on_no_data = hold)"),
    ("breach", "breach", ": counted as a breach (on_no_data = breach)"),
])
def test_each_no_data_policy(answer: list[InstantValue], policy_name: str, status: str,
                             words: str) -> None:
    reading = run(guardrail(max=0.02, on_no_data=policy_name), answer, [iv(0.001)])
    assert reading.status == status
    assert reading.no_data is True
    assert reading.detail.endswith("for track=canary" + words)
    assert reading.baseline == 0.001  # still graphed


def test_the_default_policy_is_cant_evaluate() -> None:
    assert guardrail(max=0.02).on_no_data == "cant_evaluate"
    assert run(guardrail(max=0.02), []).status == "cant_evaluate"


@pytest.mark.parametrize("policy_name", ["hold", "breach"])
def test_empty_evidence_is_no_data_too(policy_name: str) -> None:
    g = guardrail(max=0.02, on_no_data=policy_name, evidence_query="n{track=\"$track\"}",
                  min_evidence=10)
    reading = run(g, [iv(0.001)], evidence=[])
    assert reading.no_data is True
    assert reading.status == ("breach" if policy_name == "breach" else "cant_evaluate")
    assert reading.detail.startswith("no evidence data for track=canary")


@pytest.mark.parametrize("policy_name", ["hold", "breach"])
@pytest.mark.parametrize(("answer", "start"), [
    (MetricsError("connection refused"), "query failed"),
    ([iv(math.inf)], "value is +Inf"),
    ([iv(0.001, age_s=31)], "data is 31 s old"),
    ([iv(0.001, a="1"), iv(0.001, a="2")], "query gives 2 series"),
])
def test_data_we_cannot_trust_is_not_no_data(policy_name: str, answer: Any, start: str) -> None:
    """Only a query that answered with nothing is "no data"; a failure, an infinity, stale data
    or several series stay can't evaluate whatever on_no_data says."""
    reading = run(guardrail(max=0.02, on_no_data=policy_name), answer)
    assert reading.status == "cant_evaluate"
    assert reading.no_data is False
    assert reading.detail.startswith(start)


def test_no_data_on_the_stable_track_is_never_a_breach() -> None:
    reading = run(guardrail(max=0.02, on_no_data="breach"), baseline=[], mode="stable")
    assert reading.status == "cant_evaluate" and reading.no_data is False


# --- Mann-Whitney: our test against scipy's -----------------------------------------------------

#: Known samples: (canary, baseline) — ties, no ties, exact and asymptotic.
KNOWN = {
    "exact, canary clearly higher": ([0.031, 0.029, 0.035, 0.04, 0.033],
                                     [0.003, 0.004, 0.002, 0.005, 0.0031, 0.0029]),
    "exact, interleaved": ([1.0, 3.0, 5.0, 7.0], [2.0, 4.0, 6.0, 8.0, 9.0]),
    "asymptotic, ties": ([1, 2, 2, 3, 3, 3, 4, 5, 5, 6], [1, 1, 2, 2, 2, 3, 3, 4, 4, 5]),
    "asymptotic, no ties, 12 each": ([0.21 + i * 0.013 for i in range(12)],
                                     [0.2 + i * 0.011 for i in range(12)]),
    "all equal": ([0.5] * 9, [0.5] * 9),
    "one each": ([2.0], [1.0]),
}


@pytest.mark.parametrize(("canary", "baseline"), KNOWN.values(), ids=KNOWN.keys())
@pytest.mark.parametrize("alternative", ["greater", "less", "two-sided"])
def test_mann_whitney_matches_scipy(canary: list[float], baseline: list[float],
                                    alternative: Any) -> None:
    ours = mann_whitney_u(canary, baseline, alternative)
    theirs = mannwhitneyu(canary, baseline, alternative=alternative)
    assert ours.u == pytest.approx(float(theirs.statistic), abs=1e-12)
    assert ours.p == pytest.approx(float(theirs.pvalue), rel=1e-9, abs=1e-15)


def test_mann_whitney_uses_the_exact_distribution_up_to_eight_without_ties() -> None:
    assert mann_whitney_u([1.0] * 1 + [2.0], [3.0] * 1 + [4.0]).method == "exact"
    nine = [float(i) for i in range(9)]
    assert mann_whitney_u(nine, [x + 0.5 for x in nine]).method == "asymptotic"
    assert mann_whitney_u([1, 2, 8.0], [float(x) for x in range(9, 18)]).method == "exact"
    assert mann_whitney_u([1.0, 1.0], [2.0, 3.0]).method == "asymptotic"  # a tie


def test_an_empty_sample_is_refused() -> None:
    with pytest.raises(ValueError):
        mann_whitney_u([], [1.0])


def compared(gate: bool = False, min_samples: int = 5, alpha: float = 0.05,
             **kwargs: Any) -> GuardrailSettings:
    return guardrail(max=0.02, mann_whitney={"gate": gate, "min_samples": min_samples,
                                             "alpha": alpha}, **kwargs)


HIGH = [0.011, 0.012, 0.013, 0.014, 0.015]
LOW = [0.001, 0.002, 0.003, 0.004, 0.005]


def test_one_sample_short_of_min_samples_says_it_waits() -> None:
    comparison = compare(compared(), HIGH[:4], LOW)
    assert comparison is not None and comparison.p is None
    assert comparison.words == ("Mann-Whitney: waiting for 5 samples of each track "
                                "(4 canary, 5 baseline samples, not gating)")


def test_exactly_min_samples_gives_a_p_value_and_missing_samples_do_not_count() -> None:
    comparison = compare(compared(), [*HIGH, None, math.nan], [None, *LOW])
    assert comparison is not None
    assert (comparison.n_canary, comparison.n_baseline) == (5, 5)
    expected = mannwhitneyu(HIGH, LOW, alternative="greater").pvalue
    assert comparison.p == pytest.approx(expected)
    assert comparison.higher
    assert comparison.words == (f"Mann-Whitney: canary higher, p {format_p(expected)} < α 0.05 "
                                "(5 canary, 5 baseline samples, not gating)")


def test_p_exactly_at_alpha_is_not_significant() -> None:
    p = mann_whitney_u(HIGH, LOW).p  # 1/252 for 5 vs 5, all above
    at = Comparison(5, 5, 5, alpha=p, gate=True, p=p)
    assert not at.higher
    assert Comparison(5, 5, 5, alpha=up(p), gate=True, p=p).higher


def test_p_values_are_written_short() -> None:
    assert format_p(0.0312) == "= 0.0312"
    assert format_p(0.001) == "= 0.001"
    assert format_p(down(0.001)) == "< 0.001"


def test_no_comparison_without_its_table() -> None:
    assert compare(guardrail(max=0.02), HIGH, LOW) is None


def healthy() -> GuardrailReading:
    return GuardrailReading("error-ratio", "healthy", detail="canary 0.10% ≤ limit 2.00% (max)")


def test_a_gating_comparison_breaches_a_canary_significantly_higher() -> None:
    comparison = compare(compared(gate=True), HIGH, LOW)
    reading = with_comparison(healthy(), comparison)
    assert reading.status == "breach"
    assert reading.detail.startswith("Mann-Whitney: canary higher, p = 0.00397 < α 0.05 "
                                     "(5 canary, 5 baseline samples);")


def test_a_gating_comparison_with_too_few_samples_is_insufficient_evidence() -> None:
    reading = with_comparison(healthy(), compare(compared(gate=True), HIGH[:2], LOW))
    assert reading.status == "insufficient"
    assert "waiting for 5 samples" in reading.detail


def test_a_gating_comparison_finding_no_difference_keeps_the_status() -> None:
    reading = with_comparison(healthy(), compare(compared(gate=True), LOW, HIGH))
    assert reading.status == "healthy" and reading.comparison is not None


def test_a_comparison_that_does_not_gate_never_changes_the_status() -> None:
    for samples in ((HIGH, LOW), (HIGH[:1], LOW)):
        reading = with_comparison(healthy(), compare(compared(gate=False), *samples))
        assert reading.status == "healthy" and reading.comparison is not None


def test_a_comparison_never_softens_a_worse_reading() -> None:
    breach = GuardrailReading("error-ratio", "breach", detail="canary 3% > limit 2%")
    reading = with_comparison(breach, compare(compared(gate=True), LOW, HIGH))
    assert reading.status == "breach" and reading.detail == "canary 3% > limit 2%"


def test_a_warn_can_become_a_breach_by_the_comparison() -> None:
    warn = GuardrailReading("error-ratio", "warn", detail="canary in the band")
    assert with_comparison(warn, compare(compared(gate=True), HIGH, LOW)).status == "breach"


# --- WARN holds advance until a person decides --------------------------------------------------


def warned_at_first_stage() -> Timeline:
    timeline = at_first_stage()
    timeline.guardrail("error-ratio", "warn", detail="canary 1.50% > warn 1.00%")
    return timeline


def test_a_warn_blocks_advance_with_its_own_overridable_block() -> None:
    timeline = warned_at_first_stage()
    [block] = policy.advance_blocks(timeline.state, timeline.now)
    assert block.code == "warn" and block.overridable
    assert block.words == ("WARN at 1% — a person decides: error-ratio since 22:05:05: "
                           "canary 1.50% > warn 1.00%")


def test_a_warn_that_went_back_below_the_band_still_waits_for_a_person() -> None:
    timeline = warned_at_first_stage()
    timeline.guardrail("error-ratio", "healthy")
    [block] = policy.advance_blocks(timeline.state, timeline.now)
    assert block.code == "warn"
    assert "error-ratio since 22:05:05 (no longer)" in block.words


def test_time_never_decides_a_warn() -> None:
    timeline = warned_at_first_stage()
    timeline.guardrail("error-ratio", "healthy")
    timeline.wait(86_400)
    assert codes(timeline) == ["warn"]


def test_a_warn_is_decided_by_an_override_with_a_typed_reason() -> None:
    blocks = policy.advance_blocks(warned_at_first_stage().state, warned_at_first_stage().now)
    with pytest.raises(policy.Refused, match="override with a specific reason"):
        policy.check_overrides(blocks, {"warn": "ok"})
    [record] = policy.check_overrides(blocks, {"warn": "p99 is noisy at 1 %, error budget ok"})
    assert record.block == "warn" and record.reason.startswith("p99 is noisy")


def test_the_next_stage_starts_without_the_old_warn() -> None:
    timeline = warned_at_first_stage()
    timeline.weight(10, 1)
    assert timeline.state.stage_warnings == {}
    assert "warn" not in codes(timeline)


def test_a_warn_is_not_counted_among_the_unhealthy_guardrails() -> None:
    timeline = warned_at_first_stage()
    timeline.guardrail("p99-latency", "breach")
    assert codes(timeline) == ["warn", "guardrails"]
    assert policy.advance_blocks(timeline.state, timeline.now)[1].words == (
        "guardrails not healthy: p99-latency BREACH")


def test_a_warn_on_the_stable_track_or_without_canary_traffic_holds_nothing() -> None:
    timeline = at_first_stage()
    timeline.guardrail("error-ratio", "warn", mode="stable")
    assert timeline.state.stage_warnings == {}
    before = declared()
    before.guardrail("error-ratio", "warn")
    assert before.state.stage_warnings == {}


# --- shadow guardrails: recorded, never gating --------------------------------------------------

SHADOW = Config.model_validate({
    **CONFIG.model_dump(exclude_none=True),
    "guardrails": [dict(g, shadow=True) if g["name"] == "p99-latency" else g
                   for g in CONFIG.model_dump(exclude_none=True)["guardrails"]],
})


def shadow_at_first_stage() -> Timeline:
    timeline = declared(config=SHADOW)
    timeline.approve_all()
    timeline.preflight()
    timeline.weight(1, 0)
    timeline.all_healthy()
    timeline.wait(300)
    return timeline


def test_the_declaration_records_a_shadow_and_only_then() -> None:
    timeline = shadow_at_first_stage()
    guardrails = timeline.events[0].payload["guardrails"]
    assert guardrails[1] == {"name": "p99-latency", "consecutive": 2, "on_breach": "hold",
                             "shadow": True}
    assert "shadow" not in guardrails[0]
    assert timeline.state.guardrails["p99-latency"].shadow is True


@pytest.mark.parametrize("status", ["breach", "warn", "cant_evaluate", "insufficient"])
def test_a_shadow_guardrail_never_blocks_advance(status: str) -> None:
    timeline = shadow_at_first_stage()
    timeline.guardrail("p99-latency", status)
    assert codes(timeline) == []
    assert timeline.state.guardrails["p99-latency"].status == status  # but it is recorded


def test_a_shadow_recorded_in_a_status_change_counts_too() -> None:
    timeline = at_first_stage()
    timeline.guardrail("p99-latency", "breach", shadow=True)
    assert codes(timeline) == []


# --- the initial delay after each stage change --------------------------------------------------

DELAYED = Config.model_validate({
    **CONFIG.model_dump(exclude_none=True),
    "guardrails": [dict(g, initial_delay_s=60.0) if g["name"] == "error-ratio" else g
                   for g in CONFIG.model_dump(exclude_none=True)["guardrails"]],
})


def delayed_stage() -> Timeline:
    timeline = declared(config=DELAYED)
    timeline.approve_all()
    timeline.preflight()
    timeline.guardrail("error-ratio", "healthy")
    timeline.weight(1, 0)
    return timeline


def test_a_stage_change_starts_the_delay_and_forgets_the_old_status() -> None:
    timeline = delayed_stage()
    guard = timeline.state.guardrails["error-ratio"]
    assert guard.status == "unknown"
    assert guard.delay_left_s(timeline.now) == 60
    assert guard.detail == "initial delay 1m 00s after the stage change: judged from 22:01:05"
    assert timeline.state.guardrails["p99-latency"].delay_left_s(timeline.now) == 0


def test_the_delay_blocks_advance_until_exactly_its_end() -> None:
    timeline = delayed_stage()
    timeline.guardrail("p99-latency", "healthy")
    timeline.wait(59.999)
    blocks = policy.advance_blocks(timeline.state, timeline.now)
    delay = next(b for b in blocks if b.code == "delay")
    assert delay.overridable
    assert delay.words == "initial delay, guardrails not judged yet: error-ratio in 0s"
    assert "guardrails" not in [b.code for b in blocks]  # not judged is not "not healthy"
    timeline.wait(0.001)
    assert "delay" not in codes(timeline)


def test_every_stage_change_starts_the_delay_again() -> None:
    timeline = delayed_stage()
    timeline.wait(300)
    timeline.guardrail("error-ratio", "healthy")
    timeline.weight(10, 1)
    assert timeline.state.guardrails["error-ratio"].delay_left_s(timeline.now) == 60


def test_an_abort_to_zero_starts_no_delay() -> None:
    timeline = delayed_stage()
    timeline.wait(300)
    timeline.guardrail("error-ratio", "healthy")
    timeline.weight(0, -1, action="abort")
    assert timeline.state.guardrails["error-ratio"].status == "healthy"


# --- the engine: on_no_data = hold pauses once per gap; a shadow never acts ---------------------


@pytest.fixture
def engine_rig(tmp_path: Path) -> Iterator[Any]:
    rigs: list[Rig] = []

    def build(**guardrail: Any) -> Rig:
        directory = tmp_path / str(len(rigs))
        directory.mkdir()
        rig = Rig(directory, "rollback", **guardrail)
        rigs.append(rig)
        rig.to_first_stage()
        return rig

    yield build
    for rig in rigs:
        rig.close()


def test_no_data_with_hold_pauses_the_canary_once_per_gap(engine_rig: Any) -> None:
    rig = engine_rig(on_no_data="hold")
    rig.poll(0.001)
    rig.poll(None)
    [paused] = rig.events(Kind.PAUSED)
    assert paused.actor == "warroom"
    assert paused.payload["reason"] == "no data for error-ratio (on_no_data = hold)"
    rig.engine.resume("data is back in Grafana")
    rig.poll(None)  # the same gap: the commander's resume stands
    assert len(rig.events(Kind.PAUSED)) == 1
    rig.poll(0.001)
    rig.poll(None)  # a new gap
    assert len(rig.events(Kind.PAUSED)) == 2


def test_no_data_with_cant_evaluate_never_pauses(engine_rig: Any) -> None:
    rig = engine_rig()
    rig.poll(None)
    assert rig.events(Kind.PAUSED) == []
    assert rig.engine.state.guardrails["error-ratio"].status == "cant_evaluate"


def test_no_data_with_breach_counts_to_the_action(engine_rig: Any) -> None:
    rig = engine_rig(on_no_data="breach")
    for _ in range(3):
        rig.poll(None)
    [action] = rig.events(Kind.GUARDRAIL_ACTION)
    assert action.payload["action"] == "rollback"
    changed = rig.events(Kind.GUARDRAIL_CHANGED)[0].payload
    assert changed["no_data"] is True and changed["status"] == "breach"


def test_a_shadow_guardrail_breaches_is_recorded_and_never_acts(engine_rig: Any) -> None:
    rig = engine_rig(shadow=True)
    for _ in range(5):
        rig.poll(0.05)
    changes = rig.events(Kind.GUARDRAIL_CHANGED)
    assert changes and all(e.payload["shadow"] is True for e in changes)
    assert rig.engine.state.guardrails["error-ratio"].status == "breach"
    assert rig.engine.state.guardrails["error-ratio"].breaches == 5
    assert rig.events(Kind.GUARDRAIL_ACTION) == []
    assert rig.events(Kind.ROLLBACK_REQUESTED) == []
    assert "guardrails" not in [b.code for b in rig.engine.advance_blocks()]


def test_the_engine_does_not_judge_in_the_initial_delay(engine_rig: Any) -> None:
    rig = engine_rig(initial_delay_s=5.0)
    rig.poll(0.05)  # 2 s into the delay
    rig.poll(0.05)  # 4 s
    assert rig.events(Kind.GUARDRAIL_CHANGED) == []
    assert rig.engine.state.guardrails["error-ratio"].status == "unknown"
    rig.poll(0.05)  # 6 s: judged
    [change] = rig.events(Kind.GUARDRAIL_CHANGED)
    assert change.payload["previous"] == "unknown" and change.payload["status"] == "breach"
    assert change.payload["breaches"] == 1


def test_the_engine_compares_the_samples_of_the_stage(engine_rig: Any) -> None:
    rig = engine_rig(mann_whitney={"gate": True, "min_samples": 4})
    values = [0.010, 0.011, 0.012, 0.013]
    for value in values[:3]:
        rig.poll(value)
    assert rig.engine.state.guardrails["error-ratio"].status == "insufficient"
    rig.poll(values[3])
    state = rig.engine.state.guardrails["error-ratio"]
    assert state.status == "breach"  # canary 1 % against a baseline of 0.1 %, 4 vs 4
    expected = mannwhitneyu(values, [0.001] * 4, alternative="greater").pvalue
    assert state.comparison.startswith(f"Mann-Whitney: canary higher, p {format_p(expected)}")
    reading = rig.engine.last_readings[0]
    assert reading.comparison is not None
    assert (reading.comparison.n_canary, reading.comparison.n_baseline) == (4, 4)


# --- the rule that decided, recorded with the queries as sent (issue 16, item 2) ----------------


@pytest.mark.parametrize(("g", "canary", "baseline", "rule"), [
    (guardrail(max=0.02), [iv(0.03)], None, "max"),
    (latency(max_ratio_to_baseline=2.0), [iv(0.3)], [iv(0.1)], "max_ratio_to_baseline"),
    (warned(), [iv(0.015)], None, "warn"),
    (guardrail(max=0.02), [iv(0.001)], None, "every limit holds"),
    (guardrail(max=0.02), [iv(math.inf)], None, "untrusted data"),
    (guardrail(max=0.02, on_no_data="breach"), [], None, "on_no_data = breach"),
])
def test_each_reading_names_the_rule_that_decided(g: GuardrailSettings, canary: Any,
                                                  baseline: Any, rule: str) -> None:
    assert run(g, canary, baseline).rule == rule


def test_a_gating_comparison_names_itself() -> None:
    assert with_comparison(healthy(), compare(compared(gate=True), HIGH, LOW)).rule == \
        "mann_whitney"
    assert with_comparison(healthy(), compare(compared(gate=True), HIGH[:1], LOW)).rule == \
        "mann_whitney (too few samples)"


def test_a_status_change_records_its_rule_and_queries_and_the_fold_keeps_them(
        engine_rig: Any) -> None:
    rig = engine_rig()
    rig.poll(0.05)
    change = rig.events(Kind.GUARDRAIL_CHANGED)[0].payload
    assert change["rule"] == "max"
    assert change["queries"]["canary"] == 'sim:error_ratio{service="redaction-api", ' \
                                          'track="canary"}'
    guard = rig.engine.state.guardrails["error-ratio"]
    assert guard.rule == "max" and guard.queries == change["queries"]
