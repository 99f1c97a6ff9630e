"""Helpers for driving the real engine against real adapters (test_engine_real_adapters.py).

:class:`LiveIncident` is one incident on a real :class:`~console.store.Store`: declared through
:func:`console.policy.declaration`, adapters built by :func:`console.wiring.build_adapters` from a
real :class:`~console.config.Config`, and the real :class:`~console.engine.Engine` on top. Polls
run as the console runs them: one ``engine.poll()`` per ``poll_interval_s``, on the real clock (a
sleep until the next poll is due) or on a :class:`~adapters.base.ManualClock` (moved forward by the
interval instead), always under a deadline that fails the test with the state it was stuck in.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from adapters.base import Clock, ManualClock, SystemClock
from console import policy
from console.config import Config
from console.engine import Adapters, Engine, PollResult
from console.model import Event, Kind
from console.state import IncidentState, fold
from console.store import Store
from console.wiring import build_adapters

COMMANDER = "alice"
FROM_VERSION = "v1.4.1"  # the stable version, and so the rollback target
TO_VERSION = "v1.5.0"  # the emergency change on the canary
#: Roster of the category "incident" (senior-engineer + platform-lead, the default path).
ROSTER = {"senior-engineer": ["asha"], "platform-lead": ["marco"]}

# --- guardrails written like config.example.toml's, with windows short enough for a test ---------

WINDOW = "5s"
_SELECTOR = 'service="$service",track="$track"'
ERROR_RATIO_QUERY = (
    f'sum(rate(http_requests_total{{{_SELECTOR},code=~"5.."}}[{WINDOW}])) / '
    f"sum(rate(http_requests_total{{{_SELECTOR}}}[{WINDOW}]))"
)
P99_QUERY = (
    "histogram_quantile(0.99, sum by (le) "
    f"(rate(http_request_duration_seconds_bucket{{{_SELECTOR}}}[{WINDOW}])))"
)
EVIDENCE_QUERY = f"sum(increase(http_requests_total{{{_SELECTOR}}}[{WINDOW}]))"
#: The absolute maximum of the error-ratio guardrail.
ERROR_MAX = 0.05


def guardrails(*, consecutive: int = 3, on_breach: str = "rollback",
               min_evidence: float = 20) -> list[dict[str, Any]]:
    """Error ratio (5xx / all) with a max, the same against the baseline, p99 via
    histogram_quantile; evidence through increase(...). Only the first acts on a breach."""
    evidence = {"evidence_query": EVIDENCE_QUERY, "min_evidence": min_evidence}
    return [
        {"name": "error-ratio", "query": ERROR_RATIO_QUERY, "unit": "%", "scale": 100.0,
         "max": ERROR_MAX, **evidence, "consecutive": consecutive, "on_breach": on_breach},
        {"name": "error-vs-baseline", "query": ERROR_RATIO_QUERY, "unit": "%", "scale": 100.0,
         "max_ratio_to_baseline": 3.0, **evidence, "consecutive": consecutive,
         "on_breach": "hold"},
        {"name": "p99-latency", "query": P99_QUERY, "unit": "s", "max": 0.5,
         "max_ratio_to_baseline": 2.0, **evidence, "consecutive": consecutive,
         "on_breach": "hold"},
    ]


# --- adapter sections -----------------------------------------------------------------------------

def prometheus_metrics(url: str, timeout_s: float = 1.0) -> dict[str, Any]:
    return {"kind": "prometheus", "url": url, "timeout_s": timeout_s, "retries": 0}


def http_traffic(base_url: str, *, timeout_s: float = 2.0, retries: int = 2) -> dict[str, Any]:
    """docs/deploy-adapters.md's generic deploy API ([traffic]), without the secret header."""
    return {
        "kind": "http", "base_url": base_url, "timeout_s": timeout_s, "retries": retries,
        "actions": {
            "set_weight": {"method": "PUT", "url": "{base_url}/api/services/{service}/weight",
                           "body": {"weight": "{percent}", "incident": "{incident}"},
                           "result_path": "canary.weight"},
            "current_weight": {"url": "{base_url}/api/services/{service}/weight",
                               "result_path": "canary.weight"},
        },
    }


def http_deploy(base_url: str, *, timeout_s: float = 2.0, retries: int = 2) -> dict[str, Any]:
    """docs/deploy-adapters.md's generic deploy API ([deploy]), without the secret header."""
    return {
        "kind": "http", "base_url": base_url, "timeout_s": timeout_s, "retries": retries,
        "actions": {
            "current_version": {"url": "{base_url}/api/services/{service}/version",
                                "result_path": "items.0.version"},
            "preflight": {"url": "{base_url}/api/services/{service}/rollbacks/preflight"
                                 "?target={target}"},
            "rollback": {"method": "POST", "url": "{base_url}/api/services/{service}/rollbacks",
                         "body": {"to": "{target}", "reason": "{incident}"},
                         "result_path": "operation.id", "expect_status": [202]},
        },
    }


