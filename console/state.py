"""``fold(events) -> IncidentState``: the only way the state of an incident is derived.

The fold is pure and deterministic: the same events always give the same state, whatever the
clock says. Anything that depends on the time (elapsed, time left, hold remaining) is a method
that takes ``now``. The fold never raises on a valid prefix of a timeline; an event it does not
know is kept in the count and otherwise ignored, so an older warroom can still read a newer file.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from console.model import (
    ApprovalKind,
    Event,
    GuardrailStatus,
    Kind,
    RollbackStatus,
    format_incident_id,
    format_ts,
)


@dataclass(frozen=True)
class Bypass:
    element: str
    reason: str
    compensation: str
    post_gate: str = ""

    @property
    def checklist_item(self) -> str:
        """Its item on the post-emergency checklist (meaningful when it has a post-gate)."""
        return f"{self.element}: {self.post_gate}"


@dataclass(frozen=True)
class Approval:
    """One approval as recorded; ``stale`` when it was given for an earlier target version."""

    role: str
    user: str
    kind: ApprovalKind
    version: str
    ts: datetime
    event_id: int
    stale: bool = False
    note: str = ""
    evidence: str = ""
    relayed_from: str = ""
    reason: str = ""
    recorded_by: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"role": self.role, "user": self.user, "kind": self.kind, "stale": self.stale,
                "version": self.version, "ts": format_ts(self.ts), "note": self.note,
                "evidence": self.evidence, "reason": self.reason, "recorded_by": self.recorded_by}


@dataclass(frozen=True)
class Stage:
    index: int
    percent: int
    hold_s: float


@dataclass(frozen=True)
class Override:
    """A block set aside with a typed reason."""

    block: str
    reason: str
    action: str
    ts: datetime
    actor: str


@dataclass(frozen=True)
class StageVisit:
    """A stage the canary reached: when, by whom, and how long it dwelt there."""

    percent: int
    stage_index: int
    action: str
    entered: datetime
    actor: str
    left: datetime | None = None

    def dwell_s(self, now: datetime) -> float:
        return ((self.left or now) - self.entered).total_seconds()


@dataclass(frozen=True)
class GuardrailState:
    name: str
    status: GuardrailStatus = "unknown"
    detail: str = ""
    canary: float | None = None
    baseline: float | None = None
    limit: float | None = None
    breaches: int = 0
    consecutive: int = 1
    since: datetime | None = None
    on_breach: str = "hold"

    @property
    def budget(self) -> str:
        return f"breaches {self.breaches}/{self.consecutive}"


@dataclass(frozen=True)
class GateResult:
    item: str
    result: str  # passed | failed | waived
    detail: str
    ts: datetime
    actor: str


@dataclass(frozen=True)
class Pending:
    """A journalled request with no outcome yet."""

    kind: str
    event_id: int
    ts: datetime
    payload: dict[str, Any]


@dataclass
class IncidentState:
    """Everything the screen, the engine, the CLI and the exports know about one incident."""

    incident_id: int = 0
    title: str = ""
    priority: str = ""
    category: str = ""
    service: str = ""
    from_version: str = ""
    to_version: str = ""
    commander: str = ""
    declared_ts: datetime | None = None
    declared_by: str = ""
    simulated: bool = False
    target_hours: float = 0.0
    bypasses: list[Bypass] = field(default_factory=list)
    affects: list[str] = field(default_factory=list)
    advice: str = ""
    required_roles: list[str] = field(default_factory=list)
    approvals: list[Approval] = field(default_factory=list)
    plan_name: str = ""
    plan: list[Stage] = field(default_factory=list)
    compatibility_checklist: list[str] = field(default_factory=list)
    checklist_acked: bool = False
    checklist_acked_by: str = ""
    canary_percent: int = 0
    stage_index: int = -1
    stage_entered: datetime | None = None
    visits: list[StageVisit] = field(default_factory=list)
    immediate_used: bool = False
    overrides: list[Override] = field(default_factory=list)
    pending_weight: Pending | None = None
    last_weight_error: str = ""
    rollback_status: RollbackStatus = "none"
    rollback_target: str = ""
    rollback_detail: str = ""
    rollback_automatic: bool = False
    rollback_checks: list[dict[str, Any]] = field(default_factory=list)
    rollback_requested_ts: datetime | None = None
    rollback_completed_ts: datetime | None = None
    rollback_finished_ts: datetime | None = None
    rollback_progress: list[str] = field(default_factory=list)
    preflight_ok: bool | None = None
    preflight_detail: str = ""
    preflight_checks: list[dict[str, Any]] = field(default_factory=list)
    preflight_ts: datetime | None = None
    guardrails: dict[str, GuardrailState] = field(default_factory=dict)
    gates: dict[str, GateResult] = field(default_factory=dict)
    notes: int = 0
    warnings: list[str] = field(default_factory=list)
    handovers: int = 0
    closed: bool = False
    closed_ts: datetime | None = None
    close_reason: str = ""
    promoted_ts: datetime | None = None
    event_count: int = 0
    last_event_id: int = 0
    last_ts: datetime | None = None

    # --- identity and clocks ---------------------------------------------------------------------

    @property
    def id_text(self) -> str:
        return format_incident_id(self.incident_id)

    @property
    def deadline(self) -> datetime | None:
        if self.declared_ts is None:
            return None
        return self.declared_ts + timedelta(hours=self.target_hours)

    def elapsed_s(self, now: datetime) -> float:
        if self.declared_ts is None:
            return 0.0
        end = self.closed_ts or now
        return (end - self.declared_ts).total_seconds()

    def time_left_s(self, now: datetime) -> float:
        """Seconds to the priority's deploy target (negative once missed)."""
        deadline = self.deadline
        return 0.0 if deadline is None else (deadline - now).total_seconds()

    # --- approvals -------------------------------------------------------------------------------

    def current_approvals(self) -> dict[str, Approval]:
        """The approval that counts for each role (latest not stale), by role."""
        counted: dict[str, Approval] = {}
        for approval in self.approvals:
            if not approval.stale:
                counted[approval.role] = approval
        return counted

    @property
    def missing_roles(self) -> list[str]:
        counted = self.current_approvals()
        return [role for role in self.required_roles if role not in counted]

    @property
    def approvals_complete(self) -> bool:
        return not self.missing_roles

    # --- canary ----------------------------------------------------------------------------------

    @property
    def current_stage(self) -> Stage | None:
        if 0 <= self.stage_index < len(self.plan):
            return self.plan[self.stage_index]
        return None

    @property
    def next_stage(self) -> Stage | None:
        for stage in self.plan:
            if stage.percent > self.canary_percent:
                return stage
        return None

    @property
    def promoted(self) -> bool:
        return self.canary_percent >= 100

    def hold_remaining_s(self, now: datetime) -> float:
        stage = self.current_stage
        if stage is None or self.stage_entered is None or self.canary_percent == 0:
            return 0.0
        return max(0.0, stage.hold_s - (now - self.stage_entered).total_seconds())

    @property
    def rollback_active(self) -> bool:
        return self.rollback_status in ("requested", "in_progress")

    @property
    def rolled_back(self) -> bool:
        return self.rollback_status in ("requested", "in_progress", "verified", "not_verified",
                                        "failed")

    # --- after the change ------------------------------------------------------------------------

    @property
    def checklist_active(self) -> bool:
        return self.promoted or self.rollback_status == "verified"

    def post_checklist(self) -> list[str]:
        """The post-emergency items (seed 000): verify, run each bypassed gate, the PIR."""
        items = ["Verify resolution: the harm has stopped and the metrics confirm it"]
        items += [b.checklist_item for b in self.bypasses if b.post_gate]
        items.append("Schedule the post-incident review")
        return items

    @property
    def checklist_open(self) -> list[str]:
        return [item for item in self.post_checklist() if item not in self.gates]

    # --- the fold --------------------------------------------------------------------------------

    def apply(self, event: Event) -> None:
        """Fold one event into the state (in place)."""
        self.event_count += 1
        self.last_event_id = event.id
        self.last_ts = event.ts
        handler = _HANDLERS.get(event.kind)
        if handler is not None:
            handler(self, event, event.payload)


