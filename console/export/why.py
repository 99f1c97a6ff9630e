"""Why each guardrail verdict that mattered was what it was (issue 16, "why, at a glance").

The PIR's Emergency Change Record lists, per guardrail, the verdicts that decided something —
each change to BREACH, WARN or can't evaluate, each sustained breach (and what it triggered),
and the status each guardrail had when the canary advanced (what gated the advance) — with the
values, the limit, the rule that decided and the samples it was judged on, all from the recorded
status changes. The queries as sent are said once per guardrail. It is read on a projector: a
guardrail that flapped a thousand times shows its first verdicts that decided something and
says how many more there are (the JSON export keeps every one).

Import-light: stdlib, ``console.model`` and the export's own modules.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from console.export.markdown import md_cell, md_code, md_inline, md_table
from console.export.record import Record, number
from console.model import GUARDRAIL_STATUS_WORDS, Event, Kind

#: Rows per guardrail at most (the JSON export keeps every verdict).
MAX_ROWS = 10
#: Statuses whose arrival is a verdict that matters by itself.
LOUD = frozenset({"breach", "warn", "cant_evaluate"})
_ROLE_ORDER = ("canary", "baseline", "evidence")


@dataclass(slots=True)
class Verdict:
    """One recorded status change of a guardrail, and what it decided."""

    event: Event
    effects: list[str] = field(default_factory=list)
    polls: list[tuple[Any, float]] = field(default_factory=list)  # the breach run, when sustained

    @property
    def payload(self) -> Mapping[str, Any]:
        return self.event.payload


def why_part(record: Record) -> list[str]:
    """The PIR's "Why each verdict" part (empty when no guardrail changed status)."""
    log = record.verdicts if record.verdicts is not None else _verdicts(record)
    per_guardrail, queries = log.out, log.queries
    if not per_guardrail:
        return []
    lines = ["#### Why each verdict", "",
             "The verdicts that decided something: each change to BREACH, WARN or can't "
             "evaluate, each sustained breach, and each guardrail's status when the canary "
             "advanced — with the values, the limit, the rule that decided and the samples it "
             "was judged on. Every status change is in the JSON export.", ""]
    for name, verdicts in per_guardrail.items():
        lines += _guardrail_lines(record, name, verdicts, queries.get(name, {}))
    return lines


Queries = dict[str, dict[tuple[str, str], None]]


def _verdicts(record: Record) -> VerdictLog:
    """The verdicts of a record built without them (one more pass over its events)."""
    log = VerdictLog()
    changed, advance = Kind.GUARDRAIL_CHANGED.value, Kind.WEIGHT_REQUESTED.value
    others = {Kind.GUARDRAIL_ACTION.value, Kind.ESCALATED.value}
    for event in record.events:
        kind = event.kind
        if kind == changed:
            payload = event.payload
            log.changed(event, payload, payload.get("name", ""), payload.get("status", "unknown"),
                        payload.get("mode") or "canary")
        elif kind == advance:
            log.advance(event.payload)
        elif kind in others:
            log.acted(kind, event.payload)
    return log


