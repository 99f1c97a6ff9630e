"""The record of one incident as the exports see it: the facts derived once from its events (and
its metric samples), shared by the PIR (:mod:`console.export.pir`) and the communication drafts
(:mod:`console.export.comms`).

Import-light: stdlib and ``console.model`` / ``console.state`` only.
"""

from __future__ import annotations

import functools
import itertools
import math
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, tzinfo
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from console.export.graphs import known
from console.export.markdown import md_inline
from console.export.timeline import Story, Storyteller, story
from console.model import Event, Kind, format_duration, format_value
from console.state import IncidentState

if TYPE_CHECKING:
    from console.config import Config
    from console.export.graphs import Chart
    from console.export.why import VerdictLog

SamplesLike = Mapping[str, Sequence[tuple[float, float | None]]]


class Clock:
    """Times as the PIR shows them: ``HH:MM:SS`` in UTC, with the date when the incident spans
    days; with a configured local zone, the local time beside it where a person reads a moment
    (``22:04:05 (03:34 IST)``)."""

    def __init__(self, base: date, multi_day: bool, local: tzinfo | None = None) -> None:
        self.base = base
        self.multi_day = multi_day
        self.local = local
        self._at: dict[datetime, str] = {}

    def at(self, ts: datetime) -> str:
        shown = self._at.get(ts)
        if shown is None:  # lines of one event, and events of one batch, share their time
            # (isoformat: half the cost of formatting the fields, on each of a record's times)
            shown = ts.time().isoformat("seconds")
            if self.multi_day or ts.date() != self.base:
                shown = f"{ts.date().isoformat()} {shown}"
            self._at[ts] = shown
        return shown

    def short(self, ts: datetime) -> str:
        if self.multi_day or ts.date() != self.base:
            return ts.strftime("%Y-%m-%d %H:%M")
        return ts.strftime("%H:%M")

    def unix(self, unix_ts: float) -> str:
        return self.at(datetime.fromtimestamp(unix_ts, UTC))

    def local_words(self, ts: datetime, *, date_too: bool = False) -> str:
        """`` (03:34 IST)`` — the local time beside a UTC one; empty without a local zone."""
        if self.local is None:
            return ""
        there = ts.astimezone(self.local)
        zone = there.tzname() or ""
        day = f"{there:%Y-%m-%d} " if date_too else ""  # the header says which day
        return f" ({day}{there:%H:%M} {zone})".replace("  ", " ")

    def moment(self, ts: datetime) -> str:
        """A moment a person reads: UTC with the local time beside it."""
        return self.at(ts) + self.local_words(ts)


# --- the facts of one incident -------------------------------------------------------------------


@dataclass(frozen=True)
class GuardrailUnit:
    """How a guardrail's values are shown (from the config, when it knows the guardrail)."""

    unit: str = ""
    scale: float = 1.0
    max: float | None = None


@dataclass(frozen=True)
class DocumentSettings:
    """What the documents take of the configuration, as plain values: each configured
    guardrail's unit, scale and absolute limit, and the local time zone. An export begun
    before the configuration was read gets them from the process that read it (pickled)."""

    units: dict[str, GuardrailUnit] = field(default_factory=dict)
    local_timezone: str = ""

    @classmethod
    def of(cls, config: Config | None) -> DocumentSettings:
        if config is None:
            return cls()
        return cls({g.name: GuardrailUnit(g.unit, g.scale, g.max) for g in config.guardrails},
                   config.export.local_timezone)


@dataclass(frozen=True)
class SeriesFigures:
    """Peak and time over the limit of one metric series (``<guardrail>/<track>``)."""

    series: str
    guardrail: str
    track: str
    count: int
    peak: float | None
    peak_ts: float | None
    limit_text: str
    over_s: float | None
    over_first: float | None
    over_last: float | None


