"""``fold(events) -> IncidentState``: the only way the state of an incident is derived.

The fold is pure and deterministic: the same events always give the same state, whatever the
clock says. Anything that depends on the time (elapsed, time left, hold remaining) is a method
that takes ``now``. The fold never raises on a valid prefix of a timeline; an event it does not
know is kept in the count and otherwise ignored, so an older warroom can still read a newer file.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from copy import copy
from dataclasses import dataclass, field, fields, replace
from datetime import datetime, timedelta
from typing import Any

from console import events as ev
from console.events import Bypass, Check
from console.identity import person
from console.model import (
    ApprovalKind,
    Event,
    GuardrailStatus,
    Kind,
    RollbackStatus,
    format_duration,
    format_incident_id,
    format_ts,
    parse_ts,
)

#: Categories whose emergency change is, unless declared otherwise, the fix for an ongoing harm
#: (seed 000's story: the hotfix stops a leak), so that rolling it back brings the harm back.
FIX_CATEGORIES = frozenset({"security", "incident"})

__all__ = ["Approval", "Bypass", "Check", "GuardrailState", "IncidentState", "Stage",
           "StageWarning", "fold", "state_json"]


@dataclass(frozen=True)
class Approval:
    """One approval as recorded; ``stale`` when it no longer counts (:attr:`stale_reason` says
    why: given for an earlier target version, or its approver is or became the commander)."""

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
    stale_reason: str = ""
    #: who ran ``warroom approve`` behind the approver's account (su/sudo/runuser), if anyone
    run_by: list[str] = field(default_factory=list)

    @property
    def people(self) -> set[str]:
        """Every person this approval stands for (:func:`~console.identity.person`): the
        approver and whoever ran it for them. A waiver stands for nobody."""
        if self.kind == "waived":
            return set()
        return {person(name) for name in (self.user, *self.run_by)} - {""}

    def to_json(self) -> dict[str, Any]:
        data = {"role": self.role, "user": self.user, "kind": self.kind, "stale": self.stale,
                "version": self.version, "ts": format_ts(self.ts), "note": self.note,
                "evidence": self.evidence, "reason": self.reason, "recorded_by": self.recorded_by}
        if self.stale_reason:
            data["stale_reason"] = self.stale_reason
        if self.run_by:
            data["run_by"] = list(self.run_by)
        return data


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
    shadow: bool = False  # evaluated and recorded, never gates
    initial_delay_s: float = 0.0  # not judged for this long after each stage change
    delayed_until: datetime | None = None  # judged again from then (the stage's initial delay)
    warn_limit: float | None = None  # where the warn band started at the last change
    no_data: bool = False  # the last change was the canary answering with nothing
    comparison: str = ""  # the Mann-Whitney comparison at the last change, in words
    rule: str = ""  # the rule that decided the last change
    queries: dict[str, str] = field(default_factory=dict)  # role → the query as sent then
    #: role → the values its query answered at the last change (the samples it was judged on)
    samples: dict[str, list[float | None]] = field(default_factory=dict)

    @property
    def budget(self) -> str:
        return f"breaches {self.breaches}/{self.consecutive}"

    @property
    def gates(self) -> bool:
        """Whether this guardrail can hold or act on the canary (a shadow never does)."""
        return not self.shadow

    def delay_left_s(self, now: datetime) -> float:
        """Seconds of the stage's initial delay still to run (0 when judged)."""
        if self.delayed_until is None:
            return 0.0
        return max(0.0, (self.delayed_until - now).total_seconds())


@dataclass(frozen=True)
class StageWarning:
    """A guardrail that was WARN at the current stage: advance waits for a person to decide
    (an override with a typed reason), even if the guardrail went back below the band."""

    name: str
    detail: str
    ts: datetime
    percent: int


@dataclass(frozen=True)
class MilestoneMark:
    """A milestone as marked: when it happened (``at``), when and by whom it was recorded."""

    milestone: str
    at: datetime
    recorded: datetime
    actor: str
    reason: str
    event_id: int


@dataclass(frozen=True)
class GateResult:
    item: str
    result: str  # passed | failed | waived
    detail: str
    ts: datetime
    actor: str


