"""Who may approve, at the edges: each actor who must be refused, and each refusal in words.

Today's rules are pinned as they are. Where issue 12 names a rule that today's code does not hold
yet (look-alike spellings, one person in two roles through a relay, a name off every roster, an
approver who becomes commander), the test states the rule and is marked ``xfail(strict=True)``:
it fails today, and turns into an unexpected pass (a failure) the day the rule lands, so whoever
lands it must drop the mark.
"""

from __future__ import annotations

from typing import Any

import pytest

from console import policy
from console.config import Config
from console.model import Kind
from console.policy import Refused

from .support import CONFIG, Timeline, declared


def refusal(call: Any, *args: Any) -> str:
    with pytest.raises(Refused) as caught:
        call(*args)
    return str(caught.value)


def direct(timeline: Timeline, role: str, user: str, config: Config = CONFIG) -> None:
    policy.check_direct_approval(timeline.state, config, role, user)


def relayed(timeline: Timeline, role: str, relayed_from: str,
            evidence: str = "bridge call 22:14", actor: str = "alice",
            config: Config = CONFIG) -> None:
    policy.check_relayed_approval(timeline.state, config, role, actor, relayed_from, evidence)


def regulatory() -> Timeline:
    """platform-lead (on a roster) + executive (no roster at all)."""
    return declared(category="regulatory")


# --- direct approvals ----------------------------------------------------------------------------


def test_a_rostered_approver_who_is_not_the_commander_may_approve() -> None:
    timeline = declared()
    direct(timeline, "security-lead", "priya")
    direct(timeline, "platform-lead", "marco")


def test_the_commander_may_not_approve() -> None:
    timeline = declared(commander="priya")  # priya is on both rosters
    assert refusal(direct, timeline, "security-lead", "priya") == (
        "priya is the commander of INC-1 and cannot approve it; ask a security-lead from the "
        "roster"
    )


def test_the_declarer_who_is_not_the_commander_may_not_approve() -> None:
    timeline = declared(commander="alice", actor="dana")  # dana is on the platform-lead roster
    assert timeline.state.declared_by == "dana"
    assert "cannot approve it" in refusal(direct, timeline, "platform-lead", "dana")


def test_a_new_commander_after_a_handover_may_not_approve() -> None:
    timeline = declared()
    timeline.add(Kind.HANDOVER, {"previous_user": "alice", "user": "marco", "reason": "shift"})
    assert "marco is the commander" in refusal(direct, timeline, "platform-lead", "marco")


def test_a_name_off_the_roster_is_refused_and_the_roster_is_named() -> None:
    assert refusal(direct, declared(), "security-lead", "marco") == (
        "marco is not on the roster for security-lead (roster: priya, sam)"
    )


def test_a_role_without_a_roster_accepts_no_direct_approval() -> None:
    assert refusal(direct, regulatory(), "executive", "zed") == (
        "zed is not on the roster for executive (roster: nobody (set [roster] in the config))"
    )


@pytest.mark.parametrize("spelling", ["Priya", "PRIYA", "priya ", " priya", "priya\u200b"])
def test_a_look_alike_of_a_rostered_name_is_not_on_the_roster(spelling: str) -> None:
    assert "is not on the roster for security-lead" in refusal(
        direct, declared(), "security-lead", spelling)


def test_a_role_the_category_does_not_require_is_refused() -> None:
    assert refusal(direct, declared(), "executive", "priya") == (
        "INC-1 (security) needs no 'executive' approval; required: security-lead, platform-lead"
    )
    timeline = declared(required_roles=[])
    assert refusal(direct, timeline, "security-lead", "priya") == (
        "INC-1 (security) needs no 'security-lead' approval; required: none"
    )


def test_a_closed_incident_takes_no_approval() -> None:
    timeline = declared()
    timeline.add(Kind.CLOSED, {"reason": "done"})
    assert refusal(direct, timeline, "security-lead", "priya") == "INC-1 is closed"
    assert refusal(relayed, timeline, "platform-lead", "marco") == "INC-1 is closed"
    assert refusal(policy.check_waiver, timeline.state, "platform-lead", "alice",
                   "unreachable for an hour") == "INC-1 is closed"


