"""The engine on a real store with the simulator's traffic and deployer, an injected clock and
a scripted metrics source: each poll's verdict is chosen by the test, not waited for."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from adapters.base import InstantValue, ManualClock, RangeSeries
from console.config import Config
from console.demo import declare_demo, demo_config
from console.engine import Engine
from console.model import Event, Kind
from console.state import fold
from console.store import Store
from console.wiring import build_adapters

T0 = datetime(2026, 11, 22, 22, 0, tzinfo=UTC)
#: consecutive breaches before the guardrail acts
N = 3


class ScriptedMetrics:
    """The canary's error ratio is whatever the test says; everything else is calm and fresh."""

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        self.canary: float | Exception | None = 0.001  # None: the query answers nothing
        self.age_s = 0.0

    def query(self, query: str) -> list[InstantValue]:
        now = self.clock.now().timestamp() - self.age_s
        if "requests" in query:
            value = 1000.0
        elif 'track="canary"' in query:
            if isinstance(self.canary, Exception):
                raise self.canary
            if self.canary is None:
                return []
            value = self.canary
        else:
            value = 0.001
        return [InstantValue(labels={}, ts=now, value=value)]

    def query_range(self, query: str, start: datetime, end: datetime,
                    step: float) -> list[RangeSeries]:
        return []


class Rig:
    """One demo incident with one guardrail (error-ratio, max 2%, N in a row, ``on_breach``)."""

    def __init__(self, tmp_path: Path, on_breach: str = "hold",
                 poll_interval_s: float = 2.0, **guardrail: Any) -> None:
        raw = demo_config(Config(), "good").model_dump()
        raw["guardrails"] = [dict(raw["guardrails"][0], on_breach=on_breach, consecutive=N,
                                  **guardrail)]
        raw["monitoring"]["poll_interval_s"] = poll_interval_s
        self.config = Config.model_validate(raw)
        self.clock = ManualClock(T0)
        self.store = Store(tmp_path / "w.db")
        self.incident = declare_demo(self.store, self.config, "alice", ts=self.clock.now())
        self.metrics = ScriptedMetrics(self.clock)
        self.engine = self.start()

    def start(self) -> Engine:
        state = fold(self.store.events(self.incident))
        adapters = replace(build_adapters(self.config, state, self.clock), metrics=self.metrics)
        return Engine(self.store, self.incident, self.config, adapters, self.clock, "alice")

    def restart(self) -> None:
        self.engine.close()
        self.engine = self.start()

    def to_first_stage(self) -> None:
        for role, user in (("security-lead", "priya"), ("platform-lead", "marco")):
            self.store.append(self.incident, Kind.APPROVED, user,
                              {"role": role, "user": user, "kind": "direct",
                               "version": "v1.4.3"}, ts=self.clock.now())
        self.engine.refresh()
        assert self.engine.preflight().kind == Kind.PREFLIGHT_PASSED
        self.engine.acknowledge_checklist()
        self.engine.advance()
        assert self.engine.state.canary_percent == 1

    def poll(self, canary: float | Exception | None) -> None:
        self.metrics.canary = canary
        self.clock.advance(self.config.monitoring.poll_interval_s)
        self.engine.poll()

    def events(self, kind: str) -> list[Event]:
        return [e for e in self.store.events(self.incident) if e.kind == kind]

    def close(self) -> None:
        self.engine.close()
        self.store.close()