@dataclass(frozen=True)
class FlaggerGate:
    """One of Flagger's gates as the record decides it: open only for the run ``checksum``."""

    gate: str
    canary: str
    checksum: str
    open: bool
    once: bool  # lets one call through, then is closed (a traffic increase per advance)
    by: str
    ts: datetime
    reason: str


@dataclass(frozen=True)
class FlaggerAsk:
    """The newest recorded call of Flagger at one gate, and what it was answered."""

    gate: str
    canary: str
    checksum: str
    phase: str
    answer: str  # open | closed
    detail: str
    ts: datetime


@dataclass(frozen=True)
class Pending:
    """A journalled weight request with no outcome yet."""

    kind: str
    event_id: int
    ts: datetime
    request: ev.WeightRequested


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
    scenario: str = ""
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
    paused: bool = False
    paused_by: str = ""
    paused_ts: datetime | None = None
    pause_reason: str = ""
    overrides: list[Override] = field(default_factory=list)
    pending_weight: Pending | None = None
    last_weight_error: str = ""
    rollback_status: RollbackStatus = "none"
    #: After VERIFIED: "none" (no watch), "watching", "reverted" (the live version is not the
    #: target: the alarm), "held" (the window passed with the target live).
    watch_status: str = "none"
    watch_until: datetime | None = None
    watch_live: str = ""  # what the deployer reported when it was not the target
    watch_reverted_ts: datetime | None = None
    automatic_rollbacks: int = 0
    #: Why the commander must decide (a sustained breach warroom may not act on again); "" none.
    escalation: str = ""
    rollback_target: str = ""
    rollback_detail: str = ""
    rollback_automatic: bool = False
    rollback_checks: list[Check] = field(default_factory=list)
    rollback_requested_ts: datetime | None = None
    rollback_completed_ts: datetime | None = None
    rollback_finished_ts: datetime | None = None
    rollback_progress: list[str] = field(default_factory=list)
    verify_hold_s: float = 0.0  # how long the stable track must stay healthy
    verify_holding_since: datetime | None = None  # the verification hold runs since then
    verify_waiting: str = ""  # why the verification hold does not run
    preflight_ok: bool | None = None
    preflight_detail: str = ""
    preflight_checks: list[Check] = field(default_factory=list)
    preflight_ts: datetime | None = None
    guardrails: dict[str, GuardrailState] = field(default_factory=dict)
    #: guardrails that were WARN since the canary reached its current stage (cleared by the
    #: next stage change: the advance that overrode them is the decision)
    stage_warnings: dict[str, StageWarning] = field(default_factory=dict)
    gates: dict[str, GateResult] = field(default_factory=dict)
    #: Flagger's gates (``warroom gate``), by gate type: the commander's decisions ...
    flagger_gates: dict[str, FlaggerGate] = field(default_factory=dict)
    #: ... and Flagger's newest recorded call at each
    flagger_asks: dict[str, FlaggerAsk] = field(default_factory=dict)
    #: The canary run Flagger presented last (its checksum) and which canary: what the
    #: console's keys open the gates for
    flagger_checksum: str = ""
    flagger_canary: str = ""
    #: The status page's incident for this one (``[statuspage]``), and what was posted last
    statuspage_incident: str = ""
    statuspage_status: str = ""
    statuspage_shortlink: str = ""
    statuspage_posts: int = 0
    notes: int = 0
    warnings: list[str] = field(default_factory=list)
    chain_breaks: list[str] = field(default_factory=list)  # as recorded: "#N: what was found"
    handovers: int = 0
    closed: bool = False
    closed_ts: datetime | None = None
    close_reason: str = ""
    promoted_ts: datetime | None = None
    change_is_fix: bool = False  # rolling the change back brings the original harm back
    milestones: dict[str, MilestoneMark] = field(default_factory=dict)
    roles: dict[str, str] = field(default_factory=dict)  # role → user
    highlights: dict[int, str] = field(default_factory=dict)  # event id → why
    links: list[tuple[str, str]] = field(default_factory=list)  # (kind, url)
    event_count: int = 0
    last_event_id: int = 0
    last_hash: str = ""
    #: The declaration said "keyed": the chain's hashes are HMAC-SHA256 with the chain key.
    chain_keyed: bool = False
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

    @property
    def harm_back(self) -> bool:
        """A fix was rolled back: the harm it was to stop is live again — from when the deployer
        reports the old version live, until a ``mitigated`` or ``resolved`` milestone marked at
        or after the rollback says otherwise. (A failed rollback left the fix in place.)"""
        if not self.change_is_fix or self.rollback_requested_ts is None or self.promoted:
            return False
        if self.rollback_status not in ("in_progress", "verified", "not_verified"):
            return False
        if self.rollback_completed_ts is None:
            return False  # the old version is not reported live (yet): the fix still serves
        if self.watch_status == "reverted":
            return False  # the rollback was undone: the fix serves again (ROLLBACK UNDONE)
        return not any(mark.at >= self.rollback_requested_ts
                       for name, mark in self.milestones.items()
                       if name in ("mitigated", "resolved"))

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

    def copy(self) -> IncidentState:
        """A copy another thread can own while this one keeps folding (the items are immutable
        records, so copying the lists and dicts that hold them is enough)."""
        values: dict[str, Any] = {}
        for name in _CONTAINERS:
            values[name] = copy(getattr(self, name))
        return replace(self, **values)

    def apply(self, event: Event) -> None:
        """Fold one event into the state (in place)."""
        self.event_count += 1
        self.last_event_id = event.id
        self.last_hash = event.hash
        self.last_ts = event.ts
        handler = _HANDLERS.get(event.kind)
        if handler is not None:
            handler(self, event, ev.read(event))


