"""After 100 %: the post-emergency checklist, and an incident that closes only when it is done or
its open items are waived with a reason (8 characters, as every typed reason)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from console.engine import ActionRefused
from console.model import Kind

from .engine_rig import Rig

ITEMS = [
    "Verify resolution: the harm has stopped and the metrics confirm it",
    "canary: Watch every metric at 100% for 15-30 minutes",
    "change-window: Confirm on-call coverage through the next business day",
    "Schedule the post-incident review",
]


@pytest.fixture
def promoted(tmp_path: Path) -> Iterator[Rig]:
    rig = Rig(tmp_path)
    rig.to_first_stage()
    rig.poll(0.001)
    rig.engine.immediate("active exfiltration: every minute leaks more PII")
    assert rig.engine.state.promoted
    yield rig
    rig.close()


def test_the_checklist_lists_each_bypassed_gate(promoted: Rig) -> None:
    assert promoted.engine.state.post_checklist() == ITEMS
    assert promoted.engine.state.checklist_open == ITEMS


@pytest.mark.parametrize("reason", ["", "1234567", "   1234567   "])
def test_open_items_refuse_a_close_without_a_reason_of_eight_characters(promoted: Rig,
                                                                        reason: str) -> None:
    with pytest.raises(ActionRefused) as refused:
        promoted.engine.close_incident(reason)
    assert str(refused.value) == (
        "4 checklist item(s) are open: close with a reason that waives them")
    assert not promoted.engine.state.closed


def test_a_reason_of_eight_characters_closes_and_waives_each_open_item(promoted: Rig) -> None:
    promoted.engine.record_gate(ITEMS[0], "passed")
    event = promoted.engine.close_incident("12345678")
    assert event.payload == {"reason": "12345678", "waived_items": ITEMS[1:]}
    assert promoted.engine.state.closed


def test_every_item_done_closes_without_a_reason(promoted: Rig) -> None:
    for item in ITEMS:
        promoted.engine.record_gate(item, "passed" if item != ITEMS[1] else "failed",
                                    "p99 rose at 100%" if item == ITEMS[1] else "")
    event = promoted.engine.close_incident("")
    assert event.payload == {"reason": "all items done", "waived_items": []}
    with pytest.raises(ActionRefused, match=r"^the incident is already closed$"):
        promoted.engine.close_incident("a second time, to be sure")


def test_a_waived_item_needs_a_reason_of_eight_characters(promoted: Rig) -> None:
    with pytest.raises(ActionRefused, match=r"^a waived item needs a specific reason$"):
        promoted.engine.record_gate(ITEMS[3], "waived", "1234567")
    promoted.engine.record_gate(ITEMS[3], "waived", "12345678")
    assert promoted.engine.state.gates[ITEMS[3]].result == "waived"


def test_the_checklist_opens_only_after_100_or_a_verified_rollback(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    try:
        rig.to_first_stage()
        with pytest.raises(ActionRefused, match="opens after 100% or a verified rollback"):
            rig.engine.record_gate(ITEMS[0], "passed")
        rig.engine.close_incident("")  # nothing shipped: nothing on the checklist to waive
        assert rig.events(Kind.CLOSED)[0].payload["waived_items"] == []
    finally:
        rig.close()


def test_an_incident_does_not_close_while_a_rollback_runs(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    try:
        rig.to_first_stage()
        rig.engine.request_rollback("drill")
        assert rig.engine.state.rollback_active  # verifying: the hold has not passed
        with pytest.raises(ActionRefused, match=r"^a rollback is still running$"):
            rig.engine.close_incident("abandon the change now")
    finally:
        rig.close()