class VerdictLog:
    """Every guardrail's verdicts that matter (:attr:`out`, in time order, with their
    effects) and each guardrail's distinct (role, query) pairs as sent, in order
    (:attr:`queries`) — gathered an event at a time: the PIR's one pass over the record feeds
    :meth:`changed` each guardrail change, :meth:`advance` each weight request, :meth:`acted`
    each guardrail action and escalation."""

    __slots__ = ("_last", "_made", "_run", "_sent", "out", "queries")

    def __init__(self) -> None:
        self.out: dict[str, list[Verdict]] = {}
        self.queries: Queries = {}
        # Each guardrail's status change in effect (with its status and track as recorded),
        # and its Verdict once one is needed (a long record has tens of thousands of changes,
        # few of which decide anything).
        self._last: dict[str, tuple[Event, Any, Any]] = {}
        self._made: dict[str, Verdict] = {}
        self._run: dict[str, list[tuple[Any, float]]] = {}  # the breach run's canary values
        self._sent: dict[str, Any] = {}  # the queries each guardrail sent last

    def _verdict_of(self, name: str) -> Verdict:
        verdict = self._made.get(name)
        if verdict is None:
            verdict = self._made[name] = Verdict(self._last[name][0])
        return verdict

    def changed(self, event: Event, p: Mapping[str, Any], name: Any, status: Any,
                mode: Any) -> None:
        """A guardrail's status change (its payload's ``name``, ``status`` and ``mode or
        "canary"``, as recorded)."""
        recorded = p.get("status")
        if name.__class__ is not str:
            name = str(name)
        if status.__class__ is not str:
            status = str(status)
        previous = self._last.get(name)
        sent = p.get("queries")
        if sent is not None and isinstance(sent, dict) and sent != self._sent.get(name):
            self._sent[name] = sent  # the same again: nothing new
            mine = self.queries.setdefault(name, {})
            for role, query in sent.items():
                mine.setdefault((str(role), str(query)), None)
        run = self._run
        if status == "breach":
            if previous is not None and previous[1] == "breach":
                polls = run.setdefault(name, [])
            else:
                polls = run[name] = []
            canary = p.get("canary")
            if canary.__class__ is float:
                polls.append((event.ts, canary))
            elif canary is not None:
                figure = number(canary)
                if figure is not None:
                    polls.append((event.ts, figure))
        elif run:
            run.pop(name, None)
        self._last[name] = (event, recorded, mode)
        made = self._made
        if made:
            made.pop(name, None)
        if p.get("sustained"):
            verdict = self._verdict_of(name)
            verdict.polls = list(run.get(name, []))
            _keep(self.out, name, verdict)
        elif status in LOUD and (previous is None or previous[1] != status
                                 or previous[2] != mode):
            _keep(self.out, name, self._verdict_of(name))

    def advance(self, p: Mapping[str, Any]) -> None:
        """A weight request: an advance says what each guardrail's status did to it."""
        if p.get("action") not in ("advance", "immediate"):
            return
        to = p.get("to_percent", "?")
        overridden = {str(o.get("block", "")): str(o.get("reason", ""))
                      for o in p.get("overrides") or [] if isinstance(o, dict)}
        for name, (in_effect, _, _) in self._last.items():
            status = str(in_effect.payload.get("status", "unknown"))
            if in_effect.payload.get("mode") == "stable":
                continue
            if in_effect.payload.get("shadow"):
                effect = f"shadow: did not gate the advance to {to}%"
            elif status == "healthy":
                effect = f"allowed the advance to {to}%"
            else:
                block = {"warn": "warn", "unknown": "delay"}.get(status, "guardrails")
                reason = overridden.get(block)
                effect = (f"overridden for the advance to {to}%: “{reason}”" if reason
                          else f"did not hold the advance to {to}%")
            verdict = self._verdict_of(name)
            verdict.effects.append(effect)
            _keep(self.out, name, verdict)

    def acted(self, kind: str, p: Mapping[str, Any]) -> None:
        """A guardrail action or an escalation: an effect of the verdict in effect."""
        name = str(p.get("name", ""))
        if name in self._last:
            if kind == Kind.ESCALATED:
                effect = "escalated to the commander"
            else:
                action = str(p.get("action", ""))
                effect = ("triggered the automatic rollback" if action == "rollback"
                          else f"on_breach = {action}")
            self._verdict_of(name).effects.append(effect)


def _keep(out: dict[str, list[Verdict]], name: str, verdict: Verdict) -> None:
    mine = out.setdefault(name, [])
    if not mine or mine[-1] is not verdict:
        mine.append(verdict)


