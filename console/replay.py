"""Replay: the incident as it was at any moment, from the record alone (issue 16, item 3).

A :class:`Replay` reads a record read-only — events and samples, no adapter, no Prometheus, no
lease — and answers "what did the console show at 22:14?": the moment's newest event (a binary
search over the ids, a few indexed reads), the state as of it (folded from the nearest fold
checkpoint, never from event 1: ``RecordStore.state_at``), and the neighbours a person jumps to
(the next event, stage change, breach or action, or the one before). A live incident replays up
to now.

Core: no Textual import; the console (``console/app.py``) draws what this finds.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from console.model import Kind, format_ts
from console.state import IncidentState
from console.store import HISTORY_EVERY, RecordStore

Jump = Literal["event", "stage", "breach", "action"]
#: The speeds play cycles through (× real time).
SPEEDS: tuple[int, ...] = (1, 2, 5, 10, 30, 60)

#: What a person did or asked for: the moments "next action" stops at.
ACTION_KINDS: frozenset[str] = frozenset({
    Kind.WEIGHT_REQUESTED, Kind.ROLLBACK_REQUESTED, Kind.APPROVED, Kind.WAIVED, Kind.PAUSED,
    Kind.RESUMED, Kind.CHECKLIST_ACKED, Kind.PREFLIGHT_REQUESTED, Kind.GATE_RECORDED,
    Kind.CLOSED, Kind.HANDOVER, Kind.TARGET_CHANGED, Kind.NOTE, Kind.MILESTONE,
    Kind.GUARDRAIL_ACTION,
})
_JUMPS: dict[str, tuple[frozenset[str] | None, tuple[str, ...], tuple[str, ...]]] = {
    "event": (None, (), ()),
    "stage": (frozenset({Kind.WEIGHT_SET}), (), ()),
    # a change *to* BREACH (a breach count moving in BREACH is not a new breach)
    "breach": (frozenset({Kind.GUARDRAIL_CHANGED}), ('"status":"breach"',),
               ('"previous":"breach"',)),
    "action": (ACTION_KINDS, (), ()),
}


@dataclass(frozen=True)
class Moment:
    """Where a replay stands: the newest event at that moment and the replay clock."""

    event_id: int
    clock: datetime


class Replay:
    """One incident's record, replayed (``store`` is opened read-only by the caller)."""

    def __init__(self, store: RecordStore, incident_id: int) -> None:
        self.store = store
        self.incident_id = incident_id
        first = store.events(incident_id, limit=1)
        if not first:
            store.state(incident_id)  # raises UnknownIncident with the usual words
        self.start = first[0].ts
        self.first_id = first[0].id
        self._state: IncidentState | None = None
        # States this replay folded (every HISTORY_EVERY events): a record whose stored
        # checkpoints were made by another version is folded once, not at every jump.
        self._kept: dict[int, IncidentState] = {}
        self._closed_at: datetime | None = None

    # --- where the record ends --------------------------------------------------------------------

    def end(self, now: datetime | None = None) -> datetime:
        """The last moment there is to replay: the close, else now (a live incident), else the
        newest event."""
        if self._closed_at is None:
            newest = self.store.state(self.incident_id)  # its checkpoint and the tail
            if newest.closed and newest.closed_ts is not None:
                self._closed_at = max(newest.closed_ts, newest.last_ts or newest.closed_ts)
        if self._closed_at is not None:
            return self._closed_at  # a closed incident stays closed
        tail = self.store.events_tail(self.incident_id, None, 1)
        last = tail[0].ts if tail else self.start
        return max(last, now) if now is not None else last

    def last_event_id(self) -> int:
        return self.store.last_event_id(self.incident_id)

    # --- moving --------------------------------------------------------------------------------

    def at(self, clock: datetime, now: datetime | None = None) -> Moment:
        """The moment ``clock`` (kept between the declaration and the end)."""
        clock = min(max(clock, self.start), self.end(now))
        return Moment(max(self.first_id, self.store.event_at_time(self.incident_id, clock)),
                      clock)

    def at_event(self, event_id: int) -> Moment:
        """The moment event ``event_id`` was recorded."""
        event = self.store.events(self.incident_id, after_id=event_id - 1, limit=1)
        if not event:
            return self.at(self.end())
        return Moment(event[0].id, event[0].ts)

    def jump(self, moment: Moment, what: Jump, *, forward: bool = True) -> Moment | None:
        """The next (or previous) event, stage change, change to BREACH or action from
        ``moment``; None when there is none. Backwards from a clock past its event, "event"
        first goes back to that event's own moment."""
        kinds, has, lacks = _JUMPS[what]
        event_id = moment.event_id
        if not forward and what == "event":
            current = self.store.events(self.incident_id, after_id=event_id - 1, limit=1)
            if current and current[0].id == event_id and current[0].ts < moment.clock:
                return Moment(event_id, current[0].ts)
        found = self.store.neighbour_event(self.incident_id, event_id, forward=forward,
                                           kinds=kinds, payload_has=has, payload_lacks=lacks)
        if found is None:
            return None
        return Moment(found.id, found.ts)

    # --- what the console shows ----------------------------------------------------------------

    def state(self, moment: Moment) -> IncidentState:
        """The state as of the moment's event: from the state this replay showed last when it
        is on the way, else from the nearest checkpoint (stored, or kept by this replay)."""
        target = moment.event_id
        nearest = self._state if self._state is not None and \
            self._state.last_event_id <= target else None
        kept = max((k for k in self._kept if k <= target), default=0)
        if kept and (nearest is None or kept > nearest.last_event_id):
            nearest = self._kept[kept]
        state = self.store.state_at(self.incident_id, target, nearest)
        if state.event_count and (nearest is None or
                                  state.event_count - nearest.event_count >= HISTORY_EVERY):
            self._kept[state.last_event_id] = state.copy()
        self._state = state.copy()
        return state


