"""The communication drafts: seed 001's three templates, filled from the record, brackets only
where a person must decide."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from console.export import render
from console.export.comms import render_comms
from console.model import Kind
from tests.export.fixtures import (
    BUILDERS,
    NOT_VERIFIED_REASON,
    TITLE,
    BuiltIncident,
    IncidentBuilder,
    build_not_verified,
    build_promoted,
    build_verified,
)
from tests.export.test_pir import check_golden

HEADINGS = [
    "## 1. Internal message (Slack / Teams)",
    "## 2. Status page update",
    "## 3. Email to affected users",
]
#: The only blanks a person must fill in.
HUMAN_BRACKETS = {
    "[Who was affected and how]",
    "[impact start not marked: check]",
    "[the service, by the name customers know]",
    "[Brief explanation]",
    "[link to the change]",
    "[date]",
    "[specific issue]",
    "[time of the next update]",
    "[User]",
    "[support address]",
    "[Company]",
}


def comms(built: BuiltIncident, events: list | None = None) -> str:
    return render_comms(events if events is not None else built.events, config=built.config,
                        samples=built.samples, now=built.now)


def draft(text: str, number: int) -> str:
    """The body of draft 1, 2 or 3."""
    return text.split(HEADINGS[number - 1])[1].split("\n## ")[0]


@pytest.mark.parametrize("variant", sorted(BUILDERS))
def test_golden(variant: str, tmp_path: Path) -> None:
    check_golden(f"comms_{variant}.md", comms(BUILDERS[variant](tmp_path)))


def test_render_dispatches_to_comms(tmp_path: Path) -> None:
    built = build_verified(tmp_path)
    assert render("comms", built.events, config=built.config, samples=built.samples,
                  now=built.now) == comms(built)


def test_three_drafts_under_clear_headings(tmp_path: Path) -> None:
    for variant, build in BUILDERS.items():
        text = comms(build(tmp_path / variant))
        assert text.startswith(f"# Communication drafts: INC-1 — {TITLE}\n")
        assert [line for line in text.split("\n") if line.startswith("## ")] == HEADINGS
        assert text.count("\n---\n") == 3


def test_brackets_only_where_a_person_must_fill_in(tmp_path: Path) -> None:
    for variant, build in BUILDERS.items():
        text = comms(build(tmp_path / variant))
        brackets = set(re.findall(r"\[[^\]\[]*\]", text)) - {"[x]", "[ ]"}
        assert brackets <= HUMAN_BRACKETS, (variant, brackets - HUMAN_BRACKETS)
        for leftover in ("ENG-XXX", "[Issue Title]", "[feature/service]", "[time]",
                         "support@company.com", "XXX"):
            assert leftover not in text, (variant, leftover)
        for needed in ("[support address]", "The [Company] Team", "[Who was affected and how]"):
            assert needed in text


def test_internal_message_fields(tmp_path: Path) -> None:
    internal = draft(comms(build_verified(tmp_path)), 1)
    assert "🚨 **Fix Rolled Back — the Original Harm Is Back**" in internal
    for line in (f"**Issue**: {TITLE}", "**Ticket**: INC-1", "**Priority**: P0",
                 "**Status**: ⚠️ Fix rolled back; the harm is mitigated, not resolved: a "
                 "corrected fix follows by the hotfix path — incident closed",
                 "- Impact started: 19:30 UTC",
                 "- Issue detected: 21:52 UTC",
                 "- Emergency declared: 22:04 UTC",
                 "- Rolled back to v1.4.2: 22:21 UTC (verified 22:22 UTC)",
                 "- Duration: 0h 17m",
                 "redaction-api: v1.4.3 took at most 10% of traffic (canary) before the rollback "
                 "to v1.4.2.",
                 "✅ Rollback to v1.4.2 verified at 22:22 UTC: live, canary weight 0%, guardrails "
                 "healthy",
                 "✅ guardrails healthy on the stable track for 1m 00s: error-rate, p95-latency",
                 "❌ Resolution check FAILED: the leak continues on v1.4.2; transcript export "
                 "disabled at 22:36 (flag export_transcripts=false) to stop it",
                 "- [x] Post-incident review scheduled: PIR booked for 2026-03-13 10:00 UTC"):
        assert f"\n{line}\n" in internal, line
    assert "redaction-api v1.4.2 → v1.4.3, shipped through the compressed canary (1% → 10%); " \
           "rolled back to v1.4.2: sustained breach of error-rate (3 in a row)." in internal


def test_statuses(tmp_path: Path) -> None:
    promoted = comms(build_promoted(tmp_path / "p"))
    assert "**Status**: ✅ Resolved\n" in promoted
    assert "- Fix deployed (v1.4.4 at 100%): 2026-03-12 23:40 UTC\n- Duration: 1h 35m" in \
           promoted
    not_verified = comms(build_not_verified(tmp_path / "n"))
    assert ("**Status**: 🔴 Fix rolled back: the harm is live again; next: a corrected fix by "
            "the hotfix path\n") in not_verified
    assert f"❌ Rollback to v1.4.2 NOT VERIFIED: {NOT_VERIFIED_REASON}" in not_verified
    builder = IncidentBuilder(tmp_path / "open.db")
    builder.declare("22:04:05")
    builder.add("22:11:00", Kind.WEIGHT_REQUESTED, "sam", from_percent=0, to_percent=1,
                stage_index=0, immediate=False, overrides=[], action="advance")
    builder.add("22:11:02", Kind.WEIGHT_SET, "warroom", percent=1, stage_index=0,
                action="advance")
    in_progress = comms(builder.finish())
    assert "**Status**: 🔄 In progress\n" in in_progress
    assert "- Fix in progress: canary at 1% at 22:11 UTC\n- Duration: 0h 06m so far" in \
           in_progress
    assert "🟠 Identified - Issue affecting Support transcripts" in in_progress
    assert "redaction-api" not in draft(in_progress, 2) + draft(in_progress, 3)
    assert "We will post an update by 22:41 UTC (within 30 minutes)." in in_progress


def test_status_page_never_claims_more_than_the_record(tmp_path: Path) -> None:
    promoted = build_promoted(tmp_path / "p")
    resolved = draft(comms(promoted), 2)
    assert "🟢 Resolved - Issue affecting Support transcripts" in resolved
    # resolved as marked (00:10); impact start not marked: the declaration, flagged
    assert ("Between 2026-03-12 22:04 [impact start not marked: check] and 2026-03-13 00:10 "
            "UTC, users experienced [specific issue].") in resolved
    # Before "verify resolution" is recorded, the fix is only being monitored.
    before_gates = [e for e in promoted.events
                    if e.kind not in (Kind.GATE_RECORDED, Kind.MILESTONE)]
    monitoring = comms(promoted, before_gates)
    assert "🟡 Monitoring - Issue affecting Support transcripts" in draft(monitoring, 2)
    assert "Subject: Update on Support transcripts Issue\n" in draft(monitoring, 3)
    assert "⏳ Resolution not yet verified" in draft(monitoring, 1)
    # The fix rolled back and the incident closed, but the harm only mitigated: not "Resolved".
    verified = comms(build_verified(tmp_path / "v"))
    assert "🔴 Identified - Issue affecting Support transcripts" in draft(verified, 2)
    assert "did not work as intended and was withdrawn" in draft(verified, 2)
    assert "Since 19:30 UTC, users may experience" in draft(verified, 2)  # impact, as marked
    assert "Resolved" not in draft(verified, 2) + draft(verified, 3)


def test_customer_email(tmp_path: Path) -> None:
    email = draft(comms(build_promoted(tmp_path)), 3)
    assert "_Security emergency: have the security lead review this email" in email
    assert "Subject: Update on Support transcripts Issue - Resolved" in email
    assert "Hi [User]," in email
    assert "affected Support transcripts on 12 March 2026." in email
    assert "redaction-api" not in email  # the internal name never reaches a customer
    assert ("Between 2026-03-12 22:04 [impact start not marked: check] and 2026-03-13 00:10 "
            "UTC, you may have experienced [specific issue].") in email
    assert "please reach out to [support address]." in email
    assert email.rstrip().endswith("The [Company] Team")


def test_demo_drafts_say_simulated_where_they_would_be_copied(tmp_path: Path) -> None:
    builder = IncidentBuilder(tmp_path / "sim.db")
    builder.declare("22:04:05", simulated=True, rate_count=0)
    text = comms(builder.finish())
    assert "> **SIMULATED — a warroom demo, not a real incident. Do not send.**" in text
    assert "SIMULATED (demo) — 🔴 Investigating" in draft(text, 2)  # nothing shipped yet
    assert "Subject: SIMULATED (demo) — Update on" in draft(text, 3)


def test_hostile_title_stays_on_its_lines(tmp_path: Path) -> None:
    builder = IncidentBuilder(tmp_path / "hostile.db")
    builder.declare("22:04:05", title="Leak | pipe\n# not a heading [bold]x[/] <script>")
    text = comms(builder.finish())
    assert text.split("\n")[0] == ("# Communication drafts: INC-1 — Leak | pipe # not a heading "
                                   "[bold]x[/] &lt;script>")
    assert "**Issue**: Leak | pipe\n\\# not a heading [bold]x[/] &lt;script>\n" in text
    assert [line for line in text.split("\n") if line.startswith("#")] == [
        text.split("\n")[0], *HEADINGS]


def test_a_title_ending_in_hash_keeps_it_in_the_headings(tmp_path: Path) -> None:
    # A trailing " #" would be read as the heading's closing sequence and dropped.
    markdown_it = pytest.importorskip("markdown_it")
    builder = IncidentBuilder(tmp_path / "hash.db")
    builder.declare("22:04:05", title="Redaction misses on ticket #")
    built = builder.finish()
    for text in (comms(built), render("pir", built.events, config=built.config, now=built.now)):
        tokens = markdown_it.MarkdownIt("commonmark").parse(text)
        inline = tokens[1].children or []
        assert tokens[0].tag == "h1" and "".join(t.content for t in inline).endswith("ticket #")