def _guardrail_lines(record: Record, name: str, verdicts: Sequence[Verdict],
                     queries: Mapping[tuple[str, str], None]) -> list[str]:
    lines = [f"**{md_inline(name)}**", ""]
    if queries:
        order = list(queries)
        lines += ["Queries as sent:", ""]
        lines += [f"- {md_inline(role)}: {md_code(query)}" for role, query in
                  sorted(order, key=lambda item: (_rank(item[0]), order.index(item)))]
        lines.append("")
    shown = _chosen(verdicts)
    rows = [_row(record, name, verdict) for verdict in shown]
    lines += md_table(["Time (UTC)", "Verdict", "Canary", "Baseline", "Limit", "Rule",
                       "Samples it was judged on", "What it decided"], rows)
    lines.append("")
    left = len(verdicts) - len(shown)
    if left:
        lines += [f"{left:,} more verdicts of {md_inline(name)} like these are not shown here "
                  "(each is on the timeline and in the JSON export).", ""]
    return lines


def _chosen(verdicts: Sequence[Verdict]) -> list[Verdict]:
    """At most :data:`MAX_ROWS`, in time order: those that decided something (a sustained
    breach, an advance) first, then the earliest status changes."""
    if len(verdicts) <= MAX_ROWS:
        return list(verdicts)
    deciding = [v for v in verdicts if v.effects or v.payload.get("sustained")]
    keep = {id(v) for v in deciding[:MAX_ROWS]}
    for verdict in verdicts:
        if len(keep) >= MAX_ROWS:
            break
        keep.add(id(verdict))
    return [v for v in verdicts if id(v) in keep]


def _rank(role: str) -> int:
    return _ROLE_ORDER.index(role) if role in _ROLE_ORDER else len(_ROLE_ORDER)


def _row(record: Record, name: str, verdict: Verdict) -> list[str]:
    p = verdict.payload
    status = str(p.get("status", "unknown"))
    word = GUARDRAIL_STATUS_WORDS.get(status, status)
    if status == "breach" and p.get("consecutive"):
        word += f" {p.get('breaches', 0)}/{p.get('consecutive')}"
    if p.get("sustained"):
        word += ", sustained"
    if p.get("mode") == "stable":
        word += " (stable track)"
    if p.get("shadow"):
        word += " (shadow)"
    limit = record.value(name, p.get("limit")) if p.get("limit") is not None else "—"
    if p.get("warn_limit") is not None:
        limit += f" (WARN above {record.value(name, p.get('warn_limit'))})"
    return [record.clock.at(verdict.event.ts), md_cell(word),
            md_cell(_figure(record, name, p.get("canary"))),
            md_cell(_figure(record, name, p.get("baseline"))), md_cell(limit),
            md_cell(p.get("rule") or "—"), md_cell(_samples(record, name, verdict)),
            md_cell("; ".join(verdict.effects) or "—")]


def _figure(record: Record, name: str, value: Any) -> str:
    return "—" if value is None else record.value(name, value)


def _samples(record: Record, name: str, verdict: Verdict) -> str:
    """The samples the verdict was judged on, in a few words: this poll's answers by query
    (with the evidence as a count); a sustained breach's run of polls; a comparison's counts."""
    p = verdict.payload
    parts: list[str] = []
    polls = verdict.polls
    if len(polls) > 1:
        values = [value for _ts, value in polls]
        parts.append(f"{len(polls)} polls in a row from {record.clock.at(polls[0][0])}: canary "
                     f"{record.value(name, min(values))} – {record.value(name, max(values))}")
    answered = p.get("samples")
    if isinstance(answered, dict) and answered:
        for role in sorted(answered, key=_rank):
            if role == "canary" and len(polls) > 1:
                continue  # the run above ends with this poll's canary
            values = answered[role] if isinstance(answered[role], list) else []
            shown = [(_count(v) if role == "evidence" else _figure(record, name, v))
                     for v in values[:3]] or ["nothing"]
            more = f" (+{len(values) - 3})" if len(values) > 3 else ""
            parts.append(f"{role} {', '.join(shown)}{more}")
    elif not polls:
        parts.append("not recorded (older record)")
    comparison = p.get("comparison")
    if comparison:
        parts.append(str(comparison))
    return " · ".join(parts)


def _count(value: Any) -> str:
    figure = number(value)
    return str(value) if figure is None else f"{figure:,.0f} requests"
