"""The one write path: a function per command that checks the rules and appends the fact.

Every fact a person or the console decides reaches the record through here: the commander's
console (through :class:`~console.engine.Engine`), the CLI verbs (``declare``, ``approve``,
``waive``, ``note``, ``target``), the demo's simulated approvers and the launcher (a console
opened, a command handover). Each function checks :mod:`console.policy` *inside* the store's write
transaction (:meth:`RecordStore.record <console.store.RecordStore.record>`), against the state
the fact is appended to, so two people acting at once cannot both pass a check only one of them
may pass.

What adapters report (a weight set, a rollback started, a guardrail's status) is recorded by the
engine as the outcome of a command journalled here, not as a command of its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from console import events as ev
from console import flagger, policy
from console.config import Config
from console.model import Event, format_ts, utcnow
from console.state import IncidentState
from console.store import Lease, RecordStore, recent_window

# --- declaring -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Declaration:
    """A declared incident: its first events, and the emergency-rate warning if there was one."""

    events: list[Event]
    record: ev.Declared
    warning: ev.RateWarning | None

    @property
    def incident_id(self) -> int:
        return self.events[0].incident_id


def declare(store: RecordStore, config: Config, *, commander: str, title: str, priority: str,
            category: str, service: str, from_version: str, to_version: str,
            bypass_specs: Sequence[str] = (), affects: Sequence[str] = (),
            plan_name: str | None = None, simulated: bool = False, scenario: str | None = None,
            now: datetime | None = None, detected_at: datetime | None = None,
            links: Sequence[str] = (), change_is_fix: bool | None = None) -> Declaration:
    """Declare an emergency change; a real declaration over the 30-day bar carries a warning
    (seed 000, Q3). Demo declarations are simulated and never count towards the bar.

    ``detected_at`` records the ``detected`` milestone with the declaration (when the problem was
    found, usually before anyone declared); ``links`` are ``KIND=URL``; ``change_is_fix`` says
    whether the change is the fix for an ongoing harm (default: by category, see
    :data:`console.state.FIX_CATEGORIES`) or a risky change of its own."""
    record = policy.declaration(
        config, title=title, priority=priority, category=category, service=service,
        from_version=from_version, to_version=to_version, bypass_specs=list(bypass_specs),
        affects=list(affects), commander=commander, simulated=simulated, plan_name=plan_name)
    record.scenario = scenario
    now = now or utcnow()
    parsed = [policy.parse_link(spec) for spec in links]
    record.links = [ev.Link(kind, url) for kind, url in parsed] or None
    record.change_is_fix = change_is_fix
    extra: list[ev.Payload] = []
    if detected_at is not None:
        from console.state import IncidentState as _Empty

        policy.check_milestone(_Empty(), "detected", detected_at, now)
        extra.append(ev.Milestone("detected", format_ts(detected_at), "given at declaration"))
    warning: ev.RateWarning | None = None
    if not simulated:
        recent = store.declarations_since(recent_window(now, policy.RATE_WINDOW_DAYS))
        real = [e for e in recent if not ev.read_as(e, ev.Declared).simulated]
        warning = policy.emergency_rate_warning(config, len(real) + 1)
    if warning:
        extra.insert(0, warning)
    events = store.create_incident(commander, record, extra, ts=now)
    return Declaration(events, record, warning)


# --- approvals -----------------------------------------------------------------------------------


def approve(store: RecordStore, config: Config, incident_id: int, *, user: str, role: str,
            note: str = "", run_by: Sequence[str] = (), run_by_detail: str = "",
            ts: datetime | None = None) -> Event:
    """A direct approval by ``user``, the OS account that ran ``warroom approve``; ``run_by``
    are the people behind that account when it was run through su/sudo/runuser (recorded with
    the approval, and held to the same rules: never the commander, never a second role)."""

    def decide(state: IncidentState) -> ev.Approved:
        policy.check_direct_approval(state, config, role, user, run_by)
        return ev.Approved(role=role, user=user, kind="direct", version=state.to_version,
                           note=note, run_by=list(run_by) or None,
                           run_by_detail=run_by_detail or None)

    return store.record(incident_id, user, decide, ts)


def relay_approval(store: RecordStore, config: Config, incident_id: int, *, actor: str, role: str,
                   relayed_from: str, evidence: str, note: str = "",
                   ts: datetime | None = None) -> Event:
    """An approval given elsewhere (a bridge call, a chat message), recorded by the commander
    with who gave it and the evidence, and marked as relayed forever."""

    def decide(state: IncidentState) -> ev.Approved:
        policy.check_relayed_approval(state, config, role, actor, relayed_from, evidence)
        return ev.Approved(role=role, user=relayed_from, kind="relayed",
                           version=state.to_version, note=note, relayed_from=relayed_from,
                           evidence=evidence.strip())

    return store.record(incident_id, actor, decide, ts)


def simulated_approval(store: RecordStore, config: Config, incident_id: int, *, user: str,
                       role: str, ts: datetime | None = None) -> Event:
    """The demo's simulated approver ``user`` signs off: the rules of a direct approval (on the
    roster, not the commander, one role each), recorded as simulated, never as direct."""

    def decide(state: IncidentState) -> ev.Approved:
        if not state.simulated:
            raise policy.Refused(f"{state.id_text} is not a demo incident: only people approve "
                                 "real changes")
        policy.check_direct_approval(state, config, role, user)
        return ev.Approved(role=role, user=user, kind="simulated", version=state.to_version,
                           note="simulated approver of the demo")

    return store.record(incident_id, f"{user} (simulated)", decide, ts)


def waive(store: RecordStore, incident_id: int, *, actor: str, role: str, reason: str,
          ts: datetime | None = None) -> Event:
    """The commander waives a required approval, with a specific reason, shown forever."""

    def decide(state: IncidentState) -> ev.Waived:
        policy.check_waiver(state, role, actor, reason)
        return ev.Waived(role=role, reason=reason.strip(), version=state.to_version)

    return store.record(incident_id, actor, decide, ts)


def change_target(store: RecordStore, incident_id: int, *, actor: str, to_version: str, reason: str,
                  ts: datetime | None = None) -> Event:
    """The commander changes the version being shipped; earlier approvals go stale."""

    def decide(state: IncidentState) -> ev.TargetChanged:
        policy.check_target_change(state, actor, to_version, reason)
        return ev.TargetChanged(state.to_version, to_version, reason.strip())

    return store.record(incident_id, actor, decide, ts)


# --- the timeline and the console ----------------------------------------------------------------


def note(store: RecordStore, incident_id: int, *, actor: str, text: str,
         ts: datetime | None = None, links: Sequence[str] = (),
         highlight: bool = False) -> Event:
    """A note on the timeline, kept exactly as typed; with links (``KIND=URL``), and marked as
    a highlight of the incident when asked."""
    parsed = [policy.parse_link(spec) for spec in links]

    def decide(state: IncidentState) -> ev.Note:
        policy.check_note(text)
        return ev.Note(text, [ev.Link(kind, url) for kind, url in parsed] or None,
                       True if highlight else None)

    return store.record(incident_id, actor, decide, ts)


def open_console(store: RecordStore, incident_id: int, *, user: str, host: str, pid: int,
                 previous: Lease | None, take_over: bool, reason: str,
                 ts: datetime | None = None) -> list[Event]:
    """A commander console opened: the command handover first when it replaced another
    commander's lease (with the reason a take-over must give), then the opening itself."""
    events: list[Event] = []
    if previous is not None and (previous.user, previous.pid) != (user, pid):
        why = reason.strip() if take_over else "previous commander gone"
        events.append(store.record(incident_id, user, ev.Handover(
            previous.user, previous.host, previous.pid, user, host, pid, why), ts))
    events.append(store.record(incident_id, user, ev.ConsoleOpened(user, host, pid), ts))
    return events