def _str(payload: dict[str, Any], key: str, default: str = "") -> str:
    value = payload.get(key, default)
    return default if value is None else str(value)


def _declared(state: IncidentState, event: Event, p: dict[str, Any]) -> None:
    state.incident_id = event.incident_id
    state.title = _str(p, "title")
    state.priority = _str(p, "priority")
    state.category = _str(p, "category")
    state.service = _str(p, "service")
    state.from_version = _str(p, "from_version")
    state.to_version = _str(p, "to_version")
    state.rollback_target = state.from_version
    state.commander = _str(p, "commander", event.actor)
    state.declared_by = event.actor
    state.declared_ts = event.ts
    state.simulated = bool(p.get("simulated", False))
    state.target_hours = float(p.get("target_hours") or 0)
    state.bypasses = [
        Bypass(_str(b, "element"), _str(b, "reason"), _str(b, "compensation"),
               _str(b, "post_gate"))
        for b in p.get("bypasses") or [] if isinstance(b, dict)
    ]
    state.affects = [str(s) for s in p.get("affects") or []]
    state.advice = _str(p, "advice")
    state.required_roles = [str(r) for r in p.get("required_roles") or []]
    state.plan_name = _str(p, "plan_name")
    state.plan = [
        Stage(index, int(s.get("percent", 0)), float(s.get("hold_s", 0)))
        for index, s in enumerate(p.get("plan") or []) if isinstance(s, dict)
    ]
    state.compatibility_checklist = [str(c) for c in p.get("checklist") or []]
    for item in p.get("guardrails") or []:
        name = str(item.get("name")) if isinstance(item, dict) else str(item)
        consecutive = int(item.get("consecutive", 1)) if isinstance(item, dict) else 1
        on_breach = _str(item, "on_breach", "hold") if isinstance(item, dict) else "hold"
        state.guardrails[name] = GuardrailState(name, consecutive=consecutive, on_breach=on_breach)


