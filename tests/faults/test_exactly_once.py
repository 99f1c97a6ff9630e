"""Exactly once: a rollback is never sent twice, and a restart settles every journalled request.

The report: killed during a rollback against a deploy system that keeps its own state, the
rollback was POSTed twice after the restart (3 of 12 runs), and the console ended showing the
canary at 10 % while the deploy system had it at 0 %. Here each moment a console can die at is
made exactly (the journal written by the real write path, the deploy API's state set as it
would be), then a new engine — what a restarted console builds — reconciles, against the fake
deploy API of tests/faults, which keeps its own state and honours idempotency keys:

- the rollback's key is derived from its ``rollback_requested`` event and sent as a header;
- a rollback the deploy system already has (looked up by that key, or, without a look-up, seen
  in effect: the target live, no canary traffic) is never sent again;
- one it does not have is sent now, once, under the same key;
- a traffic change with no outcome is settled from the weight the API reports, and the console's
  weight ends equal to the API's.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from console import commands
from console import events as ev
from console.engine import Engine, idempotency_key
from console.model import SYSTEM_ACTOR, Event, Kind
from console.wiring import build_adapters
from tests.faults.conftest import Tally
from tests.faults.fakes import FakeDeployApi
from tests.integration.engine_support import COMMANDER, LiveIncident, make_config

TARGET = "v1.4.1"


@pytest.fixture
def api() -> Iterator[FakeDeployApi]:
    with FakeDeployApi() as server:
        yield server


def _incident(tmp_path: Path, api: FakeDeployApi, *, lookup: bool = True) -> LiveIncident:
    deploy = api.deploy()
    if not lookup:
        del deploy["actions"]["rollback_status"]
    config = make_config(metrics={"kind": "sim"}, traffic=api.traffic(), deploy=deploy,
                         guardrails=[], verification_hold_s=0.0)
    run = LiveIncident(tmp_path, config, "payments")
    run.prepare()
    run.engine.advance()
    run.engine.advance()
    assert api.weight == 10 and run.state.canary_percent == 10
    return run


def _restart(run: LiveIncident) -> Engine:
    """What a restarted console builds: new adapters, a new engine on the same record."""
    run.engine.close()
    state = run.store.state(run.id)
    run.engine = Engine(run.store, run.id, run.config,
                        build_adapters(run.config, state, run.clock), run.clock, COMMANDER)
    return run.engine


def _journal_rollback(run: LiveIncident) -> Event:
    """The rollback as the write path journals it, and nothing after (the console died)."""
    request = commands.request_rollback(run.store, run.id, actor=COMMANDER,
                                        now=run.clock.now(), reason="drill")
    run.engine.refresh()
    return request


def _post_rollback(api: FakeDeployApi, key: str) -> None:
    """The rollback POST reached the deploy API, whose answer the console never read."""
    httpx.post(f"{api.url}/api/services/payments/rollbacks", json={"to": TARGET},
               headers={"Idempotency-Key": key}, timeout=5).raise_for_status()


def _posts(api: FakeDeployApi) -> list[Any]:
    return api.requests_to("rollback")


def _settled(run: LiveIncident, api: FakeDeployApi, tally: Tally) -> None:
    """After the reconciliation: no request without an outcome, one outcome per request, the
    console's weight the API's, the rollback done exactly once."""
    state = run.store.state(run.id)
    tally.add("restarts reconciled against the fake deploy API")
    sent_twice = max(0, len(api.rollbacks) - 1)
    tally.bad_outcome("rollbacks done twice after a restart", sent_twice)
    assert state.pending_weight is None
    assert state.rollback_status in ("in_progress", "verified"), state.rollback_status
    assert state.canary_percent == api.weight == 0, (state.canary_percent, api.weight)
    assert api.rollbacks == [TARGET]
    outcomes = [e for e in run.events() if e.kind in (Kind.ROLLBACK_STARTED,
                                                       Kind.ROLLBACK_FAILED)]
    assert len(outcomes) == 1, [e.payload for e in outcomes]
    # verification follows as usual: the target is live and the canary has no traffic
    run.poll()
    run.poll()
    assert run.store.state(run.id).rollback_status == "verified", run.describe()


def test_the_rollback_key_is_derived_from_its_request_and_sent(tmp_path: Path,
                                                               api: FakeDeployApi) -> None:
    run = _incident(tmp_path, api)
    try:
        request = run.engine.request_rollback("drill")
        key = idempotency_key(request)
        assert key == f"warroom-INC-{run.id}-{request.id}-{request.hash[:12]}"
        (post,) = _posts(api)
        assert post.headers["idempotency-key"] == key
        assert api.operations[key]["to"] == TARGET
    finally:
        run.close()


def test_killed_before_the_rollback_was_sent_it_is_sent_once(tmp_path: Path,
                                                             api: FakeDeployApi,
                                                             tally: Tally) -> None:
    run = _incident(tmp_path, api)
    try:
        request = _journal_rollback(run)
        _restart(run).reconcile()
        (post,) = _posts(api)
        assert post.headers["idempotency-key"] == idempotency_key(request)
        reconciled = run.events(Kind.RECONCILED)[-2]
        assert reconciled.payload["request_id"] == request.id
        assert reconciled.payload["outcome"] == "re-issued"
        _settled(run, api, tally)
    finally:
        run.close()


@pytest.mark.parametrize("lookup", [True, False], ids=["looked-up", "seen-in-effect"])
def test_killed_after_the_rollback_reached_the_api_it_is_not_sent_again(
    tmp_path: Path, api: FakeDeployApi, lookup: bool, tally: Tally
) -> None:
    run = _incident(tmp_path, api, lookup=lookup)
    try:
        request = _journal_rollback(run)
        _post_rollback(api, idempotency_key(request))
        _restart(run).reconcile()
        assert len(_posts(api)) == 1  # only the one before the crash
        tally.bad_outcome("rollback POSTs sent again after a restart", len(_posts(api)) - 1)
        reconciled = [e for e in run.events(Kind.RECONCILED)
                      if e.payload["request_kind"] == Kind.ROLLBACK_REQUESTED]
        assert [e.payload["outcome"] for e in reconciled] == ["applied"]
        assert "not sent again" in str(reconciled[0].payload["detail"])
        _settled(run, api, tally)
    finally:
        run.close()


def test_killed_before_the_rollbacks_weight_step_it_is_finished(tmp_path: Path,
                                                                 api: FakeDeployApi,
                                                                 tally: Tally) -> None:
    run = _incident(tmp_path, api)
    try:
        request = _journal_rollback(run)
        _post_rollback(api, idempotency_key(request))
        run.store.record(run.id, SYSTEM_ACTOR, ev.RollbackStarted(TARGET, "op-1"))
        api.weight = 10  # a deploy system whose rollback leaves the traffic split alone
        _restart(run).reconcile()
        kinds = [e.kind for e in run.events()][-2:]
        assert kinds == [Kind.WEIGHT_REQUESTED, Kind.WEIGHT_SET], kinds
        _settled(run, api, tally)
    finally:
        run.close()


@pytest.mark.parametrize("applied", [True, False])
def test_a_traffic_change_with_no_outcome_is_settled_from_the_api(
    tmp_path: Path, api: FakeDeployApi, applied: bool, tally: Tally
) -> None:
    run = _incident(tmp_path, api)
    try:
        request = commands.request_advance(run.store, run.id, actor=COMMANDER,
                                           now=run.clock.now(), overrides=None)
        if applied:
            api.weight = 100
        engine = _restart(run)
        engine.reconcile()
        state = run.store.state(run.id)
        tally.add("restarts reconciled against the fake deploy API")
        assert state.pending_weight is None
        assert state.canary_percent == api.weight == (100 if applied else 10)
        (reconciled,) = run.events(Kind.RECONCILED)
        assert reconciled.payload["request_id"] == request.id
        assert reconciled.payload["outcome"] == ("applied" if applied else "not applied")
        writes = [r for r in api.requests if r.method != "GET"]
        assert len(writes) == 2  # the two advances before: nothing was sent by reconciling
    finally:
        run.close()


def test_a_weight_changed_outside_the_console_is_adopted(tmp_path: Path,
                                                         api: FakeDeployApi) -> None:
    run = _incident(tmp_path, api)
    try:
        api.weight = 1  # someone set it by hand while no console ran
        _restart(run).reconcile()
        state = run.store.state(run.id)
        assert state.canary_percent == 1 and state.pending_weight is None
        (reconciled,) = run.events(Kind.RECONCILED)
        assert reconciled.payload["outcome"] == "adopted"
        assert [r for r in api.requests if r.method != "GET"][2:] == []
    finally:
        run.close()


def test_a_preflight_with_no_answer_is_recorded_as_failed(tmp_path: Path,
                                                          api: FakeDeployApi) -> None:
    run = _incident(tmp_path, api)
    try:
        run.store.record(run.id, SYSTEM_ACTOR, ev.PreflightRequested(TARGET))
        _restart(run).reconcile()
        (failed,) = [e for e in run.events(Kind.PREFLIGHT_FAILED)]
        assert "no answer before the console stopped" in str(failed.payload["detail"])
    finally:
        run.close()
