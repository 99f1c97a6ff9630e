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


@dataclass
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
    per_guardrail, queries = _verdicts(record)
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


def _verdicts(record: Record) -> tuple[dict[str, list[Verdict]], Queries]:
    """Every guardrail's verdicts that matter, in time order, with their effects; and each
    guardrail's distinct (role, query) pairs as sent, in order."""
    out: dict[str, list[Verdict]] = {}
    queries: Queries = {}
    # Each guardrail's status change in effect, and its Verdict once one is needed (a long
    # record has tens of thousands of changes, few of which decide anything).
    last: dict[str, Event] = {}
    made: dict[str, Verdict] = {}

    def verdict_of(name: str) -> Verdict:
        verdict = made.get(name)
        if verdict is None:
            verdict = made[name] = Verdict(last[name])
        return verdict

    run: dict[str, list[tuple[Any, float]]] = {}  # the canary values of the breach run so far
    kinds = {Kind.GUARDRAIL_CHANGED, Kind.WEIGHT_REQUESTED, Kind.GUARDRAIL_ACTION,
             Kind.ESCALATED}
    for event in record.events:
        kind = event.kind
        if kind not in kinds:
            continue
        p = event.payload
        if kind == Kind.GUARDRAIL_CHANGED:
            name = str(p.get("name", ""))
            status = str(p.get("status", "unknown"))
            previous = last.get(name)
            previous_status = None if previous is None else previous.payload.get("status")
            sent = p.get("queries")
            if isinstance(sent, dict):
                mine = queries.setdefault(name, {})
                for role, query in sent.items():
                    mine.setdefault((str(role), str(query)), None)
            if status == "breach":
                polls = run.setdefault(name, []) if previous_status == "breach" else []
                canary = number(p.get("canary"))
                if canary is not None:
                    polls.append((event.ts, canary))
                run[name] = polls
            else:
                run.pop(name, None)
            last[name] = event
            made.pop(name, None)
            changed = previous is None or previous_status != status \
                or (previous.payload.get("mode") or "canary") != (p.get("mode") or "canary")
            if p.get("sustained"):
                verdict = verdict_of(name)
                verdict.polls = list(run.get(name, []))
                _keep(out, name, verdict)
            elif changed and status in LOUD:
                _keep(out, name, verdict_of(name))
        elif kind == Kind.WEIGHT_REQUESTED and p.get("action") in ("advance", "immediate"):
            to = p.get("to_percent", "?")
            overridden = {str(o.get("block", "")): str(o.get("reason", ""))
                          for o in p.get("overrides") or [] if isinstance(o, dict)}
            for name, in_effect in last.items():
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
                verdict = verdict_of(name)
                verdict.effects.append(effect)
                _keep(out, name, verdict)
        elif kind in (Kind.GUARDRAIL_ACTION, Kind.ESCALATED):
            name = str(p.get("name", ""))
            if name in last:
                if kind == Kind.ESCALATED:
                    effect = "escalated to the commander"
                else:
                    action = str(p.get("action", ""))
                    effect = ("triggered the automatic rollback" if action == "rollback"
                              else f"on_breach = {action}")
                verdict_of(name).effects.append(effect)
    return out, queries


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