def _approved(state: IncidentState, event: Event, p: dict[str, Any]) -> None:
    version = _str(p, "version", state.to_version)
    kind = _str(p, "kind", "direct")
    state.approvals.append(Approval(
        role=_str(p, "role"), user=_str(p, "user", event.actor),
        kind=kind if kind in ("direct", "relayed", "simulated") else "direct",  # type: ignore[arg-type]
        version=version, ts=event.ts, event_id=event.id, stale=version != state.to_version,
        note=_str(p, "note"), evidence=_str(p, "evidence"), relayed_from=_str(p, "relayed_from"),
        recorded_by=event.actor,
    ))


def _waived(state: IncidentState, event: Event, p: dict[str, Any]) -> None:
    version = _str(p, "version", state.to_version)
    state.approvals.append(Approval(
        role=_str(p, "role"), user=event.actor, kind="waived", version=version, ts=event.ts,
        event_id=event.id, stale=version != state.to_version, reason=_str(p, "reason"),
        recorded_by=event.actor,
    ))


def _target_changed(state: IncidentState, event: Event, p: dict[str, Any]) -> None:
    state.to_version = _str(p, "to_version", state.to_version)
    state.approvals = [
        a if a.version == state.to_version else _replace(a, stale=True) for a in state.approvals
    ]
    # A new build invalidates what the preflight and the canary knew about the old one.
    state.preflight_ok = None
    state.preflight_detail = "the target changed: run the rollback preflight again"


def _replace(approval: Approval, **changes: Any) -> Approval:
    from dataclasses import replace

    return replace(approval, **changes)


def _note(state: IncidentState, event: Event, p: dict[str, Any]) -> None:
    state.notes += 1


def _rate_warning(state: IncidentState, event: Event, p: dict[str, Any]) -> None:
    state.warnings.append(_str(p, "message"))


def _handover(state: IncidentState, event: Event, p: dict[str, Any]) -> None:
    state.commander = _str(p, "user", event.actor)
    state.handovers += 1


def _checklist_acked(state: IncidentState, event: Event, p: dict[str, Any]) -> None:
    state.checklist_acked = True
    state.checklist_acked_by = event.actor


def _preflight(state: IncidentState, event: Event, p: dict[str, Any]) -> None:
    if state.rolled_back:
        return  # a preflight after the rollback started does not change its status
    ok = event.kind == Kind.PREFLIGHT_PASSED
    state.preflight_ok = ok
    state.preflight_detail = _str(p, "detail")
    state.preflight_checks = [c for c in p.get("checks") or [] if isinstance(c, dict)]
    state.preflight_ts = event.ts
    state.rollback_target = _str(p, "target", state.rollback_target)
    state.rollback_status = "preflight_passed" if ok else "preflight_failed"