# Each handler gets the event and its typed payload (console.events), already read tolerantly:
# a missing field has its default, so a handler only supplies what the default cannot know.


def _declared(state: IncidentState, event: Event, p: ev.Declared) -> None:
    state.incident_id = event.incident_id
    state.title = p.title
    state.priority = p.priority
    state.category = p.category
    state.service = p.service
    state.from_version = p.from_version
    state.to_version = p.to_version
    state.rollback_target = state.from_version
    state.commander = p.commander or event.actor
    state.declared_by = event.actor
    state.chain_keyed = p.chain == "keyed"
    state.declared_ts = event.ts
    state.simulated = p.simulated
    state.scenario = p.scenario or ("bad" if p.simulated else "")
    state.target_hours = p.target_hours
    state.bypasses = list(p.bypasses)
    state.affects = list(p.affects)
    state.advice = p.advice
    state.required_roles = list(p.required_roles)
    state.plan_name = p.plan_name
    state.plan = [Stage(index, s.percent, s.hold_s) for index, s in enumerate(p.plan)]
    state.compatibility_checklist = list(p.checklist)
    state.change_is_fix = (p.change_is_fix if p.change_is_fix is not None
                           else p.category in FIX_CATEGORIES)
    state.links.extend((link.kind, link.url) for link in p.links or [])
    for item in p.guardrails:
        state.guardrails[item.name] = GuardrailState(
            item.name, consecutive=item.consecutive, on_breach=item.on_breach,
            shadow=bool(item.shadow), initial_delay_s=max(0.0, item.initial_delay_s or 0.0))


EARLIER_VERSION = "given for an earlier version"


def _commander_approval(approval: Approval, commander: str) -> str:
    """Why ``approval`` cannot count while ``commander`` commands, or "" if it can: nobody who
    is (or becomes) the commander approves their own change."""
    if approval.kind != "waived" and person(commander) in approval.people:
        return f"{commander} is the commander"
    return ""


def _approved(state: IncidentState, event: Event, p: ev.Approved) -> None:
    version = p.version or state.to_version
    kind: ApprovalKind = p.kind if p.kind in ("direct", "relayed", "simulated") else "direct"  # type: ignore[assignment]
    approval = Approval(
        role=p.role, user=p.user or event.actor, kind=kind, version=version, ts=event.ts,
        event_id=event.id, stale=version != state.to_version, note=p.note,
        evidence=p.evidence or "", relayed_from=p.relayed_from or "", recorded_by=event.actor,
        stale_reason=EARLIER_VERSION if version != state.to_version else "",
        run_by=list(p.run_by or []),
    )
    why = _commander_approval(approval, state.commander)
    if why and not approval.stale:  # the rules refuse it; a record that holds one still
        approval = replace(approval, stale=True, stale_reason=why)  # never counts it
    state.approvals.append(approval)


