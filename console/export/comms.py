"""Communication drafts from an incident's record: seed 001's three templates, filled in.

1. the internal Slack / Teams message (issue, ticket, priority, status, timeline, impact, root
   cause, fix, verification, follow-up);
2. the status page update;
3. the email to affected users.

What the record knows is written in (the incident id, priority, times, versions, the rollback and
guardrail facts, the post-emergency items). What only a person can know is left as a ``[bracket]``:
who was affected and how, the root cause, the company name, the support address, the link to the
change. The drafts never claim more than the record shows: the status page says "Resolved" only
once the change is at 100% and its resolution was verified (or the incident was closed), and a
rollback that is not verified says so. User text is kept literal, with the same structural
escaping as the PIR (:func:`console.export.markdown.md_inline`).

Import-light: stdlib and ``console.model`` / ``console.state`` (through
:mod:`console.export.record`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from console.export.markdown import hours_minutes, md_inline, md_line
from console.export.record import (
    Record,
    SamplesLike,
    build_record,
    fix_rolled_back,
    harm_sentence,
)
from console.model import GUARDRAIL_STATUS_WORDS, Event, Kind, format_head, format_ts

if TYPE_CHECKING:
    from console.config import Config

#: Categories whose customer email needs a review beyond the commander's.
_REVIEWED_CATEGORIES = {
    "security": "have the security lead review this email (and legal, if personal data was "
                "exposed) before it is sent",
    "regulatory": "have the executive approver (and legal) review this email before it is sent",
}

_GUARDRAIL_MARKS = {"healthy": "✅", "breach": "❌"}


def render_comms(events: Sequence[Event], *, config: Config | None = None,
                 samples: SamplesLike | None = None, now: datetime | None = None) -> str:
    """The three drafts for one incident (its events, oldest first), as markdown."""
    del samples  # the drafts quote guardrail verdicts, not raw series
    record = build_record(events, config)
    s = record.state
    public = _Public(record, config)
    exported = f" at {format_ts(now)}" if now is not None else ""
    simulated = (["> **SIMULATED — a warroom demo, not a real incident. Do not send.** "
                  "Approvals, traffic and metrics in these drafts were simulated.", ""]
                 if s.simulated else [])
    out = [
        f"# Communication drafts: {s.id_text} — {md_line(s.title) or '(untitled)'}",
        "",
        *simulated,
        f"_Drafted from the {s.id_text} record{exported}. Fill in every bracketed blank and "
        "check every line before sending: nothing here has been sent._",
        "",
        *([f"_Record: `{format_head(record.events[-1].id, record.events[-1].hash, s.chain_keyed)}`"
           "_", ""] if record.events and record.events[-1].hash else []),
        "---",
        "",
        *_internal(record),
        "---",
        "",
        *_status_page(record, public),
        "---",
        "",
        *_email(record, public),
    ]
    while out and out[-1] == "":
        out.pop()
    return "\n".join(out) + "\n"


# --- what the three drafts share -----------------------------------------------------------------


def _resolved_at(record: Record) -> datetime | None:
    """When the issue ended, as far as the record shows; None while it does not show it.

    The post-emergency "verify resolution" item decides: passed means resolved (when the fix
    reached 100%, or when the rollback was verified); failed means not resolved, even if the
    incident was closed; open or waived leaves it to the close.
    """
    s = record.state
    resolved = s.milestones.get("resolved")
    if resolved is not None:
        return resolved.at  # a person marked it: that is the answer
    if fix_rolled_back(record):
        return None  # the harm came back with the rollback: nothing is resolved yet
    result, _ = record.gate_status(s.post_checklist()[0])
    if result == "failed":
        return None
    if result == "passed":
        if s.promoted and s.promoted_ts is not None:
            return s.promoted_ts
        if s.rollback_status == "verified" and s.rollback_finished_ts is not None:
            return s.rollback_finished_ts
        gate = s.gates.get(s.post_checklist()[0])
        return gate.ts if gate is not None else s.closed_ts
    return s.closed_ts if s.closed else None


def _utc(record: Record, ts: datetime) -> str:
    return f"{record.clock.short(ts)} UTC"


# --- 1. internal message -------------------------------------------------------------------------


def _internal(record: Record) -> list[str]:
    s = record.state
    if s.promoted:
        headline, status = "Production Hotfix Deployed", "✅ Resolved"
    elif fix_rolled_back(record):
        headline = "Fix Rolled Back — the Original Harm Is Back"
        status = ("🔴 Fix rolled back: the harm is live again; next: a corrected fix by the "
                  "hotfix path" if s.harm_back else
                  "⚠️ Fix rolled back; the harm is mitigated, not resolved: a corrected fix "
                  "follows by the hotfix path")
    elif s.rolled_back:
        headline = "Production Hotfix Rolled Back"
        status = {
            "verified": "⚠️ Rolled back (verified)",
            "not_verified": "⚠️ Rolled back (NOT VERIFIED)",
            "failed": "⚠️ Rollback FAILED",
        }.get(s.rollback_status, "⚠️ Rolling back")
    else:
        headline, status = "Production Hotfix In Progress", "🔄 In progress"
    if s.closed:
        status += " — incident closed"
    lines = [
        "## 1. Internal message (Slack / Teams)",
        "",
        f"🚨 **{headline}**",
        "",
        f"**Issue**: {md_inline(s.title, '')}",
        f"**Ticket**: {s.id_text}",
        f"**Priority**: {s.priority}",
        f"**Status**: {status}",
        "",
        "**Timeline:**",
        *_timeline(record),
        "",
        "**Impact**:",
        "[Who was affected and how]",
        _exposure(record),
        "",
        "**Root Cause**:",
        "[Brief explanation]",
        "",
        "**Fix**:",
        _fix(record),
        *([f"**⚠ {harm_sentence(record)}**"] if fix_rolled_back(record) else []),
        "",
        "**Verification**:",
        *_verification(record),
        "",
        "**PR**: [link to the change]",
        "",
        "**Follow-up**:",
        *_follow_up(record),
        "",
    ]
    return lines


def _timeline(record: Record) -> list[str]:
    s = record.state
    declared = record.declared
    lines = []
    impact = s.milestones.get("impact-started")
    if impact is not None:
        lines.append(f"- Impact started: {_utc(record, impact.at)}")
    detected = s.milestones.get("detected")
    if detected is not None:
        lines.append(f"- Issue detected: {_utc(record, detected.at)}")
    lines.append(f"- Emergency declared: {_utc(record, declared)}")
    end: datetime | None = None
    if s.promoted and s.promoted_ts is not None:
        end = s.promoted_ts
        lines.append(f"- Fix deployed ({md_inline(s.to_version)} at 100%): {_utc(record, end)}")
    elif s.rolled_back:
        completed = record.last(Kind.ROLLBACK_COMPLETED)
        verdict = record.last(Kind.ROLLBACK_VERIFIED, Kind.ROLLBACK_NOT_VERIFIED,
                              Kind.ROLLBACK_FAILED)
        if completed is not None:
            end = completed.ts
            text = (f"- Rolled back to {md_inline(s.rollback_target)}: "
                    f"{_utc(record, completed.ts)}")
            if verdict is not None and verdict.kind == Kind.ROLLBACK_VERIFIED:
                text += f" (verified {_utc(record, verdict.ts)})"
            elif verdict is not None:
                text += f" (NOT VERIFIED at {_utc(record, verdict.ts)})"
            lines.append(text)
        elif verdict is not None and verdict.kind == Kind.ROLLBACK_FAILED:
            lines.append(f"- Rollback to {md_inline(s.rollback_target)} FAILED: "
                         f"{_utc(record, verdict.ts)}")
        else:
            lines.append(f"- Rollback to {md_inline(s.rollback_target)} in progress at "
                         f"{_utc(record, record.end)}")
    else:
        lines.append(f"- Fix in progress: canary at {s.canary_percent}% at "
                     f"{_utc(record, record.end)}")
    if end is not None:
        lines.append(f"- Duration: {hours_minutes((end - declared).total_seconds())}")
    else:
        lines.append(f"- Duration: {hours_minutes(record.duration_s)} so far")
    return lines


def _exposure(record: Record) -> str:
    s = record.state
    service = md_inline(s.service, "")
    version = md_inline(s.to_version, "")
    if s.promoted:
        return f"{service}: {version} is serving all traffic."
    if s.rolled_back:
        return (f"{service}: {version} took at most {record.max_percent}% of traffic (canary) "
                f"before the rollback to {md_inline(s.rollback_target, '')}.")
    return f"{service}: {version} takes {s.canary_percent}% of traffic (canary) so far."


def _fix(record: Record) -> str:
    s = record.state
    reached = " → ".join(f"{v.percent}%" for v in s.visits) or "no traffic yet"
    text = (f"{md_inline(s.service, '')} {md_inline(s.from_version, '')} → "
            f"{md_inline(s.to_version, '')}, shipped through the {md_inline(s.plan_name, '')} "
            f"canary ({reached})")
    if s.immediate_used:
        text += ", including 100% IMMEDIATELY"
    if s.rolled_back:
        request = record.last(Kind.ROLLBACK_REQUESTED)
        reason = md_inline(request.payload.get("reason", ""), "") if request else ""
        text += f"; rolled back to {md_inline(s.rollback_target, '')}"
        text += f": {reason}" if reason else ""
    return text + "."


def _verification(record: Record) -> list[str]:
    s = record.state
    lines: list[str] = []
    result, detail = record.gate_status(s.post_checklist()[0])
    said = f": {md_inline(detail)}" if detail else ""
    resolution = {
        "passed": f"✅ Resolution verified{said}",
        "failed": f"❌ Resolution check FAILED{said}",
        "waived": f"⚠️ Resolution check WAIVED{said}",
    }.get(result, "⏳ Resolution not yet verified")
    if s.promoted and s.promoted_ts is not None:
        lines.append(f"✅ {md_inline(s.to_version)} at 100% since {_utc(record, s.promoted_ts)}")
        lines.append(resolution)
    elif s.rolled_back:
        verdict = record.last(Kind.ROLLBACK_VERIFIED, Kind.ROLLBACK_NOT_VERIFIED,
                              Kind.ROLLBACK_FAILED)
        target = md_inline(s.rollback_target)
        if s.rollback_status == "verified" and verdict is not None:
            lines.append(f"✅ Rollback to {target} verified at {_utc(record, verdict.ts)}: "
                         "live, canary weight 0%, guardrails healthy")
        elif s.rollback_status == "not_verified":
            lines.append(f"❌ Rollback to {target} NOT VERIFIED: {md_inline(s.rollback_detail)}")
        elif s.rollback_status == "failed":
            lines.append(f"❌ Rollback to {target} FAILED: {md_inline(s.rollback_detail)}")
        else:
            lines.append(f"⏳ Rollback to {target} not verified yet")
        # After a rollback the verification's checks are the evidence; the canary guardrails'
        # last statuses describe the build that was rolled back.
        checks = verdict.payload.get("checks") if verdict is not None else None
        for check in checks or []:
            if isinstance(check, dict):
                mark = "✅" if check.get("ok") else "❌"
                text = f": {md_inline(check.get('detail', ''))}" if check.get("detail") else ""
                lines.append(f"{mark} {md_inline(check.get('name', ''))}{text}")
        if result != "open":
            lines.append(resolution)
        return lines
    for guardrail in s.guardrails.values():
        mark = _GUARDRAIL_MARKS.get(guardrail.status, "⚠️")
        word = GUARDRAIL_STATUS_WORDS.get(guardrail.status, guardrail.status)
        detail = f" — {md_inline(guardrail.detail)}" if guardrail.detail else ""
        lines.append(f"{mark} {md_inline(guardrail.name)}: {word}{detail}")
    if not lines:
        lines.append("[How the fix was verified]")
    return lines


def _follow_up(record: Record) -> list[str]:
    s = record.state
    pir_item = s.post_checklist()[-1]
    lines: list[str] = []
    result, detail = record.gate_status(pir_item)
    if result == "passed":
        lines.append("- [x] Post-incident review scheduled"
                     + (f": {md_inline(detail)}" if detail else ""))
    else:
        lines.append("- [ ] Post-incident review scheduled for [date]")
    for item in record.checklist_rows():
        if item == pir_item:
            continue
        result, detail = record.gate_status(item)
        if result == "n/a":
            continue  # about a version at 100 %, which this one never was
        box = "x" if result in ("passed", "waived") else " "
        word = {"failed": "FAILED", "waived": "WAIVED"}.get(result, result)
        said = f": {md_inline(detail)}" if detail else ""
        lines.append(f"- [{box}] {md_inline(item)} ({word}{said})")
    lines.append("- [ ] Documentation updated")
    return lines


# --- 2. status page ------------------------------------------------------------------------------


class _Public:
    """What the public drafts may say: the service by the name customers know (config
    ``[export] customer_names``; a [bracketed] blank otherwise — never the internal name), when
    impact began (the milestone, else the declaration, said as such), and when the next update
    is due (``[export] update_every_minutes`` by priority)."""

    def __init__(self, record: Record, config: Config | None) -> None:
        s = record.state
        names = config.export.customer_names if config is not None else {}
        minutes = (config.export.update_every_minutes if config is not None else {}).get(
            s.priority, 60)  # type: ignore[call-overload]
        self.service = (md_inline(names[s.service], "") if s.service in names
                        else "[the service, by the name customers know]")
        impact = s.milestones.get("impact-started")
        self.start = impact.at if impact is not None else record.declared
        self.start_is_known = impact is not None
        self.next_update = record.end + timedelta(minutes=minutes)
        self.minutes = minutes

    def since(self, record: Record) -> str:
        when = _utc(record, self.start).removesuffix(" UTC")
        return when if self.start_is_known else f"{when} [impact start not marked: check]"


@dataclass(frozen=True)
class StatusPageDraft:
    """The status page update, in parts: what the draft says and what a status page API takes.

    ``status`` is the page's word for the stage the record shows (Atlassian Statuspage's):
    ``investigating`` (declared, nothing shipped yet), ``identified`` (the fix is shipping, or
    it was withdrawn and the issue goes on), ``monitoring`` (the fix is live), ``resolved``.
    """

    status: str
    head: str
    name: str
    opening: str
    happened: str
    current: str
    steps: str
    closing: str = "We apologize for any inconvenience."

    @property
    def body(self) -> str:
        """The update's text as a status page shows it (plain paragraphs)."""
        return "\n\n".join([self.opening, f"What happened: {self.happened}",
                             f"Current status: {self.current}", f"Next steps: {self.steps}",
                             self.closing])


