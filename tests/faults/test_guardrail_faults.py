"""A misbehaving Prometheus never gives a false verdict, and no action is taken on bad data.

Each fault of the fake Prometheus (transport faults and data faults) is injected under two data
sets: one a correct judge would call healthy, one it would call a breach. Under the fault every
guardrail that depends on the faulty data is "can't evaluate", with the reason in its detail:
never healthy (that would let ``advance`` through), never a breach (that would roll back a good
build). Then the real engine runs an incident at 1 % against the fake Prometheus and the fake
deploy API, with ``on_breach = "rollback"`` after a single breach: under every fault it records
can't-evaluate and touches nothing, and once the fault ends it judges normally again: a real
breach that follows a trickling Prometheus is acted on.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from adapters.prometheus import PrometheusMetrics
from adapters.settings import PrometheusSettings
from console.config import GuardrailSettings
from console.guardrails import evaluate_all
from console.model import Kind
from tests.faults.conftest import LONG, Tally
from tests.faults.fakes import (
    ALL_PROMETHEUS_FAULTS,
    HTTP_FAULTS,
    FakeDeployApi,
    FakePrometheus,
)
from tests.integration.engine_support import ROSTER, LiveIncident, make_config

DEADLINE_S = 1.0 if LONG else 0.6
SLACK_S = 1.5
MAX_LIMIT = 0.1
DATA = {"healthy": (0.01, 0.01), "breaching": (0.5, 0.01)}

GUARDRAILS: list[dict[str, Any]] = [
    {"name": "error-max", "query": 'errors{track="$track"}', "max": MAX_LIMIT,
     "consecutive": 1, "on_breach": "rollback"},
    {"name": "error-vs-baseline", "query": 'errors{track="$track"}', "max_ratio_to_baseline": 3,
     "consecutive": 1, "on_breach": "rollback"},
]
#: Words the detail of a can't-evaluate reading gives for each fault.
REASONS = {
    "down": "connection refused", "500": "HTTP 500", "503": "HTTP 503",
    "slow": "within", "hang": "within", "drip": "no complete answer within",
    "reset": "connection reset", "invalid_json": "not JSON", "html": "HTML page",
    "429": "HTTP 429", "empty_body": "not JSON", "nan": "NaN", "inf": "+Inf",
    "empty": "no data", "stale": "old", "future": "in the future",
    "status_error": "status=error", "two_series": "2 series", "bad_value": "not a number",
    "bad_timestamp": "unreadable timestamp",
}


@pytest.fixture
def metrics(prometheus: FakePrometheus) -> Iterator[PrometheusMetrics]:
    source = PrometheusMetrics(PrometheusSettings.model_validate(
        prometheus.metrics(timeout_s=DEADLINE_S / 2, deadline_s=DEADLINE_S)))
    yield source
    source.close()


def _evaluate(metrics: PrometheusMetrics) -> tuple[list[Any], float]:
    guardrails = [GuardrailSettings.model_validate(g) for g in GUARDRAILS]
    started = time.monotonic()
    readings = evaluate_all(metrics, guardrails, "payments", datetime.now(UTC), max_age_s=30,
                            timeout_s=DEADLINE_S * 3, max_skew_s=30)
    return readings, time.monotonic() - started


@pytest.mark.parametrize("data", sorted(DATA))
@pytest.mark.parametrize("fault", sorted(ALL_PROMETHEUS_FAULTS))
def test_no_fault_gives_a_verdict(prometheus: FakePrometheus, metrics: PrometheusMetrics,
                                  fault: str, data: str, tally: Tally) -> None:
    canary, baseline = DATA[data]
    prometheus.set_tracks("errors", canary, baseline)
    prometheus.set_fault(fault, slow_s=DEADLINE_S * 3, drip_s=0.25)
    readings, elapsed = _evaluate(metrics)
    prometheus.clear_faults()
    tally.add("guardrail evaluations under a Prometheus fault", len(readings))
    false = [r for r in readings if r.status != "cant_evaluate"]
    tally.bad_outcome("false verdicts (healthy or breach on bad data)", len(false))
    assert not false, [(r.name, r.status, r.detail) for r in false]
    for reading in readings:
        assert REASONS[fault].lower() in reading.detail.lower(), (fault, reading.detail)
    assert elapsed < DEADLINE_S + SLACK_S, elapsed
    # the fault is over: the next evaluation judges
    readings, _ = _evaluate(metrics)
    expected = "healthy" if data == "healthy" else "breach"
    assert [r.status for r in readings] == [expected, expected], [r.detail for r in readings]


@pytest.mark.parametrize("fault", sorted(set(ALL_PROMETHEUS_FAULTS) - {"down"}) if LONG else
                         ["drip", "two_series", "future", "nan", "html", "empty"])
def test_a_fault_on_the_baseline_alone_blocks_only_the_ratio_limit(
    prometheus: FakePrometheus, metrics: PrometheusMetrics, fault: str, tally: Tally
) -> None:
    prometheus.set_tracks("errors", 0.01, 0.01)
    prometheus.set_fault(fault, endpoint="baseline", slow_s=DEADLINE_S * 3, drip_s=0.25)
    readings, _ = _evaluate(metrics)
    prometheus.clear_faults()
    by_name = {r.name: r for r in readings}
    # the absolute limit needs only the canary, which is fine: judged, and truly healthy
    assert by_name["error-max"].status == "healthy"
    # the ratio limit needs the baseline: it cannot be checked
    ratio = by_name["error-vs-baseline"]
    tally.bad_outcome("false verdicts (healthy or breach on bad data)",
                      int(ratio.status != "cant_evaluate"))
    assert ratio.status == "cant_evaluate", ratio.detail
    assert ratio.detail.endswith("the ratio limit can't be checked"), ratio.detail


# --- the engine: no action on bad data, and recovery ---------------------------------------------


@pytest.fixture
def incident(tmp_path: Path, prometheus: FakePrometheus) -> Iterator[tuple[LiveIncident,
                                                                            FakeDeployApi]]:
    with FakeDeployApi() as api:
        config = make_config(
            metrics=prometheus.metrics(timeout_s=DEADLINE_S / 2, deadline_s=DEADLINE_S),
            traffic=api.traffic(), deploy=api.deploy(), guardrails=GUARDRAILS,
            poll_interval_s=1.0)  # the engine waits 2 s for a query: longer than its deadline
        assert set(ROSTER) <= set(config.roster)
        prometheus.set_tracks("errors", 0.01, 0.01)
        run = LiveIncident(tmp_path, config, "payments")
        try:
            run.prepare()
            assert run.engine.advance().kind == Kind.WEIGHT_SET
            assert api.weight == 1
            yield run, api
        finally:
            run.close()


ENGINE_FAULTS = sorted(ALL_PROMETHEUS_FAULTS) if LONG else [
    "drip", "hang", "html", "status_error", "nan", "future", "two_series", "empty", "down"]


def test_under_every_fault_the_engine_records_cant_evaluate_and_acts_on_nothing(
    incident: tuple[LiveIncident, FakeDeployApi], prometheus: FakePrometheus, tally: Tally
) -> None:
    run, api = incident
    prometheus.set_tracks("errors", *DATA["breaching"])  # a naive judge would roll back
    writes_before = [r for r in api.requests if r.method != "GET"]
    for fault in ENGINE_FAULTS:
        prometheus.set_fault(fault, slow_s=DEADLINE_S * 3, drip_s=0.25)
        for _ in range(2):
            started = time.monotonic()
            run.poll()
            elapsed = time.monotonic() - started
            tally.add("engine polls under a Prometheus fault")
            assert elapsed < run.engine._query_timeout_s() + SLACK_S, (fault, elapsed)
            # the recorded status (an event at each change) and the reading on screen now
            statuses = {g.name: g.status for g in run.state.guardrails.values()}
            assert set(statuses.values()) == {"cant_evaluate"}, (fault, run.describe())
            for reading in run.engine.last_readings:
                assert REASONS[fault].lower() in reading.detail.lower(), (fault, reading.detail)
        prometheus.clear_faults()
    acted = [e for e in run.events() if e.kind in (Kind.ROLLBACK_REQUESTED, Kind.GUARDRAIL_ACTION)]
    writes = [r for r in api.requests if r.method != "GET"]
    tally.bad_outcome("actions taken on bad data", len(acted) + len(writes) - len(writes_before))
    assert not acted, [e.payload for e in acted]
    assert writes == writes_before and api.weight == 1 and api.rollbacks == []
    assert run.state.canary_percent == 1


#: Data that cannot be trusted although every value in it is healthy: stamped in the future
#: (beyond the clock-skew allowance), or partial (a series missing, one series too many, a value
#: or a timestamp that does not parse). (fault, the one track it hits or None for both)
UNTRUSTED_HEALTHY = [("future", None), ("future", "baseline"), ("empty", "canary"),
                     ("empty", "baseline"), ("two_series", "canary"), ("bad_value", "canary"),
                     ("bad_timestamp", None)]


@pytest.mark.parametrize(("fault", "track"), UNTRUSTED_HEALTHY,
                         ids=[f"{f}-{t or 'both'}" for f, t in UNTRUSTED_HEALTHY])
def test_untrusted_healthy_data_is_cant_evaluate_and_blocks_advance(
    incident: tuple[LiveIncident, FakeDeployApi], prometheus: FakePrometheus, fault: str,
    track: str | None, tally: Tally,
) -> None:
    """The report: samples stamped 10 minutes in the future were judged healthy and did not
    block advance. Healthy values, untrusted data: can't evaluate, and ``advance`` is refused."""
    from console.policy import Refused

    run, api = incident
    run.poll()
    assert "guardrails" not in {b.code for b in run.engine.advance_blocks()}, run.describe()
    prometheus.set_fault(fault, endpoint=track)
    run.poll()
    statuses = {g.name: g.status for g in run.state.guardrails.values()}
    # a fault on the baseline alone leaves the absolute limit judged on a trustworthy canary
    untrusted = ["error-vs-baseline"] if track == "baseline" else list(statuses)
    false = [name for name in untrusted if statuses[name] != "cant_evaluate"]
    tally.bad_outcome("false verdicts (healthy or breach on bad data)", len(false))
    assert not false, (fault, track, run.describe())
    blocks = {b.code: b.words for b in run.engine.advance_blocks()}
    assert "can't evaluate" in blocks.get("guardrails", ""), blocks
    with pytest.raises(Refused, match="guardrails not healthy"):
        run.engine.advance()
    tally.add("advances refused on untrusted healthy data")
    assert api.weight == 1 and run.state.canary_percent == 1
    prometheus.clear_faults()
    run.poll()  # trustworthy again: judged healthy, advance is free
    assert "guardrails" not in {b.code for b in run.engine.advance_blocks()}, run.describe()


