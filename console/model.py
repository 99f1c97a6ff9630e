"""Domain types: the words of the emergency-change discipline and the events of an incident.

Everything that happens is an :class:`Event`; its ``kind`` is one of :class:`Kind` and its payload
carries the fields listed beside that kind. ``console.state.fold`` turns events into state. This
module imports nothing heavy: the CLI, the store and the widgets all use it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields, make_dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal, cast, get_args

Category = Literal["security", "regulatory", "incident", "customer-blocking"]
Priority = Literal["P0", "P1", "P2", "P3"]
BypassElement = Literal["eval-gate", "canary", "change-window", "freeze", "multi-change"]
ApprovalKind = Literal["direct", "relayed", "waived", "simulated"]
GuardrailStatus = Literal["healthy", "warn", "breach", "insufficient", "cant_evaluate", "unknown"]
RollbackStatus = Literal[
    "none",
    "preflight_passed",
    "preflight_failed",
    "requested",
    "in_progress",
    "verified",
    "not_verified",
    "failed",
]

CATEGORIES: tuple[Category, ...] = get_args(Category)
PRIORITIES: tuple[Priority, ...] = get_args(Priority)
BYPASS_ELEMENTS: tuple[BypassElement, ...] = get_args(BypassElement)
ROLLBACK_STATUSES: tuple[RollbackStatus, ...] = get_args(RollbackStatus)

GUARDRAIL_STATUS_WORDS: dict[str, str] = {
    "healthy": "healthy",
    "warn": "WARN",
    "breach": "BREACH",
    "insufficient": "insufficient evidence",
    "cant_evaluate": "can't evaluate",
    "unknown": "not yet evaluated",
}

SYSTEM_ACTOR = "warroom"


class Kind(StrEnum):
    """Event kinds, with the payload fields each carries."""

    # {title, priority, category, service, from_version, to_version, commander, bypasses:
    #  [{element, reason, compensation, post_gate}], affects: [str], advice: str | None,
    #  required_roles: [str], plan: [{percent, hold_s}], plan_name, target_hours,
    #  checklist: [str] (rollback compatibility), guardrails: [str] (names), simulated: bool}
    DECLARED = "incident_declared"
    # {count, window_days, bar, message}
    RATE_WARNING = "emergency_rate_warning"
    # {role, user, kind: direct|relayed|simulated, version, note?, relayed_from?, evidence?,
    #  run_by?: [str], run_by_detail?}  run_by: who ran it under su/sudo/runuser
    APPROVED = "approval_given"
    # {role, reason, version}
    WAIVED = "approval_waived"
    # {from_version, to_version, reason}
    TARGET_CHANGED = "target_changed"
    # {text}
    NOTE = "note_added"
    # {user, host, pid, mode: commander}
    CONSOLE_OPENED = "console_opened"
    # {previous_user, previous_host, previous_pid, user, host, pid, reason}
    HANDOVER = "command_handover"
    # {items: [str]} the compatibility checklist, acknowledged by the commander
    CHECKLIST_ACKED = "rollback_checklist_acknowledged"
    # {target}
    PREFLIGHT_REQUESTED = "rollback_preflight_requested"
    # {target, checks: [{name, ok, detail}], detail}
    PREFLIGHT_PASSED = "rollback_preflight_passed"
    PREFLIGHT_FAILED = "rollback_preflight_failed"
    # {from_percent, to_percent, stage_index, immediate: bool, overrides: [{block, reason}],
    #  reason?}  journalled before the traffic call; abort is an advance to 0 with action "abort"
    WEIGHT_REQUESTED = "canary_weight_requested"
    # {percent, stage_index, action: advance|immediate|abort|rollback, reported?}
    WEIGHT_SET = "canary_weight_set"
    # {percent, stage_index, action, error}
    WEIGHT_FAILED = "canary_weight_failed"
    # {name, status, previous, canary, baseline, limit, detail, breaches, consecutive}
    GUARDRAIL_CHANGED = "guardrail_status_changed"
    # {name, action: alert|hold|rollback, breaches}
    GUARDRAIL_ACTION = "guardrail_breach_action"
    # {target, from_version, weight, automatic: bool, reason}
    ROLLBACK_REQUESTED = "rollback_requested"
    # {target, detail}  the adapter accepted the rollback
    ROLLBACK_STARTED = "rollback_started"
    # {target, message}  progress reported by the deployer
    ROLLBACK_PROGRESS = "rollback_progress"
    # {target, version}  the deployer reports the target live
    ROLLBACK_COMPLETED = "rollback_completed"
    # {target, error}
    ROLLBACK_FAILED = "rollback_failed"
    # {target, hold_s}
    VERIFICATION_STARTED = "rollback_verification_started"
    # {target, checks: [{name, ok, detail}]}
    ROLLBACK_VERIFIED = "rollback_verified"
    # {target, reason, checks: [{name, ok, detail}]}
    ROLLBACK_NOT_VERIFIED = "rollback_not_verified"
    # {item, result: passed|failed|waived, detail}
    GATE_RECORDED = "post_gate_recorded"
    # {request_kind, request_id, outcome, detail}  a journalled request found without outcome
    RECONCILED = "request_reconciled"
    # {reason, waived_items: [str]}
    CLOSED = "incident_closed"
    # {message, target?}  a chat notification went out (target: the [notify] urls_env variable)
    NOTIFIED = "notification_sent"
    # {message, error, target?}
    NOTIFY_FAILED = "notification_failed"
    # {event_id, message, verified_to}  verification found the record edited; recorded once
    CHAIN_BROKEN = "chain_broken"
    # {percent, reason}  the commander holds the canary where it is: advance waits for resume
    PAUSED = "canary_paused"
    # {percent, reason}
    RESUMED = "canary_resumed"
    # {milestone: detected|impact-started|mitigated|resolved, at (when it happened, UTC),
    #  reason?}  marked by a person; the latest mark of a milestone is the one that counts
    MILESTONE = "milestone_marked"
    # {role, user}  who holds a role on the bridge (scribe, comms, ...)
    ROLE_ASSIGNED = "role_assigned"
    # {event_id, reason?}  a person marks an earlier event as important (the chain is never
    #  rewritten: the highlight is a fact of its own)
    HIGHLIGHTED = "event_highlighted"
    # {user, host, pid, how: quit|lease-lost}  a commander console closed
    CONSOLE_CLOSED = "console_closed"
    # {target, watch_s}  after VERIFIED the live version is read on every poll for watch_s
    ROLLBACK_WATCH_STARTED = "rollback_watch_started"
    # {target, live}  the live version moved away from the rollback's target after VERIFIED
    ROLLBACK_REVERTED = "rollback_reverted"
    # {target, live}  it is the target again
    ROLLBACK_RESTORED = "rollback_restored"
    # {target, watched_s}  the watch window ended with the target live
    ROLLBACK_WATCH_ENDED = "rollback_watch_ended"
    # {name, breaches, reason}  a sustained breach that the rules do not let warroom roll back
    #  automatically again (at most one automatic rollback per incident): the commander decides
    ESCALATED = "escalated_to_commander"
    # {gate: confirm-rollout|confirm-traffic-increase|confirm-promotion|rollback, canary
    #  (name.namespace), checksum, once: bool, reason}  the commander opens a Flagger gate for
    #  exactly the canary run ``checksum`` (once: it lets one call through, then is closed)
    FLAGGER_GATE_OPENED = "flagger_gate_opened"
    # {gate, canary, checksum, reason}
    FLAGGER_GATE_CLOSED = "flagger_gate_closed"
    # {gate, canary, checksum, phase, answer: open|closed, detail}  Flagger asked the gate
    #  (`warroom gate`) and was answered; recorded when the answer changes (not every poll),
    #  and always when it lets a one-use opening through (that uses it up)
    FLAGGER_GATE_ASKED = "flagger_gate_asked"
    # {action: create|update|resolve, name, status, components: {id: status}, body,
    #  page_incident, shortlink, detail?}  the commander confirmed this exact text; it is posted
    STATUSPAGE_POSTED = "status_page_posted"
    # {action, name, status, components, body, error}
    STATUSPAGE_FAILED = "status_page_failed"


#: The milestones a person marks, in the order an incident normally reaches them.
MILESTONES: tuple[str, ...] = ("detected", "impact-started", "mitigated", "resolved")


#: Events a person reads as warnings in the timeline.
LOUD_KINDS = frozenset(
    {
        Kind.RATE_WARNING,
        Kind.WAIVED,
        Kind.PREFLIGHT_FAILED,
        Kind.WEIGHT_FAILED,
        Kind.ROLLBACK_FAILED,
        Kind.ROLLBACK_NOT_VERIFIED,
        Kind.GUARDRAIL_ACTION,
        Kind.HANDOVER,
        Kind.NOTIFY_FAILED,
        Kind.STATUSPAGE_FAILED,
        Kind.CHAIN_BROKEN,
        Kind.ROLLBACK_REVERTED,
        Kind.ESCALATED,
    }
)


@dataclass(frozen=True, slots=True)
class Event:
    """One fact on an incident's timeline, exactly as stored."""

    id: int
    incident_id: int
    ts: datetime
    kind: str
    actor: str
    payload: dict[str, Any] = field(default_factory=dict)
    prev_hash: str = ""
    hash: str = ""

    def to_json(self) -> dict[str, Any]:
        """The JSON-export shape of DESIGN.md: id, ts, kind, actor, payload, hash."""
        return {
            "id": self.id,
            "incident": format_incident_id(self.incident_id),
            "ts": format_ts(self.ts),
            "kind": self.kind,
            "actor": self.actor,
            "payload": self.payload,
            "prev_hash": self.prev_hash,
            "hash": self.hash,
        }


