"""The console's timeline over a long incident: a window of rows read by id as the view moves,
filters answered by queries, memory bounded by what is on screen (DESIGN.md)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from adapters.base import ManualClock
from console.app import AppOptions, make_app
from console.config import Config
from console.demo import declare_demo, demo_config
from console.model import Kind
from console.store import Store
from tests.app.conftest import START, screen_text, still
from widgets.timeline import Timeline

EVENTS = 20_000
CONFIG = demo_config(Config(), "bad")


def long_incident(path: Path) -> int:
    """A demo incident with ``EVENTS`` events: mostly guardrail changes, a note every tenth."""
    with Store(path) as store:
        incident = declare_demo(store, CONFIG, "alice", ts=START)
        batch = []
        for i in range(1, EVENTS):
            if i % 10 == 0:
                batch.append((Kind.NOTE, "bob", {"text": f"note {i}"}))
            else:
                batch.append((Kind.GUARDRAIL_CHANGED, "warroom", {
                    "name": "error-ratio", "status": "healthy" if i % 2 else "breach",
                    "previous": "breach" if i % 2 else "healthy", "detail": f"poll {i}"}))
        store.append_many(incident, batch, ts=START + timedelta(seconds=5))
    return incident


async def test_a_long_incident_opens_on_its_newest_rows_and_holds_a_window(
        tmp_path: Path) -> None:
    db = tmp_path / "w.db"
    incident = long_incident(db)
    app = make_app(CONFIG, db, incident, ManualClock(START + timedelta(minutes=1)),
                   options=AppOptions(live=False))
    async with app.run_test(size=(100, 30)) as pilot:
        await still(pilot)
        timeline = app.query_one(Timeline)
        assert timeline.row_count == EVENTS and timeline.event_count == EVENTS
        assert timeline.held_count <= Timeline.PAGE
        assert "poll 19999" in screen_text(app)

        # Home: the oldest page is read (in a worker) and shown.
        timeline.focus()
        await pilot.press("home")
        await still(pilot)
        assert timeline.row_event(0) is not None
        assert timeline.row_event(0).kind == Kind.DECLARED
        assert "Declared P0 security emergency" in screen_text(app)

        # Moving through the middle of the history keeps the window bounded.
        for row in range(0, EVENTS, EVENTS // 12):
            timeline.scroll_to(y=row, animate=False, force=True)
            await still(pilot)
            top = timeline.row_event(row)
            assert top is not None and top.id == row + 1  # one incident: rows are its events
        assert timeline.held_count <= Timeline.MAX_HELD


async def test_filters_are_queries_and_keep_the_view_near_the_same_moment(
        tmp_path: Path) -> None:
    db = tmp_path / "w.db"
    incident = long_incident(db)
    app = make_app(CONFIG, db, incident, ManualClock(START + timedelta(minutes=1)),
                   options=AppOptions(live=False))
    async with app.run_test(size=(100, 30)) as pilot:
        await still(pilot)
        timeline = app.query_one(Timeline)
        timeline.focus()
        timeline.scroll_to(y=5_000, animate=False, force=True)
        await still(pilot)
        assert not timeline.follow
        timeline.set_filter("notes")
        await still(pilot)
        assert timeline.row_count == (EVENTS - 1) // 10
        assert "notes 1,999/20,000" in (timeline.border_subtitle or "")
        top = timeline.row_event(int(timeline.scroll_y))
        assert top is not None and top.kind == Kind.NOTE
        assert 5_000 <= top.id <= 5_011  # the first note at or after the old top row


async def test_events_committed_elsewhere_are_pushed_to_the_window(tmp_path: Path) -> None:
    db = tmp_path / "w.db"
    incident = long_incident(db)
    app = make_app(CONFIG, db, incident, ManualClock(START + timedelta(minutes=1)),
                   options=AppOptions(live=False))
    async with app.run_test(size=(100, 30)) as pilot:
        await still(pilot)
        with Store(db) as other:
            other.append(incident, Kind.NOTE, "carol", {"text": "from another shell"})
        app._watch_store()
        await still(pilot)
        timeline = app.query_one(Timeline)
        assert timeline.row_count == EVENTS + 1
        assert "from another shell" in screen_text(app)
        assert timeline.held_count <= Timeline.PAGE + 1
