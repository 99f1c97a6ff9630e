"""Judgement per guardrail on the simulator, through the real console (issue 16, item 1): WARN
holds advance until a typed decision, a shadow guardrail breaches without gating, the initial
delay, the evidence counter and the Mann-Whitney comparison on screen and in the `g` detail.

Each test builds the demo incident with changed guardrails (``make_rig(guardrails=[...])``),
moves the simulated world with the engine's own poll, and reads the screen as a person would.
"""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any

from console.config import Config
from console.demo import demo_config
from console.model import Kind
from console.screens.forms import OverrideModal
from console.screens.info import GuardrailDetailModal
from tests.app.conftest import RigFactory, region_text, screen_text, settle, squash

SIZE = (160, 48)


def guardrails(**changes: dict[str, Any]) -> list[dict[str, Any]]:
    """The demo's guardrails, each updated with ``changes[name]``."""
    raw = demo_config(Config(), "good").model_dump(mode="json", exclude_none=True)["guardrails"]
    out = copy.deepcopy(raw)
    for guardrail in out:
        guardrail.update(changes.get(guardrail["name"].replace("-", "_"), {}))
    return out


async def test_warn_holds_advance_until_a_typed_decision(make_rig: RigFactory) -> None:
    # The good build's p99 (≈0.12 s) sits above 40 % of its limit (2 × baseline ≈ 0.24 s).
    rig = make_rig("good", guardrails=guardrails(p99_latency={"warn": 0.4}))
    rig.ready()
    rig.engine.advance()
    rig.past_hold()
    state = rig.engine.state
    assert state.guardrails["p99-latency"].status == "warn"
    assert [b.code for b in rig.engine.advance_blocks()] == ["warn"]
    rig.tick(600)  # time decides nothing
    assert [b.code for b in rig.engine.advance_blocks()] == ["warn"]
    app = rig.app()
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await settle(pilot)
        pane = squash(region_text(app, app.guardrails_pane))
        assert "WARN" in pane and "> warn" in pane
        assert "WARN at 1% — a person decides: p99-latency since" in squash(
            region_text(app, app.canary))
        before = rig.last_id()
        await pilot.press("a")
        await settle(pilot)
        assert isinstance(app.screen, OverrideModal)
        await pilot.press(*"ok")
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, OverrideModal), "a two-letter decision must be refused"
        assert rig.kinds(before) == []
        await pilot.press("backspace", "backspace")
        await pilot.press(*"latency is the same on the baseline")
        await pilot.press("enter")
        await settle(pilot)
        assert not isinstance(app.screen, OverrideModal)
        request, done = rig.events()[-2:]
        assert request.kind == Kind.WEIGHT_REQUESTED and done.kind == Kind.WEIGHT_SET
        [decision] = request.payload["overrides"]
        assert decision["block"] == "warn"
        assert decision["reason"] == "latency is the same on the baseline"
        assert rig.engine.state.canary_percent == 10


async def test_a_shadow_guardrail_breaches_without_gating(make_rig: RigFactory) -> None:
    rig = make_rig("bad", guardrails=guardrails(error_ratio={"shadow": True},
                                                p99_latency={"shadow": True}))
    rig.to_ten_percent()
    rig.tick(60)  # well past 8 breaches in a row and the 30 s hold
    state = rig.engine.state
    assert state.guardrails["error-ratio"].status == "breach"
    assert state.guardrails["error-ratio"].breaches >= 8
    assert rig.events(Kind.GUARDRAIL_ACTION) == []
    assert rig.events(Kind.ROLLBACK_REQUESTED) == []
    assert rig.engine.advance_blocks() == []
    assert all(e.payload.get("shadow") is True for e in rig.events(Kind.GUARDRAIL_CHANGED))
    app = rig.app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        pane = squash(region_text(app, app.guardrails_pane))
        assert "BREACH" in pane and "never acts" in pane
        assert "shadow BREACH" in (app.guardrails_pane.border_subtitle or "")
        assert not app.guardrails_pane.has_class("-breach")  # a shadow never paints the pane
        graph = squash(region_text(app, app.graphs["error-ratio"]))
        assert "canary" in graph  # still graphed


async def test_the_initial_delay_holds_judgement_after_each_stage_change(
        make_rig: RigFactory) -> None:
    rig = make_rig("bad", guardrails=guardrails(error_ratio={"initial_delay_s": 20}))
    rig.to_ten_percent()
    entered = rig.engine.state.stage_entered
    assert entered is not None
    rig.tick(10)
    guard = rig.engine.state.guardrails["error-ratio"]
    assert guard.status == "unknown" and guard.delay_left_s(rig.clock.now()) == 10
    assert "delay" in [b.code for b in rig.engine.advance_blocks()]
    app = rig.app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        stamp = (entered + timedelta(seconds=20)).strftime("%H:%M:%S")
        assert (f"initial delay 20s after the stage change: judged from {stamp}"
                in squash(region_text(app, app.guardrails_pane)))
        assert "initial delay, guardrails not judged yet: error-ratio in 10s" in squash(
            region_text(app, app.canary))
        rig.tick(12)
        await settle(pilot)
        assert rig.engine.state.guardrails["error-ratio"].status == "breach"
        assert "BREACH" in squash(region_text(app, app.guardrails_pane))


async def test_the_evidence_counter_says_how_long_until_enough(make_rig: RigFactory) -> None:
    rig = make_rig("good", guardrails=guardrails(error_ratio={"min_evidence": 1_000_000}))
    rig.ready()
    rig.engine.advance()
    rig.tick(10)
    assert rig.engine.state.guardrails["error-ratio"].status == "insufficient"
    app = rig.app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        pane = squash(region_text(app, app.guardrails_pane))
        assert " of 1,000,000 canary requests · enough in ~" in pane
        assert "at the current rate" in pane
        await pilot.press("g")
        await settle(pilot)
        assert isinstance(app.screen, GuardrailDetailModal)
        detail = squash(screen_text(app))
        assert "evidence: " in detail and " of 1,000,000 canary requests" in detail
        assert "rules: max 2.00% · needs 1,000,000 requests · no data: can't evaluate" in detail


async def test_the_mann_whitney_comparison_on_screen(make_rig: RigFactory) -> None:
    rig = make_rig("bad", guardrails=guardrails(
        error_ratio={"mann_whitney": {"min_samples": 5}}))
    rig.to_ten_percent()
    rig.tick(14)
    app = rig.app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        pane = squash(region_text(app, app.guardrails_pane))
        assert "Mann-Whitney: canary higher, p" in pane
        assert "baseline samples, not gating)" in pane
        await pilot.press("g")
        await settle(pilot)
        detail = squash(screen_text(app))
        assert "compare: Mann-Whitney: canary higher" in detail


async def test_a_watcher_sees_the_rule_that_decided_and_the_queries_as_sent(
        make_rig: RigFactory) -> None:
    rig = make_rig("bad")
    rig.to_ten_percent()
    rig.tick(6)
    assert rig.engine.state.guardrails["error-ratio"].status == "breach"
    app = rig.app(watch=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("g")
        await settle(pilot)
        assert isinstance(app.screen, GuardrailDetailModal)
        detail = squash(screen_text(app))
        assert "decided by: max" in detail
        assert 'canary query: sim:error_ratio{service="redaction-api", track="canary"}' in detail
