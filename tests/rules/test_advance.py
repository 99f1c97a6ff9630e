"""What blocks advance (and 100% now, abort, rollback): each block alone, all together, in words.

Every block is pinned by its code, its words and whether a typed reason may override it; the hold
is pinned at its boundary (exactly elapsed, a millisecond short).
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from console import policy
from console.model import Kind
from console.policy import Block, Refused
from console.state import GuardrailState

from .support import Timeline, at_first_stage, codes, declared, ready


def blocks(timeline: Timeline) -> list[Block]:
    return policy.advance_blocks(timeline.state, timeline.now)


def only(timeline: Timeline) -> Block:
    [block] = blocks(timeline)
    return block


# --- nothing blocks a ready change ---------------------------------------------------------------


def test_nothing_blocks_the_first_stage_when_ready() -> None:
    assert codes(ready()) == []
    assert policy.immediate_blocks(ready().state, ready().now) == []


def test_nothing_blocks_the_next_stage_once_the_hold_elapsed_and_guardrails_are_healthy() -> None:
    assert codes(at_first_stage()) == []


# --- each block alone ----------------------------------------------------------------------------


def test_approvals_alone() -> None:
    timeline = declared()
    timeline.approve("security-lead", "priya")
    timeline.preflight()
    assert only(timeline) == Block("approvals", "approvals missing: platform-lead")


def test_approvals_missing_are_listed_in_the_required_order() -> None:
    timeline = declared()
    timeline.preflight()
    assert only(timeline).words == "approvals missing: security-lead, platform-lead"


def test_stale_approvals_say_they_were_given_for_an_earlier_version() -> None:
    timeline = ready()
    timeline.add(Kind.TARGET_CHANGED, {"from_version": "v1.4.3", "to_version": "v1.4.4"})
    timeline.approve("platform-lead", "marco", version="v1.4.4")
    timeline.preflight()
    assert only(timeline) == Block(
        "approvals", "approvals missing: security-lead (stale: given for an earlier version)")


def test_a_waived_role_does_not_block() -> None:
    timeline = declared()
    timeline.approve("security-lead", "priya")
    timeline.add(Kind.WAIVED, {"role": "platform-lead", "reason": "unreachable for an hour",
                               "version": "v1.4.3"})
    timeline.preflight()
    assert codes(timeline) == []


def test_preflight_not_run_alone() -> None:
    timeline = declared()
    timeline.approve_all()
    assert only(timeline) == Block("preflight", "rollback preflight has not run yet")
    timeline.add(Kind.CHECKLIST_ACKED, {"items": []})  # acknowledged, still not run
    assert only(timeline).words == "rollback preflight has not run yet"


def test_preflight_failed_alone_says_why() -> None:
    timeline = declared()
    timeline.approve_all()
    timeline.preflight(ok=False, detail="v1.4.2 image is gone")
    assert only(timeline) == Block("preflight", "rollback preflight failed: v1.4.2 image is gone")


def test_preflight_failed_without_detail_points_at_the_pane() -> None:
    timeline = declared()
    timeline.approve_all()
    timeline.preflight(ok=False, detail="")
    assert only(timeline).words == "rollback preflight failed: see the rollback pane"


def test_checklist_not_acknowledged_alone() -> None:
    timeline = declared()
    timeline.approve_all()
    timeline.preflight(acknowledge=False)
    assert only(timeline) == Block("preflight",
                                   "rollback compatibility checklist not acknowledged")


def test_a_new_target_needs_the_preflight_again() -> None:
    timeline = ready()
    timeline.add(Kind.TARGET_CHANGED, {"to_version": "v1.4.4"})
    timeline.approve("security-lead", "sam", version="v1.4.4")
    timeline.approve("platform-lead", "marco", version="v1.4.4")
    assert only(timeline) == Block("preflight", "rollback preflight has not run yet")


def test_hold_alone_with_the_time_left_in_words() -> None:
    timeline = at_first_stage(held=False)
    assert only(timeline) == Block("hold", "hold at 1%: 5m 00s left of 5m 00s")
    timeline.wait(299)
    assert only(timeline).words == "hold at 1%: 1s left of 5m 00s"


def test_hold_exactly_elapsed_does_not_block_and_a_millisecond_short_does() -> None:
    timeline = at_first_stage(held=False)
    entered = timeline.state.stage_entered
    assert entered is not None
    state = timeline.state
    short = entered + timedelta(seconds=300) - timedelta(milliseconds=1)
    assert [b.code for b in policy.advance_blocks(state, short)] == ["hold"]
    assert state.hold_remaining_s(short) == pytest.approx(0.001)
    exactly = entered + timedelta(seconds=300)
    assert state.hold_remaining_s(exactly) == 0
    assert policy.advance_blocks(state, exactly) == []
    assert state.hold_remaining_s(exactly + timedelta(hours=1)) == 0


def test_the_hold_is_the_current_stages() -> None:
    timeline = at_first_stage()
    timeline.weight(10, 1)
    timeline.all_healthy()
    assert only(timeline).words == "hold at 10%: 10m 00s left of 10m 00s"
    timeline.wait(600)
    assert codes(timeline) == []


def test_guardrails_alone() -> None:
    timeline = at_first_stage()
    timeline.guardrail("error-ratio", "breach")
    assert only(timeline) == Block("guardrails", "guardrails not healthy: error-ratio BREACH")


@pytest.mark.parametrize(("status", "words"), [
    ("breach", "BREACH"),
    ("cant_evaluate", "can't evaluate"),
    ("insufficient", "insufficient evidence"),
    ("unknown", "not yet evaluated"),
])
def test_every_status_but_healthy_blocks(status: str, words: str) -> None:
    timeline = at_first_stage()
    timeline.guardrail("p99-latency", status)
    assert only(timeline).words == f"guardrails not healthy: p99-latency {words}"


def test_guardrails_not_yet_evaluated_at_a_stage_block() -> None:
    timeline = ready()
    timeline.weight(1, 0)
    timeline.wait(300)
    assert only(timeline).words == (
        "guardrails not healthy: error-ratio not yet evaluated; p99-latency not yet evaluated")


def test_a_status_with_no_words_is_shown_as_it_is() -> None:
    state = at_first_stage().state
    state.guardrails["error-ratio"] = GuardrailState("error-ratio", "mystery")  # type: ignore[arg-type]
    [block] = policy.advance_blocks(state, at_first_stage().now)
    assert block.words == "guardrails not healthy: error-ratio mystery"


def test_guardrails_do_not_block_before_the_first_stage() -> None:
    timeline = ready()
    timeline.guardrail("error-ratio", "breach")
    timeline.guardrail("p99-latency", "cant_evaluate")
    assert codes(timeline) == []


def test_guardrails_do_not_block_after_an_abort_to_zero() -> None:
    timeline = at_first_stage()
    timeline.guardrail("error-ratio", "breach")
    timeline.weight(0, -1, action="abort")
    assert codes(timeline) == []


def test_in_flight_alone_cannot_be_overridden() -> None:
    timeline = at_first_stage()
    timeline.add(Kind.WEIGHT_REQUESTED, {"to_percent": 10, "action": "advance"})
    assert only(timeline) == Block(
        "in-flight", "a traffic change is in flight; wait for its result", overridable=False)
    timeline.add(Kind.WEIGHT_FAILED, {"percent": 10, "error": "timeout"})
    assert codes(timeline) == []


def test_paused_alone_cannot_be_overridden_and_resuming_lifts_it() -> None:
    timeline = at_first_stage()
    timeline.add(Kind.PAUSED, {"percent": 1, "reason": "p99 drifting"}, actor="alice")
    assert only(timeline) == Block(
        "paused", "paused by alice: p99 drifting — press p to resume", overridable=False)
    timeline.add(Kind.RESUMED, {"percent": 1})
    assert codes(timeline) == []
    timeline.add(Kind.PAUSED, {"percent": 1}, actor="bob")
    assert only(timeline).words == "paused by bob — press p to resume"


def test_closed_alone_cannot_be_overridden() -> None:
    timeline = at_first_stage()
    timeline.add(Kind.CLOSED, {"reason": "superseded"})
    assert only(timeline) == Block("closed", "the incident is closed", overridable=False)


@pytest.mark.parametrize("kind", [Kind.ROLLBACK_REQUESTED, Kind.ROLLBACK_STARTED,
                                  Kind.ROLLBACK_VERIFIED, Kind.ROLLBACK_NOT_VERIFIED,
                                  Kind.ROLLBACK_FAILED])
def test_rolled_back_alone_cannot_be_overridden(kind: str) -> None:
    timeline = ready()
    timeline.add(kind, {"target": "v1.4.2"})
    status = {"in_progress": "in progress", "not_verified": "not verified"}.get(
        timeline.state.rollback_status, timeline.state.rollback_status)
    assert only(timeline) == Block(
        "rolled-back", f"a rollback was requested ({status}): this change can no longer advance",
        overridable=False)


def test_final_alone_cannot_be_overridden() -> None:
    timeline = at_first_stage()
    timeline.weight(100, 3, action="immediate")
    timeline.all_healthy()
    assert only(timeline) == Block("final", "the canary is at 100%: nothing to advance",
                                   overridable=False)


# --- all together, in their order ----------------------------------------------------------------


def all_blocked() -> Timeline:
    """At 1% inside its hold, paused, breaching, approvals missing, preflight not run, a request
    in flight, a rollback requested, and closed."""
    timeline = declared()
    timeline.weight(1, 0)
    timeline.add(Kind.PAUSED, {"percent": 1, "reason": "p99 drifting"})
    timeline.guardrail("error-ratio", "breach")
    timeline.add(Kind.ROLLBACK_REQUESTED, {"target": "v1.4.2"})
    timeline.add(Kind.WEIGHT_REQUESTED, {"to_percent": 0, "action": "rollback"})
    timeline.add(Kind.CLOSED, {"reason": "abandoned"})
    return timeline


def test_every_block_at_once_in_order() -> None:
    assert codes(all_blocked()) == ["closed", "rolled-back", "in-flight", "paused", "approvals",
                                    "preflight", "hold", "guardrails"]


def test_final_with_the_others() -> None:
    timeline = declared()
    timeline.weight(100, 3, action="immediate")
    timeline.guardrail("error-ratio", "breach")
    assert codes(timeline) == ["final", "approvals", "preflight", "guardrails"]


def test_immediate_skips_the_hold_and_nothing_else() -> None:
    timeline = all_blocked()
    assert [b.code for b in policy.immediate_blocks(timeline.state, timeline.now)] == [
        "closed", "rolled-back", "in-flight", "paused", "approvals", "preflight", "guardrails"]
    held = at_first_stage(held=False)
    assert codes(held) == ["hold"]
    assert policy.immediate_blocks(held.state, held.now) == []


# --- overrides: a typed reason of 8 characters, never for what cannot be overridden --------------


def test_overrides_need_a_reason_of_eight_characters() -> None:
    timeline = declared()
    found = blocks(timeline)
    records = policy.check_overrides(found, {"approvals": "12345678",
                                             "preflight": "  manual check done  "})
    assert [(r.block, r.words, r.reason) for r in records] == [
        ("approvals", "approvals missing: security-lead, platform-lead", "12345678"),
        ("preflight", "rollback preflight has not run yet", "manual check done"),
    ]


@pytest.mark.parametrize("reason", ["1234567", "   1234567   ", ""])
def test_an_override_one_character_short_is_refused(reason: str) -> None:
    found = blocks(declared())
    with pytest.raises(Refused) as caught:
        policy.check_overrides(found, {"approvals": reason, "preflight": "manual check done"})
    assert str(caught.value) == (
        "blocked: approvals missing: security-lead, platform-lead (override with a specific "
        "reason)")


def test_a_block_without_an_override_is_refused() -> None:
    found = blocks(declared())
    with pytest.raises(Refused, match=r"^blocked: rollback preflight has not run yet"):
        policy.check_overrides(found, {"approvals": "exec said go on the bridge"})


def test_a_block_that_cannot_be_overridden_refuses_any_reason() -> None:
    found = blocks(all_blocked())
    with pytest.raises(Refused) as caught:
        policy.check_overrides(found, {b.code: "a long enough reason" for b in found})
    assert str(caught.value) == "cannot advance: the incident is closed"


def test_no_blocks_need_no_overrides() -> None:
    assert policy.check_overrides([], {"approvals": "not needed at all"}) == []


# --- abort ---------------------------------------------------------------------------------------


def test_abort_is_refused_at_zero() -> None:
    assert policy.abort_blocks(ready().state) == [
        Block("zero", "the canary weight is already 0%", overridable=False)]


def test_abort_is_allowed_at_a_stage_even_after_a_rollback_was_requested() -> None:
    timeline = at_first_stage()
    assert policy.abort_blocks(timeline.state) == []
    timeline.add(Kind.ROLLBACK_REQUESTED, {"target": "v1.4.2"})
    assert policy.abort_blocks(timeline.state) == []


def test_abort_is_refused_when_closed_or_in_flight() -> None:
    timeline = at_first_stage()
    timeline.add(Kind.WEIGHT_REQUESTED, {"to_percent": 10})
    timeline.add(Kind.CLOSED, {"reason": "done"})
    assert [b.code for b in policy.abort_blocks(timeline.state)] == ["closed", "in-flight"]


# --- rollback ------------------------------------------------------------------------------------


def test_rollback_is_allowed_from_declaration_on() -> None:
    assert policy.rollback_blocks(declared().state) == []


@pytest.mark.parametrize("kinds", [[Kind.ROLLBACK_REQUESTED],
                                   [Kind.ROLLBACK_REQUESTED, Kind.ROLLBACK_STARTED]])
def test_a_running_rollback_refuses_another(kinds: list[str]) -> None:
    timeline = at_first_stage()
    for kind in kinds:
        timeline.add(kind, {"target": "v1.4.2"})
    assert policy.rollback_blocks(timeline.state) == [
        Block("active", "a rollback is already running", overridable=False)]


def test_a_verified_rollback_refuses_another() -> None:
    timeline = at_first_stage()
    timeline.add(Kind.ROLLBACK_REQUESTED, {"target": "v1.4.2"})
    timeline.add(Kind.ROLLBACK_VERIFIED, {"target": "v1.4.2"})
    assert policy.rollback_blocks(timeline.state) == [
        Block("verified", "the rollback is already verified", overridable=False)]


@pytest.mark.parametrize("verdict", [Kind.ROLLBACK_NOT_VERIFIED, Kind.ROLLBACK_FAILED])
def test_a_rollback_that_failed_or_was_not_verified_may_be_tried_again(verdict: str) -> None:
    timeline = at_first_stage()
    timeline.add(Kind.ROLLBACK_REQUESTED, {"target": "v1.4.2"})
    timeline.add(verdict, {"target": "v1.4.2", "reason": "still v1.4.3"})
    assert policy.rollback_blocks(timeline.state) == []


def test_rollback_needs_a_target_and_an_open_incident() -> None:
    timeline = declared(from_version="v1.4.2")
    timeline.events[0].payload["from_version"] = ""
    timeline.add(Kind.CLOSED, {"reason": "done"})
    assert policy.rollback_blocks(timeline.state) == [
        Block("closed", "the incident is closed", overridable=False),
        Block("target", "no rollback target (from-version) is known", overridable=False),
    ]