def test_after_a_trickling_prometheus_recovers_a_real_breach_is_acted_on(
    incident: tuple[LiveIncident, FakeDeployApi], prometheus: FakePrometheus, tally: Tally
) -> None:
    """The report: after the trickle, the guardrails stayed can't-evaluate and a breach that
    followed was never acted on."""
    run, api = incident
    prometheus.set_fault("drip", drip_s=0.25)
    for _ in range(3 if LONG else 2):
        run.poll()
        assert {g.status for g in run.state.guardrails.values()} == {"cant_evaluate"}
    prometheus.clear_faults()
    run.poll()
    assert {g.status for g in run.state.guardrails.values()} == {"healthy"}, run.describe()
    prometheus.set_tracks("errors", *DATA["breaching"])
    run.poll()
    statuses = {g.name: g.status for g in run.state.guardrails.values()}
    assert statuses["error-max"] == "breach", run.describe()
    kinds = run.kinds()
    acted = Kind.ROLLBACK_REQUESTED in kinds
    tally.bad_outcome("real breaches not acted on after a fault ended", int(not acted))
    assert acted, run.describe()
    assert api.rollbacks == ["v1.4.1"] and api.weight == 0


def test_the_transport_faults_are_the_ones_the_adapter_suite_covers() -> None:
    assert set(HTTP_FAULTS) <= set(REASONS) and set(ALL_PROMETHEUS_FAULTS) == set(REASONS)


