"""The fold at its edges, and the relations it must keep for any sequence of events.

``fold`` is the only way state is derived, so these are the rules every pane and command relies
on: which approval counts, when a hold starts and ends, what a rollback's status is, and that
folding a prefix then the rest is folding the whole (the checkpoint's contract).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from console.model import Event, Kind
from console.state import IncidentState, fold, state_json

from .support import T0, Timeline, at_first_stage, declaration, declared, ready

# --- approvals -----------------------------------------------------------------------------------


def test_an_approval_counts_for_the_version_it_was_given_for() -> None:
    timeline = declared()
    timeline.approve("security-lead", "priya", version="v1.4.4")  # not the target
    state = timeline.state
    assert state.approvals[0].stale
    assert state.missing_roles == ["security-lead", "platform-lead"]
    timeline.approve("security-lead", "sam")
    assert timeline.state.current_approvals()["security-lead"].user == "sam"


def test_the_latest_approval_of_a_role_counts() -> None:
    timeline = declared()
    timeline.approve("platform-lead", "marco")
    timeline.approve("platform-lead", "dana")
    assert timeline.state.current_approvals()["platform-lead"].user == "dana"


def test_an_approval_without_a_version_is_for_the_target_at_that_moment() -> None:
    timeline = declared()
    timeline.add(Kind.APPROVED, {"role": "security-lead", "user": "priya"}, actor="priya")
    [approval] = timeline.state.approvals
    assert (approval.version, approval.stale, approval.kind) == ("v1.4.3", False, "direct")


def test_approvals_complete_exactly_when_every_required_role_counts() -> None:
    timeline = declared()
    assert not timeline.state.approvals_complete
    timeline.approve("security-lead", "priya")
    assert timeline.state.missing_roles == ["platform-lead"]
    assert not timeline.state.approvals_complete
    timeline.approve("platform-lead", "marco")
    assert timeline.state.approvals_complete and timeline.state.missing_roles == []


def test_a_new_target_makes_every_earlier_approval_stale() -> None:
    timeline = declared()
    timeline.approve_all()
    timeline.add(Kind.TARGET_CHANGED, {"from_version": "v1.4.3", "to_version": "v1.4.4"})
    state = timeline.state
    assert [a.stale for a in state.approvals] == [True, True]
    assert state.missing_roles == ["security-lead", "platform-lead"]
    assert state.preflight_ok is None
    assert state.preflight_detail == "the target changed: run the rollback preflight again"


def test_an_unknown_approval_kind_is_read_as_direct() -> None:
    timeline = declared()
    timeline.add(Kind.APPROVED, {"role": "security-lead", "user": "priya", "kind": "telepathy"})
    assert timeline.state.approvals[0].kind == "direct"


def test_a_waiver_is_recorded_as_the_commanders_and_counts() -> None:
    timeline = declared()
    timeline.add(Kind.WAIVED, {"role": "platform-lead", "reason": "unreachable for an hour"})
    [waiver] = timeline.state.approvals
    assert (waiver.kind, waiver.user, waiver.stale) == ("waived", "alice", False)
    assert timeline.state.missing_roles == ["security-lead"]


# --- stages and holds ----------------------------------------------------------------------------


def test_the_hold_starts_when_the_weight_is_set_not_when_it_was_asked_for() -> None:
    timeline = ready()
    timeline.add(Kind.WEIGHT_REQUESTED, {"to_percent": 1})
    timeline.wait(60)
    set_at = timeline.add(Kind.WEIGHT_SET, {"percent": 1, "stage_index": 0}).ts
    state = timeline.state
    assert state.stage_entered == set_at
    assert state.hold_remaining_s(set_at) == 300


def test_setting_the_same_weight_again_does_not_restart_the_hold() -> None:
    timeline = at_first_stage(held=False)
    entered = timeline.state.stage_entered
    timeline.add(Kind.WEIGHT_SET, {"percent": 1, "stage_index": 0}, after_s=120)
    state = timeline.state
    assert state.stage_entered == entered
    assert len(state.visits) == 1
    assert state.hold_remaining_s(timeline.now) == 180


def test_no_hold_at_zero_or_before_any_stage() -> None:
    state = ready().state
    assert state.current_stage is None and state.hold_remaining_s(T0) == 0
    timeline = at_first_stage(held=False)
    timeline.weight(0, -1, action="abort")
    state = timeline.state
    assert (state.canary_percent, state.stage_index, state.current_stage) == (0, -1, None)
    assert state.hold_remaining_s(timeline.now) == 0


def test_a_stage_index_beyond_the_plan_has_no_hold() -> None:
    timeline = ready()
    timeline.weight(1, 7)
    assert timeline.state.current_stage is None
    assert timeline.state.hold_remaining_s(timeline.now) == 0


def test_next_stage_is_the_first_above_the_weight() -> None:
    timeline = ready()
    assert timeline.state.next_stage is not None and timeline.state.next_stage.percent == 1
    timeline.weight(10, 1)
    assert timeline.state.next_stage is not None and timeline.state.next_stage.percent == 50
    timeline.weight(0, -1, action="abort")
    assert timeline.state.next_stage is not None and timeline.state.next_stage.percent == 1
    timeline.weight(100, 3)
    assert timeline.state.next_stage is None


def test_promoted_exactly_at_100_and_its_time_is_the_first() -> None:
    timeline = ready()
    timeline.weight(50, 2)
    assert not timeline.state.promoted and timeline.state.promoted_ts is None
    first = timeline.weight(100, 3)
    timeline.weight(0, -1, action="abort")
    timeline.weight(100, 3)
    state = timeline.state
    assert state.promoted and state.promoted_ts == first.ts
    assert state.checklist_active


def test_visits_record_each_stage_and_when_it_was_left() -> None:
    timeline = ready()
    one = timeline.weight(1, 0)
    ten = timeline.weight(10, 1)
    state = timeline.state
    assert [(v.percent, v.entered, v.left) for v in state.visits] == [
        (1, one.ts, ten.ts), (10, ten.ts, None)]
    assert state.visits[0].dwell_s(timeline.now) == (ten.ts - one.ts).total_seconds()
    closed = timeline.add(Kind.CLOSED, {"reason": "done"})
    assert timeline.state.visits[-1].left == closed.ts


def test_a_pending_request_ends_with_its_outcome_and_overrides_are_kept() -> None:
    timeline = ready()
    timeline.add(Kind.WEIGHT_REQUESTED, {"to_percent": 1, "action": "immediate",
                                         "overrides": [{"block": "hold", "reason": "exfil"}]})
    state = timeline.state
    assert state.pending_weight is not None and state.immediate_used
    assert [(o.block, o.reason, o.action) for o in state.overrides] == [
        ("hold", "exfil", "immediate")]
    timeline.add(Kind.WEIGHT_FAILED, {"percent": 1, "error": "503"})
    assert timeline.state.pending_weight is None
    assert timeline.state.last_weight_error == "503"


# --- guardrails ----------------------------------------------------------------------------------


def test_guardrails_start_unknown_with_their_declared_budget() -> None:
    state = declared().state
    assert {name: (g.status, g.consecutive, g.on_breach) for name, g in
            state.guardrails.items()} == {
        "error-ratio": ("unknown", 3, "rollback"), "p99-latency": ("unknown", 2, "hold")}


def test_a_status_change_keeps_the_declared_budget_and_an_unknown_status_is_unknown() -> None:
    timeline = at_first_stage()
    timeline.guardrail("error-ratio", "breach", breaches=2, canary="0.05", limit=0.02)
    g = timeline.state.guardrails["error-ratio"]
    assert (g.status, g.breaches, g.consecutive, g.on_breach, g.canary, g.limit, g.budget) == (
        "breach", 2, 3, "rollback", 0.05, 0.02, "breaches 2/3")
    timeline.guardrail("error-ratio", "exploded", canary="n/a")
    g = timeline.state.guardrails["error-ratio"]
    assert (g.status, g.canary) == ("unknown", None)


def test_a_verified_rollback_leaves_every_guardrail_healthy() -> None:
    timeline = at_first_stage()
    timeline.guardrail("error-ratio", "breach", breaches=3)
    timeline.add(Kind.ROLLBACK_REQUESTED, {"target": "v1.4.2", "automatic": True})
    timeline.add(Kind.ROLLBACK_VERIFIED, {"target": "v1.4.2"})
    state = timeline.state
    assert {g.status for g in state.guardrails.values()} == {"healthy"}
    assert state.guardrails["error-ratio"].consecutive == 3
    assert state.guardrails["error-ratio"].on_breach == "rollback"


# --- rollback ------------------------------------------------------------------------------------


def test_rollback_status_through_its_journal() -> None:
    timeline = ready()
    assert timeline.state.rollback_status == "preflight_passed"
    steps = [
        (Kind.ROLLBACK_REQUESTED, {"target": "v1.4.2", "automatic": True, "reason": "breach"},
         "requested"),
        (Kind.ROLLBACK_STARTED, {"detail": "op-1"}, "in_progress"),
        (Kind.ROLLBACK_PROGRESS, {"message": "2 of 3 pods"}, "in_progress"),
        (Kind.ROLLBACK_COMPLETED, {"version": "v1.4.2"}, "in_progress"),
        (Kind.VERIFICATION_STARTED, {"hold_s": 60}, "in_progress"),
        (Kind.ROLLBACK_NOT_VERIFIED, {"reason": "p99 still high"}, "not_verified"),
    ]
    for kind, payload, status in steps:
        timeline.add(kind, payload)
        state = timeline.state
        assert state.rollback_status == status
        assert state.rolled_back
        assert state.rollback_active == (status in ("requested", "in_progress"))
    assert state.rollback_automatic and state.rollback_detail == "p99 still high"


def test_a_preflight_after_the_rollback_started_does_not_change_its_status() -> None:
    timeline = at_first_stage()
    timeline.add(Kind.ROLLBACK_REQUESTED, {"target": "v1.4.2"})
    timeline.preflight(ok=False, detail="late")
    assert timeline.state.rollback_status == "requested"
    assert timeline.state.preflight_ok is True


def test_progress_after_a_verdict_does_not_reopen_the_rollback() -> None:
    timeline = at_first_stage()
    timeline.add(Kind.ROLLBACK_REQUESTED, {"target": "v1.4.2"})
    timeline.add(Kind.ROLLBACK_FAILED, {"error": "deployer 500"})
    timeline.add(Kind.ROLLBACK_PROGRESS, {"message": "late line"})
    assert timeline.state.rollback_status == "failed"


def test_not_rolled_back_before_a_request() -> None:
    for timeline in (declared(), ready()):
        assert not timeline.state.rolled_back and not timeline.state.rollback_active
    timeline = declared()
    timeline.preflight(ok=False)
    assert timeline.state.rollback_status == "preflight_failed"
    assert not timeline.state.rolled_back


# --- clocks and the post-emergency checklist -----------------------------------------------------


def test_deadline_and_time_left_at_the_priority_target() -> None:
    state = declared().state
    assert state.deadline == T0 + timedelta(hours=2)
    assert state.time_left_s(T0 + timedelta(hours=2)) == 0
    assert state.time_left_s(T0 + timedelta(hours=3)) == -3600
    assert IncidentState().time_left_s(T0) == 0 and IncidentState().deadline is None


def test_elapsed_stops_when_the_incident_closes() -> None:
    timeline = declared()
    timeline.add(Kind.CLOSED, {"reason": "done"}, after_s=600)
    assert timeline.state.elapsed_s(T0 + timedelta(days=1)) == 600
    assert IncidentState().elapsed_s(T0) == 0


def test_the_checklist_opens_after_100_or_a_verified_rollback_and_closes_item_by_item() -> None:
    timeline = ready()
    assert not timeline.state.checklist_active
    timeline.weight(100, 3)
    items = timeline.state.post_checklist()
    assert items == ["Verify resolution: the harm has stopped and the metrics confirm it",
                     "canary: Watch every metric at 100% for 15-30 minutes",
                     "Schedule the post-incident review"]
    for item in items:
        assert timeline.state.checklist_open[0] == item
        timeline.add(Kind.GATE_RECORDED, {"item": item, "result": "passed"})
    assert timeline.state.checklist_open == []
    rolled = at_first_stage()
    rolled.add(Kind.ROLLBACK_VERIFIED, {"target": "v1.4.2"})
    assert rolled.state.checklist_active


def test_an_unknown_event_kind_is_counted_and_otherwise_ignored() -> None:
    timeline = declared()
    before = state_json(timeline.state)
    timeline.add("from_a_newer_warroom", {"x": 1})
    after = state_json(timeline.state)
    assert after.pop("event_count") == before.pop("event_count") + 1
    assert after.pop("last_event_id") == 2
    assert after == {k: v for k, v in before.items() if k != "last_event_id"}


# --- relations for any sequence of events --------------------------------------------------------

text = st.text(max_size=12)
ROLES = st.sampled_from(["security-lead", "platform-lead", "executive"])
PAYLOADS: dict[str, st.SearchStrategy[dict[str, Any]]] = {
    Kind.APPROVED: st.fixed_dictionaries({
        "role": ROLES, "user": st.sampled_from(["priya", "marco", "sam"]),
        "kind": st.sampled_from(["direct", "relayed", "simulated"]),
        "version": st.sampled_from(["v1.4.3", "v1.4.4"])}),
    Kind.WAIVED: st.fixed_dictionaries({"role": ROLES, "reason": text,
                                        "version": st.sampled_from(["v1.4.3", "v1.4.4"])}),
    Kind.TARGET_CHANGED: st.fixed_dictionaries({"to_version": st.sampled_from(["v1.4.3",
                                                                               "v1.4.4"])}),
    Kind.NOTE: st.fixed_dictionaries({"text": text}),
    Kind.HANDOVER: st.fixed_dictionaries({"user": st.sampled_from(["alice", "priya", "bob"])}),
    Kind.CHECKLIST_ACKED: st.just({"items": []}),
    Kind.PREFLIGHT_PASSED: st.fixed_dictionaries({"target": st.just("v1.4.2")}),
    Kind.PREFLIGHT_FAILED: st.fixed_dictionaries({"target": st.just("v1.4.2"), "detail": text}),
    Kind.WEIGHT_REQUESTED: st.fixed_dictionaries({
        "to_percent": st.sampled_from([0, 1, 10, 50, 100]),
        "action": st.sampled_from(["advance", "abort", "immediate"]),
        "overrides": st.lists(st.fixed_dictionaries({"block": text, "reason": text}),
                              max_size=2)}),
    Kind.WEIGHT_SET: st.sampled_from([(0, -1), (1, 0), (10, 1), (50, 2), (100, 3)]).map(
        lambda stage: {"percent": stage[0], "stage_index": stage[1]}),
    Kind.WEIGHT_FAILED: st.fixed_dictionaries({"error": text}),
    Kind.GUARDRAIL_CHANGED: st.fixed_dictionaries({
        "name": st.sampled_from(["error-ratio", "p99-latency"]),
        "status": st.sampled_from(["healthy", "breach", "insufficient", "cant_evaluate"]),
        "breaches": st.integers(0, 4)}),
    Kind.ROLLBACK_REQUESTED: st.fixed_dictionaries({"target": st.just("v1.4.2"),
                                                    "automatic": st.booleans()}),
    Kind.ROLLBACK_STARTED: st.just({}),
    Kind.ROLLBACK_PROGRESS: st.fixed_dictionaries({"message": text}),
    Kind.ROLLBACK_COMPLETED: st.just({"version": "v1.4.2"}),
    Kind.VERIFICATION_STARTED: st.just({"hold_s": 60}),
    Kind.ROLLBACK_FAILED: st.fixed_dictionaries({"error": text}),
    Kind.ROLLBACK_VERIFIED: st.just({"checks": []}),
    Kind.ROLLBACK_NOT_VERIFIED: st.fixed_dictionaries({"reason": text}),
    Kind.GATE_RECORDED: st.fixed_dictionaries({"item": text, "result": st.just("passed")}),
    Kind.CLOSED: st.fixed_dictionaries({"reason": text}),
    Kind.PAUSED: st.fixed_dictionaries({"percent": st.just(1), "reason": text}),
    Kind.RESUMED: st.just({"percent": 1}),
    "from_a_newer_warroom": st.just({}),
}
EVENTS = st.lists(
    st.tuples(st.sampled_from(sorted(PAYLOADS)).flatmap(
        lambda kind: PAYLOADS[kind].map(lambda payload: (kind, payload))),
        st.integers(0, 400)),
    max_size=30,
)


def build(items: list[tuple[tuple[str, dict[str, Any]], int]]) -> list[Event]:
    timeline = Timeline()
    timeline.add(Kind.DECLARED, declaration(), after_s=0)
    for (kind, payload), after_s in items:
        timeline.add(kind, payload, after_s=after_s)
    return timeline.events


@settings(max_examples=120, deadline=None)
@given(EVENTS, st.data())
def test_folding_a_prefix_then_the_rest_is_folding_the_whole(
        items: list[tuple[tuple[str, dict[str, Any]], int]], data: st.DataObject) -> None:
    events = build(items)
    cut = data.draw(st.integers(0, len(events)), label="cut")
    resumed = fold(events[cut:], fold(events[:cut]))
    assert resumed == fold(events)
    assert state_json(resumed) == state_json(fold(events))


@settings(max_examples=120, deadline=None)
@given(EVENTS)
def test_approvals_complete_iff_every_required_role_has_an_approval_for_the_target(
        items: list[tuple[tuple[str, dict[str, Any]], int]]) -> None:
    state = fold(build(items))
    for_target = {a.role for a in state.approvals if a.version == state.to_version}
    # Approvals for the target count unless a later target change made them stale.
    counted = set(state.current_approvals())
    assert counted <= for_target
    assert state.approvals_complete == all(r in counted for r in state.required_roles)
    assert all(not a.stale for a in state.current_approvals().values())


@settings(max_examples=120, deadline=None)
@given(EVENTS, st.integers(0, 3600))
def test_the_hold_never_exceeds_the_stage_and_only_runs_at_a_stage(
        items: list[tuple[tuple[str, dict[str, Any]], int]], later_s: int) -> None:
    events = build(items)
    state = fold(events)
    now = events[-1].ts + timedelta(seconds=later_s)
    remaining = state.hold_remaining_s(now)
    stage = state.current_stage
    assert remaining >= 0
    if stage is None or state.canary_percent == 0:
        assert remaining == 0
    else:
        assert remaining <= stage.hold_s
        assert state.stage_entered is not None
        assert remaining == max(0.0, stage.hold_s - (now - state.stage_entered).total_seconds())