def status_page_draft(events: Sequence[Event], *, config: Config | None = None) -> StatusPageDraft:
    """The status page update for one incident (its events, oldest first)."""
    record = build_record(events, config)
    return _status_parts(record, _Public(record, config))


def _status_parts(record: Record, public: _Public) -> StatusPageDraft:
    s = record.state
    service = public.service
    start = public.since(record)
    resolved = _resolved_at(record)
    next_update = (f"We will post an update by {_utc(record, public.next_update)} "
                   f"(within {public.minutes} minutes).")
    if resolved is not None:
        status, head = "resolved", f"🟢 Resolved - Issue affecting {service}"
        opening = f"We've resolved an issue that was affecting {service}."
        happened = (f"Between {start} and {_utc(record, resolved)}, users experienced "
                    "[specific issue].")
        current = "The issue has been fully resolved. All systems are operating normally."
        steps = "We're conducting a thorough review to prevent similar issues in the future."
    elif fix_rolled_back(record):
        status, head = "identified", f"🔴 Identified - Issue affecting {service}"
        opening = f"We are still working on an issue affecting {service}."
        happened = f"Since {start} UTC, users may experience [specific issue]."
        current = ("The fix we began deploying did not work as intended and was withdrawn; "
                   "the issue is ongoing" + ("" if s.harm_back else
                                             ", with a temporary mitigation in place")
                   + ". We are preparing a corrected fix.")
        steps = next_update
    elif s.promoted:
        status, head = "monitoring", f"🟡 Monitoring - Issue affecting {service}"
        opening = f"A fix has been deployed for an issue affecting {service}."
        happened = f"Since {start} UTC, users may have experienced [specific issue]."
        current = "The fix is live and we are monitoring the results."
        steps = next_update
    elif not s.visits and s.rollback_status in ("none", "preflight_passed", "preflight_failed"):
        status, head = "investigating", f"🔴 Investigating - Issue affecting {service}"
        opening = f"We are investigating an issue affecting {service}."
        happened = f"Since {start} UTC, users may experience [specific issue]."
        current = "We have found a likely cause and are preparing a fix."
        steps = next_update
    else:
        status, head = "identified", f"🟠 Identified - Issue affecting {service}"
        opening = f"We have identified an issue affecting {service} and are working on a fix."
        happened = f"Since {start} UTC, users may experience [specific issue]."
        current = "Our team is working on a fix."
        steps = next_update
    name = f"Issue affecting {service}"
    if s.simulated:
        head = "SIMULATED (demo) — " + head
        name = "SIMULATED (demo) — " + name
    return StatusPageDraft(status, head, name, opening, happened, current, steps)


