"""The post-incident review (PIR) as markdown, prefilled from an incident's timeline.

The shape is seed 001's PIR template (Summary, Timeline, Impact, Root Cause, Resolution, What Went
Well, What Went Wrong, Action Items, Prevention, Lessons Learned), with one section added after
Resolution: the **Emergency Change Record** of seed 000 — what was bypassed and why, who approved
and how, the canary as it ran, the rollback from preflight to verification, the guardrails, the
post-emergency gates and the command handovers.

Three rules keep the document honest:

- **Facts only from the record.** Every sentence the export writes is derived from the events (and
  the metric samples). Sections only people can write (root cause, lessons...) carry italic
  prompts, never invented prose; where the record proves something relevant (a waiver, a rollback
  that was NOT verified, an open post-emergency item) it is listed as such, marked as coming from
  the record.
- **The timeline never loses a fact.** Every event is a bullet, in order.
- **User text appears literally.** Titles, notes, reasons, evidence and names are not escaped for
  HTML or rewritten. Only markdown structure is protected: in table cells ``|`` becomes ``\\|`` and
  newlines ``<br>``; in running text, continuation lines are indented and a leading block marker
  (``#``, ``>``, ``-``, ``<``...) is backslash-escaped, so a note cannot open a heading, a list, a
  table or an HTML block. Control characters (ANSI escapes...) are shown as ``\\x1b`` rather than
  obeyed, since exports are printed to terminals.

The escaping lives in :mod:`console.export.markdown`, the facts of the record (shared with
:mod:`console.export.comms`) in :mod:`console.export.record`; this module writes the sections.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from console.export.markdown import (
    and_list,
    hours_minutes,
    md_cell,
    md_inline,
    md_line,
    md_table,
    needs_care,
    visible,
)
from console.export.record import (
    DocumentSettings,
    Measured,
    Record,
    SamplesLike,
    build_record,
    fix_rolled_back,
    harm_sentence,
    measure,
    number,
    outcome_sentence,
    series_figures,
    verdict_word,
)
from console.export.timeline import GuardrailRun
from console.export.why import why_part
from console.model import (
    GUARDRAIL_STATUS_WORDS,
    MILESTONES,
    Event,
    Kind,
    describe,
    format_duration,
    format_head,
    format_ts,
)

if TYPE_CHECKING:
    from console.config import Config
    from console.export.graphs import Chart

__all__ = ["HUMAN_SECTIONS", "SECTIONS", "Record", "build_record", "md_cell", "md_inline",
           "md_line", "md_table", "pir_lines", "pir_parts", "render_pir", "series_figures",
           "visible"]

#: The template's sections, in order (the Emergency Change Record sits after Resolution).
SECTIONS: tuple[str, ...] = (
    "Summary",
    "Milestones",
    "Timeline (UTC)",
    "Notes",
    "Impact",
    "Root Cause",
    "Resolution",
    "Emergency Change Record",
    "What Went Well",
    "What Went Wrong",
    "Action Items",
    "Prevention",
    "Lessons Learned",
)

#: Sections only people can write: prompts and record-proven facts, never invented text.
HUMAN_SECTIONS: tuple[str, ...] = (
    "Root Cause",
    "What Went Well",
    "What Went Wrong",
    "Action Items",
    "Prevention",
    "Lessons Learned",
)

#: The metric samples, or what the PIR takes of them.
Measurements = SamplesLike | Measured

FROM_RECORD = "_From the record — keep what matters, delete the rest:_"


# --- the PIR -------------------------------------------------------------------------------------


def render_pir(events: Sequence[Event], *, config: Config | DocumentSettings | None = None,
               samples: Measurements | Callable[[], Measurements] | None = None,
               now: datetime | None = None) -> str:
    """The PIR of one incident (its events, oldest first) as markdown. ``samples``: the
    metric samples — or what the document takes of them (:class:`Measured`: an export's
    checking child works it out from the samples meanwhile) — or what gives either, asked
    last, when every other section is made."""
    return "\n".join(pir_lines(events, config=config, samples=samples, now=now)) + "\n"


def pir_lines(events: Sequence[Event], *, config: Config | DocumentSettings | None = None,
              samples: Measurements | Callable[[], Measurements] | None = None,
              now: datetime | None = None) -> list[str]:
    """:func:`render_pir` as its lines (joined by line breaks, each may hold line breaks of
    its own; the document ends with one more): for a writer that writes a long PIR a part at
    a time instead of making it one string first."""
    before, impact, after = pir_parts(events, config=config, samples=samples, now=now)
    return before + impact() + after


def pir_parts(events: Sequence[Event], *, config: Config | DocumentSettings | None = None,
              samples: Measurements | Callable[[], Measurements] | None = None,
              now: datetime | None = None,
              ) -> tuple[list[str], Callable[[], list[str]], list[str]]:
    """:func:`pir_lines` in three parts: the lines before the Impact section, what makes that
    section's lines (asking ``samples`` then), and the lines after it — for a writer that
    writes the first part while the samples are worked out (an export's checking child)."""
    record = build_record(events, config, pir=True)
    before: list[str] = []
    before += _header(record, now)
    before += _summary(record)
    before += _milestones(record)
    before += _timeline(record)
    before += _notes(record)
    after: list[str] = []
    after += _root_cause()
    after += _resolution(record)
    after += _emergency_record(record)
    after += _went_well(record)
    after += _went_wrong(record)
    after += _action_items(record)
    after += _prevention()
    after += _lessons()
    while after and after[-1] == "":
        after.pop()

    def impact() -> list[str]:
        got = samples() if callable(samples) else samples
        return _impact(record, got if isinstance(got, Measured) else measure(record, got or {}))

    return before, impact, after


def _section(title: str) -> list[str]:
    return [f"## {title}", ""]


def _header(record: Record, now: datetime | None) -> list[str]:
    s = record.state
    clock = record.clock
    declared = record.declared
    title = md_line(s.title) or "(untitled)"
    lines = [
        f"# Post-Incident Review: {s.id_text} — {title}",
        "",
        f"Date: {declared:%Y-%m-%d}",
        "",
        f"Severity: {s.priority or '(unknown)'}",
        "",
        f"Duration: {hours_minutes(record.duration_s)}"
        + ("" if s.closed else " (still open)"),
        "",
    ]
    if s.simulated:
        lines += ["**SIMULATED incident** (warroom demo): approvals, traffic and metrics are not "
                  "real.", ""]
    commander = md_inline(s.commander, "  ")
    if s.handovers:
        commander += (f" (declared by {md_inline(s.declared_by)}; {s.handovers} command "
                      f"handover{'s' if s.handovers != 1 else ''})")
    elif s.declared_by and s.declared_by != s.commander:
        commander += f" (declared by {md_inline(s.declared_by)})"
    if s.closed and s.closed_ts is not None:
        status = f"closed at {clock.at(s.closed_ts)} UTC — {md_inline(s.close_reason)}"
    else:
        status = f"open at the last event ({clock.at(record.end)} UTC)"
    if s.closed and "resolved" not in s.milestones:
        status += " — closed **without a `resolved` milestone**"
    head = record.events[-1]
    lines += [
        f"- **Incident**: {s.id_text}, {s.category} emergency on {md_inline(s.service)}: "
        f"{md_inline(s.from_version)} → {md_inline(s.to_version)}",
        f"- **Declared**: {declared:%Y-%m-%d %H:%M:%S} UTC"
        + clock.local_words(declared, date_too=True),
        f"- **Commander**: {commander}",
        *_roles_lines(record),
        *_links_lines(record),
        f"- **Status**: {status}",
        f"- **Record**: {len(record.events)} events, chain "
        + (f"`{format_head(head.id, head.hash, s.chain_keyed)}` (`warroom verify {s.id_text} "
           f"--head {head.id}:{head.hash}` proves a copy holds this record unchanged)"
           if head.hash else "head unknown (not read from a store)")
        + (f"; exported {format_ts(now)}" if now is not None else ""),
        "",
    ]
    return lines


def _roles_lines(record: Record) -> list[str]:
    """Who held which role, and everyone else the record shows acting."""
    s = record.state
    roles = [f"{md_inline(role)} {md_inline(user)}" for role, user in s.roles.items()]
    named = {user for user in s.roles.values()} | {s.commander, s.declared_by}
    others: dict[str, str] = {}
    for approval in s.approvals:
        who = approval.relayed_from or approval.user
        if approval.kind != "waived" and who not in named:
            others.setdefault(who, f"{approval.role} approver")
    for event in record.of(Kind.HANDOVER):
        user = str(event.payload.get("user") or event.actor)
        if user not in named:
            others.setdefault(user, "commander after a handover")
    lines = []
    if roles:
        lines.append("- **Roles**: " + "; ".join(roles))
    if others:
        lines.append("- **Also on the record**: " + "; ".join(
            f"{md_inline(user)} ({md_inline(what)})" for user, what in others.items()))
    return lines


def _links_lines(record: Record) -> list[str]:
    links = record.state.links
    if not links:
        return []
    return ["- **Links**: " + "; ".join(f"{md_inline(kind)} {link_text(url)}"
                                        for kind, url in links)]


_PLAIN_URL = re.compile(r"https?://[A-Za-z0-9._~:/?#@!$&'()*+,;=%-]+")


def link_text(url: str) -> str:
    """A link a person gave: an autolink when it is a plain http(s) URL (checked when it was
    recorded), else literal text."""
    return f"<{url}>" if _PLAIN_URL.fullmatch(url) and "](" not in url else md_inline(url)


def _milestones(record: Record) -> list[str]:
    s = record.state
    clock = record.clock
    lines = _section("Milestones")
    marks = [s.milestones[name] for name in MILESTONES if name in s.milestones]
    if not marks:
        lines += ["_No milestone was marked (`warroom mark ID detected|impact-started|"
                  "mitigated|resolved --at TIME`, or `m` in the console). Mark them before the "
                  "review: the durations below need them._", ""]
    else:
        rows = []
        for mark in marks:
            late = ""
            if abs((mark.recorded - mark.at).total_seconds()) >= 60:
                late = f" (recorded {clock.at(mark.recorded)})"
            rows.append([f"**{mark.milestone}**", clock.at(mark.at) + late,
                         md_cell(clock.local_words(mark.at).strip(" ()") or "—"),
                         md_cell(mark.actor), md_cell(mark.reason)])
        lines += md_table(["Milestone", "At (UTC)", "Local", "Marked by", "How we know"], rows)
        lines.append("")
    lines += _durations(record)
    highlights = _highlight_lines(record)
    if highlights:
        lines += ["Moments the team marked as important:", "", *highlights, ""]
    return lines


def _durations(record: Record) -> list[str]:
    """Time to detect, mitigate and resolve, against the priority's target where one applies
    (the deploy-time target counts from detection, or from the declaration when detection was
    not marked)."""
    s = record.state
    m = s.milestones
    start_mark = m.get("detected")
    start, start_word = ((start_mark.at, "detection") if start_mark is not None
                         else (record.declared, "declaration"))
    target = s.target_hours * 3600 if s.target_hours else None
    rows = []
    impact = m.get("impact-started")
    if impact is not None and start_mark is not None:
        rows.append(["Time to detect", "impact started → detected",
                     format_duration((start_mark.at - impact.at).total_seconds()), "—"])
    for name, label in (("mitigated", "Time to mitigate"), ("resolved", "Time to resolve")):
        mark = m.get(name)
        if mark is None:
            rows.append([label, f"{start_word} → {name}", "**not marked**", "—"])
            continue
        took = (mark.at - start).total_seconds()
        verdict = "—"
        if target is not None:
            verdict = (f"{s.priority} target {format_duration(target)}: "
                       + ("met" if took <= target else "**MISSED**"))
        rows.append([label, f"{start_word} → {name}", format_duration(took), verdict])
    return ["Durations (wall-clock, from the marked moments):", "",
            *md_table(["Duration", "From → to", "Took", "Against the target"], rows), ""]


def _highlight_lines(record: Record) -> list[str]:
    s = record.state
    if not s.highlights:
        return []
    clock = record.clock
    wanted = set(s.highlights)
    lines = []
    for event in record.events:
        if event.id in wanted:
            why = s.highlights[event.id]
            text = (str(event.payload.get("text", "")) if event.kind == Kind.NOTE
                    else describe(event))
            lines.append(f"- ⭐ {clock.moment(event.ts)} — {md_inline(event.actor)}: "
                         f"{md_inline(text)}" + (f" — _{md_inline(why)}_" if why else ""))
    return lines


def _summary(record: Record) -> list[str]:
    s = record.state
    clock = record.clock
    bypassed = and_list([md_inline(b.element, "") for b in s.bypasses]) or "no element"
    text = (f"From the record: {s.priority} {s.category} emergency on {md_inline(s.service, '')}, "
            f"declared {clock.at(record.declared)} UTC by {md_inline(s.declared_by, '')}: "
            f"“{md_inline(s.title, '')}”. The change {md_inline(s.from_version, '')} → "
            f"{md_inline(s.to_version, '')} bypassed {bypassed}. {outcome_sentence(record)}")
    harm = harm_sentence(record)
    if harm:
        text += f" **{harm}**"
    if s.closed and s.closed_ts is not None:
        text += (f" Closed at {clock.at(s.closed_ts)} UTC, "
                 f"{hours_minutes(record.duration_s)} after declaration.")
    else:
        text += " The incident was still open at the last event."
    return [
        *_section("Summary"),
        "_Write two or three sentences: what users saw, why, and how it ended._",
        "",
        text,
        "",
    ]


def _timeline(record: Record) -> list[str]:
    clock = record.clock
    lines = [
        *_section("Timeline (UTC)"),
        "_The story of the record: each status change once (repeated polls folded, with their "
        "count and span), in time order; notes are in their own section. Add what happened "
        "outside warroom (first detection, paging, customer reports) where it belongs._",
        "",
    ]
    moment = clock.moment if clock.local is not None else clock.at
    starred = record.state.highlights
    actors = _Actors()
    append = lines.append
    # A line per status change of a long record: md_inline only where the text needs it.
    for line in record.story.lines:
        event = line.event
        text = line.text
        if needs_care(text) is not None:
            text = md_inline(text)
        who = actors.get(line.actor)
        if who is None:
            who = actors(line.actor)
        star = "⭐ " if starred and event.id in starred else ""
        append(f"- {star}{moment(event.ts)} — {who}: {text}")
    lines.append("")
    return lines


class _Actors(dict[str, str]):
    """``md_inline`` of actors, each worked out once: a long record has a few actors and a
    line per event."""

    def __call__(self, actor: str) -> str:
        shown = self.get(actor)
        if shown is None:
            shown = self[actor] = md_inline(actor)
        return shown


def _notes(record: Record) -> list[str]:
    clock = record.clock
    lines = _section("Notes")
    found = record.of(Kind.NOTE)
    if not found:
        return [*lines, "_No notes were recorded._", ""]
    lines += [f"_{len(found)} note{'s' if len(found) != 1 else ''} from the record, as typed._",
              ""]
    moment = clock.moment if clock.local is not None else clock.at
    actors = _Actors()
    append = lines.append
    for event in found:
        text = event.payload.get("text", "")
        if text.__class__ is not str or needs_care(text) is not None:
            text = md_inline(text)
        who = actors.get(event.actor)
        if who is None:
            who = actors(event.actor)
        append(f"- {moment(event.ts)} — {who}: {text}")
    lines.append("")
    return lines


def _impact(record: Record, measured: Measured) -> list[str]:
    s = record.state
    clock = record.clock
    declared = record.declared
    end_word = "closed" if s.closed else "last event"
    lines = [
        *_section("Impact"),
        "- **Users affected**: _Fill in: how many users, which ones._",
        f"- **Duration**: {hours_minutes(record.duration_s)} (declared {clock.at(declared)} → "
        f"{end_word} {clock.at(record.end)} UTC)",
        f"- **Service**: {md_inline(s.service)}",
    ]
    if record.max_percent:
        exposure = f"{md_inline(s.to_version)} reached {record.max_percent}% canary weight"
        if s.promoted and s.promoted_ts is not None:
            exposure += f" at {clock.at(s.promoted_ts)} UTC"
        elif s.canary_percent == 0:
            last_zero = record.last(Kind.WEIGHT_SET)
            if last_zero is not None:
                exposure += f"; back to 0% at {clock.at(last_zero.ts)} UTC"
        lines.append(f"- **Canary weight reached**: {exposure}")
    else:
        lines.append(f"- **Canary weight reached**: 0% ({md_inline(s.to_version)} took no "
                     "traffic)")
    lines += [
        "- **User experience**: _Fill in: what users saw._",
        "- **Revenue impact**: _Fill in: estimate, or none._",
        "- **Reputation impact**: _Fill in: support tickets, social media mentions._",
        "",
    ]
    figures = measured.figures
    if not figures:
        lines += ["_No metric samples were recorded for this incident._", ""]
        return lines
    lines += ["Metrics sampled by the guardrails (peak per series; the limit is the one the "
              "guardrail reported; time over it ≈ sum of sample intervals above it):", ""]
    rows = []
    for f in figures:
        if f.over_s is None:
            over = "—"
        elif f.over_first is None:
            over = "never"
        else:
            over = (f"{format_duration(f.over_s)} ({clock.unix(f.over_first)} → "
                    f"{clock.unix(f.over_last or f.over_first)})")
        rows.append([
            md_cell(f.series),
            str(f.count),
            record.value(f.guardrail, f.peak),
            clock.unix(f.peak_ts) if f.peak_ts is not None else "—",
            f.limit_text,
            over,
        ])
    lines += md_table(["Series", "Samples", "Peak", "Peak at (UTC)", "Limit", "Over the limit"],
                      rows)
    lines.append("")
    lines += _graphs(measured.charts)
    return lines


def _graphs(charts: list[Chart]) -> list[str]:
    """A Mermaid xychart per guardrail: canary and baseline against the limit, stage changes
    and the rollback marked on the time axis (console/export/graphs.py)."""
    lines: list[str] = []
    for chart in charts:
        drawn = [track for track in ("canary", "baseline", "limit") if track in chart.lines]
        lines += [f"**{md_inline(chart.guardrail)}** — lines in order: {', '.join(drawn)}"
                  + (f" ({md_inline(chart.unit)})" if chart.unit else "")
                  + "; on the time axis (UTC): stage changes (→N%), the rollback and its "
                  "verdict. A canary at 0 took no traffic.", "",
                  "```mermaid", chart.mermaid, "```", ""]
    return lines


def _root_cause() -> list[str]:
    return [
        *_section("Root Cause"),
        "_Write the detailed technical explanation of what caused the issue (code snippets, "
        "sequence diagrams if helpful). The record shows how the change ran, not why the issue "
        "arose._",
        "",
    ]


def _resolution(record: Record) -> list[str]:
    s = record.state
    clock = record.clock
    lines = _section("Resolution")
    if s.promoted and s.promoted_ts is not None:
        elapsed = (s.promoted_ts - record.declared).total_seconds()
        target = _target_words(record, elapsed)
        how = " via **100% IMMEDIATELY**" if s.immediate_used else ""
        lines.append(f"**{md_inline(s.to_version, '')} shipped to 100%** of "
                     f"{md_inline(s.service, '')} at {clock.at(s.promoted_ts)} UTC{how}, "
                     f"{format_duration(elapsed)} after declaration{target}.")
        result, detail = record.gate_status(s.post_checklist()[0])
        lines += ["", f"Resolution verified (post-emergency check): {result.upper()}"
                  + (f" — {md_inline(detail, '')}" if detail else "") + "."]
    elif s.rolled_back:
        request = record.last(Kind.ROLLBACK_REQUESTED)
        how = ""
        if request is not None:
            p = request.payload
            how = (f" ({'automatic' if p.get('automatic') else 'manual'}, requested at canary "
                   f"weight {md_inline(p.get('weight', ''), '')}% at {clock.at(request.ts)} UTC)")
        finished = s.rollback_finished_ts
        word = verdict_word(record)
        if s.rollback_status == "verified" and finished is not None:
            tail = f"**{word}** at {clock.at(finished)} UTC."
        elif s.rollback_status in ("not_verified", "failed") and finished is not None:
            tail = (f"**{word}** at {clock.at(finished)} UTC: "
                    f"{md_inline(s.rollback_detail, '')}.")
        else:
            tail = f"**{word}** at the last event."
        lines.append(f"**Rolled back to {md_inline(s.rollback_target, '')}**{how}: {tail} "
                     f"{md_inline(s.to_version, '')} did not ship.")
        harm = harm_sentence(record)
        if harm:
            lines += ["", f"**⚠ {harm}**"]
    else:
        lines.append(f"Not resolved at the last event: {outcome_sentence(record)}")
    if s.closed and s.closed_ts is not None:
        lines += ["", f"Closed at {clock.at(s.closed_ts)} UTC: {md_inline(s.close_reason, '')}"]
    lines += ["", "_Describe what was changed to fix the issue, and what remains to be done._", ""]
    return lines


def _target_words(record: Record, elapsed_s: float) -> str:
    hours = record.state.target_hours
    if not hours:
        return ""
    met = "met" if elapsed_s <= hours * 3600 else "MISSED"
    return f" ({record.state.priority} target {format_duration(hours * 3600)}: {met})"


# --- the Emergency Change Record -----------------------------------------------------------------


def _emergency_record(record: Record) -> list[str]:
    lines = _section("Emergency Change Record")
    lines += ["_What seed 000 asks to document: what was bypassed and why, what compensated, who "
              "approved, how the canary and the rollback ran, and the post-emergency "
              "discipline._", ""]
    lines += _declaration_part(record)
    lines += _approvals_part(record)
    lines += _canary_part(record)
    lines += _rollback_part(record)
    lines += _guardrails_part(record)
    lines += _gates_part(record)
    lines += _command_part(record)
    return lines


def _declaration_part(record: Record) -> list[str]:
    s = record.state
    clock = record.clock
    declared = record.declared
    lines = ["### Declaration and bypass scope", ""]
    lines.append(f"- **Declared**: {clock.at(declared)} UTC by {md_inline(s.declared_by)}; "
                 f"category {md_inline(s.category)}, priority {md_inline(s.priority)}")
    lines.append("- **The change**: " + (
        "the fix for an ongoing harm — rolling it back brings the harm back"
        if s.change_is_fix else "a risky change of its own — rolling it back ends the risk"))
    if s.target_hours and s.deadline is not None:
        if s.promoted and s.promoted_ts is not None:
            elapsed = (s.promoted_ts - declared).total_seconds()
            state = f"100% after {format_duration(elapsed)}: " + (
                "met" if elapsed <= s.target_hours * 3600 else "MISSED")
        else:
            state = f"{md_inline(s.to_version)} did not reach 100%"
        lines.append(f"- **Deploy target**: {format_duration(s.target_hours * 3600)} "
                     f"(by {clock.at(s.deadline)} UTC) — {state}")
    if s.affects:
        lines.append("- **Mission-critical scenarios affected**: "
                     + ", ".join(md_inline(a) for a in s.affects))
        if s.advice:
            lines.append(f"- **Advice**: {md_inline(s.advice)}")
    for event in record.of(Kind.RATE_WARNING):
        lines.append(f"- **Emergency-rate WARNING**: {md_inline(event.payload.get('message', ''))}")
    lines.append("")
    if not s.bypasses:
        lines += ["No discipline element was bypassed.", ""]
        return lines
    rows = []
    for bypass in s.bypasses:
        result, detail = (record.gate_status(bypass.checklist_item) if bypass.post_gate
                          else ("—", ""))
        rows.append([
            md_cell(bypass.element),
            md_cell(bypass.reason),
            md_cell(bypass.compensation),
            md_cell(bypass.post_gate),
            _result_cell(result, detail),
        ])
    lines += md_table(["Bypassed", "Why", "Compensation", "Post-gate", "Post-gate result"], rows)
    lines.append("")
    return lines


def _result_cell(result: str, detail: str) -> str:
    word = {"passed": "passed", "failed": "**FAILED**", "waived": "**WAIVED**",
            "open": "**open**", "n/a": "n/a", "—": "—"}.get(result, md_cell(result))
    return f"{word}: {md_cell(detail)}" if detail else word


def _approvals_part(record: Record) -> list[str]:
    s = record.state
    clock = record.clock
    lines = ["### Approvals", ""]
    required = ", ".join(md_inline(r) for r in s.required_roles) or "none"
    if s.approvals_complete:
        counted = s.current_approvals()
        waived = [role for role in s.required_roles
                  if role in counted and counted[role].kind == "waived"]
        status = "complete" + (f", with {len(waived)} WAIVED ({', '.join(waived)})"
                               if waived else "")
    else:
        status = "**MISSING**: " + ", ".join(md_inline(r) for r in s.missing_roles)
    lines.append(f"Required for a {md_inline(s.category)} emergency: {required}. For "
                 f"{md_inline(s.to_version)}: {status}.")
    lines.append("")
    if not s.approvals:
        lines += ["No approval was recorded.", ""]
        return lines
    rows = []
    for a in s.approvals:
        if a.kind == "waived":
            approver, how = "—", f"**WAIVED** by {md_cell(a.recorded_by)}"
        elif a.kind == "relayed":
            approver = md_cell(a.relayed_from or a.user)
            how = f"relayed by {md_cell(a.recorded_by)}"
        elif a.kind == "simulated":
            approver, how = md_cell(a.user), "**SIMULATED** (demo, not a real approval)"
        else:
            approver, how = md_cell(a.user), "direct"
        if a.stale:
            how += f"; **STALE** (target is now {md_cell(s.to_version)})"
        said = []
        if a.reason:
            said.append(f"reason: {md_cell(a.reason)}")
        if a.evidence:
            said.append(f"evidence: {md_cell(a.evidence)}")
        if a.note:
            said.append(f"note: {md_cell(a.note)}")
        rows.append([md_cell(a.role), approver, how, md_cell(a.version), clock.at(a.ts),
                     "; ".join(said) or "—"])
    lines += md_table(["Role", "Approver", "How", "For version", "At (UTC)",
                       "Reason / evidence / note"], rows)
    lines.append("")
    return lines


def _canary_part(record: Record) -> list[str]:
    s = record.state
    clock = record.clock
    lines = ["### Canary", ""]
    if s.plan:
        stages = " → ".join(
            f"{stage.percent}%" + (f" (hold {format_duration(stage.hold_s)})"
                                   if stage.hold_s else "")
            for stage in s.plan
        )
        lines += [f"Plan {md_inline(s.plan_name or '(unnamed)', '')}: {stages}.", ""]
    if s.visits:
        rows = []
        for visit in s.visits:
            stage = "—"
            planned = "—"
            if 0 <= visit.stage_index < len(s.plan):
                stage = f"{visit.stage_index + 1} of {len(s.plan)}"
                hold = s.plan[visit.stage_index].hold_s
                planned = format_duration(hold) if hold else "—"
            dwell = format_duration(visit.dwell_s(record.end))
            if visit.left is None:
                dwell += " (still there at the last event)"
            how = "**100% IMMEDIATELY**" if visit.action == "immediate" else md_cell(visit.action)
            by = record.requesters.get((visit.entered, visit.percent), visit.actor)
            rows.append([f"{visit.percent}%", stage, clock.at(visit.entered), md_cell(by), how,
                         dwell, planned])
        lines += ["Stages reached:", ""]
        lines += md_table(["Weight", "Stage", "Entered (UTC)", "By", "How", "Dwell",
                           "Planned hold"], rows)
        lines.append("")
    else:
        lines += ["The canary never took traffic.", ""]
    for event in record.of(Kind.WEIGHT_SET):
        if int(event.payload.get("percent", 0) or 0) == 0 and s.visits:
            lines.append(f"- {clock.at(event.ts)} — canary weight back to 0% "
                         f"({md_inline(event.payload.get('action', ''))})")
    overrides = [e for e in record.of(Kind.WEIGHT_REQUESTED) if e.payload.get("overrides")]
    immediate = [e for e in record.of(Kind.WEIGHT_REQUESTED)
                 if e.payload.get("action") == "immediate"]
    for event in record.of(Kind.WEIGHT_FAILED):
        lines.append(f"- {clock.at(event.ts)} — setting the weight to "
                     f"{md_inline(event.payload.get('percent', ''))}% FAILED: "
                     f"{md_inline(event.payload.get('error', ''))}")
    if lines[-1] != "":
        lines.append("")
    if overrides:
        lines += ["Overrides (blocks set aside with a typed reason):", ""]
        for event in overrides:
            p = event.payload
            target = f"{md_inline(p.get('to_percent', ''))}%"
            for item in p.get("overrides") or []:
                if not isinstance(item, dict):
                    continue
                words = f" ({md_inline(item['words'])})" if item.get("words") else ""
                lines.append(f"- {clock.at(event.ts)} — {md_inline(event.actor)}, "
                             f"{md_inline(p.get('action', 'advance'))} to {target}: overrode "
                             f"**{md_inline(item.get('block', ''))}**{words}; reason: "
                             f"{md_inline(item.get('reason', ''))}")
        lines.append("")
    else:
        lines += ["No block was overridden.", ""]
    if immediate:
        for event in immediate:
            lines.append(f"**100% IMMEDIATELY** was used: requested at {clock.at(event.ts)} UTC "
                         f"by {md_inline(event.actor, '')} from "
                         f"{md_inline(event.payload.get('from_percent', ''), '')}%; reason: "
                         f"{md_inline(event.payload.get('reason', ''), '')}")
            lines.append("")
    else:
        lines += ["“100% immediately” was not used.", ""]
    return lines


def _checks_table(checks: Sequence[dict[str, Any]]) -> list[str]:
    rows = [[md_cell(c.get("name", "")), "ok" if c.get("ok") else "**FAILED**",
             md_cell(c.get("detail", ""))] for c in checks]
    return [*md_table(["Check", "Result", "Detail"], rows), ""]


def _rollback_part(record: Record) -> list[str]:
    s = record.state
    clock = record.clock
    lines = ["### Rollback", ""]
    lines.append(f"- **Target**: {md_inline(s.rollback_target or '(unknown)')}")
    acked = record.last(Kind.CHECKLIST_ACKED)
    if acked is not None:
        lines.append(f"- **Compatibility checklist** (seed 002): acknowledged by "
                     f"{md_inline(acked.actor)} at {clock.at(acked.ts)} UTC")
        for item in acked.payload.get("items") or []:
            lines.append(f"  - {md_inline(item, '    ')}")
    else:
        lines.append("- **Compatibility checklist** (seed 002): **NOT acknowledged**")
    preflights = record.of(Kind.PREFLIGHT_PASSED, Kind.PREFLIGHT_FAILED)
    if not preflights:
        lines.append("- **Preflight**: **never run**")
    for event in preflights:
        word = "PASSED" if event.kind == Kind.PREFLIGHT_PASSED else "**FAILED**"
        detail = event.payload.get("detail")
        lines.append(f"- **Preflight** to {md_inline(event.payload.get('target', ''))}: {word} "
                     f"at {clock.at(event.ts)} UTC" + (f" — {md_inline(detail)}" if detail
                                                       else ""))
    first_stage = record.at_first_stage
    if first_stage is not None:
        ready = bool(first_stage.preflight_ok and first_stage.checklist_acked)
        lines.append("- **Ready before the first stage**: " + (
            "yes (preflight passed, checklist acknowledged)" if ready
            else "**NO** — the canary started without a passed preflight and acknowledged "
                 "checklist"))
    lines.append("")
    if preflights and preflights[-1].payload.get("checks"):
        lines += ["Checks of the last preflight:", ""]
        lines += _checks_table(preflights[-1].payload["checks"])
    steps = record.of(Kind.ROLLBACK_REQUESTED, Kind.ROLLBACK_STARTED, Kind.ROLLBACK_PROGRESS,
                      Kind.ROLLBACK_COMPLETED, Kind.ROLLBACK_FAILED, Kind.VERIFICATION_STARTED)
    if not steps:
        lines += ["**Execution**: no rollback was requested.", ""]
        return lines
    lines += ["**Execution**:", ""]
    requested_at: datetime | None = None
    for event in steps:
        p = event.payload
        when = clock.at(event.ts)
        after = ""
        if requested_at is not None:
            took = (event.ts - requested_at).total_seconds()
            gap = record.without_console_s(requested_at, event.ts)
            after = (f" ({format_duration(took - gap)} after the request, not counting "
                     f"{format_duration(gap)} with no console open)" if gap
                     else f" ({format_duration(took)} after the request)")
        if event.kind == Kind.ROLLBACK_REQUESTED:
            requested_at = event.ts
            how = "automatic" if p.get("automatic") else "manual"
            lines.append(f"- {when} — requested ({how}, at canary weight "
                         f"{md_inline(p.get('weight', ''))}%) by {md_inline(event.actor)}: "
                         f"{md_inline(p.get('reason', ''))}")
        elif event.kind == Kind.ROLLBACK_STARTED:
            lines.append(f"- {when} — started: {md_inline(p.get('detail', ''))}")
        elif event.kind == Kind.ROLLBACK_PROGRESS:
            lines.append(f"- {when} — progress: {md_inline(p.get('message', ''))}")
        elif event.kind == Kind.ROLLBACK_COMPLETED:
            lines.append(f"- {when} — completed: the deployer reports "
                         f"{md_inline(p.get('version', ''))} live{after}")
        elif event.kind == Kind.ROLLBACK_FAILED:
            lines.append(f"- {when} — **FAILED**{after}: {md_inline(p.get('error', ''))}")
        else:
            hold = number(p.get("hold_s"))
            held = format_duration(hold) if hold is not None else md_inline(p.get("hold_s", ""))
            lines.append(f"- {when} — verification started: guardrails must hold for {held}")
    lines.append("")
    verdict = record.last(Kind.ROLLBACK_VERIFIED, Kind.ROLLBACK_NOT_VERIFIED)
    if verdict is None:
        if s.rollback_status == "failed":
            lines += ["**Verification**: none — the rollback **FAILED**.", ""]
        else:
            lines += ["**Verification**: not finished at the last event — the rollback is "
                      "**NOT VERIFIED**.", ""]
        return lines
    after = ""
    if requested_at is not None:
        waited = format_duration((verdict.ts - requested_at).total_seconds())
        after = f", {waited} after the request"
    if verdict.kind == Kind.ROLLBACK_VERIFIED:
        lines += [f"**Verification**: **ROLLBACK VERIFIED** at {clock.at(verdict.ts)} UTC{after}: "
                  f"{md_inline(verdict.payload.get('target', ''), '')} live, weight 0%, "
                  "guardrails healthy.", ""]
    else:
        lines += [f"**Verification**: **ROLLBACK NOT VERIFIED** at {clock.at(verdict.ts)} UTC"
                  f"{after}: {md_inline(verdict.payload.get('reason', ''), '')}", ""]
    if verdict.payload.get("checks"):
        lines += _checks_table(verdict.payload["checks"])
    return lines


def _guardrails_part(record: Record) -> list[str]:
    s = record.state
    clock = record.clock
    lines = ["### Guardrails", ""]
    if s.guardrails:
        lines += ["Last status:", ""]
        for g in s.guardrails.values():
            word = GUARDRAIL_STATUS_WORDS.get(g.status, g.status)
            since = f" since {clock.at(g.since)}" if g.since is not None else ""
            detail = f" — {md_inline(g.detail)}" if g.detail else ""
            lines.append(f"- {md_inline(g.name)}: {word}{since}{detail} (on {g.consecutive} "
                         f"breaches in a row: {md_inline(g.on_breach)})")
        if s.rolled_back and s.rollback_status != "verified":
            lines.append("")
            lines.append("Canary evaluations stop when the rollback starts: these are the last "
                         "statuses seen on the canary.")
        lines.append("")
    runs = record.story.runs
    if runs:
        lines += ["Each guardrail over the incident (every status change is on the timeline; a "
                  "breach episode is a run of polls in BREACH):", ""]
        rows = []
        limits_seen: dict[str, str] = {}
        for name, mine in record.story.by_guardrail.items():
            episodes = _Episodes(mine)
            longest = episodes.longest
            limits_seen[name] = _limits_seen(record, name, episodes.limits)
            rows.append([
                md_cell(name),
                str(len(mine)),
                str(episodes.breaches) + (f" ({episodes.sustained} sustained)"
                                          if episodes.sustained else ""),
                (f"{longest.count} polls, {format_duration(longest.span_s)} from "
                 f"{clock.at(longest.first.ts)}") if longest is not None else "—",
                record.value(name, episodes.peak) if episodes.peak is not None else "—",
                limits_seen[name],
                str(episodes.blind) if episodes.blind else "—",
            ])
        lines += md_table(["Guardrail", "Status changes", "Breach episodes", "Longest breach",
                           "Peak canary in breach", "Limits", "Can't evaluate"], rows)
        lines.append("")
        lines += _stable_limits_note(limits_seen)
    else:
        lines += ["No guardrail changed status.", ""]
    actions = record.of(Kind.GUARDRAIL_ACTION)
    if actions:
        lines += ["Sustained-breach actions:", ""]
        for event in actions:
            p = event.payload
            lines.append(f"- {clock.at(event.ts)} — {md_inline(p.get('name', ''))}: sustained "
                         f"breach ({md_inline(p.get('breaches', ''))} in a row) → "
                         f"**{md_inline(p.get('action', ''))}**")
        lines.append("")
    return lines + why_part(record)


class _Episodes:
    """One guardrail's runs in one pass (a long record has tens of thousands): its breach
    episodes (how many, how many sustained, the longest — most polls, then the longest span,
    the first of equals — and the peak canary in breach), its runs that could not be
    evaluated, and the limits it reported on each track."""

    __slots__ = ("blind", "breaches", "limits", "longest", "peak", "sustained")

    def __init__(self, runs: Sequence[GuardrailRun]) -> None:
        breaches = sustained = blind = most = 0
        longest: GuardrailRun | None = None
        longest_span = 0.0
        peak: float | None = None
        limits: dict[str, set[float]] = {}
        for run in runs:
            seen = limits.get(run.mode)
            if seen is None:
                seen = limits[run.mode] = set()
            if run.limits:
                seen.update(run.limits)
            status = run.status
            if status == "breach":
                breaches += 1
                if run.sustained:
                    sustained += 1
                count = run.count
                if count > most:
                    most, longest, longest_span = count, run, run.span_s
                elif count == most and run.span_s > longest_span:
                    longest, longest_span = run, run.span_s
                value = run.peak
                if value is not None and (peak is None or value > peak):
                    peak = value
            elif status == "cant_evaluate":
                blind += 1
        self.breaches, self.sustained, self.blind = breaches, sustained, blind
        self.longest, self.peak, self.limits = longest, peak, limits


def _limits_seen(record: Record, name: str, raw: dict[str, set[float]]) -> str:
    """The limits the guardrail reported (``raw``: per track, as :class:`_Episodes` gathers
    them): a limit on the stable track that differs from the canary's is said, not hidden."""
    by_track: dict[str, list[str]] = {}
    for track, limits in raw.items():
        shown = by_track.setdefault(track, [])
        for limit in sorted(limits):
            text = record.value(name, limit)
            if text not in shown:
                shown.append(text)
    canary = by_track.get("canary", [])
    stable = by_track.get("stable", [])
    parts = [_span(canary)] if canary else []
    if stable and stable != canary:
        parts.append(f"{_span(stable)} on the stable track")
    return "; ".join(parts) or "—"


def _span(shown: list[str]) -> str:
    return shown[0] if len(shown) == 1 else f"{shown[0]} – {shown[-1]}"


def _stable_limits_note(limits_seen: dict[str, str]) -> list[str]:
    """Why a guardrail's limit changed while the rollback was verified, when it did
    (``limits_seen``: each guardrail's :func:`_limits_seen`)."""
    changed = []
    for name, seen in limits_seen.items():
        if seen.count("on the stable track"):
            changed.append(md_inline(name))
    if not changed:
        return []
    return ["While the rollback was verified, the guardrails judged the stable track alone: "
            "ratio limits need a canary to compare with, so only the absolute maximum applied "
            f"there — which is why the limit of {and_list(changed)} differs on the stable "
            "track.", ""]


def _id_at(record: Record, ts: datetime) -> int:
    """The id of the first event at or after ``ts`` (to order a moment among events)."""
    for event in record.of(Kind.CONSOLE_CLOSED):
        if event.ts >= ts:
            return event.id
    return record.events[-1].id


def _gates_part(record: Record) -> list[str]:
    s = record.state
    clock = record.clock
    lines = ["### Post-emergency gates", ""]
    if s.promoted and s.promoted_ts is not None:
        lines.append(f"The checklist opened when {md_inline(s.to_version, '')} reached 100% at "
                     f"{clock.at(s.promoted_ts)} UTC.")
    elif s.rollback_status == "verified" and s.rollback_finished_ts is not None:
        lines.append(f"The checklist opened when the rollback was verified at "
                     f"{clock.at(s.rollback_finished_ts)} UTC.")
    else:
        lines.append("Not started: the checklist opens when the change reaches 100% or the "
                     "rollback is verified. Every item is **open**.")
    lines.append("")
    rows = []
    for item in record.checklist_rows():
        result, detail = record.gate_status(item)
        gate = s.gates.get(item)
        rows.append([md_cell(item), _result_cell(result, ""), md_cell(detail),
                     clock.at(gate.ts) if gate else "—",
                     md_cell(gate.actor) if gate else "—"])
    lines += md_table(["Item", "Result", "Detail", "Recorded (UTC)", "By"], rows)
    lines.append("")
    return lines


def _command_part(record: Record) -> list[str]:
    s = record.state
    clock = record.clock
    lines = ["### Command", ""]
    declared = record.first(Kind.DECLARED)
    first_commander = (declared.payload.get("commander") if declared else None) or s.declared_by
    lines.append(f"- **Commander at declaration**: {md_inline(first_commander)}; at the last "
                 f"event: {md_inline(s.commander)}")
    # In time order: each person's consoles (counted), handovers, reconciliations.
    moments: list[tuple[int, str]] = []
    consoles: dict[tuple[str, str], list[Event]] = {}
    for event in record.of(Kind.CONSOLE_OPENED):
        p = event.payload
        consoles.setdefault((str(p.get("user") or event.actor), str(p.get("host", ""))),
                            []).append(event)
    for (user, host), opened in consoles.items():
        first = opened[0]
        text = (f"- {clock.at(first.ts)} — console opened by {md_inline(user)} on "
                f"{md_inline(host)} ({md_inline(first.payload.get('mode', 'commander'))})")
        if len(opened) > 1:
            text += f"; opened {len(opened)} times in all, the last at {clock.at(opened[-1].ts)}"
        moments.append((first.id, text))
    handovers = record.of(Kind.HANDOVER)
    for event in handovers:
        p = event.payload
        reason = str(p.get("reason") or "").strip()
        why = md_inline(reason) if reason else "**no reason given**"
        moments.append((event.id, (
            f"- {clock.at(event.ts)} — **command handover** from "
            f"{md_inline(p.get('previous_user', ''))} ({md_inline(p.get('previous_host', ''))}) "
            f"to {md_inline(p.get('user', ''))} ({md_inline(p.get('host', ''))}): {why}")))
    for event in record.of(Kind.RECONCILED):
        moments.append((event.id, f"- {clock.at(event.ts)} — {md_inline(describe(event))}"))
    for closed, reopened in record.closed_spans:
        until = (f"until {clock.at(reopened)} "
                 f"({format_duration((reopened - closed).total_seconds())})"
                 if reopened is not None else "and not opened again")
        moments.append((_id_at(record, closed), f"- {clock.at(closed)} — no commander console "
                                                f"open {until}"))
    lines += [text for _, text in sorted(moments)]
    if not handovers:
        lines.append("- No command handover.")
    sent, failed = record.of(Kind.NOTIFIED), record.of(Kind.NOTIFY_FAILED)
    if sent or failed:
        lines.append(f"- Chat notifications: {len(sent)} sent"
                     + (f", **{len(failed)} FAILED**" if failed else ""))
    lines.append("")
    return lines


# --- human-only sections: prompts, and facts the record proves -----------------------------------


def _human_section(title: str, from_record: list[str], prompt: str) -> list[str]:
    """A section only people can write: what the record proves (if anything), then the prompt."""
    lines = _section(title)
    if from_record:
        lines += [FROM_RECORD, "", *from_record, ""]
    return [*lines, prompt, ""]


def _went_well(record: Record) -> list[str]:
    s = record.state
    facts: list[str] = []
    first = record.at_first_stage
    if first is not None:
        counted = first.current_approvals()
        if first.approvals_complete and all(
                counted[r].kind in ("direct", "relayed") for r in first.required_roles):
            facts.append("All required approvals were recorded before the first canary stage.")
        if first.preflight_ok and first.checklist_acked:
            facts.append("The rollback was ready before the first stage: preflight passed and "
                         "the compatibility checklist acknowledged.")
    for event in record.of(Kind.ROLLBACK_REQUESTED):
        if event.payload.get("automatic"):
            facts.append(f"The rollback was triggered automatically: "
                         f"{md_inline(event.payload.get('reason', ''))}.")
    verified, requested = s.rollback_finished_ts, s.rollback_requested_ts
    if s.rollback_status == "verified" and verified is not None and requested is not None:
        facts.append(f"The rollback was VERIFIED "
                     f"{format_duration((verified - requested).total_seconds())} after it was "
                     "requested" + (" — as a mechanism: it undid the fix, so the harm came back "
                                    "(What Went Wrong)." if fix_rolled_back(record) else "."))
    if s.promoted and s.promoted_ts is not None and s.target_hours:
        elapsed = (s.promoted_ts - record.declared).total_seconds()
        if elapsed <= s.target_hours * 3600:
            facts.append(f"{md_inline(s.to_version)} was at 100% "
                         f"{format_duration(elapsed)} after declaration, within the "
                         f"{s.priority} target of {format_duration(s.target_hours * 3600)}.")
    return _human_section("What Went Well", [f"- ✅ {fact}" for fact in facts],
                          "_Add what went well that the record cannot show (detection, teamwork, "
                          "communication)._")


def _went_wrong(record: Record) -> list[str]:
    s = record.state
    clock = record.clock
    facts: list[str] = []
    harm = harm_sentence(record)
    if harm:
        facts.append(f"**The fix was rolled back.** {harm}")
    for event in record.of(Kind.RATE_WARNING):
        facts.append(f"Emergency-rate warning: {md_inline(event.payload.get('message', ''))}")
    for a in s.approvals:
        if a.kind == "waived":
            facts.append(f"Approval WAIVED for {md_inline(a.role)} by {md_inline(a.recorded_by)}: "
                         f"{md_inline(a.reason)}")
        if a.kind == "simulated":
            facts.append(f"Approval of {md_inline(a.role)} was SIMULATED, not given by a person.")
    for event in record.of(Kind.TARGET_CHANGED):
        p = event.payload
        facts.append(f"Target changed mid-change {md_inline(p.get('from_version', ''))} → "
                     f"{md_inline(p.get('to_version', ''))}: {md_inline(p.get('reason', ''))}; "
                     "the approvals given before became stale.")
    for role in s.missing_roles:
        facts.append(f"Approval missing at the last event: {md_inline(role)}.")
    first = record.at_first_stage
    if first is not None and not (first.preflight_ok and first.checklist_acked):
        facts.append("The canary started before the rollback was ready (preflight passed and "
                     "checklist acknowledged).")
    for event in record.of(Kind.PREFLIGHT_FAILED):
        facts.append(f"Rollback preflight FAILED at {clock.at(event.ts)}: "
                     f"{md_inline(event.payload.get('detail', ''))}")
    for override in s.overrides:
        facts.append(f"Override of **{md_inline(override.block)}** by {md_inline(override.actor)} "
                     f"at {clock.at(override.ts)} ({md_inline(override.action)}): "
                     f"{md_inline(override.reason)}")
    for event in record.of(Kind.WEIGHT_REQUESTED):
        if event.payload.get("action") == "immediate":
            facts.append(f"100% IMMEDIATELY at {clock.at(event.ts)}: the remaining canary stages "
                         f"were skipped ({md_inline(event.payload.get('reason', ''))}).")
    for event in record.of(Kind.WEIGHT_FAILED):
        facts.append(f"Setting the canary weight to {md_inline(event.payload.get('percent', ''))}"
                     f"% FAILED: {md_inline(event.payload.get('error', ''))}")
    # One fact per guardrail and kind of trouble: the first episode, and how many there were.
    # Insufficient evidence is expected at a small weight; a query that cannot be answered is
    # not.
    troubles: dict[str, dict[str, list[GuardrailRun]]] = {"breach": {}, "cant_evaluate": {}}
    for run in record.story.runs:
        episodes = troubles.get(run.status)
        if episodes is not None:
            mine = episodes.get(run.name)
            if mine is None:
                episodes[run.name] = [run]
            else:
                mine.append(run)
    for status, words in (("breach", "breached"), ("cant_evaluate", "could not be evaluated")):
        for name, found in troubles[status].items():
            more = f" ({len(found)} times in all)" if len(found) > 1 else ""
            facts.append(f"Guardrail {md_inline(name)} {words} at "
                         f"{clock.at(found[0].first.ts)}{more}: {md_inline(found[0].detail)}")
    if s.rollback_status == "not_verified":
        facts.append(f"Rollback NOT verified: {md_inline(s.rollback_detail)}")
    elif s.rollback_status == "failed":
        facts.append(f"Rollback FAILED: {md_inline(s.rollback_detail)}")
    elif s.rollback_status in ("requested", "in_progress"):
        facts.append("Rollback NOT verified: still in progress at the last event.")
    if s.target_hours and s.declared_ts is not None:
        limit = s.target_hours * 3600
        if s.promoted and s.promoted_ts is not None:
            elapsed = (s.promoted_ts - s.declared_ts).total_seconds()
            if elapsed > limit:
                facts.append(f"{s.priority} target MISSED: 100% after {format_duration(elapsed)}"
                             f" (target {format_duration(limit)}).")
        elif record.duration_s > limit:
            facts.append(f"{md_inline(s.to_version)} was not at 100% within the {s.priority} "
                         f"target of {format_duration(limit)}.")
    for item in record.checklist_rows():
        result, detail = record.gate_status(item)
        if result == "failed":
            facts.append(f"Post-emergency item FAILED: {md_inline(item)}"
                         + (f" — {md_inline(detail)}" if detail else ""))
        elif result == "waived":
            facts.append(f"Post-emergency item WAIVED: {md_inline(item)}"
                         + (f" — {md_inline(detail)}" if detail else ""))
    return _human_section("What Went Wrong", [f"- ❌ {fact}" for fact in facts],
                          "_Add what went wrong that the record cannot show (missing tests, "
                          "staging gaps, alerting thresholds)._")


def _action_items(record: Record) -> list[str]:
    s = record.state
    items: list[str] = []
    if fix_rolled_back(record) and "resolved" not in s.milestones:
        items.append(f"Ship a corrected fix for “{md_inline(s.title)}” by the hotfix path "
                     "(seed 002), then mark `resolved` when the harm has stopped")
    if s.rollback_status in ("not_verified", "failed", "requested", "in_progress"):
        word = {"not_verified": "NOT VERIFIED", "failed": "FAILED"}.get(s.rollback_status,
                                                                       "not finished")
        items.append(f"Confirm by hand that {md_inline(s.rollback_target)} is live and healthy "
                     f"— rollback {word}: {md_inline(s.rollback_detail)}")
    bypass_of = {b.checklist_item: b for b in s.bypasses if b.post_gate}
    for item in record.checklist_rows():
        result, detail = record.gate_status(item)
        if result not in ("failed", "open"):
            continue
        bypass = bypass_of.get(item)
        text = (f"{md_inline(bypass.post_gate)} ({md_inline(bypass.element)} bypass, "
                f"{md_inline(s.to_version)})") if bypass else md_inline(item)
        said = f": {md_inline(detail)}" if detail else ""
        items.append(f"{text} — {result}{said}")
    return _human_section("Action Items",
                          [f"- [ ] {s.id_text}-{n}: {text} (@owner, by YYYY-MM-DD)"
                           for n, text in enumerate(items, start=1)],
                          "_Add action items for the original cause and for the discipline gaps "
                          "this emergency revealed, each with an owner and a date._")


def _prevention() -> list[str]:
    return [
        *_section("Prevention"),
        "_How we'll prevent this from happening again:_",
        "",
        "1. **Testing**: _Fill in._",
        "2. **Monitoring**: _Fill in._",
        "3. **Process**: _Fill in._",
        "4. **Documentation**: _Fill in._",
        "",
    ]


def _lessons() -> list[str]:
    return [*_section("Lessons Learned"), "_Key takeaways for the team._", ""]

