"""The fold and the rules: pure, deterministic, and stated in words."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from console import policy
from console.config import Config
from console.model import Event, Kind, describe
from console.state import fold, state_json

T0 = datetime(2026, 11, 22, 22, 0, tzinfo=UTC)
CONFIG = Config.model_validate({"roster": {"security-lead": ["priya"],
                                           "platform-lead": ["marco", "priya"]}})


def declared(**overrides: Any) -> dict[str, Any]:
    payload = policy.declaration(
        CONFIG, title="PII exposed", priority="P0", category="security", service="redaction-api",
        from_version="v1.4.2", to_version="v1.4.3",
        bypass_specs=["canary=harm is ongoing; canary cannot match"], affects=[],
        commander="alice").to_payload()
    payload.update(overrides)
    return payload


class Timeline:
    """Builds events the way the store would, with a controllable clock."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.now = T0

    def add(self, kind: str, payload: dict[str, Any], actor: str = "alice",
            after_s: float = 1.0) -> Event:
        self.now += timedelta(seconds=after_s)
        event = Event(len(self.events) + 1, 1, self.now, kind, actor, payload)
        self.events.append(event)
        return event

    @property
    def state(self) -> Any:
        return fold(self.events)


def started() -> Timeline:
    timeline = Timeline()
    timeline.add(Kind.DECLARED, declared(), after_s=0)
    return timeline


def approve_all(timeline: Timeline) -> None:
    timeline.add(Kind.APPROVED, {"role": "security-lead", "user": "priya", "kind": "direct",
                                 "version": "v1.4.3"}, actor="priya")
    timeline.add(Kind.APPROVED, {"role": "platform-lead", "user": "marco", "kind": "relayed",
                                 "version": "v1.4.3", "evidence": "bridge call"})


def preflight(timeline: Timeline) -> None:
    timeline.add(Kind.PREFLIGHT_PASSED, {"target": "v1.4.2", "checks": [], "detail": "ok"})
    timeline.add(Kind.CHECKLIST_ACKED, {"items": ["x"]})


def codes(timeline: Timeline) -> list[str]:
    return [b.code for b in policy.advance_blocks(timeline.state, timeline.now)]


def test_declaration_folds_into_state() -> None:
    state = started().state
    assert state.id_text == "INC-1"
    assert state.required_roles == ["security-lead", "platform-lead"]
    assert [s.percent for s in state.plan] == [1, 10, 50, 100]
    assert state.bypasses[0].compensation.startswith("Compress canary")
    assert state.rollback_target == "v1.4.2"
    assert state.deadline == T0 + timedelta(hours=2)
    assert state.time_left_s(T0 + timedelta(minutes=30)) == 90 * 60


def test_advance_is_blocked_in_words_until_ready() -> None:
    timeline = started()
    blocks = policy.advance_blocks(timeline.state, timeline.now)
    words = " | ".join(b.words for b in blocks)
    assert "approvals missing: security-lead, platform-lead" in words
    assert "rollback preflight has not run yet" in words
    approve_all(timeline)
    preflight(timeline)
    assert codes(timeline) == []


def test_hold_and_guardrails_block_after_the_first_stage() -> None:
    timeline = started()
    approve_all(timeline)
    preflight(timeline)
    timeline.add(Kind.WEIGHT_SET, {"percent": 1, "stage_index": 0, "action": "advance"})
    blocks = policy.advance_blocks(timeline.state, timeline.now)
    assert [b.code for b in blocks] == ["hold"]
    assert blocks[0].words == "hold at 1%: 5m 00s left of 5m 00s"
    timeline.now += timedelta(minutes=5)
    assert codes(timeline) == []
    timeline.add(Kind.GUARDRAIL_CHANGED, {"name": "error-ratio", "status": "cant_evaluate",
                                          "detail": "query failed"})
    blocks = policy.advance_blocks(timeline.state, timeline.now)
    assert [b.code for b in blocks] == ["guardrails"]
    assert "error-ratio can't evaluate" in blocks[0].words