def test_the_same_person_approving_the_same_role_twice_is_refused() -> None:
    timeline = declared()
    timeline.approve("security-lead", "priya")
    assert refusal(direct, timeline, "security-lead", "priya") == (
        "priya already approved INC-1 as security-lead for v1.4.3"
    )


def test_an_approver_filling_a_second_role_is_refused() -> None:
    timeline = declared()
    timeline.approve("security-lead", "priya")
    assert refusal(direct, timeline, "platform-lead", "priya") == (
        "priya already approved as security-lead; a second role needs a second person"
    )


def test_a_relayed_approval_counts_as_that_persons_role_for_a_later_direct_one() -> None:
    timeline = declared()
    timeline.approve("platform-lead", "priya", kind="relayed")
    assert "a second role needs a second person" in refusal(
        direct, timeline, "security-lead", "priya")


def test_an_approval_for_an_earlier_target_does_not_stop_approving_the_new_one() -> None:
    timeline = declared()
    timeline.approve("security-lead", "priya")
    timeline.add(Kind.TARGET_CHANGED, {"from_version": "v1.4.3", "to_version": "v1.4.4",
                                       "reason": "first fix incomplete"})
    direct(timeline, "security-lead", "priya")


def test_a_waiver_recorded_by_someone_is_not_their_approval() -> None:
    """bob waived platform-lead while commander, then handed over: he may approve another role."""
    config = Config.model_validate({"roster": {"security-lead": ["bob"],
                                               "platform-lead": ["marco"]}})
    timeline = declared()
    timeline.add(Kind.HANDOVER, {"previous_user": "alice", "user": "bob", "reason": "shift"})
    timeline.add(Kind.WAIVED, {"role": "platform-lead", "reason": "unreachable for an hour",
                               "version": "v1.4.3"}, actor="bob")
    timeline.add(Kind.HANDOVER, {"previous_user": "bob", "user": "carol", "reason": "shift"},
                 actor="carol")
    direct(timeline, "security-lead", "bob", config)


def test_a_look_alike_of_the_commander_on_a_roster_may_not_approve() -> None:
    config = Config.model_validate({"roster": {"security-lead": ["Alice"]}})
    with pytest.raises(Refused):
        direct(declared(commander="alice"), "security-lead", "Alice", config)


def test_an_approver_who_takes_over_command_no_longer_counts_as_an_approver() -> None:
    timeline = declared()
    timeline.approve_all()
    timeline.add(Kind.HANDOVER, {"previous_user": "alice", "user": "priya", "reason": "shift"})
    assert "security-lead" in timeline.state.missing_roles


# --- relayed approvals ---------------------------------------------------------------------------


def test_the_commander_may_relay_a_rostered_approvers_approval_with_evidence() -> None:
    relayed(declared(), "platform-lead", "marco")


def test_only_the_commander_records_a_relayed_approval() -> None:
    assert refusal(relayed, declared(), "platform-lead", "marco", "bridge call 22:14", "priya") == (
        "only the commander (alice) can record a relayed approval"
    )


def test_the_commander_may_not_relay_their_own_approval() -> None:
    timeline = declared(commander="priya")  # on both rosters: only this rule refuses her
    assert refusal(relayed, timeline, "platform-lead", "priya", "bridge call 22:14", "priya") == (
        "the commander cannot relay their own approval"
    )


@pytest.mark.parametrize("name", ["", "   "])
def test_a_relayed_approval_must_name_the_approver(name: str) -> None:
    assert refusal(relayed, declared(), "platform-lead", name) == (
        "--relayed-from must name the approver"
    )


def test_evidence_of_eight_characters_is_enough_and_seven_is_not() -> None:
    relayed(declared(), "platform-lead", "marco", "12345678")
    for evidence in ("1234567", "   1234567   ", ""):
        assert refusal(relayed, declared(), "platform-lead", "marco", evidence) == (
            "--evidence must say where the approval was given (e.g. 'bridge call 22:14, Slack "
            "#inc-7 link')"
        )


def test_a_relayed_name_off_the_roster_is_refused() -> None:
    assert refusal(relayed, declared(), "platform-lead", "eve") == (
        "eve is not on the roster for platform-lead (roster: marco, priya, dana)"
    )