#: Event's fields, in its order, unfrozen: what :func:`stored_event` builds and then makes an
#: Event (the same slots, so the same layout).
_EventParts = make_dataclass("_EventParts", [(item.name, item.type) for item in fields(Event)],
                             slots=True)


#: An unfrozen Event's fields (its constructor's arguments, in its order), to be made Events
#: by :func:`as_events`: for readers that build events a chunk of rows at a time.
event_parts: Callable[..., Any] = _EventParts


def as_events(parts: list[Any]) -> list[Event]:
    """Each of ``parts`` (made by :func:`event_parts`) made an Event, in place: what
    :func:`stored_event` does for one, without a call per event."""
    for made in parts:
        made.__class__ = Event
    return parts


def stored_event(event_id: int, incident_id: int, ts: datetime, kind: str, actor: str,
                 payload: dict[str, Any], prev_hash: str, digest: str) -> Event:
    """``Event(...)`` with every field given, at a third of the cost — for the readers of long
    records (the store, the exports), where building 100,000 events was a tenth of the wait.

    A frozen dataclass sets each field through ``object.__setattr__``; this builds the fields
    in an unfrozen twin with the same slots and then makes it an Event (still frozen, equal to
    the one the constructor makes)."""
    parts = _EventParts(event_id, incident_id, ts, kind, actor, payload, prev_hash, digest)
    parts.__class__ = Event  # type: ignore[assignment]  # the same slots: a compatible layout
    return cast(Event, parts)