def mark(store: RecordStore, incident_id: int, *, actor: str, milestone: str,
         at: datetime | None = None, reason: str = "", now: datetime | None = None) -> Event:
    """Mark a milestone (detected, impact-started, mitigated, resolved), at ``at`` (default:
    now); marking one again corrects it (the latest mark counts, both stay on the record)."""
    now = now or utcnow()
    when = at or now

    def decide(state: IncidentState) -> ev.Milestone:
        policy.check_milestone(state, milestone, when, now)
        return ev.Milestone(milestone, format_ts(when), reason.strip())

    return store.record(incident_id, actor, decide, now)


def assign_role(store: RecordStore, incident_id: int, *, actor: str, role: str, user: str,
                ts: datetime | None = None) -> Event:
    """Who holds a role on the bridge (scribe, comms, ...): for the PIR's participants."""

    def decide(state: IncidentState) -> ev.RoleAssigned:
        policy.check_role(role, user)
        return ev.RoleAssigned(role, user)

    return store.record(incident_id, actor, decide, ts)


def highlight(store: RecordStore, incident_id: int, *, actor: str, event_id: int, reason: str = "",
              ts: datetime | None = None) -> Event:
    """Mark an earlier event as important (a new fact: the chain is never rewritten)."""
    found = store.events(incident_id, after_id=event_id - 1, limit=1) if event_id > 0 else []
    if not found or found[0].id != event_id:
        raise policy.Refused(f"no event #{event_id} in incident {incident_id}")

    def decide(state: IncidentState) -> ev.Highlighted:
        policy.check_highlight(state, event_id)
        return ev.Highlighted(event_id, reason.strip())

    return store.record(incident_id, actor, decide, ts)


