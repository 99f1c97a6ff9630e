"""The emergency-change discipline as rules (seeds 000, 001, 002), with defaults from the config.

Every rule here is a pure function of the folded state, the config and the time, so it can be
tested without a screen, a store or an adapter. A refusal raises :class:`Refused` whose message is
one line a person can act on; the CLI turns it into exit 2.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from console.config import ROLE_PATTERN, Config
from console.events import (
    Bypass,
    Declared,
    DeclaredGuardrail,
    OverrideRecord,
    PlanStage,
    RateWarning,
)
from console.identity import person, same_person
from console.model import (
    BYPASS_ELEMENTS,
    CATEGORIES,
    GUARDRAIL_STATUS_WORDS,
    MILESTONES,
    PRIORITIES,
    format_duration,
    format_ts,
)
from console.state import Approval, IncidentState

RATE_WINDOW_DAYS = 30
#: The shortest text accepted wherever the rules ask for a *specific* reason: a bypass, an
#: override, a waiver, relayed evidence, a target change, a waived checklist item, a close.
REASON_MIN_CHARS = 8
VERSION_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$")
SERVICE_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")


class Refused(Exception):
    """The rules refuse the request; ``str()`` says why in one line."""


def specific(text: str) -> bool:
    """Whether ``text`` is long enough to be a specific reason (not "ok", not "because")."""
    return len(text.strip()) >= REASON_MIN_CHARS


@dataclass(frozen=True)
class Block:
    """Something that stops ``advance``, in words; ``overridable`` blocks need a typed reason."""

    code: str
    words: str
    overridable: bool = True


# --- declaration ---------------------------------------------------------------------------------


def parse_bypass(spec: str, config: Config) -> Bypass:
    """``ELEMENT=REASON`` or ``ELEMENT=REASON::COMPENSATION`` → a bypass record."""
    element, sep, rest = spec.partition("=")
    element = element.strip()
    if not sep:
        raise Refused(f"--bypass {spec!r}: expected ELEMENT=REASON (elements: "
                      f"{', '.join(BYPASS_ELEMENTS)})")
    if element not in BYPASS_ELEMENTS:
        raise Refused(f"--bypass: unknown element {element!r} (known: "
                      f"{', '.join(BYPASS_ELEMENTS)})")
    reason, _, compensation = rest.partition("::")
    reason = reason.strip()
    if not specific(reason):
        raise Refused(f"--bypass {element}: give a specific reason (seed 000: each bypass is "
                      "documented and the reason is specific)")
    default = config.bypass[element]
    return Bypass(element, reason, compensation.strip() or default.compensation,
                  default.post_gate)


def scenario_advice(affects: list[str]) -> str:
    if not affects:
        return ""
    return (f"Mission-critical scenario affected ({', '.join(affects)}): prefer a rollback over a "
            "hotfix when the rollback is compatible (seed 002)")


def declaration(config: Config, *, title: str, priority: str, category: str, service: str,
                from_version: str, to_version: str, bypass_specs: list[str],
                affects: list[str], commander: str, simulated: bool = False,
                plan_name: str | None = None) -> Declared:
    """Check a declaration against the rules and return the declaration's record."""
    title = title.strip()
    if not title:
        raise Refused("--title must not be empty")
    if len(title) > 200:
        raise Refused("--title is longer than 200 characters")
    if priority not in PRIORITIES:
        raise Refused(f"--priority {priority!r}: expected one of {', '.join(PRIORITIES)}")
    if category not in CATEGORIES:
        raise Refused(f"--category {category!r}: expected one of {', '.join(CATEGORIES)}")
    if not SERVICE_PATTERN.match(service):
        raise Refused(f"--service {service!r}: lower-case letters, digits, '.', '_' and '-'")
    for flag, version in (("--from-version", from_version), ("--to-version", to_version)):
        if not VERSION_PATTERN.match(version):
            raise Refused(f"{flag} {version!r}: expected a version like v1.4.3")
    if from_version == to_version:
        raise Refused("--from-version and --to-version are the same: nothing to ship or roll back")
    bypasses = [parse_bypass(spec, config) for spec in bypass_specs]
    elements = [b.element for b in bypasses]
    for element in elements:
        if elements.count(element) > 1:
            raise Refused(f"--bypass {element} is given twice")
    known = config.scenarios.mission_critical
    for scenario in affects:
        if known and scenario not in known:
            raise Refused(f"--affects {scenario!r} is not a configured mission-critical scenario "
                          f"(known: {', '.join(known)})")
        if not scenario.strip():
            raise Refused("--affects must not be empty")
    plan_name = plan_name or config.canary.default_plan
    if plan_name not in config.canary.plans:
        raise Refused(f"unknown canary plan {plan_name!r}")
    plan = config.canary.plans[plan_name]
    return Declared(
        title=title, priority=priority, category=category, service=service,
        from_version=from_version, to_version=to_version, commander=commander,
        bypasses=bypasses, affects=list(affects), advice=scenario_advice(affects),
        required_roles=config.required_roles(category),  # type: ignore[arg-type]
        plan_name=plan_name,
        plan=[PlanStage(s.percent, s.hold_s) for s in plan.stages],
        target_hours=config.priorities.hours(priority),  # type: ignore[arg-type]
        checklist=list(config.rollback.compatibility_checklist),
        guardrails=[DeclaredGuardrail(g.name, g.consecutive, g.on_breach, g.shadow or None,
                                      g.initial_delay_s or None)
                    for g in config.guardrails],
        simulated=simulated,
    )