@pytest.mark.parametrize("spelling", ["Marco", "marco ", "marco\u200b"])
def test_a_relayed_look_alike_of_a_rostered_name_is_refused(spelling: str) -> None:
    assert "is not on the roster" in refusal(relayed, declared(), "platform-lead", spelling)


def test_a_role_that_already_counts_takes_no_relayed_approval() -> None:
    timeline = declared()
    timeline.approve("platform-lead", "marco")
    assert refusal(relayed, timeline, "platform-lead", "priya") == (
        "platform-lead has already approved v1.4.3"
    )


def test_a_waived_role_takes_no_relayed_approval() -> None:
    timeline = declared()
    timeline.add(Kind.WAIVED, {"role": "platform-lead", "reason": "unreachable for an hour",
                               "version": "v1.4.3"})
    assert "platform-lead has already approved" in refusal(relayed, timeline, "platform-lead",
                                                           "marco")


def test_a_stale_approval_does_not_stop_a_relayed_one_for_the_new_target() -> None:
    timeline = declared()
    timeline.approve("platform-lead", "marco")
    timeline.add(Kind.TARGET_CHANGED, {"to_version": "v1.4.4"})
    relayed(timeline, "platform-lead", "marco")


def test_a_relayed_approval_for_a_role_not_required_is_refused() -> None:
    assert "needs no 'executive' approval" in refusal(relayed, declared(), "executive", "marco")


@pytest.mark.parametrize("spelling", ["ALICE", "alice ", "alice\u200b", "Alice"])
def test_a_relayed_look_alike_of_the_commander_is_refused(spelling: str) -> None:
    with pytest.raises(Refused):
        relayed(regulatory(), "executive", spelling)


def test_a_relayed_name_for_a_role_with_no_roster_is_refused() -> None:
    with pytest.raises(Refused):
        relayed(regulatory(), "executive", "somebody")


def test_a_relayed_approval_from_the_declarer_is_refused() -> None:
    timeline = declared(commander="alice", actor="dana")
    with pytest.raises(Refused):
        relayed(timeline, "platform-lead", "dana")


def test_a_direct_approver_relayed_for_a_second_role_is_refused() -> None:
    timeline = declared()
    timeline.approve("security-lead", "priya")
    with pytest.raises(Refused):
        relayed(timeline, "platform-lead", "priya")


def test_one_person_relayed_for_two_roles_is_refused() -> None:
    timeline = declared()
    timeline.approve("security-lead", "priya", kind="relayed")
    with pytest.raises(Refused):
        relayed(timeline, "platform-lead", "priya")


# --- waivers -------------------------------------------------------------------------------------


def test_the_commander_may_waive_with_a_reason_of_eight_characters() -> None:
    policy.check_waiver(declared().state, "platform-lead", "alice", "12345678")


def test_a_waiver_reason_of_seven_characters_is_refused() -> None:
    for reason in ("1234567", "  1234567  "):
        assert refusal(policy.check_waiver, declared().state, "platform-lead", "alice",
                       reason) == "--reason must say specifically why the approval is waived"


def test_only_the_commander_may_waive() -> None:
    assert refusal(policy.check_waiver, declared().state, "platform-lead", "priya",
                   "unreachable for an hour") == (
        "only the commander (alice) can waive an approval"
    )


def test_a_role_that_already_counts_cannot_be_waived() -> None:
    timeline = declared()
    timeline.approve("platform-lead", "marco")
    assert refusal(policy.check_waiver, timeline.state, "platform-lead", "alice",
                   "unreachable for an hour") == (
        "platform-lead has already approved v1.4.3: nothing to waive"
    )


def test_a_role_not_required_cannot_be_waived() -> None:
    assert "needs no 'executive' approval" in refusal(
        policy.check_waiver, declared().state, "executive", "alice", "unreachable for an hour")


def test_a_stale_approval_can_be_waived_for_the_new_target() -> None:
    timeline = declared()
    timeline.approve("platform-lead", "marco")
    timeline.add(Kind.TARGET_CHANGED, {"to_version": "v1.4.4"})
    policy.check_waiver(timeline.state, "platform-lead", "alice", "unreachable for an hour")