@dataclass
class Record:
    """Everything the exports say, derived once from the events (and the samples)."""

    events: list[Event]
    state: IncidentState
    clock: Clock
    declared: datetime  # the declaration's time (the first event's, if it is missing)
    end: datetime
    units: dict[str, GuardrailUnit] = field(default_factory=dict)
    requesters: dict[tuple[datetime, int], str] = field(default_factory=dict)
    at_first_stage: IncidentState | None = None
    waived_at_close: list[str] = field(default_factory=list)
    by_kind: dict[str, list[Event]] = field(default_factory=dict)
    #: The verdicts of "Why each verdict", when gathered while the record was built.
    verdicts: VerdictLog | None = None
    _story: Story | None = None

    @property
    def story(self) -> Story:
        """The timeline as a story (:mod:`console.export.timeline`), told once."""
        if self._story is None:
            # The story's lines are worded lazily by closures over ``value``: bound to the
            # units, not to this record, so no reference cycle holds the record's 100,000
            # events for the cyclic collector to find (a long export's last half second).
            self._story = story(self.events, at=self.clock.at,
                                value=functools.partial(guardrail_value, self.units),
                                highlighted=frozenset(self.state.highlights))
        return self._story

    @property
    def closed_spans(self) -> list[tuple[datetime, datetime | None]]:
        """When no commander console was open: from a console's quit to the next opening
        (``None``: still closed at the last event)."""
        spans: list[tuple[datetime, datetime | None]] = []
        closed_at: datetime | None = None
        for event in self.of(Kind.CONSOLE_CLOSED, Kind.CONSOLE_OPENED):
            if event.kind == Kind.CONSOLE_CLOSED:
                if event.payload.get("how", "quit") == "quit" and closed_at is None:
                    closed_at = event.ts
            elif closed_at is not None:
                spans.append((closed_at, event.ts))
                closed_at = None
        if closed_at is not None:
            spans.append((closed_at, None))
        return spans

    def without_console_s(self, start: datetime, end: datetime) -> float:
        """Seconds of ``start``–``end`` during which no commander console was open."""
        total = 0.0
        for closed, opened in self.closed_spans:
            low = max(start, closed)
            high = min(end, opened or end)
            if high > low:
                total += (high - low).total_seconds()
        return total

    def of(self, *kinds: str) -> list[Event]:
        if len(kinds) == 1:
            return self.by_kind.get(kinds[0], [])
        found = [event for kind in kinds for event in self.by_kind.get(kind, [])]
        found.sort(key=lambda event: event.id)
        return found

    def first(self, *kinds: str) -> Event | None:
        found = self.of(*kinds)
        return found[0] if found else None

    def last(self, *kinds: str) -> Event | None:
        found = self.of(*kinds)
        return found[-1] if found else None

    def value(self, guardrail: str, value: Any) -> str:
        return guardrail_value(self.units, guardrail, value)

    @property
    def duration_s(self) -> float:
        return (self.end - self.declared).total_seconds()

    @property
    def max_percent(self) -> int:
        return max((visit.percent for visit in self.state.visits), default=0)

    def gate_status(self, item: str) -> tuple[str, str]:
        """(result word, detail) of a post-emergency item: passed, failed, waived, open, or
        ``n/a`` when what it checks never happened (watching at 100 % a version that never
        reached it, running a skipped eval against a version that was not promoted)."""
        gate = self.state.gates.get(item)
        if gate is not None:
            return gate.result, gate.detail
        if not self.applies(item):
            return "n/a", f"{self.state.to_version} never reached 100%"
        if item in self.waived_at_close:
            return "waived", f"at close: {self.state.close_reason}"
        return "open", ""

    def applies(self, item: str) -> bool:
        """Whether a post-emergency item is about something that happened: the compensations
        of the canary and the eval gate are about the promoted version, so they do not apply
        to one that never reached 100 %."""
        if self.state.promoted:
            return True
        element = item.partition(":")[0]
        return element not in _PROMOTED_ONLY or not any(
            b.element == element and b.checklist_item == item for b in self.state.bypasses)

    def checklist_rows(self) -> list[str]:
        """The post-emergency items, followed by any other item recorded."""
        items = self.state.post_checklist()
        return items + [item for item in self.state.gates if item not in items]


#: Bypassed elements whose compensation is about the version at 100 % (seed 000).
_PROMOTED_ONLY = frozenset({"canary", "eval-gate"})