def emergency_rate_warning(config: Config, count: int) -> RateWarning | None:
    """Seed 000, Q3: more emergencies than the bar in 30 days → a warning, or None."""
    bar = config.emergency_rate.max_per_30_days
    if count <= bar:
        return None
    return RateWarning(
        count=count, window_days=RATE_WINDOW_DAYS, bar=bar,
        message=(f"{count} emergencies declared in the last {RATE_WINDOW_DAYS} days (bar: "
                 f"{bar}). True emergencies are rare: the bar may be too low, or upstream "
                 "issues are creating false urgency (seed 000, Q3)."))


# --- approvals -----------------------------------------------------------------------------------


def _require_role(state: IncidentState, role: str) -> None:
    if role not in state.required_roles:
        raise Refused(f"{state.id_text} ({state.category}) needs no {role!r} approval; required: "
                      f"{', '.join(state.required_roles) or 'none'}")


def _require_open(state: IncidentState) -> None:
    if state.closed:
        raise Refused(f"{state.id_text} is closed")


#: The approval rules, in words: `check-config` prints them and the approvals pane shows them
#: when an approval was refused. Each is enforced below (and pinned in tests/rules).
APPROVAL_RULES = (
    "a person is their name compared case-folded (NFKC), without whitespace or invisible "
    "characters: 'ROOT', 'root ' and 'root'+zero-width space are all root",
    "a direct approval comes from the OS account on the roster for the role, spelled exactly as "
    "rostered",
    "the commander (and whoever declared the change) never counts as an approver; an approver "
    "who takes command makes their approval stale",
    "one person fills at most one required role per change, directly or relayed",
    "`warroom approve` under su/sudo/runuser records who ran it (login uid, SUDO_USER, the "
    "terminal's owner) and is refused when that person is the commander or already approved",
    "only the commander records a relayed approval, naming a person on the role's roster, with "
    "evidence",
)


def approval_rules(config: Config) -> list[str]:
    """Every approval rule in words, with this config's choice for roles without a roster."""
    rules = list(APPROVAL_RULES)
    allowed = config.approval_rules.relayed_without_roster
    rules.append(
        "a role with no roster takes no relayed approval"
        + (f", except {', '.join(allowed)} ([approval_rules] relayed_without_roster)" if allowed
           else " (list it in [approval_rules] relayed_without_roster to allow that)"))
    return rules


def _commander_or_declarer(state: IncidentState, name: str) -> str:
    """How ``name`` is (a spelling of) the commander or the declarer, in words, or ""."""
    if same_person(name, state.commander):
        return "the commander"
    if same_person(name, state.declared_by):
        return "the declarer"
    return ""