def _status_page(record: Record, public: _Public) -> list[str]:
    draft = _status_parts(record, public)
    return [
        "## 2. Status page update",
        "",
        draft.head,
        "",
        draft.opening,
        "",
        "**What happened:**",
        draft.happened,
        "",
        "**Current status:**",
        draft.current,
        "",
        "**Next steps:**",
        draft.steps,
        "",
        draft.closing,
        "",
    ]


# --- 3. email to affected users ------------------------------------------------------------------


def _email(record: Record, public: _Public) -> list[str]:
    s = record.state
    service = public.service
    day = f"{public.start.day} {public.start:%B %Y}"
    start = public.since(record)
    resolved = _resolved_at(record)
    lines = ["## 3. Email to affected users", ""]
    review = _REVIEWED_CATEGORIES.get(s.category)
    if review:
        lines += [f"_{s.category.capitalize()} emergency: {review}._", ""]
    if resolved is not None:
        subject = f"Subject: Update on {service} Issue - Resolved"
        happened = (f"Between {start} and {_utc(record, resolved)}, you may have experienced "
                    "[specific issue].")
        status = ["**Resolution:**",
                  "Our team identified and resolved the issue. The service is now operating "
                  "normally."]
    elif fix_rolled_back(record):
        subject = f"Subject: Update on {service} Issue - Ongoing"
        happened = f"Since {start} UTC, you may have experienced [specific issue]."
        status = ["**Current status:**",
                  "The fix we began deploying did not work as intended and was withdrawn, so "
                  "the issue is not yet resolved. Our team is preparing a corrected fix; we "
                  f"will write again by {_utc(record, public.next_update)}."]
    else:
        subject = f"Subject: Update on {service} Issue"
        happened = f"Since {start} UTC, you may have experienced [specific issue]."
        status = ["**Current status:**",
                  "Our team has identified the issue and is working on a fix. We will write "
                  f"again by {_utc(record, public.next_update)}, and when it is resolved."]
    if s.simulated:
        subject = subject.replace("Subject: ", "Subject: SIMULATED (demo) — ", 1)
    lines += [
        subject,
        "",
        "Hi [User],",
        "",
        f"We're writing to update you on an issue that affected {service} on {day}.",
        "",
        "**What happened:**",
        happened,
        "",
        *status,
        "",
        "**What we're doing:**",
        "We take these issues seriously and are:",
        "- Conducting a full review of the incident",
        "- Implementing additional safeguards",
        "- Improving our monitoring",
        "",
        "We apologize for any inconvenience this may have caused.",
        "",
        "If you have any questions or concerns, please reach out to [support address].",
        "",
        "Thank you for your patience.",
        "The [Company] Team",
        "",
    ]
    return lines
