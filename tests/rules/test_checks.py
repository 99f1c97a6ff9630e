"""The other checks of the write path at their edges: a specific reason (8 characters after
trimming), a target change, a note, the compatibility checklist, the post-emergency items, closing,
and 100 % immediately."""

from __future__ import annotations

from typing import Any

import pytest

from console import policy
from console.model import Kind
from console.policy import Refused

from .support import Timeline, at_first_stage, declared, ready


def refusal(call: Any, *args: Any) -> str:
    with pytest.raises(Refused) as caught:
        call(*args)
    return str(caught.value)


def promoted() -> Timeline:
    timeline = at_first_stage()
    timeline.weight(100, 3, action="immediate")
    return timeline


@pytest.mark.parametrize(("text", "specific"), [
    ("12345678", True), ("  12345678  ", True), ("1234567", False), ("  1234567  ", False),
    ("", False), ("\t\n \u3000", False),
])
def test_a_specific_reason_is_eight_characters_after_trimming(text: str, specific: bool) -> None:
    assert policy.REASON_MIN_CHARS == 8
    assert policy.specific(text) is specific


# --- changing the target --------------------------------------------------------------------------


def test_the_commander_changes_the_target_before_the_canary_carries_traffic() -> None:
    policy.check_target_change(ready().state, "alice", "v1.4.4", "12345678")


def test_only_the_commander_changes_the_target() -> None:
    assert refusal(policy.check_target_change, ready().state, "priya", "v1.4.4",
                   "first fix incomplete") == "only the commander (alice) can change the target"


@pytest.mark.parametrize("version", ["", "v1 4", "-v1", "v" * 65])
def test_a_target_that_is_not_a_version_is_refused(version: str) -> None:
    assert refusal(policy.check_target_change, ready().state, "alice", version,
                   "first fix incomplete") == (
        f"--to-version {version!r}: expected a version like v1.4.4")


@pytest.mark.parametrize("version", ["v1.4.3", "v1.4.2"])
def test_the_current_target_or_the_stable_version_is_no_new_target(version: str) -> None:
    assert refusal(policy.check_target_change, ready().state, "alice", version,
                   "first fix incomplete") == (
        f"{version} is already the target or the stable version")


def test_a_canary_at_one_percent_must_be_aborted_before_the_target_changes() -> None:
    timeline = at_first_stage()
    assert refusal(policy.check_target_change, timeline.state, "alice", "v1.4.4",
                   "first fix incomplete") == (
        "the canary is at 1%: abort it before changing the target")
    timeline.weight(0, -1, action="abort")
    policy.check_target_change(timeline.state, "alice", "v1.4.4", "first fix incomplete")


def test_a_target_change_needs_a_reason_of_eight_characters() -> None:
    assert refusal(policy.check_target_change, ready().state, "alice", "v1.4.4",
                   "1234567") == "--reason must say why the target changes"


def test_a_closed_incident_keeps_its_target() -> None:
    timeline = ready()
    timeline.add(Kind.CLOSED, {"reason": "superseded"})
    assert refusal(policy.check_target_change, timeline.state, "alice", "v1.4.4",
                   "first fix incomplete") == "INC-1 is closed"


# --- notes and the compatibility checklist -------------------------------------------------------


@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_an_empty_note_is_refused(text: str) -> None:
    assert refusal(policy.check_note, text) == "the note is empty"


def test_a_one_character_note_is_a_note() -> None:
    policy.check_note("x")


def test_the_compatibility_checklist_is_acknowledged_once_and_not_when_closed() -> None:
    timeline = declared()
    policy.check_checklist_ack(timeline.state)
    timeline.add(Kind.CHECKLIST_ACKED, {"items": []})
    assert refusal(policy.check_checklist_ack, timeline.state) == (
        "the compatibility checklist is already acknowledged")
    closed = declared()
    closed.add(Kind.CLOSED, {"reason": "done"})
    assert refusal(policy.check_checklist_ack, closed.state) == "INC-1 is closed"


# --- the post-emergency checklist ----------------------------------------------------------------

VERIFY = "Verify resolution: the harm has stopped and the metrics confirm it"


def test_an_item_is_recorded_only_once_the_checklist_is_open() -> None:
    assert refusal(policy.check_gate, at_first_stage().state, VERIFY, "passed", "") == (
        "the post-emergency checklist opens after 100% or a verified rollback")
    policy.check_gate(promoted().state, VERIFY, "passed", "")
    rolled = at_first_stage()
    rolled.add(Kind.ROLLBACK_VERIFIED, {"target": "v1.4.2"})
    policy.check_gate(rolled.state, VERIFY, "failed", "")