def _waived(state: IncidentState, event: Event, p: ev.Waived) -> None:
    version = p.version or state.to_version
    state.approvals.append(Approval(
        role=p.role, user=event.actor, kind="waived", version=version, ts=event.ts,
        event_id=event.id, stale=version != state.to_version, reason=p.reason,
        recorded_by=event.actor,
        stale_reason=EARLIER_VERSION if version != state.to_version else "",
    ))


def _target_changed(state: IncidentState, event: Event, p: ev.TargetChanged) -> None:
    state.to_version = p.to_version or state.to_version
    state.approvals = [
        a if a.version == state.to_version or a.stale
        else replace(a, stale=True, stale_reason=EARLIER_VERSION) for a in state.approvals
    ]
    # A new build invalidates what the preflight and the canary knew about the old one.
    state.preflight_ok = None
    state.preflight_detail = "the target changed: run the rollback preflight again"


def _note(state: IncidentState, event: Event, p: ev.Note) -> None:
    state.notes += 1
    if p.highlight:
        state.highlights[event.id] = ""
    if p.links:
        state.links.extend((link.kind, link.url) for link in p.links)


def _milestone(state: IncidentState, event: Event, p: ev.Milestone) -> None:
    try:
        at = parse_ts(p.at) if p.at else event.ts
    except ValueError:
        at = event.ts
    state.milestones[p.milestone] = MilestoneMark(p.milestone, at, event.ts, event.actor,
                                                  p.reason, event.id)


def _role_assigned(state: IncidentState, event: Event, p: ev.RoleAssigned) -> None:
    state.roles[p.role] = p.user


def _highlighted(state: IncidentState, event: Event, p: ev.Highlighted) -> None:
    state.highlights[p.event_id] = p.reason


def _rate_warning(state: IncidentState, event: Event, p: ev.RateWarning) -> None:
    state.warnings.append(p.message)


def _handover(state: IncidentState, event: Event, p: ev.Handover) -> None:
    state.commander = p.user or event.actor
    state.handovers += 1
    # An approver who takes command no longer counts as an approver: their approval goes stale
    # (and stays so), and the approvals pane and advance's block say why.
    took = f"{state.commander} took command"
    state.approvals = [
        replace(a, stale=True, stale_reason=took)
        if not a.stale and _commander_approval(a, state.commander) else a
        for a in state.approvals
    ]


def _checklist_acked(state: IncidentState, event: Event, p: ev.ChecklistAcked) -> None:
    state.checklist_acked = True
    state.checklist_acked_by = event.actor


def _preflight(state: IncidentState, event: Event,
               p: ev.PreflightPassed | ev.PreflightFailed) -> None:
    if state.rolled_back:
        return  # a preflight after the rollback started does not change its status
    ok = event.kind == Kind.PREFLIGHT_PASSED
    state.preflight_ok = ok
    state.preflight_detail = p.detail
    state.preflight_checks = list(p.checks)
    state.preflight_ts = event.ts
    state.rollback_target = p.target or state.rollback_target
    state.rollback_status = "preflight_passed" if ok else "preflight_failed"


def _weight_requested(state: IncidentState, event: Event, p: ev.WeightRequested) -> None:
    state.pending_weight = Pending(event.kind, event.id, event.ts, p)
    for item in p.overrides or []:
        state.overrides.append(Override(item.block, item.reason, p.action, event.ts, event.actor))
    if p.action == "immediate":
        state.immediate_used = True