def make_config(*, metrics: dict[str, Any], traffic: dict[str, Any], deploy: dict[str, Any],
                guardrails: list[dict[str, Any]], poll_interval_s: float = 0.5,
                verification_hold_s: float = 2.0, verify_timeout_s: float = 30.0) -> Config:
    """A config with a fast plan (1% → 10% → 100%, no holds) and the given adapters."""
    return Config.model_validate({
        "roster": ROSTER,
        "canary": {"default_plan": "fast", "plans": {"fast": {"stages": [
            {"percent": 1, "hold_s": 0}, {"percent": 10, "hold_s": 0},
            {"percent": 100, "hold_s": 0}]}}},
        "monitoring": {"poll_interval_s": poll_interval_s, "graph_window_s": 60},
        "rollback": {"verification_hold_s": verification_hold_s,
                     "verify_timeout_s": verify_timeout_s},
        "guardrails": guardrails,
        "metrics": metrics,
        "traffic": traffic,
        "deploy": deploy,
    })


# --- one incident ---------------------------------------------------------------------------------

class LiveIncident:
    """One declared incident run by the real engine; :meth:`close` stops what it started."""

    def __init__(self, tmp_path: Path, config: Config, service: str, *,
                 clock: Clock | None = None, adapters: Adapters | None = None) -> None:
        self.config = config
        self.clock = clock or SystemClock()
        self.store = Store(tmp_path / f"{service}.db")
        try:
            declared = policy.declaration(
                config, title=f"Emergency change on {service}", priority="P1",
                category="incident", service=service, from_version=FROM_VERSION,
                to_version=TO_VERSION, bypass_specs=[], affects=[], commander=COMMANDER)
            self.id = self.store.create_incident(COMMANDER, declared,
                                                 ts=self.clock.now())[0].incident_id
            state = fold(self.store.events(self.id))
            self.adapters = adapters or build_adapters(config, state, self.clock)
            self.engine = Engine(self.store, self.id, config, self.adapters, self.clock, COMMANDER)
        except BaseException:
            self.store.close()
            raise
        self.polls = 0

    def close(self) -> None:
        try:
            self.engine.close()
        finally:
            self.store.close()

    # --- reading --------------------------------------------------------------------------------

    @property
    def state(self) -> IncidentState:
        return self.engine.state

    def events(self, kind: str | None = None) -> list[Event]:
        events = self.store.events(self.id)
        return [e for e in events if kind is None or e.kind == kind]

    def kinds(self) -> list[str]:
        return [e.kind for e in self.store.events(self.id)]

    def describe(self) -> str:
        """The state a stuck test was in, for its failure message."""
        state = self.state
        guards = "; ".join(f"{g.name}={g.status} ({g.detail})" for g in state.guardrails.values())
        readings = "; ".join(f"{r.name}={r.status} ({r.detail})" for r in
                             self.engine.last_readings + self.engine.last_stable_readings)
        tail = " | ".join(f"{e.kind} {e.payload}" for e in self.store.events(self.id)[-4:])
        return (f"canary {state.canary_percent}%, rollback {state.rollback_status} "
                f"({state.rollback_detail}); guardrails: {guards or 'none'}; "
                f"last readings: {readings or 'none'}; last events: {tail}")

    # --- acting ---------------------------------------------------------------------------------

    def prepare(self) -> None:
        """Every required approval (direct, by a rostered person), the rollback preflight and the
        compatibility checklist: what stands between a declaration and the first stage."""
        for role in list(self.state.missing_roles):
            user = self.config.roster[role][0]
            self.store.append(self.id, Kind.APPROVED, user,
                              {"role": role, "user": user, "kind": "direct",
                               "version": self.state.to_version}, ts=self.clock.now())
        self.engine.refresh()
        preflight = self.engine.preflight()
        assert preflight.kind == Kind.PREFLIGHT_PASSED, preflight.payload
        self.engine.acknowledge_checklist()

    def tick(self, started: float) -> None:
        """Wait until the next poll is due (real clock), or move the manual clock to it."""
        interval = self.config.monitoring.poll_interval_s
        if isinstance(self.clock, ManualClock):
            self.clock.advance(interval)
        else:
            time.sleep(max(0.0, interval - (time.monotonic() - started)))

    def poll(self) -> PollResult:
        self.polls += 1
        return self.engine.poll()

    def poll_until(self, done: Callable[[PollResult], bool], timeout: float, what: str, *,
                   check: Callable[[PollResult], None] | None = None) -> PollResult:
        """Poll every interval until ``done(result)``; fail after ``timeout`` s of wall time.

        ``check`` runs after every poll (before ``done``): assertions that must hold throughout.
        """
        deadline = time.monotonic() + timeout
        while True:
            started = time.monotonic()
            result = self.poll()
            if check is not None:
                check(result)
            if done(result):
                return result
            if time.monotonic() > deadline:
                raise AssertionError(f"not within {timeout:g} s: {what}; {self.describe()}")
            self.tick(started)
