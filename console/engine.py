"""The commander's actions and the guardrail loop, with no Textual import.

Every action is journalled: a ``*_requested`` event before the adapter call, a result event
after it, so a crash in between is visible and reconciled on the next start. The state is always
the fold of the store's events (``refresh``); the engine keeps no second copy of the truth.

All methods may block on adapters: the console calls them from worker threads. A lock serialises
what the engine writes, so the poll loop and a key press cannot interleave a check and its
journal entry; adapter calls themselves run outside the lock.

Exactly once: the rollback (the one call that is not idempotent) carries an idempotency key
derived from its ``rollback_requested`` event (:func:`idempotency_key`), the same after any
restart, and is never sent again before the deploy system was asked whether it has it. After a
restart, :meth:`Engine.reconcile` gives every journalled request without an outcome one
(completed, failed, or reconciled from what the deploy system reports) before any other action
runs, and leaves the record's canary weight equal to the traffic system's.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime

from adapters.base import (
    Clock,
    Deployer,
    MetricsSource,
    Notifier,
    RollbackLookup,
    RollbackOperation,
    TrafficController,
)
from adapters.secrets import scrub
from adapters.statuspage import StatuspageClient, StatusPost
from console import commands, flagger, policy
from console import events as ev
from console.config import Config, GuardrailSettings
from console.guardrails import (
    BreachTracker,
    GuardrailReading,
    compare,
    evaluate_all,
    stage_samples,
    with_comparison,
)
from console.model import (
    SYSTEM_ACTOR,
    Event,
    Kind,
    clip,
    describe,
    format_duration,
    format_head,
    format_incident_id,
)
from console.state import IncidentState
from console.store import RecordStore, StoreError

#: Events a notifier announces (with the move to 100%).
NOTIFY_KINDS = frozenset({Kind.GUARDRAIL_ACTION, Kind.ROLLBACK_REQUESTED, Kind.ROLLBACK_FAILED,
                          Kind.ROLLBACK_VERIFIED, Kind.ROLLBACK_NOT_VERIFIED,
                          Kind.ROLLBACK_REVERTED, Kind.ROLLBACK_RESTORED, Kind.ESCALATED})


#: An action the rules refuse right now (``str()`` says why in words).
ActionRefused = policy.Refused


@dataclass
class Adapters:
    """The integrations one incident is run with."""

    metrics: MetricsSource
    traffic: TrafficController
    deployer: Deployer
    #: Tells people in their chat about breaches, rollbacks and their verdicts (optional).
    notifier: Notifier | None = None
    #: More targets (``[notify] urls_env``, through apprise), each recorded by its ``target``.
    notifiers: list[Notifier] = field(default_factory=list)
    #: The status page (``[statuspage]``), posted to only when the commander confirms a post.
    statuspage: StatuspageClient | None = None
    #: Stops what the adapters started (the simulator's exporter, HTTP clients).
    on_close: Callable[[], None] | None = None


@dataclass
class PollResult:
    """What one poll cycle saw (for the commander's screen and the detail view)."""

    readings: list[GuardrailReading] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    error: str = ""


def _adapter_error(error: BaseException) -> str:
    text = scrub(str(error)).strip() or type(error).__name__
    text = " ".join(text.split())
    return clip(text)


def idempotency_key(request: Event) -> str:
    """The deploy system's name for the rollback journalled as ``request``: the same in every
    process that reads the record (so a restarted console asks for, or resends, the same
    operation), and unique across databases (the event's hash is part of it)."""
    return f"warroom-{format_incident_id(request.incident_id)}-{request.id}-{request.hash[:12]}"


class Engine:
    """Runs one incident: the canary state machine, guardrails, rollback and its verification."""

    def __init__(self, store: RecordStore, incident_id: int, config: Config, adapters: Adapters,
                 clock: Clock, actor: str) -> None:
        self.store = store
        self.incident_id = incident_id
        self.config = config
        self.adapters = adapters
        self.clock = clock
        self.actor = actor
        self._lock = threading.RLock()
        self._state = IncidentState()
        # Every query of a poll in flight at once (a canary, a baseline and an evidence query
        # per track and guardrail), so a cycle costs about its slowest query; plus room for the
        # chat notifications that share the pool.
        self._pool = ThreadPoolExecutor(max_workers=4 * len(config.guardrails) + 4,
                                        thread_name_prefix="guardrail")
        self.tracker = BreachTracker(config.guardrails)
        self.last_readings: list[GuardrailReading] = []
        self.last_stable_readings: list[GuardrailReading] = []
        self._verify_healthy_since: datetime | None = None
        #: Consecutive breaches on the stable track while a verified rollback is watched.
        self._watch_breaches: dict[str, int] = {}
        self._verify_waiting_for = ""
        #: guardrails whose data is missing and that already paused the canary for it
        self._data_gaps: set[str] = set()
        # Set except while :meth:`reconcile` runs: an action waits for it (nothing happens
        # before every journalled request has its outcome).
        self._settled = threading.Event()
        self._settled.set()
        self._acting_lock = threading.Lock()
        self._actions_running = 0
        self.refresh()
        for guardrail in self._state.guardrails.values():
            self.tracker.restore(guardrail.name, guardrail.status, guardrail.breaches)

    # --- state -----------------------------------------------------------------------------------

    @property
    def state(self) -> IncidentState:
        return self._state

    def now(self) -> datetime:
        return self.clock.now()

    def refresh(self) -> IncidentState:
        """Catch up with the events appended since the last refresh (by anyone): the store folds
        them onto its state, which starts from the newest checkpoint, never from the history."""
        with self._lock:
            self._state = self.store.state(self.incident_id)
            return self._state

    def _record(self, record: ev.Payload, actor: str | None = None) -> Event:
        """Record what an adapter call or the guardrail loop found, as the commander (or
        ``actor``)."""
        return self._command(lambda: self.store.record(self.incident_id, actor or self.actor,
                                                       record, ts=self.now()))

    def _command(self, append: Callable[[], Event]) -> Event:
        """Run one append (a command of console.commands, or an outcome), fold it, and tell the
        chat about it when people must hear."""
        with self._lock:
            event = append()
            self.refresh()
        if event.kind in NOTIFY_KINDS or (
                event.kind == Kind.WEIGHT_SET and ev.read_as(event, ev.WeightSet).percent == 100):
            self._notify(event)
        return event

    def _notify(self, event: Event) -> None:
        """Send a chat line for an event that people must hear about, off this thread; its
        outcome is recorded either way (a failed page is a fact too)."""
        targets: list[tuple[Notifier, str | None]] = [
            (notifier, getattr(notifier, "target", None)) for notifier in
            [self.adapters.notifier, *self.adapters.notifiers] if notifier is not None]
        if not targets:
            return
        state = self._state
        # every post carries the record's head at this event, so a copy can be checked later
        message = (f"[{state.id_text} {state.priority} {state.service}] {describe(event)} "
                   f"({format_head(event.id, event.hash, state.chain_keyed)})")

        def send(notifier: Notifier, target: str | None) -> None:
            try:
                notifier.send(message)
            except Exception as error:
                self._record(ev.NotifyFailed(message, _adapter_error(error), target),
                             actor=SYSTEM_ACTOR)
            else:
                self._record(ev.Notified(message, target), actor=SYSTEM_ACTOR)

        for notifier, target in targets:
            with contextlib.suppress(RuntimeError):  # the engine is shutting down
                self._pool.submit(send, notifier, target)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        if self.adapters.on_close is not None:
            self.adapters.on_close()

    # --- what blocks what ------------------------------------------------------------------------

    def advance_blocks(self) -> list[policy.Block]:
        return policy.advance_blocks(self._state, self.now())

    def immediate_blocks(self) -> list[policy.Block]:
        return policy.immediate_blocks(self._state, self.now())

    # --- notes, checklists -----------------------------------------------------------------------
    # Each command is checked and appended by console.commands (the one write path), inside the
    # store's transaction; the engine then folds what it appended.

    def note(self, text: str) -> Event:
        return self._command(lambda: commands.note(self.store, self.incident_id, actor=self.actor,
                                                   text=text, ts=self.now()))

    def relay_approval(self, role: str, relayed_from: str, evidence: str) -> Event:
        """An approval given elsewhere, recorded by the commander (the console's ``A``); the
        rules are checked in the store's transaction and refuse with :class:`policy.Refused`."""
        return self._command(lambda: commands.relay_approval(
            self.store, self.config, self.incident_id, actor=self.actor, role=role,
            relayed_from=relayed_from, evidence=evidence, ts=self.now()))

    def mark(self, milestone: str, reason: str = "") -> Event:
        """Mark a milestone as of now (the console's ``m``)."""
        return self._command(lambda: commands.mark(self.store, self.incident_id, actor=self.actor,
                                                   milestone=milestone, reason=reason,
                                                   now=self.now()))

    def highlight(self, event_id: int, reason: str = "") -> Event:
        """Mark an earlier event as a moment that matters (the console's ``h``)."""
        return self._command(lambda: commands.highlight(
            self.store, self.incident_id, actor=self.actor, event_id=event_id, reason=reason,
            ts=self.now()))

    def acknowledge_checklist(self) -> Event:
        return self._command(lambda: commands.acknowledge_checklist(
            self.store, self.incident_id, actor=self.actor, ts=self.now()))

    def record_gate(self, item: str, result: str, detail: str = "") -> Event:
        return self._command(lambda: commands.record_gate(
            self.store, self.incident_id, actor=self.actor, item=item, result=result,
            detail=detail, ts=self.now()))

    def close_incident(self, reason: str) -> Event:
        return self._command(lambda: commands.close(self.store, self.incident_id,
                                                    actor=self.actor, reason=reason,
                                                    ts=self.now()))

    def record_chain_break(self, event_id: int | None, message: str, verified_to: int) -> None:
        """Verification found the record edited: put the break in the record itself, once
        (never blocking anything: a damaged record must not stop the emergency)."""
        where = f"#{event_id}" if event_id is not None else "the record"
        with self._lock:
            self.refresh()
            if any(b.startswith(f"{where}:") for b in self._state.chain_breaks):
                return
            self._record(ev.ChainBroken(event_id, message, verified_to), actor=SYSTEM_ACTOR)

    # --- the status page ------------------------------------------------------------------------

    def post_status_page(self, post: StatusPost) -> Event:
        """Post what the commander confirmed, once; the outcome, either way, is an event."""
        from console.statuspage import blanks

        client = self.adapters.statuspage
        if client is None:
            raise ActionRefused("no status page is configured ([statuspage] in the config)")
        left = blanks(post.body) + blanks(post.name)
        if left:
            raise ActionRefused(f"the text still has the draft's blanks ({', '.join(left[:3])}): "
                                "fill them in before it goes public")
        if not post.body.strip():
            raise ActionRefused("the status page update has no text")
        components = dict(post.components)
        try:
            posted = client.post(post)
        except Exception as error:
            return self._record(ev.StatusPageFailed(post.action, post.name, post.status,
                                                    components, post.body,
                                                    _adapter_error(error)))
        return self._record(ev.StatusPagePosted(
            post.action, post.name, posted.status or post.status, components, post.body,
            posted.incident_id, posted.shortlink, clip(posted.detail) if posted.detail else None))

    # --- rollback preflight ----------------------------------------------------------------------

    def preflight(self) -> Event:
        """Check that a rollback to the stable version can run (read-only on the deployer)."""
        self._settled.wait()
        target = self._state.rollback_target
        if not target:
            raise ActionRefused("no rollback target is known")
        self._record(ev.PreflightRequested(target), actor=SYSTEM_ACTOR)
        try:
            result = self.adapters.deployer.preflight_rollback(target)
        except Exception as error:  # an adapter fault is a failed preflight, in words
            return self._record(ev.PreflightFailed(
                target, [], f"preflight could not run: {_adapter_error(error)}"),
                actor=SYSTEM_ACTOR)
        checks = [ev.Check(c.name, c.ok, c.detail) for c in result.checks]
        failed = [c for c in result.checks if not c.ok]
        detail = result.detail or ("; ".join(f"{c.name}: {c.detail}".rstrip(": ")
                                             for c in failed) if failed else "all checks passed")
        outcome = ev.PreflightPassed if result.ok else ev.PreflightFailed
        return self._record(outcome(target, checks, detail), actor=SYSTEM_ACTOR)

    # --- the canary ------------------------------------------------------------------------------

    def advance(self, overrides: dict[str, str] | None = None) -> Event:
        """Move to the next stage; every block must be overridden with a reason."""
        with self._acting():
            self._flagger_ready()
            request = self._command(lambda: commands.request_advance(
                self.store, self.incident_id, actor=self.actor, now=self.now(),
                overrides=overrides))
            return self._set_weight(request, gates=True)

    def immediate(self, reason: str, overrides: dict[str, str] | None = None) -> Event:
        """The loudly marked "100% now" (seed 000: for the rarest cases); needs a reason."""
        with self._acting():
            self._flagger_ready()
            request = self._command(lambda: commands.request_immediate(
                self.store, self.incident_id, actor=self.actor, now=self.now(), reason=reason,
                overrides=overrides))
            return self._set_weight(request, gates=True)

    # --- Flagger's gates (`warroom gate`): the keys open them in the record -----------------------

    def _flagger_canary(self) -> str | None:
        gate = self.config.gate
        return gate.canary_name(self._state.service) if gate is not None else None

    def _flagger_ready(self) -> None:
        """With a Flagger gate, an advance needs a run to approve: Flagger must have called."""
        canary = self._flagger_canary()
        if canary is not None:
            self.refresh()  # Flagger's calls are recorded by `warroom gate`, another process
        if canary is not None and not self._state.flagger_checksum:
            raise ActionRefused(
                f"Flagger has not called `warroom gate` for {canary} yet: there is no canary "
                "run to approve (do the Canary's confirm webhooks point at the gate?)")

    def _open_advance_gates(self, wanted: ev.WeightRequested, actor: str | None) -> None:
        """The gates a journalled advance opens for the current run (in the record)."""
        canary = self._flagger_canary()
        if canary is None:
            return
        immediate = wanted.action == "immediate"
        reason = (f"100% now: {wanted.reason}" if immediate
                  else f"advance {wanted.from_percent}% → {wanted.to_percent}%")
        for gate, once in flagger.gates_for_advance(self._state, wanted.to_percent,
                                                    immediate=immediate):
            self._command(functools.partial(
                commands.open_flagger_gate, self.store, self.incident_id,
                actor=actor or self.actor, gate=gate, canary=canary, reason=reason, once=once,
                ts=self.now()))

    def _open_rollback_gate(self, reason: str, actor: str) -> str:
        """Abort and rollback: Flagger's confirm gates close and its rollback gate opens for
        the current run. Returns why it could not be opened ("" when it was)."""
        canary = self._flagger_canary()
        if canary is None:
            return ""
        for gate in flagger.GATES[:3]:
            self._command_or_none(functools.partial(
                commands.close_flagger_gate, self.store, self.incident_id, actor=actor,
                gate=gate, reason=f"the canary goes back: {reason}", ts=self.now()))
        try:
            self._command(lambda: commands.open_flagger_gate(
                self.store, self.incident_id, actor=actor, gate="rollback", canary=canary,
                reason=reason, ts=self.now()))
        except ActionRefused as refused:
            return str(refused)
        return ""

    def _command_or_none(self, append: Callable[[], Event | None]) -> None:
        with self._lock:
            if append() is not None:
                self.refresh()

    def pause(self, reason: str = "") -> Event:
        """Hold the canary where it is (advance waits); no traffic call is made."""
        return self._command(lambda: commands.pause(self.store, self.incident_id,
                                                    actor=self.actor, reason=reason,
                                                    ts=self.now()))

    def resume(self, reason: str = "") -> Event:
        return self._command(lambda: commands.resume(self.store, self.incident_id,
                                                     actor=self.actor, reason=reason,
                                                     ts=self.now()))

    def abort(self, reason: str = "") -> Event:
        """Send all traffic back to the stable track (weight 0); not a rollback."""
        with self._acting():
            request = self._command(lambda: commands.request_abort(
                self.store, self.incident_id, actor=self.actor, now=self.now(), reason=reason))
            # Flagger has one way back to the primary: its rollback gate
            self._open_rollback_gate(f"abort: {reason or 'the commander'}", self.actor)
            return self._set_weight(request)

    def _set_weight(self, request: Event, actor: str | None = None, *,
                    gates: bool = False) -> Event:
        """The traffic call a journalled weight request asked for, and its outcome (with
        ``gates``, Flagger's gates for it are opened first)."""
        wanted = ev.read_as(request, ev.WeightRequested)
        percent, stage_index, action = wanted.to_percent, wanted.stage_index, wanted.action
        try:
            if gates:
                self._open_advance_gates(wanted, actor)
            self.adapters.traffic.set_weight(percent)
        except Exception as error:
            return self._record(ev.WeightFailed(percent, stage_index, action,
                                                _adapter_error(error), request_id=request.id),
                                actor=actor)
        reported: int | None
        try:
            reported = self.adapters.traffic.current_weight()
        except Exception:
            reported = None  # the set call succeeded; a failed read-back is noted, not fatal
        return self._record(ev.WeightSet(percent, stage_index, action, reported=reported,
                                         request_id=request.id), actor=actor)

    # --- rollback --------------------------------------------------------------------------------

    def request_rollback(self, reason: str, automatic: bool = False) -> Event:
        """Journal the rollback, call the deployer, set the weight to 0; verification follows
        in :meth:`poll`."""
        with self._acting():
            with self._lock:
                request = self._command(lambda: commands.request_rollback(
                    self.store, self.incident_id, now=self.now(), reason=reason,
                    automatic=automatic, actor=SYSTEM_ACTOR if automatic else self.actor))
                self._verify_healthy_since = None
            why_not = self._open_rollback_gate(
                ev.read_as(request, ev.RollbackRequested).reason or "rollback",
                SYSTEM_ACTOR if automatic else self.actor)
            if why_not:
                target = ev.read_as(request, ev.RollbackRequested).target
                with contextlib.suppress(StoreError):
                    self._record(ev.RollbackProgress(target, clip(
                        f"Flagger's rollback gate was not opened: {why_not}")),
                        actor=SYSTEM_ACTOR)
            self._send_rollback(request)
            self._rollback_weight_step()
            return request

    @contextlib.contextmanager
    def _acting(self) -> Iterator[None]:
        """An action that journals a request and calls an adapter: it waits for the start-up's
        reconciliation, and while it runs the poll leaves its request alone (it is not an
        orphan: its outcome is on the way)."""
        self._settled.wait()
        with self._acting_lock:
            self._actions_running += 1
        try:
            yield
        finally:
            with self._acting_lock:
                self._actions_running -= 1

    def _send_rollback(self, request: Event) -> None:
        """The deployer call of the journalled rollback ``request``, under its idempotency key,
        and its outcome. A call that failed is looked up before it is called failed: a deploy
        system that has the operation received it (a timeout is no proof it did not)."""
        target = ev.read_as(request, ev.RollbackRequested).target or self._state.rollback_target
        key = idempotency_key(request)

        def progress(message: str) -> None:
            # A progress line the database cannot take must not interrupt the deployer's call.
            with contextlib.suppress(StoreError):
                self._record(ev.RollbackProgress(target, clip(message)), actor=SYSTEM_ACTOR)

        try:
            detail = self.adapters.deployer.rollback(target, progress, idempotency_key=key)
        except Exception as error:
            problem = _adapter_error(error)
            found = self._find_rollback(key)
            if found is not None and found.known:
                self._record(ev.RollbackStarted(
                    target, clip(f"the call failed ({problem}) but the deploy system has "
                                 f"{key}: {found.detail}")), actor=SYSTEM_ACTOR)
            else:
                self._record(ev.RollbackFailed(target, problem), actor=SYSTEM_ACTOR)
        else:
            self._record(ev.RollbackStarted(target, clip(str(detail))), actor=SYSTEM_ACTOR)

    def _find_rollback(self, key: str) -> RollbackOperation | None:
        """What the deploy system knows of the rollback ``key``; None when it cannot be asked
        or did not answer."""
        deployer = self.adapters.deployer
        if not isinstance(deployer, RollbackLookup):
            return None
        try:
            return deployer.find_rollback(key)
        except Exception:
            return None

    def _rollback_weight_step(self) -> None:
        """The canary must carry no traffic, whatever the deployer did — even when it failed:
        a failed rollback stops the guardrail loop judging the canary, so it must not serve.
        Journalled like any weight change when the canary had traffic (a restart finishes it)."""
        previous = self._state.canary_percent
        if previous == 0:
            try:
                self.adapters.traffic.set_weight(0)
            except Exception as error:
                self._record(ev.WeightFailed(0, -1, "rollback", _adapter_error(error)),
                             actor=SYSTEM_ACTOR)
            return
        request = self._record(ev.WeightRequested(from_percent=previous, to_percent=0,
                                                  stage_index=-1, action="rollback"),
                               actor=SYSTEM_ACTOR)
        self._set_weight(request, actor=SYSTEM_ACTOR)

    def _verify(self, now: datetime) -> None:
        """One step of rollback verification, run by each poll while a rollback is active."""
        state = self._state
        target = state.rollback_target
        hold = self.config.rollback.verification_hold_s
        if state.rollback_status == "requested":
            return  # the adapter call is still under way (or crashed: see reconcile)
        if state.rollback_completed_ts is None:
            requested = state.rollback_requested_ts or now
            try:
                live = self.adapters.deployer.current_version()
            except Exception as error:
                live, error_text = None, _adapter_error(error)
            else:
                error_text = ""
            if live == target:
                self._record(ev.RollbackCompleted(target, live), actor=SYSTEM_ACTOR)
                self._record(ev.VerificationStarted(target, hold), actor=SYSTEM_ACTOR)
                self._verify_healthy_since = None
                self._verify_waiting_for = ""
                return
            waited = (now - requested).total_seconds()
            if waited > self.config.rollback.verify_timeout_s:
                seen = f"still reports {live}" if live else f"could not be read ({error_text})"
                self._not_verified(target, f"after {format_duration(waited)} the deployer "
                                           f"{seen}, not {target}", [
                                               ev.Check(f"deployer reports {target}", False,
                                                        live or error_text)])
            return
        # The target is live. Now the weight must read 0 and the guardrails must pass on the
        # stable track, all of it continuously for the hold; metrics windows still hold the bad
        # minutes at first, so an unhealthy reading restarts the hold rather than failing at once.
        # Only the verification timeout turns "not yet" into NOT VERIFIED.
        checks = [ev.Check(f"deployer reports {target}", True, target)]
        problems: list[str] = []
        try:
            weight: int | None = self.adapters.traffic.current_weight()
        except Exception as error:
            weight = None
            problems.append(f"canary weight could not be read: {_adapter_error(error)}")
        checks.append(ev.Check("canary weight 0%", weight == 0,
                               "unreadable" if weight is None else f"{weight}%"))
        if weight not in (0, None):
            problems.append(f"canary weight reads {weight}%, not 0%")
        readings = evaluate_all(self.adapters.metrics, self.config.guardrails, state.service,
                                now, self._max_age_s(), mode="stable", executor=self._pool,
                                timeout_s=self._query_timeout_s(),
                                max_skew_s=self.config.monitoring.clock_skew_s)
        self.last_stable_readings = readings
        self._record_samples(now, readings, canary_live=False)
        self._record_stable_statuses(readings)
        problems += [f"{r.name} on the stable track: {r.detail}" for r in readings
                     if r.status != "healthy"]
        completed = state.rollback_completed_ts or now
        if problems:
            self._verify_healthy_since = None
            reason = "; ".join(problems)
            waited = (now - completed).total_seconds()
            if waited > self.config.rollback.verify_timeout_s:
                checks.append(ev.Check("guardrails healthy on the stable track", False, reason))
                self._not_verified(target, f"not healthy {format_duration(waited)} after "
                                           f"{target} went live: {reason}", checks)
            elif reason != self._verify_waiting_for:
                self._verify_waiting_for = reason
                self._record(ev.RollbackProgress(target, clip(f"verification waits: {reason}"),
                                                 phase="waiting"), actor=SYSTEM_ACTOR)
            return
        if self._verify_healthy_since is None:
            # A console restarted mid-hold goes on from the recorded start of the hold.
            self._verify_healthy_since = state.verify_holding_since or now
            self._verify_waiting_for = ""
            if state.verify_holding_since is None:
                self._record(ev.RollbackProgress(
                    target, f"stable track healthy: holding {format_duration(hold)} before "
                            "VERIFIED", phase="holding"), actor=SYSTEM_ACTOR)
        held = (now - self._verify_healthy_since).total_seconds()
        if held >= hold:
            checks.append(ev.Check(
                f"guardrails healthy on the stable track for {format_duration(hold)}", True,
                ", ".join(r.name for r in readings) or "no guardrails"))
            self._record(ev.RollbackVerified(target, checks), actor=SYSTEM_ACTOR)

    def _record_stable_statuses(self, readings: list[GuardrailReading]) -> None:
        """During verification the guardrails judge the stable track: record each guardrail's
        status there when it changes, so no pane keeps showing the gone canary's last breach."""
        for reading in readings:
            known = self._state.guardrails.get(reading.name)
            detail = f"stable track: {reading.detail}"
            # Only a change is an event (DESIGN.md): the figures move every poll.
            if (known is not None and known.status == reading.status
                    and known.detail.startswith("stable track: ")):
                continue
            payload = reading.to_payload()
            self._record(ev.GuardrailChanged(
                name=reading.name, status=reading.status, mode="stable",
                previous=known.status if known else "unknown", detail=detail, canary=None,
                baseline=payload["baseline"], limit=payload["limit"], breaches=0,
                consecutive=self.tracker.consecutive(reading.name),
                on_breach=self._on_breach(reading.name), sustained=False,
                rule=reading.rule or None, queries=dict(reading.queries) or None,
                samples=reading.why()["samples"]), actor=SYSTEM_ACTOR)

    def _not_verified(self, target: str, reason: str, checks: list[ev.Check]) -> None:
        self._record(ev.RollbackNotVerified(target, reason, checks), actor=SYSTEM_ACTOR)

    # --- the guardrail loop ----------------------------------------------------------------------

    def _max_age_s(self) -> float:
        # Data older than two poll intervals cannot be trusted (and never less than 10 s).
        return max(10.0, 2 * self.config.monitoring.poll_interval_s)

    def _query_timeout_s(self) -> float:
        return max(1.0, self.config.monitoring.poll_interval_s * 2)

    def poll(self) -> PollResult:
        """One guardrail cycle: evaluate, record samples and status changes, act on sustained
        breaches, advance rollback verification. Never raises for adapter failures."""
        result = PollResult()
        now = self.now()
        self.refresh()
        self._settle_orphans()
        state = self._state
        if state.closed:
            return result
        if state.rollback_active:
            self._verify(now)
            return result
        if self._watch_applies(now):
            self._watch(now, result)
            return result
        if not self.config.guardrails:
            return result
        mode_live = state.canary_percent > 0 and not state.rolled_back
        readings = evaluate_all(self.adapters.metrics, self.config.guardrails, state.service,
                                now, self._max_age_s(), mode="canary", executor=self._pool,
                                timeout_s=self._query_timeout_s(),
                                max_skew_s=self.config.monitoring.clock_skew_s)
        if mode_live:
            readings = self._compare(readings, now)
        result.readings = readings
        self.last_readings = readings
        self._record_samples(now, readings, canary_live=mode_live)
        if not mode_live:
            return result  # no canary traffic: nothing to judge, no status to record
        # A guardrail in its initial delay after the stage change is evaluated and graphed, not
        # judged: its status stays "not yet evaluated" (the fold set it) until the delay is over.
        delayed = {name for name, guard in state.guardrails.items() if guard.delay_left_s(now)}
        for name in delayed:
            self.tracker.restore(name, "unknown", self.tracker.breaches(name))
        judged = [r for r in readings if r.name not in delayed]
        for transition in self.tracker.update(judged):
            settings = self._settings(transition.name)
            change = transition.record(on_breach=self._on_breach(transition.name),
                                       shadow=settings is not None and settings.shadow)
            result.events.append(self._record(change, actor=SYSTEM_ACTOR))
        self._hold_without_data(judged)
        readings = judged
        for reading in readings:
            # A breach count that moved without a status change is still worth a line (2/3, ...);
            # judged against the state with this poll's transitions already folded in.
            known = self._state.guardrails.get(reading.name)
            count = self.tracker.breaches(reading.name)
            if (reading.status == "breach" and known is not None and known.status == "breach"
                    and known.breaches != count):
                settings = self._settings(reading.name)
                change = ev.GuardrailChanged(
                    name=reading.name, status="breach", previous="breach", breaches=count,
                    consecutive=self.tracker.consecutive(reading.name), detail=reading.detail,
                    canary=reading.canary, baseline=reading.baseline, limit=reading.limit,
                    on_breach=self._on_breach(reading.name), sustained=False,
                    shadow=True if settings is not None and settings.shadow else None,
                    no_data=True if reading.no_data else None,
                    comparison=reading.comparison.words if reading.comparison else None,
                    rule=reading.rule or None, queries=dict(reading.queries) or None,
                    samples=reading.why()["samples"])
                result.events.append(self._record(change, actor=SYSTEM_ACTOR))
        for event in list(result.events):
            change = ev.read_as(event, ev.GuardrailChanged)
            if change.sustained:
                self._act_on_breach(change.name, change.breaches)
        return result

    def _settings(self, name: str) -> GuardrailSettings | None:
        for guardrail in self.config.guardrails:
            if guardrail.name == name:
                return guardrail
        return None

    def _compare(self, readings: list[GuardrailReading], now: datetime) -> list[GuardrailReading]:
        """Attach each configured Mann-Whitney comparison: the canary's and the baseline's
        samples of this stage (from the end of its initial delay), with this poll's values."""
        state = self._state
        compared: list[GuardrailReading] = []
        for reading in readings:
            settings = self._settings(reading.name)
            if settings is None or settings.mann_whitney is None:
                compared.append(reading)
                continue
            canary, baseline = stage_samples(
                lambda series, since: self.store.samples(self.incident_id, series, since),
                state, reading.name, now)
            comparison = compare(settings, [*canary, reading.canary],
                                 [*baseline, reading.baseline])
            compared.append(with_comparison(reading, comparison))
        return compared

    def _hold_without_data(self, readings: list[GuardrailReading]) -> None:
        """``on_no_data = "hold"``: the canary is paused when a gating guardrail's data goes
        missing, once per gap (the commander resumes it with ``p``; data coming back does not)."""
        for reading in readings:
            settings = self._settings(reading.name)
            if settings is None or settings.on_no_data != "hold" or settings.shadow:
                continue
            if not reading.no_data:
                self._data_gaps.discard(reading.name)
                continue
            if reading.name in self._data_gaps:
                continue
            self._data_gaps.add(reading.name)
            reason = f"no data for {reading.name} (on_no_data = hold)"
            with contextlib.suppress(policy.Refused):  # already paused, at 100 %, closed…
                self._command(functools.partial(
                    commands.pause, self.store, self.incident_id, actor=SYSTEM_ACTOR,
                    reason=reason, ts=self.now()))

    def _record_samples(self, now: datetime, readings: list[GuardrailReading], *,
                        canary_live: bool) -> None:
        """One sample per series per poll, for the graphs and the PIR's impact figures. Without
        canary traffic the canary's sample is empty, so no graph keeps showing a gone canary's
        last figure. The evidence behind the value and the start of the warn band are samples
        too, so every console shows the same counter and band."""
        ts = now.timestamp()
        samples: list[tuple[str, float, float | None]] = []
        for reading in readings:
            samples.append((f"{reading.name}/baseline", ts, reading.baseline))
            samples.append((f"{reading.name}/canary", ts,
                            reading.canary if canary_live else None))
            if canary_live:
                samples.append((f"{reading.name}/limit", ts, reading.limit))
                if "evidence" in reading.queries:
                    samples.append((f"{reading.name}/evidence", ts, reading.evidence))
                if reading.warn_limit is not None:
                    samples.append((f"{reading.name}/warn", ts, reading.warn_limit))
        self.store.add_samples(self.incident_id, samples)

    def _on_breach(self, name: str) -> str:
        for guardrail in self.config.guardrails:
            if guardrail.name == name:
                return guardrail.on_breach
        return "hold"

    def _act_on_breach(self, name: str, breaches: int) -> None:
        settings = self._settings(name)
        if settings is not None and settings.shadow:
            return  # a shadow guardrail is recorded, never acted on
        action = self._on_breach(name)
        self._record(ev.GuardrailAction(name, action, breaches), actor=SYSTEM_ACTOR)
        if action == "rollback" and not self._state.rolled_back:
            if self._state.automatic_rollbacks:
                # An automatic rollback that failed, retried by the next breach, then the next:
                # a loop nobody decided. Once per incident; after that the commander decides.
                self._escalate(name, breaches, "an automatic rollback already ran in this "
                                               "incident (at most one): roll back by hand (R) "
                                               "or decide otherwise")
                return
            # Already rolling back or closed: the timeline shows why; nothing more to do.
            with contextlib.suppress(policy.Refused):
                self.request_rollback(f"sustained breach of {name} ({breaches} in a row)",
                                      automatic=True)

    # --- after a verified rollback: does it stay rolled back? -----------------------------------

    def _watch_applies(self, now: datetime) -> bool:
        """Whether this poll watches a verified rollback (starting the watch if it is due)."""
        state = self._state
        watch_s = self.config.rollback.watch_s
        if state.rollback_status != "verified" or watch_s <= 0 or state.watch_status == "held":
            return False
        if state.watch_status == "none":
            # from the verdict, also for a console opened after it: the window does not restart
            verified = state.rollback_finished_ts or now
            left = watch_s - (now - verified).total_seconds()
            if left <= 0:
                return False
            self._record(ev.RollbackWatchStarted(state.rollback_target, round(left, 3)),
                         actor=SYSTEM_ACTOR)
        return True

    def _watch(self, now: datetime, result: PollResult) -> None:
        """One poll of the watch: the live version against the target (a change either way is an
        event, and notified), the guardrails on the stable track (a status change is an event; a
        sustained breach of a rollback guardrail is escalated, never rolled back again), and the
        end of the window."""
        target = self._state.rollback_target
        try:
            live: str | None = self.adapters.deployer.current_version()
        except Exception:
            live = None  # unreadable is not a change; the next poll reads again
        if live is not None:
            live = clip(scrub(live))
            if live != target and self._state.watch_status != "reverted":
                self._record(ev.RollbackReverted(target, live), actor=SYSTEM_ACTOR)
            elif live == target and self._state.watch_status == "reverted":
                self._record(ev.RollbackRestored(target, live), actor=SYSTEM_ACTOR)
        readings = evaluate_all(self.adapters.metrics, self.config.guardrails,
                                self._state.service, now, self._max_age_s(), mode="stable",
                                executor=self._pool, timeout_s=self._query_timeout_s(),
                                max_skew_s=self.config.monitoring.clock_skew_s)
        result.readings = readings
        self.last_stable_readings = readings
        self._record_samples(now, readings, canary_live=False)
        for reading in readings:
            known = self._state.guardrails.get(reading.name)
            breaches = self._watch_breaches.get(reading.name, 0) + 1 \
                if reading.status == "breach" else 0
            self._watch_breaches[reading.name] = breaches
            if known is None or known.status != reading.status:
                payload = reading.to_payload()
                result.events.append(self._record(ev.GuardrailChanged(
                    name=reading.name, status=reading.status, mode="stable",
                    previous=known.status if known else "unknown",
                    detail=f"stable track: {reading.detail}", canary=None,
                    baseline=payload["baseline"], limit=payload["limit"], breaches=breaches,
                    consecutive=self.tracker.consecutive(reading.name),
                    on_breach=self._on_breach(reading.name), sustained=False,
                    rule=reading.rule or None, queries=dict(reading.queries) or None,
                    samples=reading.why()["samples"]),
                    actor=SYSTEM_ACTOR))
            if (self._on_breach(reading.name) == "rollback" and not self._state.escalation
                    and breaches == self.tracker.consecutive(reading.name)):
                self._escalate(reading.name, breaches,
                               f"the stable track breaches after the verified rollback to "
                               f"{target}: warroom does not roll back again by itself (at most "
                               f"one automatic rollback per incident)")
        state = self._state
        if (state.watch_status == "watching" and state.watch_until is not None
                and now >= state.watch_until):
            verified = state.rollback_finished_ts or now
            self._record(ev.RollbackWatchEnded(target, round((now - verified).total_seconds())),
                         actor=SYSTEM_ACTOR)

    def _escalate(self, name: str, breaches: int, reason: str) -> None:
        self._record(ev.Escalated(name, breaches, reason), actor=SYSTEM_ACTOR)

    # --- start-up --------------------------------------------------------------------------------

    def reconcile(self) -> list[Event]:
        """Settle every journalled request that has no outcome (a crash mid-action), before
        any other action runs (they wait for this), then make the record's canary weight the
        traffic system's. Never raises for adapter failures: what cannot be read is recorded."""
        self._settled.clear()
        try:
            with self._lock:
                self.refresh()
            events: list[Event] = []
            events += self._reconcile_preflight()
            events += self._reconcile_weight()
            events += self._reconcile_rollback()
            events += self._agree_weight()
            return events
        finally:
            self._settled.set()

    def _settle_orphans(self) -> None:
        """A request whose outcome could not be recorded (the database was locked past its busy
        timeout, full, or read-only at that moment) is settled by the next poll that can
        write, from what the adapters report — the same way a restart settles it — and the
        record's weight is made the traffic system's again. Never while an action runs."""
        with self._acting_lock:
            if self._actions_running:
                return
        latest = self._latest(Kind.ROLLBACK_REQUESTED, Kind.ROLLBACK_STARTED,
                              Kind.ROLLBACK_FAILED)
        rollback_orphan = latest is not None and latest.kind == Kind.ROLLBACK_REQUESTED
        if self._state.pending_weight is None and not rollback_orphan:
            return
        self._reconcile_weight()
        self._reconcile_rollback()
        self._agree_weight()
        with self._lock:
            self.refresh()

    def _latest(self, *kinds: str) -> Event | None:
        newest = self.store.events_tail(self.incident_id, frozenset(kinds), 1)
        return newest[0] if newest else None

    def _reconcile_preflight(self) -> list[Event]:
        """A preflight that never answered failed (it is read-only: the start-up runs a new
        one)."""
        latest = self._latest(Kind.PREFLIGHT_REQUESTED, Kind.PREFLIGHT_PASSED,
                              Kind.PREFLIGHT_FAILED)
        if latest is None or latest.kind != Kind.PREFLIGHT_REQUESTED:
            return []
        target = ev.read_as(latest, ev.PreflightRequested).target
        return [self._record(ev.PreflightFailed(
            target, [], "no answer before the console stopped; it is run again"),
            actor=SYSTEM_ACTOR)]

    def _reconcile_weight(self) -> list[Event]:
        """A traffic change with no outcome: applied or not, as the traffic system reports. A
        weight of 0 for a rollback or an abort that was not applied is sent again (setting a
        weight is idempotent, and 0 is where the canary must be)."""
        pending = self._state.pending_weight
        if pending is None:
            return []
        request = pending.request
        wanted = request.to_percent
        events: list[Event] = []
        try:
            reported = self.adapters.traffic.current_weight()
        except Exception as error:
            events.append(self._record(ev.WeightFailed(
                wanted, -1, request.action,
                f"unknown outcome after a restart; weight unreadable: {_adapter_error(error)}",
                request_id=pending.event_id), actor=SYSTEM_ACTOR))
            return events
        applied = reported == wanted
        events.append(self._record(ev.Reconciled(
            pending.kind, pending.event_id, "applied" if applied else "not applied",
            f"traffic reports {reported}%"), actor=SYSTEM_ACTOR))
        if applied:
            events.append(self._record(ev.WeightSet(
                reported, request.stage_index, request.action, reported=reported,
                request_id=pending.event_id), actor=SYSTEM_ACTOR))
            return events
        events.append(self._record(ev.WeightFailed(
            wanted, -1, request.action,
            f"not applied before the restart (traffic reports {reported}%)",
            request_id=pending.event_id), actor=SYSTEM_ACTOR))
        if wanted == 0 and request.action in ("rollback", "abort"):
            again = self._record(ev.WeightRequested(
                from_percent=self._state.canary_percent, to_percent=0, stage_index=-1,
                action=request.action, reason="sent again after a restart"), actor=SYSTEM_ACTOR)
            events.append(self._set_weight(again, actor=SYSTEM_ACTOR))
        return events

    def _reconcile_rollback(self) -> list[Event]:
        """A rollback with no outcome. The deploy system is asked first, by the request's
        idempotency key; without that, by what it reports (the target live and no canary
        traffic: it took effect). It is sent again — once, under the same key — only when the
        deploy system says it does not have it."""
        # By the events, not the status: a progress line from the deployer (which makes the
        # status "in progress") is not the call's outcome.
        request = self._latest(Kind.ROLLBACK_REQUESTED, Kind.ROLLBACK_STARTED,
                               Kind.ROLLBACK_FAILED)
        if request is None or request.kind != Kind.ROLLBACK_REQUESTED:
            return []
        target = ev.read_as(request, ev.RollbackRequested).target or self._state.rollback_target
        key = idempotency_key(request)
        events: list[Event] = []

        def reconciled(outcome: str, detail: str) -> None:
            events.append(self._record(ev.Reconciled(
                Kind.ROLLBACK_REQUESTED, request.id, outcome, clip(detail)), actor=SYSTEM_ACTOR))

        found = self._find_rollback(key)
        if found is not None:
            if found.known:
                reconciled("applied", f"the deploy system has {key} ({found.detail}): "
                                      "not sent again")
                events.append(self._record(ev.RollbackStarted(
                    target, clip(f"reconciled after a restart: {found.detail}")),
                    actor=SYSTEM_ACTOR))
                return events
            reconciled("re-issued", f"the deploy system has no operation {key}: sent now, "
                                    "once")
            self._send_rollback(request)
            return events
        try:
            live = self.adapters.deployer.current_version()
            weight = self.adapters.traffic.current_weight()
        except Exception as error:
            reconciled("unknown", f"the deploy system could not be read "
                                  f"({_adapter_error(error)}): not sent again")
            events.append(self._record(ev.RollbackFailed(
                target, "no outcome before the restart, and the deploy system could not be "
                        "read: not sent again; press R to roll back again"), actor=SYSTEM_ACTOR))
            return events
        if live == target and weight == 0:
            reconciled("applied", f"the deploy system reports {target} live and no canary "
                                  "traffic: not sent again")
            events.append(self._record(ev.RollbackStarted(
                target, f"reconciled after a restart: {target} live, canary at 0%"),
                actor=SYSTEM_ACTOR))
            return events
        reconciled("re-issued", f"the deploy system reports {live} live and the canary at "
                                f"{weight}%: sent again under the same key {key}")
        self._send_rollback(request)
        return events

    def _agree_weight(self) -> list[Event]:
        """End with the record's canary weight equal to the traffic system's: after a rollback
        the canary goes to 0 (its weight step, journalled); otherwise what the traffic system
        reports is recorded as the weight (nothing is sent)."""
        state = self._state
        try:
            reported = self.adapters.traffic.current_weight()
        except Exception:
            return []  # unreadable: the poll and the verification read it again
        if state.rolled_back and reported != 0:
            before = self.store.last_event_id(self.incident_id)
            self._rollback_weight_step()
            return self.store.events(self.incident_id, after_id=before)
        if reported == state.canary_percent:
            return []
        stage = next((i for i, s in enumerate(state.plan) if s.percent == reported), -1)
        return [
            self._record(ev.Reconciled(
                Kind.WEIGHT_SET, 0, "adopted",
                f"the traffic system reports {reported}% where the record said "
                f"{state.canary_percent}%"), actor=SYSTEM_ACTOR),
            self._record(ev.WeightSet(reported, stage, "reconciled", reported=reported),
                         actor=SYSTEM_ACTOR),
        ]
