"""The console's graphs mark the moments that changed things — stage changes, approvals,
overrides, the rollback and its verdict — read from the record (issue 16, item 2).

Snapshots of one graph at 80×24 and 200×50 (every kind of mark, a label that would run off the
right edge, labels that would overlap), and the marks the record gives.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from textual.app import App, ComposeResult

from console.marks import mark_of, marks
from console.model import Event, Kind
from widgets.graphs import MetricGraph

T0 = datetime(2026, 3, 14, 22, 0, tzinfo=UTC)
SnapCompare = Callable[..., bool]


def event(seconds: float, kind: str, **payload: Any) -> Event:
    return Event(1, 1, T0 + timedelta(seconds=seconds), kind, "alice", payload, "", "")


#: The demo's bad run as the record has it: approvals, an override at 1 %, 10 %, the rollback.
RECORD = [
    event(5, Kind.APPROVED, role="security-lead", user="priya"),
    event(8, Kind.APPROVED, role="platform-lead", user="marco"),
    event(20, Kind.WEIGHT_REQUESTED, from_percent=0, to_percent=1, action="advance"),
    event(21, Kind.WEIGHT_SET, percent=1, action="advance"),
    event(60, Kind.WEIGHT_REQUESTED, from_percent=1, to_percent=10, action="advance",
          overrides=[{"block": "hold", "words": "hold", "reason": "leak is live"}]),
    event(61, Kind.WEIGHT_SET, percent=10, action="advance"),
    event(75, Kind.ROLLBACK_REQUESTED, target="v1.4.2", automatic=True),
    event(76, Kind.WEIGHT_SET, percent=0, action="rollback"),
    event(118, Kind.ROLLBACK_VERIFIED, target="v1.4.2"),
    event(119, Kind.NOTE, text="not a mark"),
]


def test_the_record_gives_one_mark_per_moment() -> None:
    assert [(ts - T0.timestamp(), label, loud) for ts, label, loud in marks(RECORD)] == [
        (5, "✓security-lead", False), (8, "✓platform-lead", False), (21, "→1%", False),
        (60, "override", True), (61, "→10%", False), (75, "ROLLBACK", True),
        (118, "VERIFIED", False)]
    assert marks(RECORD, since=T0.timestamp() + 60, until=T0.timestamp() + 75) == [
        m for m in marks(RECORD) if 60 <= m[0] - T0.timestamp() <= 75]
    assert mark_of(event(1, Kind.WEIGHT_SET, percent=0, action="abort"))[1:] == (  # type: ignore[index]
        "abort→0%", False)
    assert mark_of(event(1, Kind.WAIVED, role="x" * 30))[1] == "waived " + "x" * 13 + "…"  # type: ignore[index]


class GraphApp(App[None]):
    def compose(self) -> ComposeResult:
        yield MetricGraph(id="graph")

    def on_mount(self) -> None:
        start = T0.timestamp()
        canary = [(start + t, (0.3 if t < 61 else 3.0 + t / 60) if 10 <= t < 76 else None)
                  for t in range(10, 121, 2)]
        baseline = [(start + t, 0.29 + (t % 5) / 100) for t in range(10, 121, 2)]
        graph = self.query_one(MetricGraph)
        graph.set_series("error-ratio", "%", canary, baseline, 2.0, 1.6,
                         marks=[*marks(RECORD), (start + 120, "NOT VERIFIED", True)])


@pytest.mark.parametrize("size", [(80, 24), (200, 50)], ids=["80x24", "200x50"])
def test_a_graph_marks_what_happened(snap_compare: SnapCompare, size: tuple[int, int]) -> None:
    """Green for the approvals (before the first sample: the time axis starts at them), the
    stage changes and VERIFIED; red for the override, the rollback and NOT VERIFIED; the labels
    at the right edge end at their line; labels that would overlap go a row lower."""
    assert snap_compare(GraphApp(), terminal_size=size)