def console_closed(store: RecordStore, incident_id: int, *, user: str, host: str, pid: int,
                   how: str = "quit", ts: datetime | None = None) -> Event:
    """A commander console closed: the time without a console is excluded from the durations
    it would distort in the PIR."""
    return store.record(incident_id, user, ev.ConsoleClosed(user, host, pid, how), ts)


def acknowledge_checklist(store: RecordStore, incident_id: int, *, actor: str,
                          ts: datetime | None = None) -> Event:
    """The commander confirms the rollback compatibility checklist (seed 002)."""

    def decide(state: IncidentState) -> ev.ChecklistAcked:
        policy.check_checklist_ack(state)
        return ev.ChecklistAcked(list(state.compatibility_checklist))

    return store.record(incident_id, actor, decide, ts)


def record_gate(store: RecordStore, incident_id: int, *, actor: str, item: str, result: str,
                detail: str = "", ts: datetime | None = None) -> Event:
    """A post-emergency checklist item passed, failed or waived."""

    def decide(state: IncidentState) -> ev.GateRecorded:
        policy.check_gate(state, item, result, detail)
        return ev.GateRecorded(item, result, detail)

    return store.record(incident_id, actor, decide, ts)


def close(store: RecordStore, incident_id: int, *, actor: str, reason: str,
          ts: datetime | None = None) -> Event:
    """Close the incident; open checklist items are waived by the (required) reason."""

    def decide(state: IncidentState) -> ev.Closed:
        open_items = policy.check_close(state, reason)
        return ev.Closed(reason.strip() or "all items done", open_items)

    return store.record(incident_id, actor, decide, ts)


# --- the canary and the rollback (journalled before the adapter call) ----------------------------


def request_advance(store: RecordStore, incident_id: int, *, actor: str, now: datetime,
                    overrides: dict[str, str] | None = None) -> Event:
    """Journal a move to the next stage; every block must be overridden with a reason."""

    def decide(state: IncidentState) -> ev.WeightRequested:
        records = policy.check_overrides(policy.advance_blocks(state, now), overrides or {})
        stage = state.next_stage
        assert stage is not None  # a missing next stage is a block no override lifts
        return ev.WeightRequested(from_percent=state.canary_percent, to_percent=stage.percent,
                                  stage_index=stage.index, action="advance", overrides=records)

    return store.record(incident_id, actor, decide, now)


def request_immediate(store: RecordStore, incident_id: int, *, actor: str, now: datetime,
                      reason: str, overrides: dict[str, str] | None = None) -> Event:
    """Journal the loudly marked "100 % now" (seed 000: for the rarest cases)."""

    def decide(state: IncidentState) -> ev.WeightRequested:
        policy.check_immediate_reason(state, reason)
        records = policy.check_overrides(policy.immediate_blocks(state, now), overrides or {})
        final = state.plan[-1].index if state.plan else 0
        return ev.WeightRequested(from_percent=state.canary_percent, to_percent=100,
                                  stage_index=final, action="immediate", overrides=records,
                                  reason=reason.strip())

    return store.record(incident_id, actor, decide, now)


def request_abort(store: RecordStore, incident_id: int, *, actor: str, now: datetime,
                  reason: str = "") -> Event:
    """Journal sending all traffic back to the stable track (weight 0; not a rollback)."""

    def decide(state: IncidentState) -> ev.WeightRequested:
        blocks = policy.abort_blocks(state)
        if blocks:
            raise policy.Refused(f"cannot abort: {blocks[0].words}")
        return ev.WeightRequested(from_percent=state.canary_percent, to_percent=0,
                                  stage_index=-1, action="abort", reason=reason)

    return store.record(incident_id, actor, decide, now)


def pause(store: RecordStore, incident_id: int, *, actor: str, reason: str = "",
          ts: datetime | None = None) -> Event:
    """Hold the canary at its current weight; advance waits for :func:`resume`."""

    def decide(state: IncidentState) -> ev.Paused:
        policy.check_pause(state, pause=True)
        return ev.Paused(state.canary_percent, reason.strip())

    return store.record(incident_id, actor, decide, ts)