def _check_roster(config: Config, role: str, name: str) -> list[str]:
    """``name`` must be on the role's roster exactly as written there (a look-alike spelling is
    someone else, or nobody)."""
    roster = config.roster.get(role, [])
    if name in roster:
        return roster
    if not roster:
        raise Refused(f"{name} is not on the roster for {role} (roster: nobody (set [roster] in "
                      "the config))")
    look_alikes = [r for r in roster if same_person(r, name)]
    hint = (f"; {look_alikes[0]!r} is, and names must match the roster exactly" if look_alikes
            else "")
    raise Refused(f"{name} is not on the roster for {role} (roster: {', '.join(roster)}){hint}")


def _second_role(state: IncidentState, role: str, names: Sequence[str]) -> Approval | None:
    """The counting approval of another role that one of ``names`` already stands for."""
    people = {person(name) for name in names} - {""}
    for approval in state.current_approvals().values():
        if approval.people & people:
            return approval
    return None


def check_direct_approval(state: IncidentState, config: Config, role: str, user: str,
                          run_by: Sequence[str] = ()) -> None:
    """A direct approval: the OS account on the roster for the role, not the commander, not a
    person who already approved; ``run_by`` are the people behind the account (su/sudo), who
    must not be the commander or a person who already approved either."""
    _require_open(state)
    _require_role(state, role)
    if _commander_or_declarer(state, user):
        raise Refused(f"{user} is the commander of {state.id_text} and cannot approve it; ask a "
                      f"{role} from the roster")
    for name in run_by:
        what = _commander_or_declarer(state, name)
        if what:
            raise Refused(f"{user}'s approval was run by {name}, {what} of {state.id_text}: the "
                          "commander cannot approve in someone else's name; the approver must "
                          "run warroom approve from their own login")
    _check_roster(config, role, user)
    earlier = _second_role(state, role, [user, *run_by])
    if earlier is None:
        return
    if person(user) in earlier.people:
        if earlier.role == role:
            raise Refused(f"{user} already approved {state.id_text} as {role} for "
                          f"{state.to_version}")
        raise Refused(f"{user} already approved as {earlier.role}; a second role needs a "
                      "second person")
    behind = ", ".join(name for name in run_by if person(name) in earlier.people)
    raise Refused(f"{behind}, who runs this as {user}, already approved as {earlier.role} (as "
                  f"{earlier.user}); one person fills at most one role")


def check_relayed_approval(state: IncidentState, config: Config, role: str, actor: str,
                           relayed_from: str, evidence: str) -> None:
    """A relayed approval: entered by the commander, with who gave it and what evidence; that
    person is on the role's roster (a role without a roster only where the config allows it),
    is not the commander or the declarer, and fills no other role."""
    _require_open(state)
    _require_role(state, role)
    if actor != state.commander:
        raise Refused(f"only the commander ({state.commander}) can record a relayed approval")
    if not relayed_from.strip():
        raise Refused("--relayed-from must name the approver")
    what = _commander_or_declarer(state, relayed_from)
    if what == "the commander":
        raise Refused("the commander cannot relay their own approval")
    if what:
        raise Refused(f"{relayed_from} is {what} of {state.id_text} and cannot approve it")
    if not specific(evidence):
        raise Refused("--evidence must say where the approval was given (e.g. 'bridge call "
                      "22:14, Slack #inc-7 link')")
    if config.roster.get(role):
        _check_roster(config, role, relayed_from)
    elif role not in config.approval_rules.relayed_without_roster:
        raise Refused(f"{role} has no roster, so a relayed approval cannot be checked against "
                      "one: add its people to [roster] (or list the role in [approval_rules] "
                      "relayed_without_roster to accept relayed approvals for it)")
    if role in state.current_approvals():
        raise Refused(f"{role} has already approved {state.to_version}")
    earlier = _second_role(state, role, [relayed_from])
    if earlier is not None:
        raise Refused(f"{relayed_from} already approved as {earlier.role}; a second role needs a "
                      "second person")


def check_waiver(state: IncidentState, role: str, actor: str, reason: str) -> None:
    _require_open(state)
    _require_role(state, role)
    if actor != state.commander:
        raise Refused(f"only the commander ({state.commander}) can waive an approval")
    if not specific(reason):
        raise Refused("--reason must say specifically why the approval is waived")
    if role in state.current_approvals():
        raise Refused(f"{role} has already approved {state.to_version}: nothing to waive")