def guardrail_value(units: Mapping[str, GuardrailUnit], guardrail: str, value: Any) -> str:
    """A guardrail's figure as the exports show it, in the guardrail's unit."""
    unit = units.get(guardrail, _NO_UNIT)
    figure = number(value)
    if figure is None and value not in (None, ""):
        return str(value)  # "NaN" / "+Inf" as written by the guardrail payload
    return format_value(figure, unit.unit, unit.scale)


_NO_UNIT = GuardrailUnit()


def number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    return None


def build_record(events: Sequence[Event], config: Config | DocumentSettings | None = None, *,
                 pir: bool = False) -> Record:
    """Fold the events (one incident, oldest first) and gather what the exports need; with
    ``pir``, also what only the PIR needs (its timeline's story, and the verdicts of "Why each
    verdict"), in the same pass."""
    if not events:
        raise ValueError("an incident export needs at least its declaration event")
    ordered = events if isinstance(events, list) else list(events)
    # One pass over the events: the fold, and what the state does not keep (the state just
    # before the first stage, who requested each weight, the items waived at the close, the
    # events of each kind) — and for the PIR, its story and verdicts, told as the events come.
    state = IncidentState()
    apply = state.apply
    at_first_stage: IncidentState | None = None
    requesters: dict[tuple[datetime, int], str] = {}
    waived_at_close: list[str] = []
    by_kind: dict[str, list[Event]] = {}
    requester = ""
    settings = config if isinstance(config, DocumentSettings) else DocumentSettings.of(config)
    units = settings.units
    # The clock is settled after the last event (is the incident over more than a day?); the
    # story asks it for times only when its lines are worded.
    clock = Clock(date.min, False)
    teller: Storyteller | None = None
    verdicts: VerdictLog | None = None
    if pir:
        from console.export.why import VerdictLog

        teller = Storyteller(clock.at, functools.partial(guardrail_value, units))
        verdicts = VerdictLog()
    # Most of a long record is guardrail changes and notes. A guardrail change replaces its
    # guardrail's state whole when it names its rule (consecutive, on_breach), so only the
    # newest of each is folded, just before anything that reads the guardrails; a note only
    # counts. The state is the same as fold(events) (tests/export pin it), at a fraction of
    # the cost.
    deferred: dict[str, Event] = {}
    guardrail_changed, note = Kind.GUARDRAIL_CHANGED.value, Kind.NOTE.value
    acts = frozenset({Kind.GUARDRAIL_ACTION.value, Kind.ESCALATED.value})
    changes: list[Event] = []  # the two kinds of nearly every event, gathered apart
    notes: list[Event] = []
    add_change, add_note = changes.append, notes.append
    plain_notes = 0  # counted here, added to the state before anything reads it
    for event in ordered:
        kind = event.kind
        if kind == guardrail_changed:
            add_change(event)
            payload = event.payload
            name = payload.get("name", "")
            if teller is not None and verdicts is not None:
                status = payload.get("status", "unknown")
                mode = payload.get("mode") or "canary"
                teller.guardrail(event, payload, name, status, mode)
                verdicts.changed(event, payload, name, status, mode)
            if payload.get("consecutive") and payload.get("on_breach") is not None:
                # a guardrail new to the state keeps its first place
                deferred[name if name.__class__ is str else str(name)] = event
                continue
        elif kind == note:
            add_note(event)
            payload = event.payload
            if "links" not in payload and "highlight" not in payload:
                plain_notes += 1  # a plain note only counts
                continue
            if teller is not None and payload.get("highlight"):
                teller.add(event)
        else:
            same = by_kind.get(kind)
            if same is None:
                by_kind[kind] = [event]
            else:
                same.append(event)
            if teller is not None and verdicts is not None:
                teller.add(event)
                if kind == Kind.WEIGHT_REQUESTED:
                    verdicts.advance(event.payload)
                elif kind in acts:
                    verdicts.acted(kind, event.payload)
        if plain_notes:
            state.notes += plain_notes
            plain_notes = 0
        if deferred and kind in _READS_GUARDRAILS:
            _flush(apply, deferred)
        if kind == Kind.WEIGHT_REQUESTED:
            requester = event.actor
        elif kind == Kind.WEIGHT_SET:
            percent = int(event.payload.get("percent", 0) or 0)
            requesters[(event.ts, percent)] = requester or event.actor
            if percent > 0 and at_first_stage is None:
                _flush(apply, deferred)
                at_first_stage = state.copy()
        elif kind == Kind.CLOSED:
            waived_at_close = [str(i) for i in event.payload.get("waived_items") or []]
        apply(event)
    state.notes += plain_notes
    _flush(apply, deferred)
    if changes:
        by_kind[guardrail_changed] = changes
    if notes:
        by_kind[note] = notes
    last = ordered[-1]
    state.event_count = len(ordered)
    state.last_event_id, state.last_hash, state.last_ts = last.id, last.hash, last.ts
    declared = state.declared_ts or ordered[0].ts
    end = state.closed_ts or ordered[-1].ts
    clock.base = declared.date()
    clock.multi_day = max(ordered[-1].ts, end).date() != declared.date()
    clock.local = _zone(settings.local_timezone)
    record = Record(ordered, state, clock, declared, end, units=units,
                    requesters=requesters, at_first_stage=at_first_stage,
                    waived_at_close=waived_at_close, by_kind=by_kind, verdicts=verdicts)
    if teller is not None:
        record._story = teller.told(frozenset(state.highlights), notes)
    return record