def test_overrides_need_reasons_and_some_blocks_cannot_be_overridden() -> None:
    timeline = started()
    blocks = policy.advance_blocks(timeline.state, timeline.now)
    with pytest.raises(policy.Refused, match="override with a specific reason"):
        policy.check_overrides(blocks, {"approvals": "because"})
    records = policy.check_overrides(blocks, {"approvals": "exec said go on the bridge",
                                              "preflight": "preflight API down, manual check"})
    assert [r.block for r in records] == ["approvals", "preflight"]
    timeline.add(Kind.WEIGHT_REQUESTED, {"to_percent": 1, "action": "advance"})
    blocks = policy.advance_blocks(timeline.state, timeline.now)
    with pytest.raises(policy.Refused, match="in flight"):
        policy.check_overrides(blocks, {b.code: "a long enough reason" for b in blocks})


def test_immediate_skips_holds_only() -> None:
    timeline = started()
    approve_all(timeline)
    preflight(timeline)
    timeline.add(Kind.WEIGHT_SET, {"percent": 1, "stage_index": 0})
    assert codes(timeline) == ["hold"]
    assert policy.immediate_blocks(timeline.state, timeline.now) == []


def test_changing_the_target_makes_approvals_stale() -> None:
    timeline = started()
    approve_all(timeline)
    assert timeline.state.approvals_complete
    timeline.add(Kind.TARGET_CHANGED, {"from_version": "v1.4.3", "to_version": "v1.4.4",
                                       "reason": "first fix incomplete"})
    state = timeline.state
    assert all(a.stale for a in state.approvals)
    assert state.missing_roles == ["security-lead", "platform-lead"]
    blocks = policy.advance_blocks(state, timeline.now)
    assert "security-lead (stale: given for an earlier version)" in blocks[0].words
    assert state_json(state)["approvals"][0]["stale"] is True


def test_direct_approval_rules() -> None:
    state = started().state
    with pytest.raises(policy.Refused, match="commander of INC-1 and cannot approve"):
        policy.check_direct_approval(state, CONFIG, "security-lead", "alice")
    with pytest.raises(policy.Refused, match="not on the roster for security-lead"):
        policy.check_direct_approval(state, CONFIG, "security-lead", "marco")
    with pytest.raises(policy.Refused, match="needs no 'executive' approval"):
        policy.check_direct_approval(state, CONFIG, "executive", "priya")
    policy.check_direct_approval(state, CONFIG, "security-lead", "priya")
    timeline = started()
    timeline.add(Kind.APPROVED, {"role": "security-lead", "user": "priya", "kind": "direct",
                                 "version": "v1.4.3"}, actor="priya")
    with pytest.raises(policy.Refused, match="second role needs a second person"):
        policy.check_direct_approval(timeline.state, CONFIG, "platform-lead", "priya")
    with pytest.raises(policy.Refused, match="already approved"):
        policy.check_direct_approval(timeline.state, CONFIG, "security-lead", "priya")


def test_relayed_and_waived_rules() -> None:
    state = started().state
    with pytest.raises(policy.Refused, match="only the commander"):
        policy.check_relayed_approval(state, CONFIG, "platform-lead", "bob", "marco", "call 22:14")
    with pytest.raises(policy.Refused, match="evidence"):
        policy.check_relayed_approval(state, CONFIG, "platform-lead", "alice", "marco", "ok")
    with pytest.raises(policy.Refused, match="not on the roster"):
        policy.check_relayed_approval(state, CONFIG, "platform-lead", "alice", "eve",
                                      "bridge call 22:14")
    policy.check_relayed_approval(state, CONFIG, "platform-lead", "alice", "marco",
                                  "bridge call 22:14")
    with pytest.raises(policy.Refused, match="--reason"):
        policy.check_waiver(state, "platform-lead", "alice", "meh")
    policy.check_waiver(state, "platform-lead", "alice", "platform lead unreachable, P0 exfil")