def utcnow() -> datetime:
    return datetime.now(UTC)


def format_ts(ts: datetime) -> str:
    """UTC with milliseconds, e.g. ``2026-11-22T22:04:05.123Z``: the stored and exported form."""
    ts = ts.astimezone(UTC)
    return ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


def parse_ts(text: str) -> datetime:
    """The inverse of :func:`format_ts` (fromisoformat: 60x faster than strptime at 100k events)."""
    parsed = datetime.fromisoformat(text)
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def truncate_ms(ts: datetime) -> datetime:
    """Drop sub-millisecond precision, so a stored and re-read time compare equal."""
    return ts.astimezone(UTC).replace(microsecond=ts.microsecond // 1000 * 1000)


_INCIDENT_ID = re.compile(r"^(?:INC-)?([1-9][0-9]{0,8})$", re.IGNORECASE)


def parse_incident_id(text: str) -> int:
    """``INC-7`` or ``7`` → 7; anything else raises ValueError with a readable message."""
    match = _INCIDENT_ID.match(text.strip())
    if not match:
        raise ValueError(f"not an incident id: {text!r} (expected INC-<n> or <n>)")
    return int(match.group(1))


def format_incident_id(number: int) -> str:
    return f"INC-{number}"


def format_value(value: float | None, unit: str = "", scale: float = 1.0) -> str:
    """A metric value as a person reads it: scaled, two significant decimals, with its unit.

    ``0.0412, "%", 100`` → ``4.12%``; ``0.31, "s"`` → ``0.31 s``; ``200, "req/s"`` → ``200 req/s``.
    One definition for the evaluator's detail lines, the panes and the exports, so they agree.
    """
    if value is None:
        return "n/a"
    if not math.isfinite(value):
        text = "NaN" if math.isnan(value) else ("+Inf" if value > 0 else "-Inf")
    else:
        shown = value * scale
        size = abs(shown)
        if size >= 100:
            text = f"{shown:.0f}"
        elif size >= 10:
            text = f"{shown:.1f}"
        elif size >= 0.1 or size == 0:
            text = f"{shown:.2f}"
        else:
            text = f"{shown:.2g}"  # 0.0031, not 0.00
    if not unit:
        return text
    return f"{text}{unit}" if unit == "%" else f"{text} {unit}"


@dataclass(frozen=True)
class Figures:
    """A guardrail's figures as a person sees them: each the newest sample of its series
    (``None`` when that sample has no value — no canary traffic, a failed query — so a figure
    from before never passes for a current one). One road for every pane, graph and detail view:
    the status comes from the recorded events, the figures from here, and both are formatted by
    :func:`format_value`."""

    canary: float | None = None
    baseline: float | None = None
    limit: float | None = None
    ts: float | None = None  # unix time of the newest sample
    warn: float | None = None  # where the warn band starts (the newest sample), if it has one
    evidence: float | None = None  # the requests behind the canary's value (the newest sample)
    evidence_rate: float | None = None  # how fast the evidence grows, per second (recent samples)

    @classmethod
    def newest(cls, canary: Sequence[tuple[float, float | None]],
               baseline: Sequence[tuple[float, float | None]],
               limit: Sequence[tuple[float, float | None]],
               default_limit: float | None = None, *,
               warn: Sequence[tuple[float, float | None]] = (),
               evidence: Sequence[tuple[float, float | None]] = ()) -> Figures:
        """From the series of ``(unix_ts, value)``, oldest first."""

        def last(series: Sequence[tuple[float, float | None]]) -> float | None:
            if not series:
                return None
            value = series[-1][1]
            return value if value is not None and math.isfinite(value) else None

        limits = [v for _, v in limit if v is not None and math.isfinite(v)]
        stamps = [series[-1][0] for series in (canary, baseline) if series]
        return cls(last(canary), last(baseline), limits[-1] if limits else default_limit,
                   max(stamps) if stamps else None, warn=last(warn),
                   evidence=last(evidence), evidence_rate=evidence_rate(evidence))


#: The evidence's rate is measured over the samples of this many seconds before the newest.
EVIDENCE_RATE_WINDOW_S = 60.0


def evidence_rate(series: Sequence[tuple[float, float | None]]) -> float | None:
    """Requests per second the evidence grew by over its recent samples (the last unbroken run
    within :data:`EVIDENCE_RATE_WINDOW_S`), or None with fewer than two samples to go by."""
    if not series or series[-1][1] is None:
        return None
    newest_ts, newest = series[-1][0], series[-1][1]
    oldest_ts, oldest = newest_ts, newest
    for ts, value in reversed(series[:-1]):
        if value is None or not math.isfinite(value) or newest_ts - ts > EVIDENCE_RATE_WINDOW_S:
            break
        oldest_ts, oldest = ts, value
    if newest_ts <= oldest_ts or not math.isfinite(newest):
        return None
    return (newest - oldest) / (newest_ts - oldest_ts)


def evidence_words(figures: Figures, needed: float, track: str = "canary") -> str:
    """The evidence counter: ``412 of 1,000 canary requests · enough in ~40s at the current
    rate`` (or ``· not rising at the current rate``; ``enough`` once it is)."""
    have = figures.evidence
    if have is None:
        return f"? of {needed:,.0f} {track} requests (no evidence sample)"
    counted = f"{have:,.0f} of {needed:,.0f} {track} requests"
    if have >= needed:
        return f"{counted} · enough"
    rate = figures.evidence_rate
    if rate is None:
        return f"{counted} · rate not known yet"
    if rate <= 0:
        return f"{counted} · not rising at the current rate"
    left = format_duration(max(1.0, (needed - have) / rate))
    return f"{counted} · enough in ~{left} at the current rate"


def clip(text: str, limit: int = 300) -> str:
    """``text`` cut to at most ``limit`` characters at a word boundary, with ``…`` where it was
    cut: a stored message is never cut mid-word ("stable track: que")."""
    if len(text) <= limit:
        return text
    cut = text[:limit - 1]
    space = cut.rfind(" ")
    if space > limit // 2:
        cut = cut[:space]
    return cut.rstrip(" ,;:") + "…"


def format_duration(seconds: float) -> str:
    """``3725`` → ``1h 02m``; ``75`` → ``1m 15s``; negative values get a minus sign."""
    sign = "-" if seconds < 0 else ""
    seconds = int(abs(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{sign}{hours}h {minutes:02d}m"
    if minutes:
        return f"{sign}{minutes}m {secs:02d}s"
    return f"{sign}{secs}s"


def _p(payload: dict[str, Any], key: str, default: str = "") -> str:
    value = payload.get(key, default)
    return default if value is None else str(value)


def format_head(event_id: int, digest: str, keyed: bool = False) -> str:
    """A chain head as it is published: ``head #N sha256:HASH`` (``hmac-sha256:`` for a keyed
    chain). ``warroom verify ID --head N:HASH`` proves a later copy contains it exactly."""
    return f"head #{event_id} {'hmac-sha256' if keyed else 'sha256'}:{digest}"


def describe(event: Event) -> str:
    """One plain-text sentence for the timeline and the PIR (never markup; callers escape)."""
    p = event.payload
    kind = event.kind
    if kind == Kind.DECLARED:
        bypassed = ", ".join(_p(b, "element") for b in p.get("bypasses") or []) or "none"
        return (f"Declared {_p(p, 'priority')} {_p(p, 'category')} emergency on "
                f"{_p(p, 'service')}: {_p(p, 'from_version')} → {_p(p, 'to_version')}; "
                f"bypassed: {bypassed}; commander {_p(p, 'commander', event.actor)}")
    if kind == Kind.RATE_WARNING:
        return f"WARNING: {_p(p, 'message')}"
    if kind == Kind.APPROVED:
        how = _p(p, "kind", "direct")
        detail = (f"relayed by {event.actor}; evidence: {_p(p, 'evidence')}" if how == "relayed"
                  else how)
        text = (f"Approved as {_p(p, 'role')} by {_p(p, 'user', event.actor)} ({detail}) for "
                f"{_p(p, 'version')}")
        if p.get("run_by_detail"):
            text += f"; run by {_p(p, 'run_by_detail')}"
        if p.get("note"):
            text += f": {_p(p, 'note')}"
        return text
    if kind == Kind.WAIVED:
        return f"WAIVED approval of {_p(p, 'role')} by {event.actor}: {_p(p, 'reason')}"
    if kind == Kind.TARGET_CHANGED:
        return (f"Target changed {_p(p, 'from_version')} → {_p(p, 'to_version')}: "
                f"{_p(p, 'reason')} (earlier approvals are stale)")
    if kind == Kind.NOTE:
        return f"Note: {_p(p, 'text')}"
    if kind == Kind.CONSOLE_OPENED:
        return f"Console opened by {_p(p, 'user', event.actor)} on {_p(p, 'host')}"
    if kind == Kind.HANDOVER:
        return (f"Command handed over from {_p(p, 'previous_user')} to {_p(p, 'user')}: "
                f"{_p(p, 'reason')}")
    if kind == Kind.CHECKLIST_ACKED:
        return f"Rollback compatibility checklist acknowledged ({len(p.get('items') or [])} items)"
    if kind == Kind.PREFLIGHT_REQUESTED:
        return f"Rollback preflight to {_p(p, 'target')} requested"
    if kind == Kind.PREFLIGHT_PASSED:
        return f"Rollback preflight to {_p(p, 'target')} passed"
    if kind == Kind.PREFLIGHT_FAILED:
        return f"Rollback preflight to {_p(p, 'target')} FAILED: {_p(p, 'detail')}"
    if kind == Kind.WEIGHT_REQUESTED:
        action = _p(p, "action", "advance")
        text = {
            "advance": f"Advance to {_p(p, 'to_percent')}% requested",
            "immediate": f"100% IMMEDIATELY requested: {_p(p, 'reason')}",
            "abort": f"Abort requested: canary weight {_p(p, 'from_percent')}% → 0%",
            "rollback": "Canary weight to 0% for the rollback",
        }.get(action, f"Weight {_p(p, 'to_percent')}% requested ({action})")
        overrides = p.get("overrides") or []
        if overrides:
            text += "; OVERRIDES: " + "; ".join(
                f"{_p(o, 'block')} ({_p(o, 'reason')})" for o in overrides
            )
        return text
    if kind == Kind.WEIGHT_SET:
        return f"Canary weight is {_p(p, 'percent')}% ({_p(p, 'action', 'advance')})"
    if kind == Kind.WEIGHT_FAILED:
        return f"Setting canary weight {_p(p, 'percent')}% FAILED: {_p(p, 'error')}"
    if kind == Kind.GUARDRAIL_CHANGED:
        word = GUARDRAIL_STATUS_WORDS.get(_p(p, "status"), _p(p, "status"))
        return f"Guardrail {_p(p, 'name')}: {word} — {_p(p, 'detail')}"
    if kind == Kind.GUARDRAIL_ACTION:
        return (f"Sustained breach of {_p(p, 'name')} ({_p(p, 'breaches')} in a row): "
                f"{_p(p, 'action')}")
    if kind == Kind.ROLLBACK_REQUESTED:
        how = "automatic" if p.get("automatic") else "manual"
        return (f"ROLLBACK to {_p(p, 'target')} requested ({how}) at canary weight "
                f"{_p(p, 'weight')}%: {_p(p, 'reason')}")
    if kind == Kind.ROLLBACK_STARTED:
        return f"Rollback to {_p(p, 'target')} started: {_p(p, 'detail')}"
    if kind == Kind.ROLLBACK_PROGRESS:
        return f"Rollback: {_p(p, 'message')}"
    if kind == Kind.ROLLBACK_COMPLETED:
        return f"Deployer reports {_p(p, 'version')} live"
    if kind == Kind.ROLLBACK_FAILED:
        return f"ROLLBACK FAILED: {_p(p, 'error')}"
    if kind == Kind.VERIFICATION_STARTED:
        hold = p.get("hold_s")
        held = format_duration(float(hold)) if isinstance(hold, int | float) else "?"
        return f"Verifying rollback: guardrails must stay healthy for {held}"
    if kind == Kind.ROLLBACK_VERIFIED:
        return f"ROLLBACK VERIFIED: {_p(p, 'target')} live, weight 0%, guardrails healthy"
    if kind == Kind.ROLLBACK_NOT_VERIFIED:
        return f"ROLLBACK NOT VERIFIED: {_p(p, 'reason')}"
    if kind == Kind.ROLLBACK_WATCH_STARTED:
        return (f"Watching the live version for {format_duration(float(p.get('watch_s') or 0))}"
                f": it must stay {_p(p, 'target')}")
    if kind == Kind.ROLLBACK_REVERTED:
        return (f"ROLLBACK UNDONE: the live version is {_p(p, 'live')}, not {_p(p, 'target')} "
                "(a GitOps sync, an auto-promotion or a person put it back?)")
    if kind == Kind.ROLLBACK_RESTORED:
        return f"The live version is {_p(p, 'target')} again"
    if kind == Kind.ROLLBACK_WATCH_ENDED:
        return (f"Watch ended: {_p(p, 'target')} stayed live for "
                f"{format_duration(float(p.get('watched_s') or 0))}")
    if kind == Kind.ESCALATED:
        return (f"ESCALATED to the commander: sustained breach of {_p(p, 'name')} "
                f"({_p(p, 'breaches')} in a row): {_p(p, 'reason')}")
    if kind == Kind.FLAGGER_GATE_OPENED:
        once = " for one call" if p.get("once") else ""
        return (f"Flagger gate {_p(p, 'gate')} OPENED{once} for {_p(p, 'canary')} run "
                f"{_p(p, 'checksum')}: {_p(p, 'reason')}")
    if kind == Kind.FLAGGER_GATE_CLOSED:
        return (f"Flagger gate {_p(p, 'gate')} closed for {_p(p, 'canary')} run "
                f"{_p(p, 'checksum')}: {_p(p, 'reason')}")
    if kind == Kind.FLAGGER_GATE_ASKED:
        return (f"Flagger asked {_p(p, 'gate')} for {_p(p, 'canary')} run {_p(p, 'checksum')} "
                f"({_p(p, 'phase')}): {_p(p, 'answer')} — {_p(p, 'detail')}")
    if kind == Kind.STATUSPAGE_POSTED:
        link = f" {_p(p, 'shortlink')}" if p.get("shortlink") else ""
        return (f"Status page {_p(p, 'action')}: {_p(p, 'status').upper()} — "
                f"{_p(p, 'name')}{link}")
    if kind == Kind.STATUSPAGE_FAILED:
        return (f"Status page {_p(p, 'action')} ({_p(p, 'status')}) FAILED: "
                f"{_p(p, 'error')}")
    if kind == Kind.GATE_RECORDED:
        text = f"Post-emergency: {_p(p, 'item')} — {_p(p, 'result')}"
        return text + (f": {_p(p, 'detail')}" if p.get("detail") else "")
    if kind == Kind.RECONCILED:
        return (f"Reconciled {_p(p, 'request_kind')} #{_p(p, 'request_id')}: "
                f"{_p(p, 'outcome')} {_p(p, 'detail')}").rstrip()
    if kind == Kind.CLOSED:
        return f"Incident closed: {_p(p, 'reason')}"
    if kind == Kind.NOTIFIED:
        where = f" ({_p(p, 'target')})" if p.get("target") else ""
        return f"Chat notified{where}: {_p(p, 'message')}"
    if kind == Kind.NOTIFY_FAILED:
        where = f" ({_p(p, 'target')})" if p.get("target") else ""
        return f"Chat notification{where} FAILED ({_p(p, 'error')}): {_p(p, 'message')}"
    if kind == Kind.PAUSED:
        reason = f": {_p(p, 'reason')}" if p.get("reason") else ""
        return f"Canary PAUSED at {_p(p, 'percent')}%{reason}"
    if kind == Kind.RESUMED:
        reason = f": {_p(p, 'reason')}" if p.get("reason") else ""
        return f"Canary resumed at {_p(p, 'percent')}%{reason}"
    if kind == Kind.MILESTONE:
        reason = f": {_p(p, 'reason')}" if p.get("reason") else ""
        at = _p(p, "at")
        when = f" (at {at[11:19]} UTC)" if at and at != format_ts(event.ts) else ""
        return f"Milestone {_p(p, 'milestone').upper()}{when}{reason}"
    if kind == Kind.ROLE_ASSIGNED:
        return f"Role {_p(p, 'role')}: {_p(p, 'user')}"
    if kind == Kind.HIGHLIGHTED:
        reason = f": {_p(p, 'reason')}" if p.get("reason") else ""
        return f"Highlighted event #{_p(p, 'event_id')}{reason}"
    if kind == Kind.CONSOLE_CLOSED:
        return f"Console closed by {_p(p, 'user', event.actor)} ({_p(p, 'how', 'quit')})"
    if kind == Kind.CHAIN_BROKEN:
        return (f"CHAIN BROKEN at #{_p(p, 'event_id', '?')} — the record was edited: "
                f"{_p(p, 'message')}")
    return f"{kind}: {p}"