#: Kinds whose fold reads or resets the guardrails' state (console.state) — and anything that
#: writes a guardrail without naming its rule: deferred guardrail changes are folded first.
_READS_GUARDRAILS = frozenset({Kind.DECLARED, Kind.ROLLBACK_VERIFIED, Kind.ROLLBACK_NOT_VERIFIED,
                               Kind.GUARDRAIL_CHANGED})


def _flush(apply: Callable[[Event], None], deferred: dict[str, Event]) -> None:
    """Fold the deferred guardrail changes (one per guardrail; each touches only its own)."""
    for event in deferred.values():
        apply(event)
    deferred.clear()


def _zone(name: str) -> tzinfo | None:
    if not name:
        return None
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None  # the config check refuses it; an export never fails on it


@dataclass(frozen=True)
class Measured:
    """What the PIR takes of an incident's metric samples (its Impact section): each series'
    figures and each guardrail's chart — a few kilobytes however many samples there are, so an
    export's checking child works them out and sends them instead of the samples."""

    figures: list[SeriesFigures]
    charts: list[Chart]


def measure(record: Record, samples: SamplesLike) -> Measured:
    """:class:`Measured` of ``samples`` for ``record``."""
    from console.export.graphs import MARKED

    measured = measured_with(samples, record.units, record.of(*MARKED),
                             record.of(Kind.GUARDRAIL_CHANGED))
    assert measured is not None  # the guardrail changes are given
    return measured


def measured_with(samples: SamplesLike, units: Mapping[str, GuardrailUnit],
                  marked: Sequence[Event], changes: Sequence[Event] | None) -> Measured | None:
    """:class:`Measured` from what it depends on: the samples, the guardrails' units, the
    events a chart marks (of the kinds :data:`console.export.graphs.MARKED`, oldest first) and
    the guardrail changes (their limits serve a guardrail without a limit series: see
    :func:`series_figures`). ``changes`` None (not at hand): None when they are needed."""
    figures = _figures(samples, units, changes)
    if figures is None:
        return None
    if not figures:  # no series to show: no chart either (a chart needs a canary series)
        return Measured([], [])
    from console.export.graphs import charts

    shown = {name: (unit.unit, unit.scale) for name, unit in units.items()}
    return Measured(figures, charts(samples, marked, shown))


def series_figures(record: Record, samples: SamplesLike) -> list[SeriesFigures]:
    """Peak per series, and, for canary series, time over the guardrail's limit.

    Series are named ``<guardrail>/<track>``. The limit at a sample's time comes from, in order:
    the ``<guardrail>/limit`` series the engine records beside the canary (the effective limit of
    each evaluation; it is not listed as a series of its own), the limits reported by
    guardrail-change events (the last one before the sample, the first before any), or the
    config's absolute ``max``. Time over the limit counts, for each sample above it, the time to
    the next sample (for the last sample, the median step).
    """
    figures = _figures(samples, record.units, record.of(Kind.GUARDRAIL_CHANGED))
    assert figures is not None  # the guardrail changes are given
    return figures


