"""The commander's console killed (SIGKILL) at random points of a canary run, then restarted.

Each run: a fresh incident, ready to advance; the console (tests/faults/kill_driver.py: what
``warroom open`` runs, without the screen) advances to 1 %, 10 %, rolls back and verifies — and
kills itself at a kill point drawn from a seeded generator (before or after any adapter call,
inside any store write before its COMMIT, after it). Then a new console starts on the same
record and runs to the rollback's verdict. Against the simulator, and against the fake deploy
API of tests/faults (``http`` adapters), which keeps its own state across the kill, as a real
deploy system does.

Counted (``make faults`` prints them; every count but runs must be 0):

- events lost: an event whose COMMIT returned before the kill, missing (or different) after;
- doubled: a request with two outcomes, a rollback with two (started / failed), two verdicts;
- unreconciled: a request left without an outcome once the restarted console has settled;
- double-sent: a rollback sent twice (the same key twice, or more sends than requests);
- false verdicts: a verdict other than VERIFIED for a rollback the deploy system did, VERIFIED
  for one it did not, or a console whose canary weight is not the deploy system's at the end;
- chains broken: ``verify`` fails on the record.

``make test`` runs 3 kills per adapter, ``make faults`` 100 (``WARROOM_KILL_RUNS`` overrides).
"""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from console import commands
from console.model import Event, Kind
from console.policy import declaration
from console.store import Store
from tests.conftest import REPO
from tests.faults.conftest import LONG, Tally
from tests.faults.fakes import FakeDeployApi
from tests.integration.engine_support import COMMANDER, FROM_VERSION, ROSTER, make_config

RUNS = int(os.environ.get("WARROOM_KILL_RUNS") or (100 if LONG else 3))
DRIVER_TIMEOUT_S = 180.0
OUTCOME_KINDS = (Kind.WEIGHT_SET, Kind.WEIGHT_FAILED)


@dataclass
class Counts:
    runs: int = 0
    killed: int = 0
    bad: Counter[str] = field(default_factory=Counter)
    where: Counter[str] = field(default_factory=Counter)


def _config(adapter: str, api: FakeDeployApi | None) -> dict[str, Any]:
    if api is not None:
        traffic, deploy = api.traffic(), api.deploy()
    else:
        traffic, deploy = {"kind": "sim"}, {"kind": "sim", "rollback_seconds": 0}
    config = make_config(metrics={"kind": "sim"}, traffic=traffic, deploy=deploy,
                         guardrails=[], poll_interval_s=0.5, verification_hold_s=0.0)
    return config.model_dump(mode="json", exclude_none=True)


def _prepare(run_dir: Path, config: dict[str, Any]) -> int:
    """A declared incident with its approvals in and the compatibility checklist acknowledged:
    the driver's preflight is all that stands before the first stage."""
    from console.config import Config

    run_dir.mkdir(parents=True)
    (run_dir / "config.json").write_text(json.dumps(config))
    parsed = Config.model_validate(config)
    payload = declaration(parsed, title="kill drill", priority="P1", category="incident",
                          service="payments", from_version=FROM_VERSION, to_version="v1.5.0",
                          bypass_specs=[], affects=[], commander=COMMANDER)
    with Store(run_dir / "warroom.db") as store:
        incident = store.create_incident(COMMANDER, payload)[0].incident_id
        for role, users in ROSTER.items():
            store.append(incident, Kind.APPROVED, users[0], {
                "role": role, "user": users[0], "kind": "direct", "version": "v1.5.0"})
        commands.acknowledge_checklist(store, incident, actor=COMMANDER,
                                       ts=store.state(incident).declared_ts)
    return incident


def _drive(run_dir: Path, kill_at: int) -> tuple[int, str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-m", "tests.faults.kill_driver", str(run_dir),
                           str(kill_at)], cwd=REPO, env=env, capture_output=True,
                          timeout=DRIVER_TIMEOUT_S, check=False)
    out = done.stdout.decode("utf-8", "replace")
    if done.returncode not in (0, -9):
        raise AssertionError(f"driver exited {done.returncode}: "
                             f"{done.stderr.decode('utf-8', 'replace')[-2000:]}")
    return done.returncode, out


def _outcomes_per_request(events: list[Event]) -> Counter[int]:
    counts: Counter[int] = Counter()
    for event in events:
        if event.kind in OUTCOME_KINDS and event.payload.get("request_id") is not None:
            counts[int(event.payload["request_id"])] += 1
    return counts


def _rollback_outcomes(events: list[Event]) -> list[int]:
    """For each rollback request, how many outcomes (started / failed) it got."""
    counts: list[int] = []
    for event in events:
        if event.kind == Kind.ROLLBACK_REQUESTED:
            counts.append(0)
        elif event.kind in (Kind.ROLLBACK_STARTED, Kind.ROLLBACK_FAILED) and counts:
            counts[-1] += 1
    return counts


