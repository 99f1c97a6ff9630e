"""The timeline as a story a person reads: what changed, once, in time order.

The record keeps every fact; a reader wants the changes. :func:`story` turns the events into
lines, folding what repeats without losing it:

- a guardrail's polls that keep its status are one line with their count, span and peak
  ("BREACH ×22 from 03:14:02 to 03:14:44, peak 3.48%"); a new line starts only when its status
  (or the track it is judged on) changes — :func:`guardrail_runs` gives the same runs to the
  Guardrails part of the PIR;
- a rollback preflight that gives the same result again is counted on its first line, and the
  request that precedes each is not shown;
- a canary weight request and its outcome are one line;
- a console opened again by the same person is counted on the first line;
- identical rollback progress messages in a row are one line;
- notes are gathered in their own section (:func:`notes`), and chat notifications are counted
  in the Command part, since each repeats a fact already on the timeline.

Lines carry plain text (the caller escapes it) and stay in the order of the events.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from console.model import GUARDRAIL_STATUS_WORDS, LOUD_KINDS, Event, Kind, describe

#: Kinds that are not lines of the story (see the module docstring for where they go).
_NOT_IN_STORY = frozenset({Kind.NOTE, Kind.PREFLIGHT_REQUESTED, Kind.NOTIFIED, Kind.HIGHLIGHTED,
                           Kind.CONSOLE_CLOSED})


@dataclass(slots=True)
class GuardrailRun:
    """Consecutive evaluations of one guardrail with one status, on one track."""

    name: str
    status: str
    previous: str
    mode: str  # "canary", or "stable" while a rollback is verified on the stable track
    first: Event
    last: Event
    count: int = 1
    peak: float | None = None
    sustained: bool = False
    limits: list[float] = field(default_factory=list)
    #: How its line shows a time and a figure (a run is its own line of the story).
    wording: Wording | None = None

    def absorb(self, event: Event, payload: dict[str, Any]) -> None:
        """One more evaluation with the same status (kept cheap: a long record has many)."""
        self.last = event
        self.count += 1
        canary = payload.get("canary")
        if canary.__class__ is float and (self.peak is None or canary > self.peak):
            self.peak = canary
        if payload.get("sustained"):
            self.sustained = True
        limit = payload.get("limit")
        if limit.__class__ is float and limit not in self.limits:
            self.limits.append(limit)

    @property
    def detail(self) -> str:
        value = self.first.payload.get("detail")
        return "" if value is None else str(value)

    @property
    def span_s(self) -> float:
        return (self.last.ts - self.first.ts).total_seconds()

    # --- as a line of the story (what Line has) -------------------------------------------------

    @property
    def event(self) -> Event:
        return self.first

    @property
    def actor(self) -> str:
        return self.first.actor

    @property
    def ts(self) -> datetime:
        return self.first.ts

    @property
    def loud(self) -> bool:
        return self.status == "breach" or self.status == "cant_evaluate"

    @property
    def text(self) -> str:
        """Its line: status, count, span, peak, and the first poll's detail."""
        at, value = self.wording or _PLAIN
        status = self.status
        word = GUARDRAIL_STATUS_WORDS.get(status, status)
        detail = self.first.payload.get("detail")
        detail = "" if detail is None else str(detail)  # as .detail
        track = (" on the stable track" if self.mode == "stable"
                 and not detail.startswith("stable track") else "")
        count = self.count
        if count > 1:
            peak = (f", peak {value(self.name, self.peak)}"
                    if self.peak is not None and status == "breach" else "")
            head = (f"Guardrail {self.name}{track}: {word} ×{count} from {at(self.first.ts)} "
                    f"to {at(self.last.ts)}{peak}")
        else:
            head = f"Guardrail {self.name}{track}: {word}"
        if self.sustained:
            head += " (sustained)"
        return f"{head} — {detail}" if detail else head


#: (time, guardrail figure) formatters of a run's line: ``at(ts)``, ``value(guardrail, raw)``.
Wording = tuple[Callable[[datetime], str], Callable[[str, Any], str]]


def _plain_value(_guardrail: str, value: Any) -> str:
    return str(value)


_PLAIN: Wording = (str, _plain_value)


def _new_run(event: Event, payload: dict[str, Any], name: str, status: str,
             mode: str) -> GuardrailRun:
    limit = _figure(payload.get("limit"))
    return GuardrailRun(
        name, status, str(payload.get("previous", "unknown")), mode, event, event, 1,
        _figure(payload.get("canary")), bool(payload.get("sustained")),
        [] if limit is None else [limit])


def _figure(value: Any) -> float | None:
    return float(value) if type(value) in _NUMBERS else None


_NUMBERS = frozenset({int, float})  # not bool: a flag is no figure


