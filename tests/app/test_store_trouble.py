"""The store is the truth every pane shows: when it cannot be read for a moment, the console says
so once, keeps trying, and catches up — it never silently stops following the incident."""

from __future__ import annotations

from console.model import Kind
from tests.app.conftest import Rig, settle, toasts_text


async def test_an_unreadable_store_is_said_once_retried_and_caught_up(rig: Rig) -> None:
    app = rig.app(watch=True)
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await settle(pilot)
        reader = app._reader
        assert reader is not None
        reader.close()  # the file goes away under the watcher's feet
        app._watch_store()
        for _ in range(200):  # the failed worker's state change reaches the app (bounded)
            await pilot.pause(0.01)
            if app._store_trouble:
                break
        assert app._store_trouble
        await pilot.pause()
        assert "Cannot read the incident database" in toasts_text(app)
        # Meanwhile the commander goes on; then the file is readable again.
        rig.store.append(rig.incident_id, Kind.NOTE, "alice", {"text": "still here"},
                         ts=rig.clock.now())
        await settle(pilot)  # the next store-watch cycle reopens the file
        assert not app._store_trouble
        assert "readable again" in toasts_text(app)
        assert app.timeline.last_event_id == rig.last_id()
