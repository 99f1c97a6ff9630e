"""The commander's lease heartbeat never waits on an adapter call, the poll or the screen.

The report: while an adapter call hung, the heartbeat stopped, and another console could take
command of a live incident. Here the whole outside world trickles (the deploy API and Prometheus
answer one byte at a time, every endpoint) while the commander's console runs, live, with its
real workers: the start-up preflight, the guardrail poll and an ``advance`` all sit in dripping
calls for their whole deadline. Meanwhile the heartbeat keeps landing on its own thread, another
console asking for command (one that would take a lease whose heartbeat is 1.5 s old) is refused
every time, and the dripping advance and the dripping rollback (``R``, ``y``) each end in a
recorded outcome within their deadlines — the rollback POST sent once.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from adapters.base import SystemClock
from console import heartbeat as heartbeat_module
from console.app import AppOptions, make_app
from console.heartbeat import Heartbeat
from console.model import Kind
from console.store import LeaseHeld, Store
from tests.faults.conftest import Tally
from tests.faults.fakes import FakeDeployApi, FakePrometheus
from tests.integration.engine_support import LiveIncident, make_config

#: The heartbeat's interval here (the console's is 5 s; the lease is stale after 30 s).
BEAT_S = 0.25
#: Another console takes a lease whose heartbeat is older than this: far above BEAT_S, far
#: below what a heartbeat that waits for a dripping call (its deadline, 3 s) would show.
STALE_S = 1.5
DEADLINE_S = 3.0

GUARDRAILS = [{"name": "errors", "query": 'errors{track="$track"}', "max": 0.1,
               "consecutive": 3, "on_breach": "hold"}]


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[LiveIncident, FakeDeployApi, FakePrometheus]]:
    with FakeDeployApi() as api, FakePrometheus() as prometheus:
        prometheus.set_tracks("errors", 0.01, 0.01)
        config = make_config(
            metrics=prometheus.metrics(timeout_s=1.0, deadline_s=DEADLINE_S),
            traffic=api.traffic(timeout_s=1.0, deadline_s=DEADLINE_S),
            deploy=api.deploy(timeout_s=1.0, deadline_s=DEADLINE_S),
            guardrails=GUARDRAILS, poll_interval_s=1.0)
        run = LiveIncident(tmp_path, config, "payments")
        try:
            run.prepare()
            yield run, api, prometheus
        finally:
            run.close()


def _heartbeat_age(db: Path, incident: int) -> float:
    with Store(db, readonly=True) as reader:
        lease = reader.lease(incident)
    assert lease is not None
    return (SystemClock().now() - lease.heartbeat_ts).total_seconds()


async def test_the_heartbeat_lands_while_every_adapter_call_drips(
    world: tuple[LiveIncident, FakeDeployApi, FakePrometheus], tally: Tally,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    run, api, prometheus = world
    monkeypatch.setattr(heartbeat_module, "HEARTBEAT_S", BEAT_S)
    db = run.store.path
    lease, _ = run.store.acquire_lease(run.id, "alice")
    # Everything the console calls trickles one byte every half second, from the start.
    api.set_fault("drip", drip_s=0.5)
    prometheus.set_fault("drip", drip_s=0.5)
    app = make_app(run.config, db, run.id, SystemClock(), engine=run.engine, lease=lease,
                   options=AppOptions(live=True))
    rival = Store(db)
    refused = 0
    worst_age = 0.0

    async def watch(until: Any, limit_s: float, what: str) -> None:
        """Check the heartbeat and try to take command every 0.1 s until ``until()`` holds."""
        nonlocal refused, worst_age
        started = time.monotonic()
        while not until():
            assert time.monotonic() - started < limit_s, (what, run.describe())
            await pilot.pause(0.1)
            worst_age = max(worst_age, _heartbeat_age(db, run.id))
            try:
                rival.acquire_lease(run.id, "mallory", host="other-host", pid=1,
                                    stale_after_s=STALE_S)
            except LeaseHeld:
                refused += 1
            else:
                raise AssertionError(f"another console took command during the drip ({what})")

    try:
        async with app.run_test(size=(120, 36)) as pilot:
            await pilot.pause()
            heartbeat = app._heartbeat
            assert isinstance(heartbeat, Heartbeat)
            app._run_action("advance", None)  # what `a` runs: its PUT drips too
            # Watch until the advance has its outcome: the start-up's reconciliation (which
            # the advance waits for) and preflight, the polls and the advance all drip.
            watch_started = time.monotonic()
            await watch(lambda: time.monotonic() - watch_started > 2 * DEADLINE_S
                        and bool(run.events(Kind.WEIGHT_FAILED)), 6 * DEADLINE_S, "advance")
            # the dripping advance ended, recorded, within its deadline (plus slack)
            requested = run.events(Kind.WEIGHT_REQUESTED)[-1]
            outcome = run.events(Kind.WEIGHT_FAILED)[-1]
            took = (outcome.ts - requested.ts).total_seconds()
            assert took < DEADLINE_S + 2.0, (took, run.describe())
            # The rollback (R, then y) drips too: its POST, the look-up by its key, the
            # weight-0 step. It ends in a recorded outcome; the heartbeat never stops.
            await pilot.press("R")
            await pilot.press("y")
            await watch(lambda: bool(run.events(Kind.ROLLBACK_FAILED)
                                     + run.events(Kind.ROLLBACK_STARTED)),
                        6 * DEADLINE_S, "rollback")
            (rollback,) = run.events(Kind.ROLLBACK_REQUESTED)
            (ended,) = run.events(Kind.ROLLBACK_FAILED) + run.events(Kind.ROLLBACK_STARTED)
            took = (ended.ts - rollback.ts).total_seconds()
            said = str(ended.payload.get("error") or ended.payload.get("detail"))
            # two bounded calls: the POST, then the look-up by its key (≈ 6.1 s measured)
            assert took < 2 * DEADLINE_S + 3.0 and "within" in said, (took, run.describe())
            sent = len(api.requests_to("rollback"))
            tally.bad_outcome("rollback POSTs sent more than once", int(sent != 1))
            assert sent == 1
            beats_seen = heartbeat.beats
            tally.add("heartbeat checks while every adapter call drips", refused)
            tally.bad_outcome("take-overs of a live commander during a drip", 0)
            assert beats_seen >= 2 * DEADLINE_S / BEAT_S / 2, beats_seen
            assert worst_age < STALE_S, worst_age
            assert app.mode == "COMMANDER"
            api.clear_faults()
            prometheus.clear_faults()
            app.exit()
    finally:
        rival.close()
    assert app._heartbeat is None  # stopped with the console


def test_a_taken_over_lease_is_noticed_by_the_heartbeat(tmp_path: Path) -> None:
    """The heartbeat is also how a commander learns command was taken over."""
    from console.config import Config
    from console.policy import declaration

    db = tmp_path / "w.db"
    payload = declaration(Config(), title="t", priority="P1", category="incident",
                          service="svc", from_version="v1", to_version="v2", bypass_specs=[],
                          affects=[], commander="alice")
    with Store(db) as store:
        incident = store.create_incident("alice", payload)[0].incident_id
        mine, _ = store.acquire_lease(incident, "alice")
        beat = Heartbeat(db, mine)
        assert beat.beat() and beat.beats == 1
        store.acquire_lease(incident, "bob", take_over=True, host="other", pid=1)
        assert not beat.beat() and beat.lost
        beat.stop()