def _weight_set(state: IncidentState, event: Event, p: ev.WeightSet) -> None:
    state.pending_weight = None
    state.last_weight_error = ""
    percent = p.percent
    if percent == state.canary_percent and state.visits:
        return
    if state.visits and state.visits[-1].left is None:
        state.visits[-1] = replace(state.visits[-1], left=event.ts)
    state.canary_percent = percent
    state.stage_index = p.stage_index if percent > 0 else -1
    state.stage_entered = event.ts
    state.stage_warnings = {}
    if percent > 0:
        _start_initial_delays(state, event.ts)
    if percent > 0:
        state.visits.append(StageVisit(percent, p.stage_index, p.action, event.ts, event.actor))
    if percent >= 100 and state.promoted_ts is None:
        state.promoted_ts = event.ts


def _start_initial_delays(state: IncidentState, ts: datetime) -> None:
    """A stage change: a guardrail with an initial delay is not judged until it has run (its
    metric windows still hold the previous stage), so what it said before no longer stands."""
    for name, guard in state.guardrails.items():
        if guard.initial_delay_s <= 0:
            continue
        until = ts + timedelta(seconds=guard.initial_delay_s)
        state.guardrails[name] = replace(
            guard, status="unknown", since=ts, delayed_until=until, no_data=False,
            comparison="",
            detail=f"initial delay {format_duration(guard.initial_delay_s)} after the stage "
                   f"change: judged from {until.strftime('%H:%M:%S')}")


def _weight_failed(state: IncidentState, event: Event, p: ev.WeightFailed) -> None:
    state.pending_weight = None
    state.last_weight_error = p.error


_STATUSES: frozenset[str] = frozenset({"healthy", "warn", "breach", "insufficient",
                                       "cant_evaluate"})


def _guardrail_changed(state: IncidentState, event: Event, p: ev.GuardrailChanged) -> None:
    old = state.guardrails.get(p.name) or GuardrailState(p.name)
    status: GuardrailStatus = p.status if p.status in _STATUSES else "unknown"  # type: ignore[assignment]
    shadow = p.shadow if p.shadow is not None else old.shadow
    state.guardrails[p.name] = GuardrailState(
        name=p.name,
        status=status,
        detail=p.detail,
        canary=_figure(p.canary),
        baseline=_figure(p.baseline),
        limit=_figure(p.limit),
        breaches=p.breaches,
        consecutive=p.consecutive or old.consecutive,
        since=event.ts,
        on_breach=p.on_breach if p.on_breach is not None else old.on_breach,
        shadow=shadow,
        initial_delay_s=old.initial_delay_s,
        delayed_until=old.delayed_until,
        warn_limit=_figure(p.warn_limit),
        no_data=bool(p.no_data),
        comparison=p.comparison or "",
        rule=p.rule or (old.rule if status == old.status else ""),
        queries=dict(p.queries) if p.queries else dict(old.queries),
        samples={role: [_figure(v) for v in values] for role, values in p.samples.items()}
        if p.samples else {},
    )
    if (status == "warn" and not shadow and p.mode != "stable" and state.canary_percent > 0
            and p.name not in state.stage_warnings):
        state.stage_warnings[p.name] = StageWarning(p.name, p.detail, event.ts,
                                                    state.canary_percent)


def _figure(value: ev.Figure) -> float | None:
    """A stored figure as a number: "NaN" and "+Inf" (Prometheus's words) as the floats."""
    if value is None or isinstance(value, float):
        return value
    try:
        return float(value)
    except ValueError:
        return None


def _rollback_requested(state: IncidentState, event: Event, p: ev.RollbackRequested) -> None:
    state.rollback_status = "requested"
    state.automatic_rollbacks += 1 if p.automatic else 0
    state.escalation = ""  # a rollback is the decision
    state.watch_status, state.watch_until, state.watch_live = "none", None, ""
    state.rollback_target = p.target or state.rollback_target
    state.rollback_automatic = p.automatic
    state.rollback_detail = p.reason
    state.rollback_requested_ts = event.ts
    state.rollback_completed_ts = None
    state.rollback_finished_ts = None
    state.rollback_checks = []
    state.rollback_progress = []
    state.verify_holding_since = None
    state.verify_waiting = ""


def _rollback_started(state: IncidentState, event: Event, p: ev.RollbackStarted) -> None:
    state.rollback_status = "in_progress"
    state.rollback_detail = p.detail


