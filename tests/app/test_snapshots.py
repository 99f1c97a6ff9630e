"""Snapshots of the console at 80×24 (the smallest a war room gets), 120×36, 150×40 and 200×50.

Deterministic by construction: the incident is declared and run on a ManualClock fixed at
2026-03-14 22:00 UTC, the simulator is seeded, the app is built with ``live=False`` (nothing ticks)
and each screenshot is taken after one store-watch cycle has rendered (``settle``). No screen here
has a text cursor, so there is no blink to freeze.

Regenerate with ``make snapshots`` (``pytest tests/app --snapshot-update``) and look at every SVG
before committing it (STYLE.md, rule 19).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from textual.pilot import Pilot

from tests.app.conftest import Rig, RigFactory, settle

SIZES = [pytest.param(size, id=f"{size[0]}x{size[1]}")
         for size in ((80, 24), (120, 36), (150, 40), (200, 50))]
SnapCompare = Callable[..., bool]


def blocked_at_ten(rig: Rig) -> None:
    """Approved, preflight passed, checklist acked; 1% held; 10% for 4 s of the bad build:
    the hold and the guardrails (both in BREACH) block the next stage."""
    rig.to_ten_percent()
    rig.tick(4)


async def _settled(pilot: Pilot[Any]) -> None:
    await settle(pilot)


async def _rollback_modal(pilot: Pilot[Any]) -> None:
    await settle(pilot)
    await pilot.press("R")
    await settle(pilot)


@pytest.mark.parametrize("size", SIZES)
def test_commander_at_start(make_rig: RigFactory, snap_compare: SnapCompare,
                            size: tuple[int, int]) -> None:
    """Just declared: the console ran its rollback preflight; approvals are still missing."""
    rig = make_rig("bad")
    rig.engine.preflight()  # what the commander's console does as it opens
    assert snap_compare(rig.app(), terminal_size=size, run_before=_settled)


@pytest.mark.parametrize("size", SIZES)
def test_commander_blocked_advance(make_rig: RigFactory, snap_compare: SnapCompare,
                                   size: tuple[int, int]) -> None:
    """At 10%: '✗ hold 26s left of 30s' and 'guardrails not healthy: … BREACH' in the canary
    pane; both guardrails in BREACH, their graphs over the limit."""
    rig = make_rig("bad")
    blocked_at_ten(rig)
    assert snap_compare(rig.app(), terminal_size=size, run_before=_settled)


@pytest.mark.parametrize("size", SIZES)
def test_confirm_rollback_modal(make_rig: RigFactory, snap_compare: SnapCompare,
                                size: tuple[int, int]) -> None:
    """R at 10%: target v1.4.2, weight 10% → 0%, what counts as VERIFIED, y / any other key."""
    rig = make_rig("bad")
    blocked_at_ten(rig)
    assert snap_compare(rig.app(), terminal_size=size, run_before=_rollback_modal)


@pytest.mark.parametrize("size", SIZES)
def test_watcher(make_rig: RigFactory, snap_compare: SnapCompare,
                 size: tuple[int, int]) -> None:
    """The same incident read-only: WATCHING badge, no 'press a/R' hints, no action keys."""
    rig = make_rig("bad")
    blocked_at_ten(rig)
    assert snap_compare(rig.app(watch=True), terminal_size=size, run_before=_settled)


@pytest.mark.parametrize("size", SIZES)
def test_rollback_not_verified(make_rig: RigFactory, snap_compare: SnapCompare,
                               size: tuple[int, int]) -> None:
    """A deployer that never reports the target: after verify_timeout_s the rollback pane is
    the loud ROLLBACK NOT VERIFIED bar with the reason."""
    rig = make_rig("bad", fail_rollback=True)
    blocked_at_ten(rig)
    rig.engine.request_rollback("commander pressed R")
    rig.tick(rig.config.rollback.verify_timeout_s + 4)
    assert rig.state().rollback_status == "not_verified"
    assert snap_compare(rig.app(), terminal_size=size, run_before=_settled)


async def test_a_resize_round_trip_loses_nothing(make_rig: RigFactory) -> None:
    """200×50 → 80×24 → 60×20 → 200×50: the same screen at the end as at the start (the
    header on top, every pane back, the graphs drawn again), and the header at every size."""
    from tests.app.conftest import _frame, screen_text

    rig = make_rig("bad")
    blocked_at_ten(rig)
    app = rig.app()
    async with app.run_test(size=(200, 50)) as pilot:
        await settle(pilot)
        start = _frame(app)
        for size in ((80, 24), (60, 20), (120, 36), (200, 50)):
            await pilot.resize_terminal(*size)
            await settle(pilot)
            lines = screen_text(app).splitlines()
            assert "COMMANDER" in lines[0] and "INC-1" in lines[0], size
            timeline = app.timeline.region.height - 2
            assert timeline >= (5 if size[1] >= 24 else 3), (size, timeline)
        assert _frame(app) == start
        assert all(graph.region.height >= 5 for graph in app.graphs.values())


async def _relay_refused(pilot: Pilot[Any]) -> None:
    """``A``, security-lead, a name on no roster: the rules refuse it; the form is left with
    Escape so the picture shows the approvals pane with the refusal and every rule."""
    await settle(pilot)
    await pilot.press("A")
    await settle(pilot)
    await pilot.press(str(pilot.app.state.missing_roles.index("security-lead") + 1))  # type: ignore[attr-defined]
    await pilot.press(*"sam", "enter", *"bridge call 22:14", "enter")
    await settle(pilot)
    await pilot.press("escape")
    await settle(pilot)


@pytest.mark.parametrize("size", [SIZES[0], SIZES[-1]])
def test_relayed_approval_refused(make_rig: RigFactory, snap_compare: SnapCompare,
                                  size: tuple[int, int]) -> None:
    """A relayed approval the rules refuse: REFUSED and why at the top of the approvals pane
    (loud border), the rows, then every approval rule where there is room (200×50)."""
    rig = make_rig("bad")
    rig.engine.preflight()
    assert snap_compare(rig.app(), terminal_size=size, run_before=_relay_refused)


async def _status_page_form(pilot: Pilot[Any]) -> None:
    from console.screens.statuspage import StatusPageModal

    await settle(pilot)
    await pilot.press("s")
    for _ in range(200):
        await settle(pilot)
        if isinstance(pilot.app.screen, StatusPageModal):
            break
    from textual.widgets import TextArea

    # a blinking cursor is a race with the screenshot (seen under load): hold it on
    pilot.app.screen.query_one(TextArea).cursor_blink = False
    await pilot.press("ctrl+s")  # the draft's blanks are still there: refused, in words
    await settle(pilot)


@pytest.mark.parametrize("size", [SIZES[0], SIZES[2]])
def test_status_page_form(make_rig: RigFactory, snap_compare: SnapCompare,
                          size: tuple[int, int], monkeypatch: pytest.MonkeyPatch) -> None:
    """s at 10%: the status page update (identified), its component, the draft's text in a box
    and why it cannot be posted yet (its blanks)."""
    monkeypatch.setenv("WARROOM_STATUSPAGE_KEY", "not-used-nothing-is-posted")
    rig = make_rig("bad", statuspage={
        "page_id": "kctbh9vrtdwd", "api_key_env": "WARROOM_STATUSPAGE_KEY",
        "api_url": "http://127.0.0.1:9", "components": {"redaction-api": "8kbf7d35c070"}},
        export={"customer_names": {"redaction-api": "Support transcripts"}})
    blocked_at_ten(rig)
    assert snap_compare(rig.app(), terminal_size=size, run_before=_status_page_form)


@pytest.mark.parametrize("size", [SIZES[0], SIZES[3]])
def test_opening_layout(make_rig: RigFactory, snap_compare: SnapCompare,
                        size: tuple[int, int]) -> None:
    """The first frame of a commander's console on a terminal, before the config and the
    record are open: the layout, every pane titled, "opening the record…", no figure. The
    opening step waits (an Event) until the screenshot is taken."""
    import threading
    import time

    from console.app import ConsoleParts, make_opening_app
    from tests.app.conftest import still

    rig = make_rig("bad")
    go = threading.Event()

    def opening() -> ConsoleParts:
        go.wait(60)
        return ConsoleParts(rig.config, rig.db, rig.incident_id, rig.engine, None)

    app = make_opening_app(opening, rig.clock)

    async def opened_behind(pilot: Pilot[Any]) -> None:
        deadline = time.monotonic() + 20
        while app.opening_thread is None:  # started once the first frame is up
            assert time.monotonic() < deadline, "the opening step never started"
            await pilot.pause(0.02)
        await still(pilot)

    try:
        assert snap_compare(app, terminal_size=size, run_before=opened_behind)
    finally:
        go.set()