def guardrail_runs(events: Sequence[Event]) -> list[GuardrailRun]:
    """The guardrail-change events as runs (one per status change), oldest first."""
    runs: list[GuardrailRun] = []
    open_runs: dict[str, GuardrailRun] = {}
    for event in events:
        payload = event.payload
        name = payload.get("name", "")
        status = payload.get("status", "unknown")
        mode = payload.get("mode") or "canary"
        run = open_runs.get(name)
        if run is not None and run.status == status and run.mode == mode:
            run.absorb(event, payload)
            continue
        run = open_runs[name] = _new_run(event, payload, str(name), str(status), str(mode))
        runs.append(run)
    return runs


@dataclass(slots=True)
class Line:
    """One line of the story: when, who, and what (plain text; ``text`` may be computed once
    everything it folds is known)."""

    event: Event
    actor: str
    words: str | Callable[[], str]
    loud: bool = False

    @property
    def ts(self) -> datetime:
        return self.event.ts

    @property
    def text(self) -> str:
        words = self.words
        return words if words.__class__ is str else words()  # type: ignore[operator,return-value]


@dataclass(slots=True)
class _Repeats:
    """A line that counts how often the same thing happened again."""

    first: Event
    text: str
    again: int = 0
    last: Event | None = None

    def words(self, at: Callable[[datetime], str], what: str) -> str:
        if not self.again or self.last is None:
            return self.text
        return f"{self.text} ({what} ×{self.again} more, last {at(self.last.ts)})"


@dataclass(frozen=True)
class Story:
    """The timeline's lines, and the guardrails' runs they fold (also grouped by guardrail, in
    the order each first changed)."""

    lines: list[Line | GuardrailRun]  # a guardrail's run is a line of its own
    runs: list[GuardrailRun]
    by_guardrail: dict[str, list[GuardrailRun]] = field(default_factory=dict)


def story(events: Sequence[Event], *, at: Callable[[datetime], str],
          value: Callable[[str, Any], str], highlighted: frozenset[int] = frozenset()
          ) -> Story:
    """The timeline's lines (see the module docstring). ``at`` formats a time, ``value`` a
    guardrail figure (guardrail name, raw value)."""
    teller = Storyteller(at, value)
    guardrail_changed, note = Kind.GUARDRAIL_CHANGED.value, Kind.NOTE.value
    notes: list[Event] = []
    for event in events:
        kind = event.kind
        if kind == guardrail_changed:
            payload = event.payload
            teller.guardrail(event, payload, payload.get("name", ""),
                             payload.get("status", "unknown"), payload.get("mode") or "canary")
        elif kind == note and not event.payload.get("highlight"):
            if event.id in highlighted:
                notes.append(event)
        else:
            teller.add(event)
    return teller.told(highlighted, notes)