# --- moments a person types ---------------------------------------------------------------------


def parse_moment(text: str, start: datetime, end: datetime) -> datetime:
    """A moment of the incident: ISO 8601 (UTC without a zone); ``HH:MM[:SS]`` UTC on the
    incident's day (the next day's, if the incident ran past midnight and that is earlier than
    the start); ``+15m`` / ``+2h`` / ``+90s`` after the declaration; ``-15m`` before the end.
    Raises ValueError in words."""
    value = text.strip()
    relative = re.fullmatch(r"([+-])(\d{1,6})([smh])", value)
    if relative:
        amount = timedelta(seconds=int(relative.group(2))
                           * {"s": 1, "m": 60, "h": 3600}[relative.group(3)])
        return start + amount if relative.group(1) == "+" else end - amount
    clock = re.fullmatch(r"(\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,3}))?)?", value)
    try:
        if clock:
            hour, minute, second = (int(part or 0) for part in clock.groups()[:3])
            millis = int((clock.group(4) or "0").ljust(3, "0"))
            when = start.replace(hour=hour, minute=minute, second=second,
                                 microsecond=millis * 1000)
            if when < start and when + timedelta(days=1) <= end + timedelta(minutes=1):
                when += timedelta(days=1)
            return when
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{text!r}: expected HH:MM[:SS] (UTC), ISO 8601, +15m after the "
                         "declaration or -15m before the end") from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def clock_words(moment: Moment, start: datetime, speed: int, playing: bool,
                event_total: int | None = None) -> str:
    """The replay clock, in the header: ``22:14:05 UTC · +14m 05s · #1,234/5,000 · paused``
    (``▶ playing 10×`` while it plays)."""
    from console.model import format_duration

    since = max(0.0, (moment.clock - start).total_seconds())
    at = format_ts(moment.clock)[11:19]
    day = "" if moment.clock.date() == start.date() else f"{moment.clock:%Y-%m-%d} "
    of = f"/{event_total:,}" if event_total else ""
    state = f"▶ playing {speed}×" if playing else "paused"
    return f"{day}{at} UTC · +{format_duration(since)} · #{moment.event_id:,}{of} · {state}"


__all__: Sequence[str] = ["ACTION_KINDS", "SPEEDS", "Jump", "Moment", "Replay", "clock_words",
                          "parse_moment"]
