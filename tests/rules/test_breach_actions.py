"""A sustained breach acts by itself, per ``on_breach``, on exactly the N-th breaching poll.

The engine's guardrail loop on a real store, the simulator's traffic and deployer, an injected
clock, and a scripted metrics source (so each poll's verdict is chosen, not waited for):
N-1 breaching polls do nothing, the N-th records one action (and, for ``rollback``, an automatic
rollback request), the N+1-th adds nothing; a poll we cannot judge neither counts nor resets; a
restarted engine resumes the count from the record.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.base import MetricsError
from console.model import Kind

from .engine_rig import N, Rig


@pytest.fixture(params=["alert", "hold", "rollback"])
def rig(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Rig]:
    rig = Rig(tmp_path, request.param)
    rig.to_first_stage()
    yield rig
    rig.close()


BREACH = 0.05  # max is 0.02


def assert_acted_once(rig: Rig) -> None:
    on_breach = rig.config.guardrails[0].on_breach
    [action] = rig.events(Kind.GUARDRAIL_ACTION)
    assert action.payload == {"name": "error-ratio", "action": on_breach, "breaches": N}
    requests = rig.events(Kind.ROLLBACK_REQUESTED)
    if on_breach == "rollback":
        [request] = requests
        assert request.payload["automatic"] is True
        assert request.payload["reason"] == f"sustained breach of error-ratio ({N} in a row)"
    else:
        assert requests == []
        assert rig.engine.state.canary_percent == 1  # alert and hold never move anything


def test_n_minus_one_breaches_do_nothing_and_the_nth_acts_once(rig: Rig) -> None:
    for _ in range(N - 1):
        rig.poll(BREACH)
    assert rig.events(Kind.GUARDRAIL_ACTION) == []
    assert rig.engine.state.guardrails["error-ratio"].breaches == N - 1
    rig.poll(BREACH)
    assert_acted_once(rig)
    rig.poll(BREACH)
    assert len(rig.events(Kind.GUARDRAIL_ACTION)) == 1


def test_a_poll_we_cannot_judge_neither_counts_nor_resets(rig: Rig) -> None:
    for _ in range(N - 1):
        rig.poll(BREACH)
    rig.poll(MetricsError("Prometheus 503"))
    assert rig.engine.state.guardrails["error-ratio"].status == "cant_evaluate"
    assert rig.events(Kind.GUARDRAIL_ACTION) == []
    rig.poll(BREACH)
    assert_acted_once(rig)


def test_a_healthy_poll_one_short_of_the_bar_starts_the_count_again(rig: Rig) -> None:
    for _ in range(N - 1):
        rig.poll(BREACH)
    rig.poll(0.001)
    for _ in range(N - 1):
        rig.poll(BREACH)
    assert rig.events(Kind.GUARDRAIL_ACTION) == []
    rig.poll(BREACH)
    assert_acted_once(rig)


def test_a_restarted_engine_resumes_the_count_from_the_record(rig: Rig) -> None:
    for _ in range(N - 1):
        rig.poll(BREACH)
    rig.restart()
    rig.poll(BREACH)
    assert_acted_once(rig)


def test_the_canary_exactly_at_its_max_never_counts(rig: Rig) -> None:
    for _ in range(N + 1):
        rig.poll(0.02)
    assert rig.engine.state.guardrails["error-ratio"].status == "healthy"
    assert rig.events(Kind.GUARDRAIL_ACTION) == []


@pytest.mark.parametrize(("poll_interval_s", "max_age_s"), [(2.0, 10.0), (8.0, 16.0)])
def test_data_is_trusted_for_two_polls_and_never_less_than_ten_seconds(
        tmp_path: Path, poll_interval_s: float, max_age_s: float) -> None:
    rig = Rig(tmp_path, "hold", poll_interval_s)
    try:
        rig.to_first_stage()
        rig.metrics.age_s = max_age_s
        rig.poll(0.001)
        assert rig.engine.state.guardrails["error-ratio"].status == "healthy"
        rig.metrics.age_s = max_age_s + 0.001
        rig.poll(0.001)
        guardrail = rig.engine.state.guardrails["error-ratio"]
        assert guardrail.status == "cant_evaluate"
        assert guardrail.detail == (
            f"data is {max_age_s:.0f} s old (limit {max_age_s:.0f} s) for track=canary")
    finally:
        rig.close()