def check_target_change(state: IncidentState, actor: str, to_version: str, reason: str) -> None:
    """Only the commander changes the version being shipped, before the canary carries
    traffic, to a real new version, for a specific reason."""
    _require_open(state)
    if actor != state.commander:
        raise Refused(f"only the commander ({state.commander}) can change the target")
    if not VERSION_PATTERN.match(to_version):
        raise Refused(f"--to-version {to_version!r}: expected a version like v1.4.4")
    if to_version in (state.to_version, state.from_version):
        raise Refused(f"{to_version} is already the target or the stable version")
    if state.canary_percent > 0:
        raise Refused(f"the canary is at {state.canary_percent}%: abort it before changing the "
                      "target")
    if not specific(reason):
        raise Refused("--reason must say why the target changes")


# --- the timeline and the checklists -------------------------------------------------------------


def check_note(text: str) -> None:
    if not text.strip():
        raise Refused("the note is empty")


# --- milestones, roles, links and highlights -----------------------------------------------------

LINK_KIND_PATTERN = re.compile(r"^[a-z][a-z0-9-]{0,23}$")
USER_PATTERN = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.@-]{0,63}$")
#: How far ahead of the recording clock a marked moment may lie (clocks of two hosts differ).
CLOCK_SKEW_S = 120.0


def check_milestone(state: IncidentState, milestone: str, at: datetime, now: datetime) -> None:
    """A milestone is one of :data:`MILESTONES`, not in the future, and in order with those
    already marked (detected and impact-started before mitigated, mitigated before resolved;
    impact may start before or after detection)."""
    if milestone not in MILESTONES:
        raise Refused(f"unknown milestone {milestone!r} (known: {', '.join(MILESTONES)})")
    if (at - now).total_seconds() > CLOCK_SKEW_S:
        raise Refused(f"{milestone} cannot be marked in the future ({format_ts(at)})")
    before = {"mitigated": ("detected", "impact-started"),
              "resolved": ("detected", "impact-started", "mitigated")}
    after = {"detected": ("mitigated", "resolved"), "impact-started": ("mitigated", "resolved"),
             "mitigated": ("resolved",)}
    for earlier in before.get(milestone, ()):
        mark = state.milestones.get(earlier)
        if mark is not None and mark.at > at:
            raise Refused(f"{milestone} at {format_ts(at)} is before {earlier} "
                          f"({format_ts(mark.at)}): correct {earlier} first")
    for later in after.get(milestone, ()):
        mark = state.milestones.get(later)
        if mark is not None and mark.at < at:
            raise Refused(f"{milestone} at {format_ts(at)} is after {later} "
                          f"({format_ts(mark.at)}): correct {later} first")


def check_role(role: str, user: str) -> None:
    if not re.match(ROLE_PATTERN, role):
        raise Refused(f"role {role!r}: lower-case letters, digits and dashes (e.g. scribe)")
    if not USER_PATTERN.match(user):
        raise Refused(f"{user!r} is not a user name")


def check_link(kind: str, url: str) -> None:
    if not LINK_KIND_PATTERN.match(kind):
        raise Refused(f"link kind {kind!r}: lower-case letters, digits and dashes (ticket, pr, "
                      "runbook, dashboard...)")
    if not re.match(r"^https?://[^\s]{1,2000}$", url):
        raise Refused(f"link {kind}: {url!r} is not an http(s) URL")


def parse_link(spec: str) -> tuple[str, str]:
    """``KIND=URL`` → (kind, url), checked."""
    kind, sep, url = spec.partition("=")
    if not sep:
        raise Refused(f"--link {spec!r}: expected KIND=URL (e.g. pr=https://…)")
    kind, url = kind.strip(), url.strip()
    check_link(kind, url)
    return kind, url


def check_highlight(state: IncidentState, event_id: int) -> None:
    if not 0 < event_id <= state.last_event_id:
        raise Refused(f"no event #{event_id} in {state.id_text}")
    if event_id in state.highlights:
        raise Refused(f"event #{event_id} is already highlighted")


