"""The moments a console graph marks on its time axis: stage changes, approvals, overrides, the
rollback and its verdict (issue 16, item 2). Read from the record like every other figure, so a
watcher's graphs and a replay's are marked exactly as the commander's.

Core: no Textual import; the graph widget is handed ``(unix_ts, label, loud)`` triples.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from console.model import Event, Kind

#: The kinds that can carry a mark (the store reads only these for the graphs).
MARK_KINDS: frozenset[str] = frozenset({
    Kind.WEIGHT_SET, Kind.WEIGHT_REQUESTED, Kind.APPROVED, Kind.WAIVED, Kind.ROLLBACK_REQUESTED,
    Kind.ROLLBACK_VERIFIED, Kind.ROLLBACK_NOT_VERIFIED,
})
#: Marks read at most (the newest): a graph shows a window, not the whole incident.
MAX_MARKS = 64

Mark = tuple[float, str, bool]
"""``(unix_ts, label, loud)``: loud marks (the rollback, an override) are drawn in the error
colour."""


def mark_of(event: Event) -> Mark | None:
    """The mark an event puts on the graphs, or None."""
    kind, p = event.kind, event.payload
    ts = event.ts.timestamp()
    if kind == Kind.WEIGHT_SET:
        action = p.get("action")
        percent = _int(p.get("percent"))
        if action == "abort":
            return ts, "abort→0%", False
        if action in ("advance", "immediate") and percent is not None:
            return ts, f"→{percent}%", action == "immediate"
        return None
    if kind == Kind.WEIGHT_REQUESTED:
        if p.get("overrides"):
            return ts, "override", True
        return None
    if kind == Kind.APPROVED:
        return ts, f"✓{_short(p.get('role'))}", False
    if kind == Kind.WAIVED:
        return ts, f"waived {_short(p.get('role'))}", True
    if kind == Kind.ROLLBACK_REQUESTED:
        return ts, "ROLLBACK", True
    if kind == Kind.ROLLBACK_VERIFIED:
        return ts, "VERIFIED", False
    if kind == Kind.ROLLBACK_NOT_VERIFIED:
        return ts, "NOT VERIFIED", True
    return None


def marks(events: Iterable[Event], since: float = 0.0, until: float | None = None
          ) -> list[Mark]:
    """The marks of ``events`` between ``since`` and ``until`` (unix times), oldest first."""
    found = []
    for event in events:
        mark = mark_of(event)
        if mark is not None and mark[0] >= since and (until is None or mark[0] <= until):
            found.append(mark)
    return sorted(found)


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _short(role: Any) -> str:
    text = " ".join(str(role or "").split())
    return text if len(text) <= 14 else text[:13] + "…"
