"""The console's graphs are marked from the record, on every console (issue 16, item 2)."""

from __future__ import annotations

from console.model import Kind
from tests.app.conftest import RigFactory, settle


async def test_a_watcher_graph_is_marked_from_the_record(make_rig: RigFactory) -> None:
    """The console reads the marks with the samples: a watcher's graph shows the stage change
    to 10 % exactly where the commander's does."""
    rig = make_rig("bad")
    rig.to_ten_percent()
    rig.tick(4)
    ten = next(e for e in rig.events(Kind.WEIGHT_SET) if e.payload["percent"] == 10)
    for watch in (False, True):
        app = rig.app(watch=watch)
        async with app.run_test(size=(200, 50)) as pilot:
            await settle(pilot)
            graph = app.graphs["error-ratio"]
            assert (ten.ts.timestamp(), "→10%", False) in graph._marks