def _weight_requested(state: IncidentState, event: Event, p: dict[str, Any]) -> None:
    state.pending_weight = Pending(event.kind, event.id, event.ts, dict(p))
    for item in p.get("overrides") or []:
        if isinstance(item, dict):
            state.overrides.append(Override(_str(item, "block"), _str(item, "reason"),
                                            _str(p, "action", "advance"), event.ts, event.actor))
    if p.get("action") == "immediate":
        state.immediate_used = True


def _weight_set(state: IncidentState, event: Event, p: dict[str, Any]) -> None:
    state.pending_weight = None
    state.last_weight_error = ""
    percent = int(p.get("percent", 0))
    if percent == state.canary_percent and state.visits:
        return
    if state.visits and state.visits[-1].left is None:
        state.visits[-1] = _close_visit(state.visits[-1], event.ts)
    state.canary_percent = percent
    stage_index = int(p.get("stage_index", -1))
    state.stage_index = stage_index if percent > 0 else -1
    state.stage_entered = event.ts
    if percent > 0:
        state.visits.append(StageVisit(percent, stage_index, _str(p, "action", "advance"),
                                       event.ts, event.actor))
    if percent >= 100 and state.promoted_ts is None:
        state.promoted_ts = event.ts


def _close_visit(visit: StageVisit, ts: datetime) -> StageVisit:
    from dataclasses import replace

    return replace(visit, left=ts)


def _weight_failed(state: IncidentState, event: Event, p: dict[str, Any]) -> None:
    state.pending_weight = None
    state.last_weight_error = _str(p, "error")


def _guardrail_changed(state: IncidentState, event: Event, p: dict[str, Any]) -> None:
    name = _str(p, "name")
    old = state.guardrails.get(name) or GuardrailState(name)
    status = _str(p, "status", "unknown")
    state.guardrails[name] = GuardrailState(
        name=name,
        status=status if status in ("healthy", "breach", "insufficient", "cant_evaluate")  # type: ignore[arg-type]
        else "unknown",
        detail=_str(p, "detail"),
        canary=_float(p.get("canary")),
        baseline=_float(p.get("baseline")),
        limit=_float(p.get("limit")),
        breaches=int(p.get("breaches", 0) or 0),
        consecutive=int(p.get("consecutive", old.consecutive) or old.consecutive),
        since=event.ts,
        on_breach=_str(p, "on_breach", old.on_breach),
    )


def _float(value: Any) -> float | None:
    if value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _rollback_requested(state: IncidentState, event: Event, p: dict[str, Any]) -> None:
    state.rollback_status = "requested"
    state.rollback_target = _str(p, "target", state.rollback_target)
    state.rollback_automatic = bool(p.get("automatic", False))
    state.rollback_detail = _str(p, "reason")
    state.rollback_requested_ts = event.ts
    state.rollback_completed_ts = None
    state.rollback_finished_ts = None
    state.rollback_checks = []
    state.rollback_progress = []


def _rollback_started(state: IncidentState, event: Event, p: dict[str, Any]) -> None:
    state.rollback_status = "in_progress"
    state.rollback_detail = _str(p, "detail")


def _rollback_progress(state: IncidentState, event: Event, p: dict[str, Any]) -> None:
    if state.rollback_status in ("requested", "in_progress"):
        state.rollback_status = "in_progress"
    state.rollback_progress.append(_str(p, "message"))


def _rollback_completed(state: IncidentState, event: Event, p: dict[str, Any]) -> None:
    state.rollback_status = "in_progress"  # live, but not verified until the hold passes
    state.rollback_completed_ts = event.ts
    state.rollback_detail = f"{_str(p, 'version')} is live; verifying"


def _verification_started(state: IncidentState, event: Event, p: dict[str, Any]) -> None:
    state.rollback_status = "in_progress"
    state.rollback_detail = f"verifying for {float(p.get('hold_s', 0)):.0f}s"


def _rollback_failed(state: IncidentState, event: Event, p: dict[str, Any]) -> None:
    state.rollback_status = "failed"
    state.rollback_detail = _str(p, "error")
    state.rollback_finished_ts = event.ts