def _figures(samples: SamplesLike, units: Mapping[str, GuardrailUnit],
             changes: Sequence[Event] | None) -> list[SeriesFigures] | None:
    """:func:`series_figures` from the record's units and guardrail changes; None when the
    changes are needed (a guardrail with a canary series has no limit series) but None."""
    reported: dict[str, list[tuple[float, float]]] = {}
    split = {series: _split(series) for series in samples}
    for series, (guardrail, track) in split.items():
        if track == "limit":
            limit_points = known(samples[series])
            if limit_points:
                reported[guardrail] = sorted(limit_points)
    wanted = {guardrail for guardrail, track in split.values() if track == "canary"}
    if wanted - set(reported):  # guardrails without a limit series: the events' limits
        if changes is None:
            return None
        from_events: dict[str, list[tuple[float, float]]] = {}
        for event in changes:
            limit = number(event.payload.get("limit"))
            name = str(event.payload.get("name", ""))
            if limit is not None and name not in reported:
                from_events.setdefault(name, []).append((event.ts.timestamp(), limit))
        reported.update(from_events)
    figures: list[SeriesFigures] = []
    for series in sorted(samples):
        guardrail, track = split[series]
        if track not in ("canary", "baseline"):
            continue  # the limit, the evidence and the warn band stand beside the canary
        points = sorted(samples[series], key=itemgetter(0))
        measured = known(points)
        peak_ts, peak = max(measured, key=itemgetter(1)) if measured else (None, None)
        limits = reported.get(guardrail, [])
        config_max = units.get(guardrail, _NO_UNIT).max
        limit_text = "—"
        over_s: float | None = None
        first: float | None = None
        last: float | None = None
        if track == "canary" and (limits or config_max is not None):
            used: set[float] = set()
            over_s = 0.0
            # The limit at a sample is the last one reported at or before it (the first, before
            # any): the samples are in time order, so one pass over the limits serves them all.
            seen = 0
            for index, (ts, value) in enumerate(points):
                while seen < len(limits) and limits[seen][0] <= ts:
                    seen += 1
                limit = limits[max(seen - 1, 0)][1] if limits else config_max
                if value is None or limit is None or not math.isfinite(value):
                    continue
                used.add(limit)
                if value <= limit:
                    continue
                first = ts if first is None else first
                last = ts
                # A sample stands for the time to the next one; the last, for a typical step.
                if index + 1 < len(points):
                    over_s += points[index + 1][0] - ts
                elif len(points) > 1:
                    over_s += statistics.median(
                        b[0] - a[0] for a, b in itertools.pairwise(points))
            shown = [guardrail_value(units, guardrail, v) for v in sorted(used)] or ["—"]
            limit_text = shown[0] if shown[0] == shown[-1] else f"{shown[0]} – {shown[-1]}"
            if not limits and used:
                limit_text += " (config max)"
        figures.append(SeriesFigures(series, guardrail, track, len(measured), peak, peak_ts,
                                     limit_text, over_s, first, last))
    return figures


def _split(series: str) -> tuple[str, str]:
    """``"error-rate/canary"`` → ``("error-rate", "canary")``; a name without a track → ``""``."""
    guardrail, _, track = series.rpartition("/")
    return (guardrail, track) if guardrail else (series, "")


# --- sentences shared by the PIR and the drafts --------------------------------------------------


