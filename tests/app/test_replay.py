"""Replay (issue 16, item 3): the console as it was at any moment, from the record alone.

The screen a replay shows at a moment equals the screen a watcher showed at that moment — taken
at three moments of the demo's bad run (at 1 % after the approvals, at 10 % breaching, after the
verified rollback) at 80×24 and 120×36, every line but the header (mode badge and clock) and the
footer (the keys) — and the replay's keys move it: a step, a stage, a breach, an action, a time,
play, back to live on a watcher.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from textual.pilot import Pilot

from console.app import REPLAY, WATCHING, AppOptions, WarroomApp, make_app
from console.model import Kind
from tests.app.conftest import Rig, RigFactory, screen_text, settle, still

SnapCompare = Callable[..., bool]


def replay_app(rig: Rig, at: datetime | None) -> WarroomApp:
    return make_app(rig.config, rig.db, rig.incident_id, rig.clock,
                    options=AppOptions(live=False, replay_at=at, replay_only=True))


async def replayed(pilot: Pilot[Any], *, deadline_s: float = 20.0) -> None:
    """Wait until every replay move asked for is on screen, then for the screen to settle."""
    app = pilot.app
    assert isinstance(app, WarroomApp)
    import time

    deadline = time.monotonic() + deadline_s
    await settle(pilot)
    while app.replay_moves_shown < app.replay_moves_asked or app._moment is None:
        if time.monotonic() > deadline:
            raise AssertionError("the replay did not show its moves in time")
        await pilot.pause(0.02)
    await still(pilot)


def body(app: WarroomApp) -> list[str]:
    """The screen without the header (mode, clock) and the footer (the keys)."""
    lines = screen_text(app).splitlines()
    return lines[app.header.region.height:-1]


def play_the_demo(rig: Rig) -> list[datetime]:
    """The bad build: ready, 1 % held (moment 1), 10 % breaching (moment 2), the automatic
    rollback verified (moment 3). Returns the three moments."""
    moments = []
    rig.ready()
    rig.engine.advance()
    rig.tick(6)
    moments.append(rig.clock.now())
    rig.past_hold()
    rig.engine.advance()
    rig.tick(6)
    moments.append(rig.clock.now())
    rig.tick(60)
    assert rig.state().rollback_status == "verified"
    moments.append(rig.clock.now())
    return moments


@pytest.mark.parametrize("size", [(80, 24), (120, 36)], ids=["80x24", "120x36"])
async def test_the_screen_at_a_moment_equals_what_a_watcher_showed_then(
        make_rig: RigFactory, size: tuple[int, int]) -> None:
    rig = make_rig("bad")
    watched: list[tuple[datetime, list[str]]] = []
    rig.ready()
    rig.engine.advance()
    stops = iter([lambda: rig.tick(6), lambda: (rig.past_hold(), rig.engine.advance(),
                                                rig.tick(6)), lambda: rig.tick(60)])
    for move in stops:
        move()
        app = rig.app(watch=True)
        async with app.run_test(size=size) as pilot:
            await settle(pilot)
            watched.append((rig.clock.now(), body(app)))
    assert rig.state().rollback_status == "verified"
    rig.tick(30)  # the record goes on after the last moment
    for at, seen in watched:
        app = replay_app(rig, at)
        async with app.run_test(size=size) as pilot:
            await replayed(pilot)
            assert app.mode == REPLAY
            assert body(app) == seen, at
            header = screen_text(app).splitlines()[0]
            assert "REPLAY" in header and at.strftime("%H:%M:%S") in header


async def test_the_keys_move_the_replay(make_rig: RigFactory) -> None:
    rig = make_rig("bad")
    play_the_demo(rig)
    events = rig.events()
    app = replay_app(rig, events[0].ts)
    async with app.run_test(size=(120, 36)) as pilot:
        await replayed(pilot)
        # the declaration's moment shows every event stamped at that instant
        first = max(e.id for e in events if e.ts <= events[0].ts)
        assert app._moment is not None and app._moment.event_id == first
        after = next(e for e in events if e.id > first)
        await pilot.press("full_stop")
        await replayed(pilot)
        assert app._moment is not None and app._moment.event_id == after.id
        assert app._moment.clock == after.ts
        await pilot.press("comma")
        await replayed(pilot)
        assert app._moment.event_id == first
        # the next stage change: the weight set to 10 % (1 % came at the declaration's instant)
        await pilot.press("right_square_bracket")
        await replayed(pilot)
        stage = next(e for e in events if e.kind == Kind.WEIGHT_SET and e.id > first)
        assert app._moment.event_id == stage.id and app.state.canary_percent == 10
        # the next breach: a guardrail's change to BREACH (not a breach count moving)
        await pilot.press("b")
        await replayed(pilot)
        breach = next(e for e in events if e.kind == Kind.GUARDRAIL_CHANGED and e.id > stage.id
                      and e.payload["status"] == "breach" and e.payload["previous"] != "breach")
        assert app._moment.event_id == breach.id
        assert app.state.guardrails[breach.payload["name"]].status == "breach"
        # the next action: the automatic rollback's request (warroom acted)
        await pilot.press("greater_than_sign")
        await replayed(pilot)
        action = next(e for e in events if e.id > breach.id and e.kind in (
            Kind.GUARDRAIL_ACTION, Kind.ROLLBACK_REQUESTED, Kind.WEIGHT_REQUESTED))
        assert app._moment.event_id == action.id
        await pilot.press("B")  # back to the last change to BREACH before it
        await replayed(pilot)
        assert app._moment.event_id == max(
            e.id for e in events if e.kind == Kind.GUARDRAIL_CHANGED and e.id < action.id
            and e.payload["status"] == "breach" and e.payload["previous"] != "breach")
        await pilot.press("left_square_bracket")
        await replayed(pilot)
        assert app._moment.event_id == stage.id
        # a time, typed
        target = events[0].ts + timedelta(seconds=10)
        await pilot.press("t", *target.strftime("%H:%M:%S"), "enter")
        await replayed(pilot)
        assert app._moment.clock == target
        assert app._moment.event_id == max(e.id for e in events if e.ts <= target)
        await pilot.press("t", *"+4s", "enter")  # a short form: after the declaration
        await replayed(pilot)
        assert app._moment.clock == events[0].ts + timedelta(seconds=4)
        # commander keys do nothing in a replay; nothing is appended
        count = len(events)
        await pilot.press("a", "y", "R", "y", "n")
        await replayed(pilot)
        assert len(rig.events()) == count


async def test_a_burst_of_keys_lands_where_each_key_leads(make_rig: RigFactory) -> None:
    """Keys pressed faster than the replay reads are all honoured, in order (five steps land
    five events on), and drawn once; a typed jump holds the screen until its moment is shown,
    then lets go."""
    rig = make_rig("bad")
    play_the_demo(rig)
    events = rig.events()
    app = replay_app(rig, events[0].ts)
    async with app.run_test(size=(80, 24)) as pilot:
        await replayed(pilot)
        assert app._moment is not None
        later = sorted(e.id for e in events if e.id > app._moment.event_id)
        await pilot.press(*["full_stop"] * 5)
        await replayed(pilot)
        assert app._moment.event_id == later[4]
        await pilot.press(*["full_stop"] * 3, "comma", "comma")
        await replayed(pilot)
        assert app._moment.event_id == later[5]
        assert app.state.last_event_id == later[5]
        # the timeline ends on the moment's event (its rows counted without a layout)
        assert app.timeline.last_event_id == later[5]
        assert app.timeline.row_count == app.state.event_count
        target = events[0].ts + timedelta(seconds=6)
        await pilot.press("t", *"+6s", "enter", "full_stop")
        await replayed(pilot)
        after = min(e.id for e in events if e.ts > target)
        assert app._moment.event_id == after  # the time, then a step from it
        assert app._held_for == 0 and app._batch_count == 0  # the screen is not held


async def test_play_runs_the_clock_and_stops_at_the_end(make_rig: RigFactory) -> None:
    rig = make_rig("bad")
    play_the_demo(rig)
    events = rig.events()
    app = replay_app(rig, events[-1].ts - timedelta(seconds=5))
    async with app.run_test(size=(120, 36)) as pilot:
        await replayed(pilot)
        await pilot.press("plus", "plus", "plus", "plus", "plus")  # 60×
        await pilot.press("space")
        assert app._playing
        header = screen_text(app).splitlines()[0]
        assert "60×" in header
        import time

        deadline = time.monotonic() + 20
        while app._playing:  # a live=False app: the test moves the play clock
            app._play_tick()
            await replayed(pilot)
            assert time.monotonic() < deadline, "play never reached the end"
        assert app._moment is not None and app._moment.event_id == events[-1].id
        assert app._replay_end


async def test_a_watcher_replays_with_one_key_and_comes_back(make_rig: RigFactory) -> None:
    rig = make_rig("bad")
    play_the_demo(rig)
    app = rig.app(watch=True)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        live = body(app)
        await pilot.press("r")
        await replayed(pilot)
        assert app.mode == REPLAY and "REPLAY" in screen_text(app).splitlines()[0]
        assert body(app) == live  # opened at now: the same moment
        await pilot.press("left_square_bracket")  # back to the last stage change
        await replayed(pilot)
        assert body(app) != live
        await pilot.press("r")
        await settle(pilot)
        assert app.mode == WATCHING
        assert body(app) == live


async def test_a_commander_has_no_replay_key(make_rig: RigFactory) -> None:
    rig = make_rig("bad")
    app = rig.app()
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await pilot.press("r")
        await settle(pilot)
        assert app.mode != REPLAY


@pytest.mark.parametrize("size", [(80, 24), (200, 50)], ids=["80x24", "200x50"])
def test_replay_snapshot(make_rig: RigFactory, snap_compare: SnapCompare,
                         size: tuple[int, int]) -> None:
    """At 10 % breaching, replayed after the rollback: the REPLAY badge and the replay clock
    (time, time since the declaration, event #, paused) in the header; the replay keys in the
    footer; the panes as they were."""
    rig = make_rig("bad")
    moments = play_the_demo(rig)
    assert snap_compare(replay_app(rig, moments[1]), terminal_size=size, run_before=replayed)


async def test_a_closed_incident_replays_up_to_its_close(make_rig: RigFactory) -> None:
    """The end of a closed incident is its close, however late the replay is opened: play
    stops there, not at now."""
    rig = make_rig("bad")
    play_the_demo(rig)
    rig.engine.close_incident("hotfix v1.4.4 tracked in INC-2; the bridge is closed")
    closed = rig.events()[-1]
    assert closed.kind == Kind.CLOSED
    rig.clock.advance(3600)  # opened an hour later
    app = replay_app(rig, closed.ts - timedelta(seconds=3))
    async with app.run_test(size=(120, 36)) as pilot:
        await replayed(pilot)
        await pilot.press("plus", "plus", "plus", "space")
        import time

        deadline = time.monotonic() + 20
        while app._playing:
            app._play_tick()
            await replayed(pilot)
            assert time.monotonic() < deadline, "play never reached the close"
        assert app._moment is not None
        assert app._moment.event_id == closed.id and app._moment.clock == closed.ts
        assert app.state.closed
