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
from datetime import datetime
from typing import TYPE_CHECKING

from console.export.markdown import hours_minutes, md_inline, md_line
from console.export.record import Record, SamplesLike, build_record
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
    exported = f" at {format_ts(now)}" if now is not None else ""
    out = [
        f"# Communication drafts: {s.id_text} — {md_line(s.title) or '(untitled)'}",
        "",
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
        *_status_page(record),
        "---",
        "",
        *_email(record),
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
    lines = [f"- Issue discovered (emergency declared): {_utc(record, declared)}"]
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


def _status_page(record: Record) -> list[str]:
    s = record.state
    service = md_inline(s.service, "")
    start = _utc(record, record.declared).removesuffix(" UTC")
    resolved = _resolved_at(record)
    if resolved is not None:
        head = f"🟢 Resolved - Issue affecting {service}"
        opening = f"We've resolved an issue that was affecting {service}."
        happened = (f"Between {start} and {_utc(record, resolved)}, users experienced "
                    "[specific issue].")
        current = "The issue has been fully resolved. All systems are operating normally."
        steps = "We're conducting a thorough review to prevent similar issues in the future."
    elif s.promoted:
        head = f"🟡 Monitoring - Issue affecting {service}"
        opening = f"A fix has been deployed for an issue affecting {service}."
        happened = f"Since {start} UTC, users may have experienced [specific issue]."
        current = "The fix is live and we are monitoring the results."
        steps = "We will post an update once we have confirmed the issue is resolved."
    else:
        head = f"🟠 Identified - Issue affecting {service}"
        opening = f"We have identified an issue affecting {service} and are working on a fix."
        happened = f"Since {start} UTC, users may experience [specific issue]."
        current = "Our team is working on a fix."
        steps = "We will post an update by [time of the next update]."
    return [
        "## 2. Status page update",
        "",
        head,
        "",
        opening,
        "",
        "**What happened:**",
        happened,
        "",
        "**Current status:**",
        current,
        "",
        "**Next steps:**",
        steps,
        "",
        "We apologize for any inconvenience.",
        "",
    ]


# --- 3. email to affected users ------------------------------------------------------------------


def _email(record: Record) -> list[str]:
    s = record.state
    service = md_inline(s.service, "")
    declared = record.declared
    day = f"{declared.day} {declared:%B %Y}"
    start = _utc(record, declared).removesuffix(" UTC")
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
    else:
        subject = f"Subject: Update on {service} Issue"
        happened = f"Since {start} UTC, you may have experienced [specific issue]."
        status = ["**Current status:**",
                  "Our team has identified the issue and is working on a fix. We will write "
                  "again when it is resolved."]
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