def outcome_sentence(record: Record) -> str:
    """How the change ended (or where it stands), in one or two sentences of facts."""
    s = record.state
    clock = record.clock
    if s.promoted and s.promoted_ts is not None:
        how = " via 100% IMMEDIATELY" if s.immediate_used else ""
        return (f"{s.to_version} reached 100% at {clock.at(s.promoted_ts)} UTC{how}, "
                f"{format_duration((s.promoted_ts - record.declared).total_seconds())} after "
                "declaration.")
    request = record.last(Kind.ROLLBACK_REQUESTED)
    if request is not None:
        p = request.payload
        how = "an automatic" if p.get("automatic") else "a manual"
        head = (f"The canary reached {record.max_percent}%; {how} rollback to "
                f"{md_inline(s.rollback_target, '')} was requested at {clock.at(request.ts)} "
                f"UTC, reason: {md_inline(p.get('reason', ''), '')}")
        finished = s.rollback_finished_ts
        if s.rollback_status == "verified" and finished is not None:
            return f"{head}. It was VERIFIED at {clock.at(finished)} UTC."
        if s.rollback_status == "not_verified" and finished is not None:
            return (f"{head}. It was NOT VERIFIED at {clock.at(finished)} UTC: "
                    f"{md_inline(s.rollback_detail, '')}.")
        if s.rollback_status == "failed" and finished is not None:
            return (f"{head}. The rollback FAILED at {clock.at(finished)} UTC: "
                    f"{md_inline(s.rollback_detail, '')}.")
        return f"{head}. The rollback was still in progress at the last event."
    if s.canary_percent > 0:
        return f"At the last event the canary of {s.to_version} was at {s.canary_percent}%."
    if record.max_percent:
        return (f"The canary reached {record.max_percent}% and was aborted to 0%; "
                f"{s.to_version} did not ship.")
    return f"The canary of {s.to_version} had not started at the last event."


def fix_rolled_back(record: Record) -> bool:
    """The change was the fix for an ongoing harm, and it was rolled back (not shipped since)."""
    s = record.state
    return (s.change_is_fix and s.rollback_requested_ts is not None and not s.promoted
            and s.rollback_status in ("requested", "in_progress", "verified", "not_verified"))


def harm_sentence(record: Record) -> str:
    """When a fix was rolled back, what that means in plain words (empty otherwise): the harm
    it was to stop is back, since when, until when, and what comes next (seed 002)."""
    if not fix_rolled_back(record):
        return ""
    s = record.state
    clock = record.clock
    requested = s.rollback_requested_ts
    assert requested is not None
    live = next((e for e in record.of(Kind.ROLLBACK_COMPLETED) if e.ts >= requested), None)
    if live is None:
        return (f"{md_inline(s.to_version, '')} was the fix for this incident's harm "
                f"(“{md_inline(s.title, '')}”): rolling it back means the harm is live again "
                f"as soon as {md_inline(s.rollback_target, '')} serves — not reported live at "
                "the last event. The next step is the hotfix path (seed 002): a corrected fix, "
                "through the same discipline.")
    text = (f"{md_inline(s.to_version, '')} was the fix for this incident's harm "
            f"(“{md_inline(s.title, '')}”): rolling it back put "
            f"{md_inline(s.rollback_target, '')} back, so the harm was live again when it went "
            f"live at {clock.at(live.ts)} UTC")
    ends = [mark for name, mark in s.milestones.items()
            if name in ("mitigated", "resolved") and mark.at >= requested]
    if ends:
        first = min(ends, key=lambda mark: mark.at)
        why = f" ({md_inline(first.reason, '')})" if first.reason else ""
        text += f", until it was marked {first.milestone} at {clock.at(first.at)} UTC{why}."
        if first.milestone == "mitigated" and "resolved" not in s.milestones:
            text += (" Mitigated is not resolved: the fix itself is still to ship, by the "
                     "hotfix path (seed 002).")
    else:
        text += (" — and still was at the last event: the emergency is not over. The next step "
                 "is the hotfix path (seed 002): a corrected fix, through the same discipline.")
    return text


def verdict_word(record: Record) -> str:
    """The rollback's state in capitals when it matters: VERIFIED, NOT VERIFIED, FAILED..."""
    return {
        "verified": "ROLLBACK VERIFIED",
        "not_verified": "ROLLBACK NOT VERIFIED",
        "failed": "ROLLBACK FAILED",
        "requested": "rollback requested",
        "in_progress": "rollback in progress",
    }.get(record.state.rollback_status, "")