def test_only_an_item_of_the_checklist_and_a_known_result() -> None:
    state = promoted().state
    assert refusal(policy.check_gate, state, "Verify resolution", "passed", "") == (
        "not an item of the checklist: Verify resolution")
    assert refusal(policy.check_gate, state, VERIFY, "skipped", "") == (
        "result must be passed, failed or waived, not skipped")


def test_a_waived_item_needs_a_reason_of_eight_characters() -> None:
    state = promoted().state
    assert refusal(policy.check_gate, state, VERIFY, "waived", " 1234567 ") == (
        "a waived item needs a specific reason")
    policy.check_gate(state, VERIFY, "waived", "12345678")


def test_no_item_is_recorded_after_closing() -> None:
    timeline = promoted()
    timeline.add(Kind.CLOSED, {"reason": "all gates scheduled for the morning"})
    assert refusal(policy.check_gate, timeline.state, VERIFY, "passed", "") == "INC-1 is closed"


# --- closing -------------------------------------------------------------------------------------


def test_open_items_need_a_reason_of_eight_characters_to_close() -> None:
    state = promoted().state
    assert refusal(policy.check_close, state, "1234567") == (
        "3 checklist item(s) are open: close with a reason that waives them")
    assert policy.check_close(state, "12345678") == state.checklist_open
    assert len(state.checklist_open) == 3


def test_a_done_checklist_closes_without_a_reason() -> None:
    timeline = promoted()
    for item in timeline.state.post_checklist():
        timeline.add(Kind.GATE_RECORDED, {"item": item, "result": "passed"})
    assert policy.check_close(timeline.state, "") == []


def test_before_the_checklist_opens_nothing_is_waived_by_closing() -> None:
    assert policy.check_close(at_first_stage().state, "") == []


def test_no_close_twice_nor_while_a_rollback_runs() -> None:
    timeline = at_first_stage()
    timeline.add(Kind.ROLLBACK_REQUESTED, {"target": "v1.4.2"})
    assert refusal(policy.check_close, timeline.state, "abandon the change") == (
        "a rollback is still running")
    timeline.add(Kind.ROLLBACK_FAILED, {"error": "deployer 500"})
    assert policy.check_close(timeline.state, "") == []
    timeline.add(Kind.CLOSED, {"reason": "rolled back by hand"})
    assert refusal(policy.check_close, timeline.state, "abandon the change") == (
        "the incident is already closed")


# --- 100 % immediately ---------------------------------------------------------------------------


def test_100_now_needs_a_reason_of_eight_characters() -> None:
    state = at_first_stage().state
    assert refusal(policy.check_immediate_reason, state, "1234567") == (
        "100% immediately needs a specific reason (seed 000: active exfiltration, an immediate "
        "regulatory deadline)")
    policy.check_immediate_reason(state, "12345678")


def test_100_now_at_100_is_refused() -> None:
    assert refusal(policy.check_immediate_reason, promoted().state,
                   "active exfiltration of PII") == "the canary is already at 100%"


# --- pausing the canary ---------------------------------------------------------------------------


def test_a_live_canary_may_be_paused_once_and_resumed_once() -> None:
    timeline = at_first_stage()
    policy.check_pause(timeline.state, True)
    assert refusal(policy.check_pause, timeline.state, False) == "the canary is not paused"
    timeline.add(Kind.PAUSED, {"percent": 1, "reason": "p99 drifting"}, actor="priya")
    assert refusal(policy.check_pause, timeline.state, True) == (
        "the canary is already paused (by priya)")
    policy.check_pause(timeline.state, False)


def test_there_is_nothing_to_pause_at_zero_after_a_rollback_or_at_100() -> None:
    assert refusal(policy.check_pause, ready().state, True) == "there is no canary traffic to pause"
    rolled = at_first_stage()
    rolled.add(Kind.ROLLBACK_REQUESTED, {"target": "v1.4.2"})
    assert refusal(policy.check_pause, rolled.state, True) == "there is no canary traffic to pause"
    assert refusal(policy.check_pause, promoted().state, True) == (
        "the canary is at 100%: nothing to hold")


def test_a_closed_incident_is_neither_paused_nor_resumed() -> None:
    timeline = at_first_stage()
    timeline.add(Kind.PAUSED, {"percent": 1})
    timeline.add(Kind.CLOSED, {"reason": "abandoned"})
    for pause in (True, False):
        assert refusal(policy.check_pause, timeline.state, pause) == "INC-1 is closed"