def _rollback_progress(state: IncidentState, event: Event, p: ev.RollbackProgress) -> None:
    if state.rollback_status in ("requested", "in_progress"):
        state.rollback_status = "in_progress"
    state.rollback_progress.append(p.message)
    if p.phase == "holding":
        state.verify_holding_since = event.ts
        state.verify_waiting = ""
    elif p.phase == "waiting":
        state.verify_holding_since = None
        state.verify_waiting = p.message.removeprefix("verification waits: ")


def _rollback_completed(state: IncidentState, event: Event, p: ev.RollbackCompleted) -> None:
    state.rollback_status = "in_progress"  # live, but not verified until the hold passes
    state.rollback_completed_ts = event.ts
    state.rollback_detail = f"{p.version} is live; verifying"


def _verification_started(state: IncidentState, event: Event,
                          p: ev.VerificationStarted) -> None:
    state.rollback_status = "in_progress"
    state.rollback_detail = f"verifying for {p.hold_s:.0f}s"
    state.verify_hold_s = p.hold_s


def _rollback_failed(state: IncidentState, event: Event, p: ev.RollbackFailed) -> None:
    state.rollback_status = "failed"
    state.rollback_detail = p.error
    state.rollback_finished_ts = event.ts


def _rollback_verdict(state: IncidentState, event: Event,
                      p: ev.RollbackVerified | ev.RollbackNotVerified) -> None:
    verified = isinstance(p, ev.RollbackVerified)
    state.rollback_status = "verified" if verified else "not_verified"
    state.rollback_detail = "verified" if verified else p.reason  # type: ignore[union-attr]
    state.rollback_checks = list(p.checks)
    state.rollback_finished_ts = event.ts
    if verified:
        # The canary is gone; what the guardrails say now is what the verification saw.
        for name, old in state.guardrails.items():
            state.guardrails[name] = GuardrailState(
                name, "healthy", "healthy on the stable track after the rollback",
                consecutive=old.consecutive, since=event.ts, on_breach=old.on_breach,
                shadow=old.shadow, initial_delay_s=old.initial_delay_s)


def _watch_started(state: IncidentState, event: Event, p: ev.RollbackWatchStarted) -> None:
    state.watch_status = "watching"
    state.watch_until = event.ts + timedelta(seconds=p.watch_s)
    state.watch_live = ""


def _reverted(state: IncidentState, event: Event, p: ev.RollbackReverted) -> None:
    state.watch_status = "reverted"
    state.watch_live = p.live
    state.watch_reverted_ts = event.ts


def _restored(state: IncidentState, event: Event, p: ev.RollbackRestored) -> None:
    state.watch_status = "watching"
    state.watch_live = ""
    state.watch_reverted_ts = None


def _watch_ended(state: IncidentState, event: Event, p: ev.RollbackWatchEnded) -> None:
    state.watch_status = "held"


def _escalated(state: IncidentState, event: Event, p: ev.Escalated) -> None:
    state.escalation = p.reason or f"sustained breach of {p.name}"


def _gate(state: IncidentState, event: Event, p: ev.GateRecorded) -> None:
    state.gates[p.item] = GateResult(p.item, p.result, p.detail, event.ts, event.actor)


def _flagger_opened(state: IncidentState, event: Event, p: ev.FlaggerGateOpened) -> None:
    state.flagger_gates[p.gate] = FlaggerGate(p.gate, p.canary, p.checksum, True, p.once,
                                              event.actor, event.ts, p.reason)


def _flagger_closed(state: IncidentState, event: Event, p: ev.FlaggerGateClosed) -> None:
    state.flagger_gates[p.gate] = FlaggerGate(p.gate, p.canary, p.checksum, False, False,
                                              event.actor, event.ts, p.reason)


def _flagger_asked(state: IncidentState, event: Event, p: ev.FlaggerGateAsked) -> None:
    state.flagger_asks[p.gate] = FlaggerAsk(p.gate, p.canary, p.checksum, p.phase, p.answer,
                                            p.detail, event.ts)
    state.flagger_checksum, state.flagger_canary = p.checksum, p.canary
    decision = state.flagger_gates.get(p.gate)
    if (p.answer == "open" and decision is not None and decision.open and decision.once
            and decision.checksum == p.checksum):
        # a one-use opening let this call through: it is used up
        state.flagger_gates[p.gate] = replace(decision, open=False, by=event.actor,
                                              ts=event.ts, reason="used by Flagger's call")


