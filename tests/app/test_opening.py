"""A commander's console on a terminal opens behind its first frame (console/launch.py).

The first frame is the layout with every pane titled and saying "opening the record…" (no
figure); the config, the record, the lease, the adapters and the engine are opened in a thread
once it is on the screen. Until they are, a key that acts on the incident is refused in words;
once they are, the panes show the incident and the keys act. A step that fails closes the app
with status 2 and hands the error to the launcher, which says it in one line.

The opening step here is the test's own callable, released by the test (an Event, not a sleep),
so the "still opening" moment lasts as long as the test needs it to.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from textual.pilot import Pilot

from console.app import ConsoleParts, WarroomApp, make_opening_app
from console.errors import UsageError
from console.model import Kind
from console.screens.forms import NoteModal
from tests.app.conftest import Rig, screen_text, settle, squash, toasts_text

SIZE = (80, 24)
PANES = ("Canary", "Rollback", "Approvals", "Guardrails", "Timeline")
DEADLINE_S = 20.0


async def until(pilot: Pilot[Any], test: Any, what: str) -> None:
    """Let the app run until ``test()`` holds, or fail at the deadline."""
    deadline = time.monotonic() + DEADLINE_S
    while not test():
        if time.monotonic() > deadline:
            raise AssertionError(f"not seen within {DEADLINE_S:g}s: {what}; the screen shows:\n"
                                 + screen_text(pilot.app))
        await pilot.pause(0.02)


def held_opening(rig: Rig) -> tuple[threading.Event, threading.Event, Any]:
    """An opening that waits for the test's go, then hands over the rig's incident."""
    started, go = threading.Event(), threading.Event()

    def opening() -> ConsoleParts:
        started.set()
        if not go.wait(DEADLINE_S):
            raise AssertionError("the test never released the opening")
        return ConsoleParts(rig.config, rig.db, rig.incident_id, rig.engine, None)

    return started, go, opening


async def test_the_first_frame_is_the_layout_then_the_incident(rig: Rig) -> None:
    started, go, opening = held_opening(rig)
    app = make_opening_app(opening, rig.clock)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await until(pilot, started.is_set, "the opening step started (after the first frame)")
        shown = screen_text(app)
        for title in PANES:
            assert f"─ {title} ─" in shown, title
        assert "COMMANDER" in shown and "opening the record…" in shown
        assert "%" not in shown and "INC-" not in shown  # no figure before there is one

        # A key that acts on the incident is refused, in words; nothing is recorded.
        before = rig.last_id()
        await pilot.press("n")
        await until(pilot, lambda: "Still opening the record" in toasts_text(app),
                    "the refusal of n while opening")
        assert not isinstance(app.screen, NoteModal)
        assert rig.last_id() == before

        go.set()
        await until(pilot, lambda: "INC-1" in screen_text(app), "the incident in the header")
        await settle(pilot)
        shown = squash(screen_text(app))
        assert "opening the record…" not in shown  # (the toast above may still be up)
        assert "[0%] ▸ 1% ▸ 10% ▸ 50% ▸ 100%" in shown
        assert "Declared P0 security emergency on redaction-api" in shown

        # Now the same key acts: the note goes through the engine to the record.
        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, NoteModal), "the note dialog")
        await pilot.press(*"opened behind the frame", "enter")
        await settle(pilot)
        assert any(e.payload.get("text") == "opened behind the frame"
                   for e in rig.events(Kind.NOTE))
        assert app.opened_parts is not None and app.opening_error is None


async def test_a_failed_opening_closes_the_app_with_status_2_and_its_error(rig: Rig) -> None:
    def opening() -> ConsoleParts:
        raise UsageError("INC-9 is commanded by bob")

    app: WarroomApp = make_opening_app(opening, rig.clock)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: not app.is_running or app.return_code is not None,
                    "the app closing")
    assert app.return_code == 2
    assert isinstance(app.opening_error, UsageError)
    assert str(app.opening_error) == "INC-9 is commanded by bob"
    assert app.opened_parts is None


async def test_quit_while_opening_quits_and_help_works(rig: Rig) -> None:
    started, go, opening = held_opening(rig)
    app = make_opening_app(opening, rig.clock)
    try:
        async with app.run_test(size=SIZE, notifications=True) as pilot:
            await until(pilot, started.is_set, "the opening step started")
            await pilot.press("question_mark")
            await until(pilot, lambda: "Every key" in screen_text(app) or
                        "Advance the canary" in screen_text(app), "the help")
            await pilot.press("escape")
            await pilot.press("q")
            await until(pilot, lambda: not app.is_running, "the app quitting")
    finally:
        go.set()  # the launcher joins the step and closes what it opened (console/launch.py)
    assert app.opening_thread is not None
    app.opening_thread.join(DEADLINE_S)
    assert app.opened_parts is not None  # opened after the quit: the launcher closes it