# --- one identity, whoever runs the command (issue 12) --------------------------------------------


@pytest.mark.parametrize("spelling", ["ROOT", "root ", "root\u200b", " r o o t ", "ｒｏｏｔ",
                                      "\u202eroot", "ro\u00adot", "root\u2060"])
def test_every_spelling_of_a_name_is_one_person(spelling: str) -> None:
    from console.identity import person, same_person

    assert person(spelling) == "root"
    assert same_person(spelling, "root")
    assert not same_person("", "")
    assert not same_person("rooot", "root")


def test_an_approval_run_by_the_commander_behind_another_account_is_refused() -> None:
    assert refusal(policy.check_direct_approval, declared(commander="root").state, CONFIG,
                   "platform-lead", "marco", ["ROOT"]) == (
        "marco's approval was run by ROOT, the commander of INC-1: the commander cannot approve "
        "in someone else's name; the approver must run warroom approve from their own login"
    )


def test_one_person_behind_two_accounts_fills_one_role() -> None:
    timeline = declared()
    timeline.add(Kind.APPROVED, {"role": "security-lead", "user": "priya", "kind": "direct",
                                 "version": "v1.4.3", "run_by": ["bob"]}, actor="priya")
    assert refusal(policy.check_direct_approval, timeline.state, CONFIG, "platform-lead",
                   "marco", ["bob"]) == (
        "bob, who runs this as marco, already approved as security-lead (as priya); one person "
        "fills at most one role"
    )
    policy.check_direct_approval(timeline.state, CONFIG, "platform-lead", "marco", ["carol"])


def test_a_look_alike_of_a_rostered_name_is_told_the_exact_spelling() -> None:
    assert refusal(direct, declared(), "security-lead", "Priya") == (
        "Priya is not on the roster for security-lead (roster: priya, sam); 'priya' is, and "
        "names must match the roster exactly"
    )


def test_a_role_without_a_roster_takes_relayed_approvals_only_when_the_config_says_so() -> None:
    assert refusal(relayed, regulatory(), "executive", "somebody") == (
        "executive has no roster, so a relayed approval cannot be checked against one: add its "
        "people to [roster] (or list the role in [approval_rules] relayed_without_roster to "
        "accept relayed approvals for it)"
    )
    config = Config.model_validate({**CONFIG.model_dump(include={"roster"}),
                                    "approval_rules": {"relayed_without_roster": ["executive"]}})
    relayed(regulatory(), "executive", "somebody", config=config)
    # ...but never the commander, in any spelling
    with pytest.raises(Refused):
        relayed(regulatory(), "executive", "ALICE", config=config)


def test_the_approver_who_took_command_is_shown_stale_with_why() -> None:
    timeline = declared()
    timeline.approve_all()
    timeline.add(Kind.HANDOVER, {"previous_user": "alice", "user": "Priya", "reason": "shift"})
    stale = [a for a in timeline.state.approvals if a.stale]
    assert [(a.role, a.stale_reason) for a in stale] == [("security-lead", "Priya took command")]
    blocks = policy.advance_blocks(timeline.state, timeline.now)
    assert "security-lead (stale: Priya took command)" in blocks[0].words
    # handing command on does not bring the approval back: she commanded this change
    timeline.add(Kind.HANDOVER, {"previous_user": "Priya", "user": "alice", "reason": "back"})
    assert "security-lead" in timeline.state.missing_roles


def test_an_approval_recorded_for_the_commander_never_counts_in_the_fold() -> None:
    timeline = declared()
    timeline.approve("security-lead", "ALICE\u200b")  # written past the rules, e.g. by hand
    assert "security-lead" in timeline.state.missing_roles


def test_the_config_refuses_two_spellings_of_one_person_on_a_roster() -> None:
    with pytest.raises(ValueError, match="are the same person"):
        Config.model_validate({"roster": {"security-lead": ["priya", "Priya"]}})


def test_every_approval_rule_is_written_out() -> None:
    rules = policy.approval_rules(CONFIG)
    assert len(rules) == 7
    assert any("relayed_without_roster" in rule for rule in rules)
