"""One road per fact (issue 11): a guardrail's status comes from the recorded events, its
figures from the newest sample, both through one formatter — so every pane, the graphs and the
`g` detail say the same at every moment, and the clocks tick."""

from __future__ import annotations

import re

from console.model import Figures, format_value
from console.screens.info import GuardrailDetailModal
from tests.app.conftest import Rig, RigFactory, region_text, screen_text, settle, squash

SIZE = (160, 48)


def blocked_at_ten(rig: Rig) -> None:
    rig.to_ten_percent()


async def test_a_breach_shows_the_same_figure_everywhere(make_rig: RigFactory) -> None:
    rig = make_rig("bad")
    blocked_at_ten(rig)
    rig.tick(6)  # the bad build breaches at 10%
    samples = {series: rig.store.samples(rig.incident_id, series)
               for series in rig.store.series_names(rig.incident_id)}
    newest = Figures.newest(samples["error-ratio/canary"], samples["error-ratio/baseline"],
                            samples.get("error-ratio/limit", []), 0.02)
    figure = format_value(newest.canary, "%", 100)  # e.g. 2.91%
    assert newest.canary is not None and newest.canary > 0.02
    app = rig.app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        guardrails = squash(region_text(app, app.guardrails_pane))
        graph = squash(region_text(app, app.graphs["error-ratio"]))
        assert f"canary {figure} > limit 2.00%" in guardrails
        assert f"canary {figure}" in graph
        assert "BREAC" in guardrails  # the status, as recorded
        await pilot.press("g")
        await settle(pilot)
        assert isinstance(app.screen, GuardrailDetailModal)
        detail = squash(screen_text(app))
        assert "error-ratio: BREACH" in detail and f"canary {figure} > limit 2.00%" in detail
        # Every current figure of the canary on screen is that one — no pane keeps a stale
        # figure from an older event (the timeline's lines are the history, and say so).
        await pilot.press("escape")
        await settle(pilot)
        panes = [app.canary, app.rollback_pane, app.guardrails_pane, *app.graphs.values()]
        shown = {value for pane in panes
                 for value in re.findall(r"canary (\d+\.\d+%)", squash(region_text(app, pane)))}
        assert shown == {figure}, shown


async def test_the_automatic_rollback_is_announced_as_it_comes(make_rig: RigFactory) -> None:
    rig = make_rig("bad")
    blocked_at_ten(rig)
    rig.tick(4)
    app = rig.app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        breaches = rig.state().guardrails["error-ratio"].breaches
        consecutive = rig.state().guardrails["error-ratio"].consecutive
        left = consecutive - breaches
        assert 0 < left < consecutive
        guardrails = squash(region_text(app, app.guardrails_pane))
        assert f"breaches {breaches}/{consecutive} → rollback in {left} polls" in guardrails


async def test_the_verification_clocks_tick(make_rig: RigFactory) -> None:
    rig = make_rig("bad")
    blocked_at_ten(rig)
    rig.engine.request_rollback("drill")
    rig.tick(2)
    app = rig.app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        first = squash(region_text(app, app.rollback_pane))
        assert "not verified in" in first or "verified in" in first, first
        rig.tick(3)
        await settle(pilot)
        second = squash(region_text(app, app.rollback_pane))
        assert second != first, "the clock did not move"


async def test_not_verified_says_why_first(make_rig: RigFactory) -> None:
    rig = make_rig("bad", fail_rollback=True)
    blocked_at_ten(rig)
    rig.engine.request_rollback("drill")
    rig.tick(rig.config.rollback.verify_timeout_s + 4)
    app = rig.app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        lines = region_text(app, app.rollback_pane).splitlines()
        assert "ROLLBACK NOT VERIFIED" in lines[0]
        assert "the deployer still reports v1.4.3" in squash(" ".join(lines[:4]))
