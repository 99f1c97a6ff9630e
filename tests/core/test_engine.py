"""The engine on the simulator with an injected clock: exact, deterministic, no screen; on both
engines of the record (``store_location``: an SQLite file, then PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from adapters.base import DeployError, ManualClock
from adapters.sim import SimulatedService
from console.config import Config
from console.demo import declare_demo, demo_config
from console.engine import ActionRefused, Engine
from console.model import Kind
from console.policy import Refused
from console.state import fold
from console.store import open_store
from console.wiring import build_adapters

T0 = datetime(2026, 11, 22, 22, 0, tzinfo=UTC)


class World:
    """One incident on the simulator: store, clock, service, engine."""

    def __init__(self, location: Path | str, scenario: str = "good", *,
                 on_breach: str = "rollback",
                 fail_rollback: bool = False, config_changes: dict[str, Any] | None = None
                 ) -> None:
        config = demo_config(Config(), scenario)
        raw = config.model_dump()
        for guardrail in raw["guardrails"]:
            guardrail["on_breach"] = on_breach
            guardrail["consecutive"] = 3
        raw["monitoring"]["poll_interval_s"] = 2.0
        for key, value in (config_changes or {}).items():
            raw[key].update(value)
        self.config = Config.model_validate(raw)
        self.clock = ManualClock(T0)
        if isinstance(location, Path) and location.is_dir():  # a test's tmp_path: its file
            location = location / "w.db"
        self.store = open_store(location)  # an SQLite file, or PostgreSQL (store_location)
        self.incident = declare_demo(self.store, self.config, "alice", ts=self.clock.now())
        state = fold(self.store.events(self.incident))
        self.service = SimulatedService.from_settings(
            self.config.metrics, self.config.deploy, self.clock,  # type: ignore[arg-type]
            service=state.service, stable_version=state.from_version,
            canary_version=state.to_version, fail_rollback=fail_rollback)
        self.adapters = build_adapters(self.config, state, self.clock, self.service)
        self.engine = Engine(self.store, self.incident, self.config, self.adapters, self.clock,
                             "alice")

    def approve_and_prepare(self) -> None:
        # The demo's approvers (simulated: on PostgreSQL a direct approval must come from the
        # approver's own database role; tests/core/test_identity_pg.py tests those).
        for role, user in (("security-lead", "priya"), ("platform-lead", "marco")):
            self.store.append(self.incident, Kind.APPROVED, user,
                              {"role": role, "user": user, "kind": "simulated",
                               "version": "v1.4.3"}, ts=self.clock.now())
        self.engine.refresh()
        assert self.engine.preflight().kind == Kind.PREFLIGHT_PASSED
        self.engine.acknowledge_checklist()

    def run(self, seconds: float) -> None:
        """Let time pass, polling as the console would."""
        step = self.config.monitoring.poll_interval_s
        elapsed = 0.0
        while elapsed < seconds:
            self.clock.advance(step)
            elapsed += step
            self.engine.poll()

    def kinds(self) -> list[str]:
        return [e.kind for e in self.store.events(self.incident)]

    @property
    def state(self) -> Any:
        return self.engine.state


def test_good_build_reaches_100_and_opens_the_checklist(store_location: Path | str) -> None:
    world = World(store_location, "good")
    with pytest.raises(Refused, match="approvals missing"):
        world.engine.advance()
    world.approve_and_prepare()
    for expected in (1, 10, 50, 100):
        world.run(world.state.current_stage.hold_s if world.state.current_stage else 0)
        world.run(12)  # evidence builds up and guardrails settle
        assert world.engine.advance_blocks() == [], [b.words for b in world.engine.advance_blocks()]
        event = world.engine.advance()
        assert event.kind == Kind.WEIGHT_SET and event.payload["percent"] == expected
        assert world.service.current_weight() == expected
    state = world.state
    assert state.promoted and state.checklist_active
    assert [v.percent for v in state.visits] == [1, 10, 50, 100]
    assert all(g.status == "healthy" for g in state.guardrails.values())
    assert state.checklist_open[0].startswith("Verify resolution")
    world.engine.record_gate(state.checklist_open[0], "passed", "error rate back to baseline")
    with pytest.raises(ActionRefused, match="specific reason"):
        world.engine.record_gate(world.state.checklist_open[0], "waived", "no")
    with pytest.raises(ActionRefused, match="open"):
        world.engine.close_incident("")
    world.engine.close_incident("remaining gates scheduled for the morning shift")
    assert world.state.closed


def test_hold_blocks_until_elapsed_and_can_be_overridden_with_a_reason(
        store_location: Path | str) -> None:
    world = World(store_location, "good")
    world.approve_and_prepare()
    world.engine.advance()
    world.run(12)
    blocks = world.engine.advance_blocks()
    assert [b.code for b in blocks] == ["hold"]
    assert blocks[0].words == "hold at 1%: 8s left of 20s"
    with pytest.raises(Refused, match="override with a specific reason"):
        world.engine.advance()
    event = world.engine.advance({"hold": "error budget burning, exec asked to speed up"})
    assert event.payload["percent"] == 10
    request = [e for e in world.store.events(world.incident)
               if e.kind == Kind.WEIGHT_REQUESTED][-1]
    assert request.payload["overrides"][0]["block"] == "hold"
    assert world.state.overrides[-1].reason == "error budget burning, exec asked to speed up"


def test_bad_build_breaches_and_rolls_back_automatically_then_verifies(
        store_location: Path | str) -> None:
    world = World(store_location, "bad", on_breach="rollback")
    world.approve_and_prepare()
    world.engine.advance()
    world.run(22)
    assert world.state.guardrails["error-ratio"].status == "healthy"  # the defect shows at 10%
    world.engine.advance()
    world.run(8)
    kinds = world.kinds()
    assert Kind.GUARDRAIL_ACTION in kinds
    assert Kind.ROLLBACK_REQUESTED in kinds
    requested = next(e for e in world.store.events(world.incident)
                 if e.kind == Kind.ROLLBACK_REQUESTED)
    assert requested.payload["automatic"] is True and requested.payload["weight"] == 10
    # The breach count climbs one line per poll, each count once (1/3, 2/3, 3/3), never twice.
    counts = [e.payload["breaches"] for e in world.store.events(world.incident)
              if e.kind == Kind.GUARDRAIL_CHANGED and e.payload["name"] == "error-ratio"
              and e.payload["status"] == "breach" and e.payload.get("mode") != "stable"]
    assert len(counts) >= 2 and counts == list(range(1, len(counts) + 1))
    assert world.service.current_weight() == 0
    world.run(30)
    assert world.state.rollback_status == "verified", world.state.rollback_detail
    verified = next(e for e in world.store.events(world.incident)
                if e.kind == Kind.ROLLBACK_VERIFIED)
    assert [c["ok"] for c in verified.payload["checks"]] == [True, True, True]
    # While verifying, the guardrails judged the stable track; only changes were recorded.
    stable = [e for e in world.store.events(world.incident)
              if e.kind == Kind.GUARDRAIL_CHANGED and e.payload.get("mode") == "stable"]
    assert {e.payload["name"] for e in stable} == {"error-ratio", "p99-latency"}
    assert len(stable) <= 4
    assert all(e.payload["detail"].startswith("stable track: ") for e in stable)
    with pytest.raises(Refused, match="can no longer advance"):
        world.engine.advance({"rolled-back": "x" * 10})


def test_breach_with_hold_blocks_advance_and_never_acts_by_itself(
        store_location: Path | str) -> None:
    world = World(store_location, "bad", on_breach="hold")
    world.approve_and_prepare()
    world.engine.advance({"hold": "skip the 1% hold for this test"})
    world.engine.advance({"hold": "skip the 1% hold for this test too",
                          "guardrails": "not evaluated yet, drill only"})
    world.run(60)
    assert world.state.canary_percent == 10
    assert Kind.ROLLBACK_REQUESTED not in world.kinds()
    assert world.state.guardrails["error-ratio"].status == "breach"
    words = " ".join(b.words for b in world.engine.advance_blocks())
    assert "error-ratio BREACH" in words


def test_deployer_that_never_reports_the_target_is_not_verified(store_location: Path | str) -> None:
    world = World(store_location, "bad", fail_rollback=True,
                  config_changes={"rollback": {"verify_timeout_s": 30}})
    world.approve_and_prepare()
    world.engine.advance()
    world.engine.request_rollback("drill")
    world.run(40)
    state = world.state
    assert state.rollback_status == "not_verified"
    assert "still reports v1.4.3" in state.rollback_detail and "not v1.4.2" in state.rollback_detail


def test_metrics_down_is_cant_evaluate_and_blocks(store_location: Path | str) -> None:
    world = World(store_location, "good")
    world.approve_and_prepare()
    world.engine.advance()
    world.run(24)
    world.service.metrics_down = True
    world.run(2)
    state = world.state
    assert state.guardrails["error-ratio"].status == "cant_evaluate"
    assert "down" in state.guardrails["error-ratio"].detail
    blocks = world.engine.advance_blocks()
    assert [b.code for b in blocks] == ["guardrails"]
    assert "can't evaluate" in blocks[0].words
    world.run(20)
    assert world.state.canary_percent == 1  # can't-evaluate never advances anything


class FlakyTraffic:
    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.fail = True

    def set_weight(self, percent: int) -> None:
        if self.fail:
            raise DeployError("traffic API answered HTTP 500: upstream timeout")
        self.inner.set_weight(percent)

    def current_weight(self) -> int:
        return int(self.inner.current_weight())


def test_traffic_failure_is_recorded_and_advance_can_be_retried(store_location: Path | str) -> None:
    world = World(store_location, "good")
    flaky = FlakyTraffic(world.adapters.traffic)
    world.adapters.traffic = flaky
    world.approve_and_prepare()
    event = world.engine.advance()
    assert event.kind == Kind.WEIGHT_FAILED and "HTTP 500" in event.payload["error"]
    assert world.state.canary_percent == 0 and world.state.pending_weight is None
    flaky.fail = False
    assert world.engine.advance().kind == Kind.WEIGHT_SET


def test_crash_between_request_and_outcome_is_reconciled(store_location: Path | str) -> None:
    world = World(store_location, "good")
    world.approve_and_prepare()
    # The request was journalled and the traffic call happened, then the process died.
    world.store.append(world.incident, Kind.WEIGHT_REQUESTED, "alice", {
        "from_percent": 0, "to_percent": 1, "stage_index": 0, "action": "advance",
        "overrides": []}, ts=world.clock.now())
    world.service.set_weight(1)
    restarted = Engine(world.store, world.incident, world.config, world.adapters, world.clock,
                       "alice")
    assert restarted.state.pending_weight is not None
    events = restarted.reconcile()
    assert [e.kind for e in events] == [Kind.RECONCILED, Kind.WEIGHT_SET]
    assert restarted.state.canary_percent == 1 and restarted.state.pending_weight is None


def test_abort_and_immediate(store_location: Path | str) -> None:
    world = World(store_location, "good")
    world.approve_and_prepare()
    with pytest.raises(ActionRefused, match="already 0%"):
        world.engine.abort()
    world.engine.advance()
    assert world.engine.abort().payload["percent"] == 0
    with pytest.raises(ActionRefused, match="specific reason"):
        world.engine.immediate("now")
    event = world.engine.immediate("active exfiltration of PII, security lead's call")
    assert event.payload["percent"] == 100 and world.state.immediate_used


class ChatServer:
    """A real chat webhook on 127.0.0.1 that records what it is sent (or answers 500)."""

    def __init__(self, status: int = 200) -> None:
        import http.server
        import json
        import threading

        received: list[dict[str, Any]] = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                received.append(json.loads(self.rfile.read(length)))
                self.send_response(status)
                self.end_headers()
                self.wfile.write(b"no" if status >= 300 else b"ok")

            def log_message(self, *args: object) -> None:
                pass

        self.received = received
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/T000/secret-token"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def wait_for(predicate: Any, timeout: float = 10.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


@pytest.mark.parametrize("status", [200, 500])
def test_rollbacks_and_breaches_are_announced_in_chat(store_location: Path | str, status: int,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from adapters.notify import WebhookNotifier

    chat = ChatServer(status)
    monkeypatch.setenv("WARROOM_TEST_WEBHOOK", chat.url)
    world = World(store_location, "bad", on_breach="rollback")
    try:
        world.adapters.notifier = WebhookNotifier("WARROOM_TEST_WEBHOOK", timeout_s=2)
        world.approve_and_prepare()
        world.engine.advance()
        world.engine.advance({"hold": "skip the 1% hold for this drill",
                              "guardrails": "not evaluated yet in this drill"})
        world.run(8)
        wanted = Kind.NOTIFIED if status == 200 else Kind.NOTIFY_FAILED

        def both_posted() -> bool:
            # each post is sent from its own thread: wait for these two, not any two
            texts = " ".join(m["text"] for m in chat.received)
            return ("Sustained breach of error-ratio" in texts
                    and "ROLLBACK to v1.4.2 requested (automatic)" in texts)

        wait_for(lambda: both_posted() and
                 len([k for k in world.kinds() if k == wanted]) >= 2)
        texts = [m["text"] for m in chat.received]
        assert any("Sustained breach of error-ratio" in t for t in texts)
        assert any("ROLLBACK to v1.4.2 requested (automatic)" in t for t in texts)
        assert all(t.startswith("[INC-1 P0 redaction-api]") for t in texts)
        events = [e for e in world.store.events(world.incident) if e.kind == wanted]
        if status == 500:
            assert "HTTP 500" in events[0].payload["error"]
        for event in world.store.events(world.incident):  # the webhook URL is a secret
            assert "secret-token" not in str(event.payload)
    finally:
        world.engine.close()
        chat.stop()
