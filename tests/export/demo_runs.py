"""The demo's two runs, played through the real engine on a manual clock, and their PIRs: the
golden files under ``docs/`` that the README shows (``tests/export/test_demo_pirs.py`` keeps
them true).

- the **bad build**: declared at 22:00 UTC (detected 21:48, impact since 21:30), simulated
  approvals, preflight and checklist, 1 %, 10 %; the error ratio breaches and the automatic
  rollback is verified — and since v1.4.3 was the fix, the leak is back: the PIR says so, and
  the incident stays open for the hotfix;
- the **good build**: the same opening, every stage to 100 %, the post-emergency checklist,
  mitigated and resolved marked, closed.

Both with a scribe, a ticket link, a highlighted note and the local time (Asia/Kolkata, the
seed's Bengaluru). Regenerate with ``WARROOM_UPDATE_GOLDEN=1`` (or run this module).
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from adapters.base import ManualClock
from adapters.sim import SimulatedService
from console import commands
from console import store as store_module
from console.config import Config, ExportSettings
from console.demo import DEMO_APPROVERS, declare_demo, demo_config
from console.engine import Engine
from console.export import render
from console.store import Store
from console.wiring import build_adapters

DOCS = Path(__file__).resolve().parents[2] / "docs"
START = datetime(2026, 3, 12, 22, 0, 0, tzinfo=UTC)
EXPORT_NOW = datetime(2026, 3, 13, 8, 0, 0, tzinfo=UTC)
COMMANDER = "sam"


def _config(scenario: str) -> Config:
    base = demo_config(Config(), scenario)
    return base.model_copy(update={"export": ExportSettings(
        local_timezone="Asia/Kolkata",
        customer_names={"redaction-api": "Support transcripts"})})


def run(scenario: str, db: Path) -> tuple[str, str]:
    """Play the demo's ``scenario`` into ``db``; returns (PIR, comms) as exported."""
    clock = ManualClock(START)
    saved = store_module.utcnow
    store_module.utcnow = clock.now  # the declaration is stamped with the clock
    try:
        return _play(scenario, db, clock)
    finally:
        store_module.utcnow = saved


def _play(scenario: str, db: Path, clock: ManualClock) -> tuple[str, str]:
    config = _config(scenario)
    store = Store(db)
    incident = declare_demo(store, config, COMMANDER, scenario=scenario, ts=clock.now())
    state = store.state(incident)
    sim = SimulatedService.from_settings(
        config.metrics, config.deploy, clock,  # type: ignore[arg-type]
        service=state.service, stable_version=state.from_version,
        canary_version=state.to_version)
    engine = Engine(store, incident, config, build_adapters(config, state, clock, sim), clock,
                    COMMANDER)

    def tick(seconds: float) -> None:
        step = config.monitoring.poll_interval_s
        moved = 0.0
        while moved + 1e-9 < seconds:
            delta = min(step, seconds - moved)
            clock.advance(delta)
            moved += delta
            engine.poll()

    def past_hold() -> None:
        tick(engine.state.hold_remaining_s(clock.now()) + 1)

    commands.open_console(store, incident, user=COMMANDER, host="bastion-1", pid=4242,
                          previous=None, take_over=False, reason="", ts=clock.now())
    commands.mark(store, incident, actor=COMMANDER, milestone="detected",
                  at=START - timedelta(minutes=12),
                  reason="support ticket SUP-4411: a transcript with a customer's email",
                  now=clock.now())
    commands.mark(store, incident, actor=COMMANDER, milestone="impact-started",
                  at=START - timedelta(minutes=30),
                  reason="first unredacted response in the agent's logs", now=clock.now())
    commands.assign_role(store, incident, actor=COMMANDER, role="scribe", user="lee",
                         ts=clock.now())
    commands.note(store, incident, actor="lee", text="Ticket and dashboard for the review",
                  links=["ticket=https://tickets.example/SUP-4411",
                         "dashboard=https://grafana.example/d/redaction"], ts=clock.now())
    tick(6)
    for role, user in DEMO_APPROVERS.items():
        commands.simulated_approval(store, config, incident, user=user, role=role,
                                    ts=clock.now())
        tick(4)
    engine.refresh()
    engine.preflight()
    engine.acknowledge_checklist()
    engine.advance()
    past_hold()
    engine.note("1% clean for 20 s; going to 10%")
    engine.advance()
    if scenario == "bad":
        tick(90)  # the breach is sustained: the automatic rollback, then its verification
        assert engine.state.rollback_status == "verified", engine.state.rollback_status
        commands.note(store, incident, actor=COMMANDER, highlight=True, ts=clock.now(),
                      text="v1.4.2 is back: the leak is live again. Hotfix v1.4.4 by the "
                           "hotfix path; support told to expect more tickets.")
    else:
        past_hold()
        engine.advance()
        past_hold()
        engine.advance()
        tick(30)
        assert engine.state.promoted, engine.state.canary_percent
        commands.note(store, incident, actor=COMMANDER, highlight=True, ts=clock.now(),
                      text="100%: no unredacted email in 200 sampled transcripts")
        commands.mark(store, incident, actor=COMMANDER, milestone="mitigated",
                      reason="v1.4.3 at 100%", now=clock.now())
        tick(60)
        for item in engine.state.post_checklist():
            engine.record_gate(item, "passed", "checked on the dashboard and in the samples")
            tick(10)
        commands.mark(store, incident, actor=COMMANDER, milestone="resolved",
                      reason="no leaked field in 30 min of sampled transcripts",
                      now=clock.now())
        engine.close_incident("resolved; PIR on 2026-03-13 10:00 UTC")
    engine.close()
    events = store.require_events(incident)
    samples = {name: store.samples(incident, name) for name in store.series_names(incident)}
    store.close()
    return (render("pir", events, config=config, samples=samples, now=EXPORT_NOW),
            render("comms", events, config=config, samples=samples, now=EXPORT_NOW))


def main() -> None:
    import tempfile

    DOCS.mkdir(exist_ok=True)
    for scenario in ("bad", "good"):
        with tempfile.TemporaryDirectory() as folder:
            pir, comms = run(scenario, Path(folder) / "demo.db")
        (DOCS / f"pir-demo-{scenario}.md").write_text(pir, encoding="utf-8")
        (DOCS / f"comms-demo-{scenario}.md").write_text(comms, encoding="utf-8")
        print(f"docs/pir-demo-{scenario}.md, docs/comms-demo-{scenario}.md", file=sys.stderr)


if __name__ == "__main__":
    main()