def _rollback_verdict(state: IncidentState, event: Event, p: dict[str, Any]) -> None:
    verified = event.kind == Kind.ROLLBACK_VERIFIED
    state.rollback_status = "verified" if verified else "not_verified"
    state.rollback_detail = _str(p, "reason") if not verified else "verified"
    state.rollback_checks = [c for c in p.get("checks") or [] if isinstance(c, dict)]
    state.rollback_finished_ts = event.ts
    if verified:
        # The canary is gone; what the guardrails say now is what the verification saw.
        for name, old in state.guardrails.items():
            state.guardrails[name] = GuardrailState(
                name, "healthy", "healthy on the stable track after the rollback",
                consecutive=old.consecutive, since=event.ts, on_breach=old.on_breach)


def _gate(state: IncidentState, event: Event, p: dict[str, Any]) -> None:
    item = _str(p, "item")
    state.gates[item] = GateResult(item, _str(p, "result"), _str(p, "detail"), event.ts,
                                   event.actor)


def _closed(state: IncidentState, event: Event, p: dict[str, Any]) -> None:
    state.closed = True
    state.closed_ts = event.ts
    state.close_reason = _str(p, "reason")
    if state.visits and state.visits[-1].left is None:
        state.visits[-1] = _close_visit(state.visits[-1], event.ts)


_HANDLERS: dict[str, Callable[[IncidentState, Event, dict[str, Any]], None]] = {
    Kind.DECLARED: _declared,
    Kind.RATE_WARNING: _rate_warning,
    Kind.APPROVED: _approved,
    Kind.WAIVED: _waived,
    Kind.TARGET_CHANGED: _target_changed,
    Kind.NOTE: _note,
    Kind.HANDOVER: _handover,
    Kind.CHECKLIST_ACKED: _checklist_acked,
    Kind.PREFLIGHT_PASSED: _preflight,
    Kind.PREFLIGHT_FAILED: _preflight,
    Kind.WEIGHT_REQUESTED: _weight_requested,
    Kind.WEIGHT_SET: _weight_set,
    Kind.WEIGHT_FAILED: _weight_failed,
    Kind.GUARDRAIL_CHANGED: _guardrail_changed,
    Kind.ROLLBACK_REQUESTED: _rollback_requested,
    Kind.ROLLBACK_STARTED: _rollback_started,
    Kind.ROLLBACK_PROGRESS: _rollback_progress,
    Kind.ROLLBACK_COMPLETED: _rollback_completed,
    Kind.VERIFICATION_STARTED: _verification_started,
    Kind.ROLLBACK_FAILED: _rollback_failed,
    Kind.ROLLBACK_VERIFIED: _rollback_verdict,
    Kind.ROLLBACK_NOT_VERIFIED: _rollback_verdict,
    Kind.GATE_RECORDED: _gate,
    Kind.CLOSED: _closed,
}


def fold(events: Iterable[Event], state: IncidentState | None = None) -> IncidentState:
    """Fold events, oldest first, into a new state (or on top of ``state``, for new events)."""
    folded = state if state is not None else IncidentState()
    for event in events:
        folded.apply(event)
    return folded


def state_json(state: IncidentState) -> dict[str, Any]:
    """The folded state in the JSON-export shape that scripts rely on (DESIGN.md)."""
    return {
        "incident": state.id_text,
        "canary_percent": int(state.canary_percent),
        "stage_index": state.stage_index,
        "plan": [{"percent": s.percent, "hold_s": s.hold_s} for s in state.plan],
        "rollback_status": state.rollback_status,
        "rollback_target": state.rollback_target,
        "rollback_detail": state.rollback_detail,
        "preflight_ok": state.preflight_ok,
        "approvals": [a.to_json() for a in state.approvals],
        "approvals_complete": state.approvals_complete,
        "missing_roles": state.missing_roles,
        "required_roles": state.required_roles,
        "guardrails": [
            {"name": g.name, "status": g.status, "detail": g.detail, "breaches": g.breaches,
             "consecutive": g.consecutive}
            for g in state.guardrails.values()
        ],
        "bypasses": [b.__dict__ for b in state.bypasses],
        "overrides": [
            {"block": o.block, "reason": o.reason, "action": o.action, "ts": format_ts(o.ts),
             "actor": o.actor}
            for o in state.overrides
        ],
        "post_checklist": [
            {"item": item, "result": state.gates[item].result if item in state.gates else None}
            for item in state.post_checklist()
        ] if state.checklist_active else [],
        "promoted": state.promoted,
        "closed": state.closed,
        "warnings": state.warnings,
        "event_count": state.event_count,
        "last_event_id": state.last_event_id,
    }