def test_waiver_counts_but_stays_a_waiver() -> None:
    timeline = started()
    timeline.add(Kind.WAIVED, {"role": "platform-lead", "reason": "unreachable for 40 minutes",
                               "version": "v1.4.3"})
    state = timeline.state
    assert state.missing_roles == ["security-lead"]
    assert state.current_approvals()["platform-lead"].kind == "waived"
    assert "WAIVED" in describe(timeline.events[-1])


def test_declaration_refusals() -> None:
    def declare(**kw: Any) -> None:
        args: dict[str, Any] = dict(title="t", priority="P0", category="security", service="svc",
                                    from_version="v1", to_version="v2", bypass_specs=[],
                                    affects=[], commander="alice")
        args.update(kw)
        policy.declaration(CONFIG, **args)

    with pytest.raises(policy.Refused, match="unknown element 'coffee'"):
        declare(bypass_specs=["coffee=because we are tired"])
    with pytest.raises(policy.Refused, match="specific reason"):
        declare(bypass_specs=["canary=now"])
    with pytest.raises(policy.Refused, match="expected ELEMENT=REASON"):
        declare(bypass_specs=["canary"])
    with pytest.raises(policy.Refused, match="given twice"):
        declare(bypass_specs=["canary=harm is ongoing", "canary=harm is ongoing still"])
    with pytest.raises(policy.Refused, match="the same"):
        declare(to_version="v1")
    with pytest.raises(policy.Refused, match="--priority"):
        declare(priority="P7")
    config = Config.model_validate({"scenarios": {"mission_critical": ["login"]}})
    with pytest.raises(policy.Refused, match="not a configured mission-critical"):
        policy.declaration(config, title="t", priority="P0", category="security", service="svc",
                           from_version="v1", to_version="v2", bypass_specs=[],
                           affects=["billing"], commander="alice")
    payload = policy.declaration(config, title="t", priority="P0", category="security",
                                 service="svc", from_version="v1", to_version="v2",
                                 bypass_specs=["eval-gate=eval takes 3h::run eval at 09:00"],
                                 affects=["login"], commander="alice")
    assert payload.bypasses[0].compensation == "run eval at 09:00"
    assert "prefer a rollback" in payload.advice


def test_emergency_rate_warning() -> None:
    assert policy.emergency_rate_warning(CONFIG, 1) is None
    warning = policy.emergency_rate_warning(CONFIG, 3)
    assert warning is not None and "bar may be too low" in warning.message


def test_rollback_status_follows_the_journal() -> None:
    timeline = started()
    preflight(timeline)
    assert timeline.state.rollback_status == "preflight_passed"
    timeline.add(Kind.ROLLBACK_REQUESTED, {"target": "v1.4.2", "weight": 10, "automatic": True})
    assert timeline.state.rollback_status == "requested"
    assert codes(timeline)[0] == "rolled-back"
    timeline.add(Kind.ROLLBACK_STARTED, {"target": "v1.4.2", "detail": "op-1"})
    timeline.add(Kind.ROLLBACK_COMPLETED, {"target": "v1.4.2", "version": "v1.4.2"})
    assert timeline.state.rollback_status == "in_progress"
    timeline.add(Kind.ROLLBACK_NOT_VERIFIED, {"target": "v1.4.2", "reason": "still v1.4.3"})
    state = timeline.state
    assert state.rollback_status == "not_verified" and state.rollback_detail == "still v1.4.3"
    assert state_json(state)["rollback_status"] == "not_verified"


# --- property: any prefix of any valid sequence folds -------------------------------------------

