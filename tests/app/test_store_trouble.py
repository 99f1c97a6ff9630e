"""The store is the truth every pane shows: when it cannot be read for a moment, the console says
so once, keeps trying, and catches up — it never silently stops following the incident."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from textual.pilot import Pilot

from console.model import Kind
from tests.app.conftest import Rig, settle, toasts_text


async def wait_until(pilot: Pilot[Any], condition: Callable[[], bool], what: str,
                     deadline_s: float = 20.0) -> None:
    """Let the live console run until ``condition`` holds (a real-time loop is under test)."""
    deadline = time.monotonic() + deadline_s
    while not condition():
        assert time.monotonic() < deadline, f"after {deadline_s:g}s still waiting for {what}"
        await pilot.pause(0.05)


async def test_an_unreadable_store_is_said_once_retried_and_caught_up(rig: Rig) -> None:
    app = rig.app(watch=True, live=True)  # the real store-watch loop, in real time
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await settle(pilot)
        reader = app._reader
        assert reader is not None
        reader.close()  # the file goes away under the watcher's feet
        rig.store.append(rig.incident_id, Kind.NOTE, "alice", {"text": "during the outage"},
                         ts=rig.clock.now())
        await wait_until(pilot, lambda: "Cannot read the incident database" in toasts_text(app),
                         "the console to say it cannot read")
        # It reopens the file by itself, says so, and catches up with what it missed.
        await wait_until(pilot, lambda: "readable again" in toasts_text(app),
                         "the console to read again")
        await wait_until(pilot, lambda: app.timeline.last_event_id == rig.last_id(),
                         "the missed note on the timeline")
        assert toasts_text(app).count("Cannot read the incident database") == 1
        # And it follows new events as they commit.
        rig.store.append(rig.incident_id, Kind.NOTE, "alice", {"text": "still here"},
                         ts=rig.clock.now())
        await wait_until(pilot, lambda: app.timeline.last_event_id == rig.last_id(),
                         "the next note")