def check_checklist_ack(state: IncidentState) -> None:
    _require_open(state)
    if state.checklist_acked:
        raise Refused("the compatibility checklist is already acknowledged")


def check_gate(state: IncidentState, item: str, result: str, detail: str) -> None:
    """A post-emergency item's result: after 100 % or a verified rollback, a real item, a known
    result, and a waiver only with a specific reason."""
    _require_open(state)
    if not state.checklist_active:
        raise Refused("the post-emergency checklist opens after 100% or a verified rollback")
    if item not in state.post_checklist():
        raise Refused(f"not an item of the checklist: {item}")
    if result not in ("passed", "failed", "waived"):
        raise Refused(f"result must be passed, failed or waived, not {result}")
    if result == "waived" and not specific(detail):
        raise Refused("a waived item needs a specific reason")


def check_close(state: IncidentState, reason: str) -> list[str]:
    """Whether the incident may close now; returns the open checklist items the reason
    waives."""
    if state.closed:
        raise Refused("the incident is already closed")
    if state.rollback_active:
        raise Refused("a rollback is still running")
    if state.harm_back and not specific(reason):
        raise Refused("the fix was rolled back and the harm is live again: mark mitigated or "
                      "resolved first, or close with a specific reason (recorded)")
    open_items = state.checklist_open if state.checklist_active else []
    if open_items and not specific(reason):
        raise Refused(f"{len(open_items)} checklist item(s) are open: close with a reason that "
                      "waives them")
    return open_items


# --- the canary ----------------------------------------------------------------------------------


def check_immediate_reason(state: IncidentState, reason: str) -> None:
    if not specific(reason):
        raise Refused("100% immediately needs a specific reason (seed 000: active exfiltration, "
                      "an immediate regulatory deadline)")
    if state.promoted:
        raise Refused("the canary is already at 100%")


def _common_blocks(state: IncidentState) -> list[Block]:
    blocks: list[Block] = []
    if state.closed:
        blocks.append(Block("closed", "the incident is closed", overridable=False))
    if state.rolled_back:
        status = state.rollback_status.replace("_", " ")
        blocks.append(Block("rolled-back", f"a rollback was requested ({status}): this change "
                                           "can no longer advance", overridable=False))
    if state.pending_weight is not None:
        blocks.append(Block("in-flight", "a traffic change is in flight; wait for its result",
                            overridable=False))
    return blocks


def _pause_block(state: IncidentState) -> Block | None:
    if not state.paused:
        return None
    why = f": {state.pause_reason}" if state.pause_reason else ""
    return Block("paused", f"paused by {state.paused_by}{why} — press p to resume",
                 overridable=False)


def _approval_block(state: IncidentState) -> Block | None:
    if state.approvals_complete:
        return None
    stale = {a.role: a.stale_reason or "no longer counts" for a in state.approvals if a.stale}
    parts = [f"{role} (stale: {stale[role]})" if role in stale else role
             for role in state.missing_roles]
    return Block("approvals", "approvals missing: " + ", ".join(parts))


def _preflight_block(state: IncidentState) -> Block | None:
    if state.preflight_ok and state.checklist_acked:
        return None
    if state.preflight_ok is None:
        words = "rollback preflight has not run yet"
    elif not state.preflight_ok:
        words = f"rollback preflight failed: {state.preflight_detail or 'see the rollback pane'}"
    else:
        words = "rollback compatibility checklist not acknowledged"
    return Block("preflight", words)


def _guardrail_block(state: IncidentState, now: datetime) -> Block | None:
    """Gating guardrails that are not healthy (a shadow never gates; WARN and the initial
    delay have blocks of their own)."""
    if state.canary_percent == 0:
        return None  # no canary traffic yet: nothing to judge before the first stage
    unhealthy = [g for g in state.guardrails.values()
                 if g.gates and g.status not in ("healthy", "warn") and not g.delay_left_s(now)]
    if not unhealthy:
        return None
    parts = [f"{g.name} {GUARDRAIL_STATUS_WORDS.get(g.status, g.status)}" for g in unhealthy]
    return Block("guardrails", "guardrails not healthy: " + "; ".join(parts))