text = st.text(max_size=30)
payloads: dict[str, st.SearchStrategy[dict[str, Any]]] = {
    Kind.APPROVED: st.fixed_dictionaries({"role": st.sampled_from(["security-lead",
                                                                   "platform-lead"]),
                                          "user": text, "kind": st.sampled_from(
                                              ["direct", "relayed", "simulated"]),
                                          "version": st.sampled_from(["v1.4.3", "v1.4.4"])}),
    Kind.WAIVED: st.fixed_dictionaries({"role": text, "reason": text}),
    Kind.TARGET_CHANGED: st.fixed_dictionaries({"to_version": st.sampled_from(["v1.4.4",
                                                                               "v1.4.5"])}),
    Kind.NOTE: st.fixed_dictionaries({"text": text}),
    Kind.PREFLIGHT_PASSED: st.fixed_dictionaries({"target": text}),
    Kind.PREFLIGHT_FAILED: st.fixed_dictionaries({"target": text, "detail": text}),
    Kind.CHECKLIST_ACKED: st.just({"items": []}),
    Kind.WEIGHT_REQUESTED: st.fixed_dictionaries({"to_percent": st.integers(0, 100),
                                                  "action": st.sampled_from(
                                                      ["advance", "abort", "immediate"])}),
    Kind.WEIGHT_SET: st.fixed_dictionaries({"percent": st.sampled_from([0, 1, 10, 50, 100]),
                                            "stage_index": st.integers(-1, 3)}),
    Kind.WEIGHT_FAILED: st.fixed_dictionaries({"percent": st.integers(0, 100), "error": text}),
    Kind.GUARDRAIL_CHANGED: st.fixed_dictionaries({
        "name": st.sampled_from(["error-ratio", "p99"]),
        "status": st.sampled_from(["healthy", "breach", "insufficient", "cant_evaluate", "??"]),
        "canary": st.one_of(st.none(), st.floats(allow_nan=False)),
        "breaches": st.integers(0, 5)}),
    Kind.ROLLBACK_REQUESTED: st.fixed_dictionaries({"target": text, "automatic": st.booleans()}),
    Kind.ROLLBACK_STARTED: st.fixed_dictionaries({"detail": text}),
    Kind.ROLLBACK_PROGRESS: st.fixed_dictionaries({"message": text}),
    Kind.ROLLBACK_COMPLETED: st.fixed_dictionaries({"version": text}),
    Kind.ROLLBACK_FAILED: st.fixed_dictionaries({"error": text}),
    Kind.VERIFICATION_STARTED: st.fixed_dictionaries({"hold_s": st.floats(0, 100)}),
    Kind.ROLLBACK_VERIFIED: st.just({"checks": []}),
    Kind.ROLLBACK_NOT_VERIFIED: st.fixed_dictionaries({"reason": text}),
    Kind.GATE_RECORDED: st.fixed_dictionaries({"item": text, "result": st.sampled_from(
        ["passed", "failed", "waived"])}),
    Kind.HANDOVER: st.fixed_dictionaries({"user": text, "reason": text}),
    Kind.CLOSED: st.fixed_dictionaries({"reason": text}),
    "some_future_kind": st.dictionaries(text, text, max_size=3),
}
any_event = st.sampled_from(sorted(payloads)).flatmap(
    lambda kind: payloads[kind].map(lambda payload: (kind, payload)))


@settings(max_examples=150, deadline=None)
@given(st.lists(any_event, max_size=40), st.integers(0, 3600))
def test_any_prefix_of_any_sequence_folds(items: list[tuple[str, dict[str, Any]]],
                                          later_s: int) -> None:
    timeline = started()
    for kind, payload in items:
        timeline.add(kind, payload)
    for end in range(1, len(timeline.events) + 1):
        state = fold(timeline.events[:end])
        now = timeline.now + timedelta(seconds=later_s)
        policy.advance_blocks(state, now)
        policy.immediate_blocks(state, now)
        policy.rollback_blocks(state)
        state_json(state)
        state.hold_remaining_s(now)
        assert state.event_count == end
    # deterministic: folding twice gives the same state
    assert state_json(fold(timeline.events)) == state_json(fold(timeline.events))
    for event in timeline.events:
        assert isinstance(describe(event), str)