class Storyteller:
    """Tells the story an event at a time (the PIR's one pass over the record feeds it while
    it folds): :meth:`guardrail` for each guardrail change, :meth:`add` for any other event
    but a note, then :meth:`told`. ``at`` and ``value`` are called only when a line's words
    are asked for (the clock may be settled after the last event)."""

    __slots__ = ("_at", "_consoles", "_open_runs", "_pending", "_preflight", "_preflight_key",
                 "_progress", "_value", "_wording", "by_guardrail", "lines", "runs")

    def __init__(self, at: Callable[[datetime], str], value: Callable[[str, Any], str]) -> None:
        self._at = at
        self._value = value
        self._wording: Wording = (at, value)
        self.lines: list[Line | GuardrailRun] = []
        self.runs: list[GuardrailRun] = []
        self.by_guardrail: dict[str, list[GuardrailRun]] = {}
        self._open_runs: dict[Any, GuardrailRun] = {}
        self._preflight: _Repeats | None = None
        self._preflight_key: tuple[str, str] | None = None
        self._consoles: dict[str, _Repeats] = {}
        self._progress: _Repeats | None = None
        self._pending: tuple[Event, Line] | None = None

    def guardrail(self, event: Event, payload: dict[str, Any], name: Any, status: Any,
                  mode: Any) -> None:
        """A guardrail's status change (its payload's ``name``, ``status`` and ``mode or
        "canary"``, as recorded): a new run (and line) when its status or track changed, else
        one more poll of the run."""
        run = self._open_runs.get(name)
        if run is not None and run.status == status and run.mode == mode:
            run.absorb(event, payload)
            return
        # _new_run, written out: one in two changes of a flapping guardrail starts a run.
        get = payload.get
        limit: Any = get("limit")
        canary: Any = get("canary")
        run = self._open_runs[name] = GuardrailRun(
            name if name.__class__ is str else str(name),
            status if status.__class__ is str else str(status),
            str(get("previous", "unknown")), mode if mode.__class__ is str else str(mode),
            event, event, 1, float(canary) if type(canary) in _NUMBERS else None,
            bool(get("sustained")), [float(limit)] if type(limit) in _NUMBERS else [],
            self._wording)
        self.runs.append(run)
        mine = self.by_guardrail.get(run.name)
        if mine is None:
            self.by_guardrail[run.name] = [run]
        else:
            mine.append(run)
        self.lines.append(run)

    def add(self, event: Event) -> None:
        """Any other event (a note only when it is highlighted: see :meth:`told`)."""
        kind = event.kind
        lines = self.lines
        at = self._at
        if kind in _NOT_IN_STORY:
            if kind == Kind.NOTE and event.payload.get("highlight"):
                lines.append(Line(event, event.actor, describe(event)))  # a highlighted note
            return
        if kind != Kind.ROLLBACK_PROGRESS:
            self._progress = None
        if kind in (Kind.PREFLIGHT_PASSED, Kind.PREFLIGHT_FAILED):
            key = (kind, str(event.payload.get("target", "")))
            preflight = self._preflight
            if preflight is not None and key == self._preflight_key:
                preflight.again += 1
                preflight.last = event
                return
            preflight = self._preflight = _Repeats(event, describe(event))
            self._preflight_key = key
            lines.append(Line(event, event.actor,
                              lambda r=preflight: r.words(at, "the same again"),  # type: ignore[misc]
                              loud=kind == Kind.PREFLIGHT_FAILED))
            return
        if kind == Kind.CONSOLE_OPENED:
            user = str(event.payload.get("user") or event.actor)
            seen = self._consoles.get(user)
            if seen is not None:
                seen.again += 1
                seen.last = event
                return
            seen = self._consoles[user] = _Repeats(event, describe(event))
            lines.append(Line(event, event.actor,
                              lambda r=seen: r.words(at, "opened again"),  # type: ignore[misc]
                              ))
            return
        if kind == Kind.ROLLBACK_PROGRESS:
            message = str(event.payload.get("message", ""))
            progress = self._progress
            if progress is not None and progress.first.payload.get("message") == message:
                progress.again += 1
                progress.last = event
                return
            progress = self._progress = _Repeats(event, describe(event))
            lines.append(Line(event, event.actor,
                              lambda r=progress: r.words(at, "again"),  # type: ignore[misc]
                              ))
            return
        if kind == Kind.WEIGHT_REQUESTED:
            line = Line(event, event.actor, describe(event),
                        loud=bool(event.payload.get("overrides"))
                        or event.payload.get("action") == "immediate")
            lines.append(line)
            self._pending = (event, line)
            return
        if kind in (Kind.WEIGHT_SET, Kind.WEIGHT_FAILED) and self._pending is not None:
            request, line = self._pending
            self._pending = None
            line.words = (lambda request=request, outcome=event:  # type: ignore[misc]
                          _weight_words(request, outcome, at))
            line.loud = line.loud or kind == Kind.WEIGHT_FAILED
            return
        lines.append(Line(event, event.actor, describe(event), loud=_loud(event)))

    def told(self, highlighted: frozenset[int] | set[int],
             notes: Sequence[Event]) -> Story:
        """The story; ``notes``: any notes (oldest first), of which those ``highlighted`` (by
        a later event, so not known as they came) take their place among the lines."""
        lines = self.lines
        late = [event for event in notes if event.id in highlighted
                and not event.payload.get("highlight")] if highlighted else []
        if late:  # the lines are in the order of their events: each goes where its id does
            import bisect

            for event in late:
                at = bisect.bisect_left(lines, event.id, key=lambda line: line.event.id)
                lines.insert(at, Line(event, event.actor, describe(event)))
        return Story(lines, self.runs, self.by_guardrail)


def _loud(event: Event) -> bool:
    return event.kind in LOUD_KINDS or event.kind in (Kind.ROLLBACK_REQUESTED,
                                                      Kind.ROLLBACK_NOT_VERIFIED)


def _weight_words(request: Event, outcome: Event,
                  at: Callable[[datetime], str]) -> str:
    """A weight request and its outcome on one line."""
    p = request.payload
    start, to = p.get("from_percent", "?"), p.get("to_percent", "?")
    action = str(p.get("action") or "advance")
    text = {
        "advance": f"Advance {start}% → {to}%",
        "immediate": f"100% IMMEDIATELY from {start}%: {p.get('reason', '')}",
        "abort": f"Abort {start}% → 0%" + (f": {p['reason']}" if p.get("reason") else ""),
        "rollback": "Canary weight to 0% for the rollback",
    }.get(action, f"Weight {start}% → {to}% ({action})")
    overrides = p.get("overrides") or []
    if overrides:
        text += "; OVERRIDES: " + "; ".join(
            f"{o.get('block', '')} ({o.get('reason', '')})" for o in overrides
            if isinstance(o, dict))
    if outcome.kind == Kind.WEIGHT_FAILED:
        return f"{text} — FAILED at {at(outcome.ts)}: {outcome.payload.get('error', '')}"
    percent = outcome.payload.get("percent", "?")
    if outcome.ts == request.ts:
        return f"{text} — weight {percent}%"
    return f"{text} — weight {percent}% at {at(outcome.ts)}"


def notes(events: Sequence[Event]) -> list[Event]:
    """The notes, oldest first."""
    return [event for event in events if event.kind == Kind.NOTE]