def _judge(run_dir: Path, incident: int, outputs: list[str], api: FakeDeployApi | None,
           counts: Counts) -> list[str]:
    """Every count of one run; returns what went wrong, in words."""
    problems: list[str] = []

    def bad(name: str, n: int, why: str) -> None:
        counts.bad[name] += n
        if n:
            problems.append(f"{name}: {why}")

    with Store(run_dir / "warroom.db", readonly=True) as store:
        events = store.events(incident)
        state = store.state(incident)
        chain_problem = store.verify(incident)[1]
    by_id = {e.id: e.hash for e in events}
    committed = [line.split()[1:] for out in outputs for line in out.splitlines()
                 if line.startswith("COMMITTED ")]
    lost = [i for i, h in committed if by_id.get(int(i)) != h]
    bad("events lost", len(lost), f"{lost}")
    doubled = [r for r, n in _outcomes_per_request(events).items() if n > 1]
    rollback_outcomes = _rollback_outcomes(events)
    doubled += [n for n in rollback_outcomes if n > 1]
    verdicts = [e for e in events if e.kind in (Kind.ROLLBACK_VERIFIED,
                                                 Kind.ROLLBACK_NOT_VERIFIED)]
    bad("doubled", len(doubled) + max(0, len(verdicts) - 1),
        f"requests {doubled}, {len(verdicts)} verdicts")
    unsettled = int(state.pending_weight is not None) + int(state.rollback_status == "requested")
    unsettled += sum(1 for n in rollback_outcomes if n == 0)
    bad("unreconciled", unsettled, f"pending {state.pending_weight}, rollback "
                                   f"{state.rollback_status}, outcomes {rollback_outcomes}")
    requests = sum(1 for e in events if e.kind == Kind.ROLLBACK_REQUESTED)
    if api is not None:
        keys = [r.headers.get("idempotency-key", "") for r in api.requests_to("rollback")]
    else:
        keys = [line.split()[2] for out in outputs for line in out.splitlines()
                if line.startswith("SEND rollback ")]
    twice = sum(n - 1 for n in Counter(keys).values()) + max(0, len(set(keys)) - requests)
    bad("double-sent", twice, f"rollback sends {keys} for {requests} requests")
    weight = api.weight if api is not None else 0  # the simulator is rebuilt from the record
    done_by_deployer = api.rollbacks == [FROM_VERSION] if api is not None else True
    false = int(state.rollback_status != "verified" and done_by_deployer)
    false += int(state.rollback_status == "verified" and not done_by_deployer)
    false += int(state.canary_percent != weight)
    bad("false verdicts", false, f"rollback {state.rollback_status} ({state.rollback_detail}), "
                                 f"console at {state.canary_percent}%, deploy system at "
                                 f"{weight}%")
    bad("chains broken", int(chain_problem is not None), f"{chain_problem}")
    return problems


def _one_run(base: Path, adapter: str, kill_at: int, counts: Counts) -> list[str]:
    api = FakeDeployApi().start() if adapter == "http" else None
    try:
        run_dir = base / f"kill-{kill_at}-{counts.runs}"
        incident = _prepare(run_dir, _config(adapter, api))
        outputs: list[str] = []
        code, out = _drive(run_dir, kill_at)
        outputs.append(out)
        if code == -9:
            counts.killed += 1
            where = re.search(r"^KILL \d+ (.*)$", out, re.MULTILINE)
            counts.where[where.group(1) if where else "?"] += 1
        code, out = _drive(run_dir, 0)  # the restarted console, to the rollback's verdict
        outputs.append(out)
        assert "DONE " in out, out[-2000:]
        counts.runs += 1
        return _judge(run_dir, incident, outputs, api, counts)
    finally:
        if api is not None:
            api.stop()


@pytest.mark.parametrize("adapter", ["sim", "http"])
def test_sigkill_at_random_points_loses_nothing_and_sends_nothing_twice(
    adapter: str, tmp_path: Path, tally: Tally
) -> None:
    counts = Counts()
    # How many kill points a whole run has (a run without a kill), then kills drawn among them.
    api = FakeDeployApi().start() if adapter == "http" else None
    try:
        dry = tmp_path / "dry"
        _prepare(dry, _config(adapter, api))
        code, out = _drive(dry, 0)
    finally:
        if api is not None:
            api.stop()
    points = int(re.search(r"^POINTS (\d+)$", out, re.MULTILINE).group(1))  # type: ignore[union-attr]
    assert code == 0 and "DONE verified" in out, out
    rng = random.Random(f"warroom-kill-{adapter}")
    problems: list[str] = []
    for _ in range(RUNS):
        kill_at = rng.randint(1, points)
        problems += [f"kill at {kill_at}: {p}" for p in _one_run(tmp_path, adapter, kill_at,
                                                                 counts)]
    tally.add(f"SIGKILL runs ({adapter}): runs", counts.runs)
    tally.add(f"SIGKILL runs ({adapter}): killed before the end", counts.killed)
    for name in ("events lost", "doubled", "unreconciled", "double-sent", "false verdicts",
                 "chains broken"):
        tally.bad_outcome(f"SIGKILL runs ({adapter}): {name}", counts.bad[name])
    assert not problems, "\n".join(problems[:20])
    assert counts.killed >= RUNS // 2, counts