def _warn_block(state: IncidentState) -> Block | None:
    """A guardrail that was WARN at this stage holds advance until a person decides, with a
    typed reason (the override); it never decides by itself, even back below the band."""
    if state.canary_percent == 0 or not state.stage_warnings:
        return None
    parts = []
    for warning in state.stage_warnings.values():
        guard = state.guardrails.get(warning.name)
        still = guard is not None and guard.status == "warn"
        parts.append(f"{warning.name} since {warning.ts.strftime('%H:%M:%S')}"
                     + ("" if still else " (no longer)")
                     + f": {warning.detail.removesuffix(': a person decides')}")
    return Block("warn", f"WARN at {state.canary_percent}% — a person decides: "
                         + "; ".join(parts))


def _delay_block(state: IncidentState, now: datetime) -> Block | None:
    """Gating guardrails still in their initial delay after the stage change: not judged yet."""
    if state.canary_percent == 0:
        return None
    waiting = [(g.name, g.delay_left_s(now)) for g in state.guardrails.values()
               if g.gates and g.delay_left_s(now) > 0]
    if not waiting:
        return None
    parts = [f"{name} in {format_duration(left)}" for name, left in waiting]
    return Block("delay", "initial delay, guardrails not judged yet: " + "; ".join(parts))


def advance_blocks(state: IncidentState, now: datetime) -> list[Block]:
    """Everything that stops advancing to the next stage, in words."""
    blocks = _common_blocks(state)
    if state.next_stage is None:
        blocks.append(Block("final", "the canary is at 100%: nothing to advance",
                            overridable=False))
    for block in (_pause_block(state), _approval_block(state), _preflight_block(state)):
        if block is not None:
            blocks.append(block)
    remaining = state.hold_remaining_s(now)
    stage = state.current_stage
    if remaining > 0 and stage is not None:
        blocks.append(Block("hold", f"hold at {stage.percent}%: {format_duration(remaining)} left "
                                    f"of {format_duration(stage.hold_s)}"))
    for guard in (_delay_block(state, now), _warn_block(state), _guardrail_block(state, now)):
        if guard is not None:
            blocks.append(guard)
    return blocks


def immediate_blocks(state: IncidentState, now: datetime) -> list[Block]:
    """What stops "100% now": everything but the holds (skipping them is the point)."""
    return [b for b in advance_blocks(state, now) if b.code != "hold"]


def check_overrides(blocks: list[Block], overrides: dict[str, str]) -> list[OverrideRecord]:
    """Every block must be overridable and overridden with a reason; returns the records."""
    records: list[OverrideRecord] = []
    for block in blocks:
        if not block.overridable:
            raise Refused(f"cannot advance: {block.words}")
        reason = overrides.get(block.code, "").strip()
        if not specific(reason):
            raise Refused(f"blocked: {block.words} (override with a specific reason)")
        records.append(OverrideRecord(block.code, block.words, reason))
    return records


def check_pause(state: IncidentState, pause: bool) -> None:
    """Pausing holds a live canary where it is; resuming lifts a pause."""
    _require_open(state)
    if pause:
        if state.paused:
            raise Refused(f"the canary is already paused (by {state.paused_by})")
        if state.canary_percent == 0 or state.rolled_back:
            raise Refused("there is no canary traffic to pause")
        if state.promoted:
            raise Refused("the canary is at 100%: nothing to hold")
    elif not state.paused:
        raise Refused("the canary is not paused")


def abort_blocks(state: IncidentState) -> list[Block]:
    blocks = [b for b in _common_blocks(state) if b.code != "rolled-back"]
    if state.canary_percent == 0:
        blocks.append(Block("zero", "the canary weight is already 0%", overridable=False))
    return blocks


def rollback_blocks(state: IncidentState) -> list[Block]:
    blocks: list[Block] = []
    if state.closed:
        blocks.append(Block("closed", "the incident is closed", overridable=False))
    if state.rollback_active:
        blocks.append(Block("active", "a rollback is already running", overridable=False))
    if state.rollback_status == "verified":
        blocks.append(Block("verified", "the rollback is already verified", overridable=False))
    if not state.rollback_target:
        blocks.append(Block("target", "no rollback target (from-version) is known",
                            overridable=False))
    return blocks