def resume(store: RecordStore, incident_id: int, *, actor: str, reason: str = "",
           ts: datetime | None = None) -> Event:
    """Lift a pause: advance is possible again (subject to its other rules)."""

    def decide(state: IncidentState) -> ev.Resumed:
        policy.check_pause(state, pause=False)
        return ev.Resumed(state.canary_percent, reason.strip())

    return store.record(incident_id, actor, decide, ts)


def request_rollback(store: RecordStore, incident_id: int, *, actor: str, now: datetime,
                     reason: str, automatic: bool = False) -> Event:
    """Journal a rollback to the stable version before the deployer is called."""

    def decide(state: IncidentState) -> ev.RollbackRequested:
        blocks = policy.rollback_blocks(state)
        if blocks:
            raise policy.Refused(f"cannot roll back: {blocks[0].words}")
        return ev.RollbackRequested(
            target=state.rollback_target, from_version=state.to_version,
            weight=state.canary_percent, automatic=automatic,
            reason=reason or ("sustained guardrail breach" if automatic else "commander"))

    return store.record(incident_id, actor, decide, now)


# --- Flagger's gates (`warroom gate`) ----------------------------------------------------------


def open_flagger_gate(store: RecordStore, incident_id: int, *, actor: str, gate: str, canary: str,
                      reason: str, once: bool = False, ts: datetime | None = None) -> Event:
    """The commander opens one of Flagger's gates for the run Flagger presented last (its
    checksum): a later run finds it closed. ``once``: it lets one call through."""

    def decide(state: IncidentState) -> ev.FlaggerGateOpened:
        if gate not in flagger.GATES:
            raise policy.Refused(f"{gate!r} is not one of Flagger's gates")
        if not state.flagger_checksum:
            raise policy.Refused(
                f"Flagger has not called the gate for {canary} yet: there is no canary run to "
                f"open {gate} for (do the Canary's webhooks point at `warroom gate`?)")
        if state.flagger_canary != canary:
            raise policy.Refused(f"Flagger last called for {state.flagger_canary}, not {canary}")
        return ev.FlaggerGateOpened(gate, canary, state.flagger_checksum, once, reason.strip())

    return store.record(incident_id, actor, decide, ts)


def close_flagger_gate(store: RecordStore, incident_id: int, *, actor: str, gate: str,
                       reason: str, ts: datetime | None = None) -> Event | None:
    """Close a gate the record has open (None when it is not open: nothing to record)."""

    class _NotOpen(Exception):
        pass

    def decide(state: IncidentState) -> ev.FlaggerGateClosed:
        decision = state.flagger_gates.get(gate)
        if decision is None or not decision.open:
            raise _NotOpen
        return ev.FlaggerGateClosed(gate, decision.canary, decision.checksum, reason.strip())

    try:
        return store.record(incident_id, actor, decide, ts)
    except _NotOpen:
        return None


#: Who the record names for a call of Flagger's webhook.
FLAGGER_ACTOR = "flagger"


def ask_flagger_gate(store: RecordStore, incident_id: int, *, gate: str,
                     payload: flagger.WebhookPayload, canary: str,
                     ts: datetime | None = None) -> flagger.Answer:
    """Flagger calls ``gate`` with ``payload``: the answer from the record, recorded when it
    changes.

    A call that uses up a one-use opening, or any answer worth recording, is decided again and
    appended inside one write transaction, so two calls cannot both use one opening; an answer
    that is open is given only once that transaction has committed. Whatever goes wrong — no
    such incident, a store that cannot be read or written — the answer is closed, with why.
    """
    try:
        state = store.state(incident_id)
        answer = flagger.decide(state, gate, payload, canary)
        if not flagger.worth_recording(state, gate, payload, answer):
            return answer
        decided: list[flagger.Answer] = []

        def decide(current: IncidentState) -> ev.FlaggerGateAsked:
            again = flagger.decide(current, gate, payload, canary)
            decided.append(again)
            return ev.FlaggerGateAsked(gate, payload.canary, payload.checksum, payload.phase,
                                       again.word, again.detail)

        store.record(incident_id, FLAGGER_ACTOR, decide, ts)
        return decided[-1]
    except Exception as error:  # never open on a fault
        from adapters.secrets import scrub

        text = " ".join(scrub(str(error)).split())[:200] or type(error).__name__
        return flagger.Answer(False, f"the record could not answer ({text}): closed")