def _statuspage_posted(state: IncidentState, event: Event, p: ev.StatusPagePosted) -> None:
    state.statuspage_incident = p.page_incident or state.statuspage_incident
    state.statuspage_status = p.status
    state.statuspage_shortlink = p.shortlink or state.statuspage_shortlink
    state.statuspage_posts += 1


def _paused(state: IncidentState, event: Event, p: ev.Paused) -> None:
    state.paused = True
    state.paused_by = event.actor
    state.paused_ts = event.ts
    state.pause_reason = p.reason


def _resumed(state: IncidentState, event: Event, p: ev.Resumed) -> None:
    state.paused = False
    state.paused_by = ""
    state.paused_ts = None
    state.pause_reason = ""


def _chain_broken(state: IncidentState, event: Event, p: ev.ChainBroken) -> None:
    where = f"#{p.event_id}" if p.event_id is not None else "the record"
    state.chain_breaks.append(f"{where}: {p.message}")


def _closed(state: IncidentState, event: Event, p: ev.Closed) -> None:
    state.closed = True
    state.closed_ts = event.ts
    state.close_reason = p.reason
    if state.visits and state.visits[-1].left is None:
        state.visits[-1] = replace(state.visits[-1], left=event.ts)


_HANDLERS: dict[str, Callable[[IncidentState, Event, Any], None]] = {
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
    Kind.CHAIN_BROKEN: _chain_broken,
    Kind.PAUSED: _paused,
    Kind.RESUMED: _resumed,
    Kind.MILESTONE: _milestone,
    Kind.ROLE_ASSIGNED: _role_assigned,
    Kind.HIGHLIGHTED: _highlighted,
    Kind.ROLLBACK_WATCH_STARTED: _watch_started,
    Kind.ROLLBACK_REVERTED: _reverted,
    Kind.ROLLBACK_RESTORED: _restored,
    Kind.ROLLBACK_WATCH_ENDED: _watch_ended,
    Kind.ESCALATED: _escalated,
    Kind.FLAGGER_GATE_OPENED: _flagger_opened,
    Kind.FLAGGER_GATE_CLOSED: _flagger_closed,
    Kind.FLAGGER_GATE_ASKED: _flagger_asked,
    Kind.STATUSPAGE_POSTED: _statuspage_posted,
}


_CONTAINERS: tuple[str, ...] = tuple(
    item.name for item in fields(IncidentState)
    if str(item.type).startswith(("list[", "dict["))
)


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
             "consecutive": g.consecutive, "shadow": g.shadow}
            for g in state.guardrails.values()
        ],
        "bypasses": [{"element": b.element, "reason": b.reason, "compensation": b.compensation,
                      "post_gate": b.post_gate} for b in state.bypasses],
        "overrides": [
            {"block": o.block, "reason": o.reason, "action": o.action, "ts": format_ts(o.ts),
             "actor": o.actor}
            for o in state.overrides
        ],
        "post_checklist": [
            {"item": item, "result": state.gates[item].result if item in state.gates else None}
            for item in state.post_checklist()
        ] if state.checklist_active else [],
        "paused": state.paused,
        "promoted": state.promoted,
        "change_is_fix": state.change_is_fix,
        "harm_back": state.harm_back,
        "milestones": [
            {"milestone": m.milestone, "at": format_ts(m.at), "recorded": format_ts(m.recorded),
             "actor": m.actor, "reason": m.reason}
            for m in state.milestones.values()
        ],
        "roles": [{"role": role, "user": user} for role, user in state.roles.items()],
        "highlights": [{"event_id": event_id, "reason": reason}
                       for event_id, reason in state.highlights.items()],
        "links": [{"kind": kind, "url": url} for kind, url in state.links],
        "closed": state.closed,
        "warnings": state.warnings,
        "event_count": state.event_count,
        "last_event_id": state.last_event_id,
    }