# --- the engine: a trickling deploy API ends each action with a recorded failure -----------------


@pytest.mark.parametrize("fault", ["drip", "hang", "slow"] if LONG else ["drip"])
def test_a_stalling_deploy_api_ends_advance_and_rollback_in_a_recorded_failure(
    incident: tuple[LiveIncident, FakeDeployApi], fault: str, tally: Tally
) -> None:
    """The report: a weight PUT that trickled never got an outcome; a rollback POST that trickled
    left the canary at 10 % with no rollback_failed."""
    run, api = incident
    run.poll()  # healthy at 1 %: nothing but the API stands between us and 10 %
    deadline_s = run.config.traffic.deadline_s  # type: ignore[union-attr]
    api.set_fault(fault, endpoint="set_weight", drip_s=0.25, slow_s=deadline_s * 3)
    started = time.monotonic()
    event = run.engine.advance()
    elapsed = time.monotonic() - started
    tally.add("deploy actions against a stalling API")
    tally.bad_outcome("deploy actions without an outcome within the deadline",
                      int(event.kind != Kind.WEIGHT_FAILED or elapsed > deadline_s + SLACK_S))
    assert event.kind == Kind.WEIGHT_FAILED, event.payload
    assert elapsed < deadline_s + SLACK_S, elapsed
    error = str(event.payload["error"])
    assert "within" in error and "it may have been applied: read the state back" in error, error
    # the rollback: its POST stalls too, and still ends, recorded, within its deadline
    api.clear_faults()
    api.set_fault(fault, endpoint="rollback", drip_s=0.25, slow_s=deadline_s * 3)
    started = time.monotonic()
    run.engine.request_rollback("drill: the deploy API stalls")
    elapsed = time.monotonic() - started
    # The stalled POST reached the API (which acted on it): before calling it failed, the
    # engine asks the API for the operation by its idempotency key, finds it, and records the
    # rollback as started, saying the call itself did not answer. Never sent again.
    outcome = run.events(Kind.ROLLBACK_FAILED) + run.events(Kind.ROLLBACK_STARTED)
    assert len(outcome) == 1, run.describe()
    said = str(outcome[0].payload.get("error") or outcome[0].payload.get("detail"))
    assert "within" in said, said
    if api.rollbacks:
        assert outcome[0].kind == Kind.ROLLBACK_STARTED and "the deploy system has" in said
    # the deployer's deadline, the look-up by key, then the weight-0 call that follows it
    assert elapsed < 3 * deadline_s + SLACK_S, elapsed
    assert len(api.requests_to("rollback")) == 1  # never re-sent
    assert len(api.requests_to("rollback_status")) == 1
    api.clear_faults()
