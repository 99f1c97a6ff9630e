"""The PIR export: golden files for the fixed incident, and what a reader must be able to trust.

Regenerate the golden files after an intended change with ``WARROOM_UPDATE_GOLDEN=1``, then read
the diff as a reviewer would before committing it.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from console.export import render
from console.export.pir import (
    HUMAN_SECTIONS,
    SECTIONS,
    _Episodes,
    build_record,
    md_cell,
    md_inline,
    md_line,
    render_pir,
    series_figures,
)
from console.export.timeline import GuardrailRun, story
from console.model import Event, Kind
from console.state import fold
from tests.export.fixtures import (
    BUILDERS,
    HOLD_OVERRIDE_REASON,
    HOSTILE_NOTE,
    IMMEDIATE_REASON,
    NOT_VERIFIED_REASON,
    RELAY_EVIDENCE,
    TITLE,
    WAIVER_REASON,
    BuiltIncident,
    IncidentBuilder,
    build_not_verified,
    build_promoted,
    build_verified,
)

GOLDEN = Path(__file__).parent / "golden"
RECORD_PARTS = [
    "Declaration and bypass scope",
    "Approvals",
    "Canary",
    "Rollback",
    "Guardrails",
    "Post-emergency gates",
    "Command",
]


def pir(built: BuiltIncident, events: list[Event] | None = None) -> str:
    return render_pir(events if events is not None else built.events, config=built.config,
                      samples=built.samples, now=built.now)


def sections(text: str) -> dict[str, str]:
    """Section title → its body (without the heading line)."""
    found: dict[str, str] = {}
    for chunk in text.split("\n## ")[1:]:
        title, _, body = chunk.partition("\n")
        found[title] = body
    return found


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("WARROOM_UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return
    assert path.exists(), f"{path} is missing: run with WARROOM_UPDATE_GOLDEN=1 to create it"
    expected = path.read_text(encoding="utf-8")
    assert text == expected, f"{name} differs (WARROOM_UPDATE_GOLDEN=1 regenerates it)"


def unescaped_pipes(line: str) -> int:
    return len(re.findall(r"(?<!\\)\|", line))


def tables(text: str) -> Iterator[list[str]]:
    block: list[str] = []
    for line in [*text.split("\n"), ""]:
        if line.startswith("|"):
            block.append(line)
        elif block:
            yield block
            block = []


def assert_tables_intact(text: str) -> None:
    for table in tables(text):
        width = unescaped_pipes(table[0])
        assert re.fullmatch(r"\|(---\|)+", table[1]), table[:2]
        for row in table:
            assert unescaped_pipes(row) == width, f"broken row: {row!r}"


# --- golden --------------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", sorted(BUILDERS))
def test_golden(variant: str, tmp_path: Path) -> None:
    built = BUILDERS[variant](tmp_path)
    check_golden(f"pir_{variant}.md", pir(built))


def test_render_dispatches_to_the_pir(tmp_path: Path) -> None:
    built = build_verified(tmp_path)
    via_render = render("pir", built.events, config=built.config, samples=built.samples,
                        now=built.now)
    assert via_render == pir(built)


# --- shape ---------------------------------------------------------------------------------------


def test_title_and_header_lines(tmp_path: Path) -> None:
    text = pir(build_verified(tmp_path))
    lines = text.split("\n")
    assert lines[0] == f"# Post-Incident Review: INC-1 — {TITLE}"
    assert "Date: 2026-03-12" in lines
    assert "Severity: P0" in lines
    assert "Duration: 0h 40m" in lines
    assert text.endswith("\n") and not text.endswith("\n\n")


def test_sections_in_template_order(tmp_path: Path) -> None:
    for variant, build in BUILDERS.items():
        text = pir(build(tmp_path / variant))
        assert [line[3:] for line in text.split("\n") if line.startswith("## ")] == list(
            SECTIONS)
        assert [line[4:] for line in text.split("\n") if line.startswith("### ")] == RECORD_PARTS
        assert [line for line in text.split("\n") if line.startswith("# ")] == [
            text.split("\n")[0]]


def test_the_timeline_tells_the_story_once(tmp_path: Path) -> None:
    built = build_verified(tmp_path)
    text = pir(built)
    body = sections(text)["Timeline (UTC)"]
    bullets = [line for line in body.split("\n") if line.startswith("- ")]
    # Three BREACH polls are one line, with their count, span and peak.
    breach = [line for line in bullets if "Guardrail error-rate: BREACH" in line]
    assert breach == ["- 22:19:40 — warroom: Guardrail error-rate: BREACH ×3 from 22:19:40 to "
                      "22:20:00, peak 6.10% (sustained) — canary 6.10% > limit 2.00% (max)"]
    # A request and its outcome are one line; a preflight request is not a line of its own.
    assert ("- 22:14:20 — sam: Advance 1% → 10%; OVERRIDES: hold (" + HOLD_OVERRIDE_REASON
            + ") — weight 10% at 22:14:22") in bullets
    assert not any("preflight to v1.4.2 requested" in line for line in bullets)
    # Notes are in their own section; on the timeline only the one marked as a highlight.
    assert [line for line in bullets if "Note:" in line] == [
        "- ⭐ 22:31:00 — sam: Note: Error spike: the new redaction regex times out on long "
        "transcripts. Preparing v1.4.4."]
    assert "- 22:31:00 — sam: Error spike: the new redaction regex" in sections(text)["Notes"]
    # In time order, and no line is cut.
    times = [line.removeprefix("- ").removeprefix("⭐ ")[:8] for line in bullets]
    assert times == sorted(times)
    assert len(bullets) == len(story(built.events, at=str, value=lambda _, v: str(v)).lines)


def test_repeated_preflights_and_consoles_are_counted_once(tmp_path: Path) -> None:
    builder = IncidentBuilder(tmp_path / "repeats.db")
    builder.declare("22:04:05", rate_count=0)
    for minute in range(5, 9):
        builder.add(f"22:{minute:02d}:00", Kind.CONSOLE_OPENED, "sam", user="sam",
                    host="bastion-1", pid=4000 + minute, mode="commander")
        builder.add(f"22:{minute:02d}:01", Kind.PREFLIGHT_REQUESTED, "warroom", target="v1.4.2")
        builder.add(f"22:{minute:02d}:02", Kind.PREFLIGHT_PASSED, "warroom", target="v1.4.2",
                    checks=[], detail="ok")
    for second in range(0, 50, 10):
        builder.add(f"22:10:{second:02d}", Kind.ROLLBACK_PROGRESS, "warroom", target="v1.4.2",
                    message="verification waits: error-rate on the stable track")
    body = sections(pir(builder.finish()))["Timeline (UTC)"]
    bullets = [line for line in body.split("\n") if line.startswith("- ")]
    assert ("- 22:05:00 — sam: Console opened by sam on bastion-1 (opened again ×3 more, last "
            "22:08:00)") in bullets
    assert ("- 22:05:02 — warroom: Rollback preflight to v1.4.2 passed (the same again ×3 more, "
            "last 22:08:02)") in bullets
    assert ("- 22:10:00 — warroom: Rollback: verification waits: error-rate on the stable track "
            "(again ×4 more, last 22:10:40)") in bullets
    assert len(bullets) == 4


def test_the_one_pass_tells_what_the_separate_passes_do(tmp_path: Path) -> None:
    """build_record(pir=True) tells the story and gathers the verdicts while it folds; they
    are those of the separate passes over the events — a note highlighted by a later event
    too, in its place among the lines."""
    from console.export.why import _verdicts

    builder = IncidentBuilder(tmp_path / "late.db")
    builder.declare("22:04:05", rate_count=0)
    builder.add("22:05:00", Kind.GUARDRAIL_CHANGED, "warroom", name="error-rate",
                status="breach", previous="healthy", canary=0.05, limit=0.02, consecutive=3,
                on_breach="rollback", breaches=1, sustained=False, detail="canary 5%")
    note = builder.add("22:06:00", Kind.NOTE, "sam", text="the queue is draining")
    builder.add("22:07:00", Kind.GUARDRAIL_CHANGED, "warroom", name="error-rate",
                status="healthy", previous="breach", canary=0.01, limit=0.02, consecutive=3,
                on_breach="rollback", breaches=0, sustained=False, detail="canary 1%")
    builder.add("22:08:00", Kind.HIGHLIGHTED, "sam", event_id=note.id, reason="the turn")
    late = builder.finish()
    builds = {**{variant: build(tmp_path / variant) for variant, build in BUILDERS.items()},
              "late": late}
    for variant, built in builds.items():
        one = build_record(built.events, built.config, pir=True)
        apart = build_record(built.events, built.config)
        assert apart.verdicts is None and one.verdicts is not None
        told, separate = one.story, apart.story
        assert [(line.event.id, line.text, line.loud) for line in told.lines] == [
            (line.event.id, line.text, line.loud) for line in separate.lines], variant
        assert [(r.name, r.status, r.count, r.first.id, r.last.id) for r in told.runs] == [
            (r.name, r.status, r.count, r.first.id, r.last.id) for r in separate.runs]
        assert {name: [r.first.id for r in runs] for name, runs in told.by_guardrail.items()} \
            == {name: [r.first.id for r in runs] for name, runs in separate.by_guardrail.items()}
        log = _verdicts(apart)
        assert {name: [(v.event.id, v.effects, v.polls) for v in verdicts]
                for name, verdicts in one.verdicts.out.items()} == {
            name: [(v.event.id, v.effects, v.polls) for v in verdicts]
            for name, verdicts in log.out.items()}, variant
        assert one.verdicts.queries == log.queries
    late_lines = [line.event.id for line in build_record(late.events, late.config,
                                                         pir=True).story.lines]
    assert note.id in late_lines and late_lines == sorted(late_lines)


def test_the_export_fold_is_the_fold(tmp_path: Path) -> None:
    """build_record folds long runs of guardrail changes lazily: the state must be fold's."""
    from console.state import state_json

    for variant, build in BUILDERS.items():
        built = build(tmp_path / variant)
        record = build_record(built.events, built.config)
        expected = fold(built.events)
        assert state_json(record.state) == state_json(expected), variant
        assert record.state.guardrails == expected.guardrails, variant
        assert record.state.notes == expected.notes
        assert (record.state.last_event_id, record.state.last_hash) == (
            expected.last_event_id, expected.last_hash)


def test_the_timeline_shows_the_date_when_the_incident_spans_days(tmp_path: Path) -> None:
    body = sections(pir(build_promoted(tmp_path)))["Timeline (UTC)"]
    assert "- 2026-03-12 22:04:05 — sam: Declared P0 security emergency" in body
    assert "- 2026-03-13 00:20:00 — sam: Post-emergency: eval-gate" in body


def test_tables_are_intact(tmp_path: Path) -> None:
    for variant, build in BUILDERS.items():
        assert_tables_intact(pir(build(tmp_path / variant)))


# --- user text -----------------------------------------------------------------------------------


def test_hostile_text_is_literal_and_harmless(tmp_path: Path) -> None:
    text = pir(build_verified(tmp_path))
    notes = sections(text)["Notes"]
    # The note: its first line on the bullet, the rest indented inside it, the # escaped.
    assert ("- 22:09:30 — sam: Support forwarded a customer report | pipe\n"
            "  \\# not a heading\n"
            "  [bold]markup[/] and &lt;script>alert(1)&lt;/script>\n") in notes
    assert "\n# not a heading" not in text
    assert "<script>" not in text  # no tag a renderer would obey
    # In a table cell the pipe is escaped, and the row keeps its width.
    assert "evidence: bridge call 22:08 \\| confirmed in Slack #inc-redaction |" in text
    assert RELAY_EVIDENCE in text  # and literal in the timeline
    assert HOLD_OVERRIDE_REASON in text
    assert_tables_intact(text)


def test_markdown_parser_agrees(tmp_path: Path) -> None:
    markdown_it = pytest.importorskip("markdown_it")
    text = pir(build_verified(tmp_path))
    tokens = markdown_it.MarkdownIt("commonmark").enable("table").parse(text)
    headings = [(tokens[i].tag, tokens[i + 1].content) for i, t in enumerate(tokens)
                if t.type == "heading_open"]
    assert [h for h in headings if h[0] == "h2"] == [("h2", s) for s in SECTIONS]
    assert [h for h in headings if h[0] == "h3"] == [("h3", s) for s in RECORD_PARTS]
    assert len([h for h in headings if h[0] == "h1"]) == 1
    cells = [t.children[0].content for i, t in enumerate(tokens)
             if t.type == "inline" and i > 0 and tokens[i - 1].type == "td_open" and t.children]
    assert f"evidence: {RELAY_EVIDENCE}" in cells
    assert not any(t.type.startswith("html_block") for t in tokens)


def test_bidi_and_invisible_characters_are_shown_not_obeyed() -> None:
    # "Trojan Source": an override makes text read differently from what it is
    text = "approved by \u202eyppah\u202c \u2066iso\u2069 zero\u200bwidth \ufeffbom \u2028sep"
    cell = md_cell(text)
    assert cell == ("approved by \\u202eyppah\\u202c \\u2066iso\\u2069 zero\\u200bwidth "
                    "\\ufeffbom \\u2028sep")
    assert md_inline("emoji 👩\u200d💻 stays") == "emoji 👩\u200d💻 stays"
    assert md_line("bytes \udcc3(") == "bytes \\udcc3("


def test_md_helpers() -> None:
    assert md_cell("a | b\nc") == "a \\| b<br>c"
    assert md_cell("") == "—"
    assert md_cell("[bold]x[/] <b>") == "[bold]x[/] &lt;b>"
    assert md_inline("one\n# two\n\n- three\n1. four\n<div>\n---") == (
        "one\n  \\# two\n  \\- three\n  1\\. four\n  &lt;div>\n  \\---")
    # what is not markup stays as typed: a comparison, an arrow, an ampersand
    assert md_cell("p99 < 2 s -> ok & fine") == "p99 < 2 s -> ok & fine"
    assert md_cell("&lt; is an entity") == "&amp;lt; is an entity"
    # images (fetched when merely viewed) and link targets become plain text
    assert md_cell("![x](http://t/p.gif) [y](javascript:alert(1))") == (
        "\\![x]\\(http://t/p.gif) [y]\\(javascript:alert(1))")
    assert md_inline("esc \x1b[31mred\r\nnext") == "esc \\x1b[31mred\n  next"


_FRAGMENTS = st.sampled_from([
    "#", "# x", "\n", "\r\n", "|", "---", "===", "- item", "* star", "+ plus", "1. one",
    "2) two", "> quote", "<script>", "<div>", "<!--", "```", "~~~", "[bold]", "[/]",
    "\x1b[31m", "\x00", "\t", "    code", ":--|--", "| a | b |", "_", "**", "\\", " ", "text",
    "—", "é", "[link](x)", "![img](http://t/x.gif)", "<http://auto.link>", "&lt;", "&#60;",
    "\u202e", "\u2066", "\u200b", "\ufeff", "<img src=x onerror=alert(1)>",
])
HOSTILE = st.one_of(
    st.lists(_FRAGMENTS, min_size=1, max_size=25).map("".join),
    st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=80),
)


@pytest.fixture(scope="module")
def verified_incident(tmp_path_factory: pytest.TempPathFactory) -> BuiltIncident:
    return build_verified(tmp_path_factory.mktemp("verified"))


def _with_text(events: list[Event], text: str) -> list[Event]:
    """The same timeline with ``text`` as the title, the note, the evidence and the close reason."""
    changed: list[Event] = []
    for event in events:
        payload = dict(event.payload)
        if event.kind == Kind.DECLARED:
            payload["title"] = text
        elif event.kind == Kind.NOTE and payload.get("text") == HOSTILE_NOTE:
            payload["text"] = text
        elif event.kind == Kind.APPROVED and payload.get("kind") == "relayed":
            payload["evidence"] = text
        elif event.kind == Kind.CLOSED:
            payload["reason"] = text
        changed.append(dataclasses.replace(event, payload=payload))
    return changed


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=HOSTILE)
def test_no_user_text_breaks_the_structure(verified_incident: BuiltIncident, text: str) -> None:
    markdown_it = pytest.importorskip("markdown_it")
    events = _with_text(verified_incident.events, text)
    out = pir(verified_incident, events)
    assert_tables_intact(out)
    tokens = markdown_it.MarkdownIt("commonmark").enable("table").parse(out)
    heads = [tokens[i + 1].content for i, t in enumerate(tokens) if t.type == "heading_open"]
    split = SECTIONS.index("Emergency Change Record") + 1
    parts = [*RECORD_PARTS]
    parts.insert(parts.index("Guardrails") + 1, "Why each verdict")  # its own, under Guardrails
    assert heads[1:] == [*SECTIONS[:split], *parts, *SECTIONS[split:]]
    assert heads[0].startswith("Post-Incident Review: INC-1 — ")
    assert not any(t.type == "html_block" for t in tokens)
    inline = [child for t in tokens for child in (t.children or [])]
    assert not any(child.type == "image" for child in inline)
    # the only links are the ones people recorded as links (checked http(s) URLs)
    assert {child.attrs.get("href") for child in inline if child.type == "link_open"} <= {
        "https://tickets.example/SUP-4411", "https://grafana.example/d/redaction"}
    # the only HTML is the export's own line break in a table cell
    assert {child.content for child in inline if child.type == "html_inline"} <= {"<br>"}
    # The timeline is still one list with one item per line of the story, the notes one item
    # per note.
    body = sections(out)["Timeline (UTC)"]
    timeline = markdown_it.MarkdownIt("commonmark").parse(body)
    items = [t for t in timeline if t.type == "list_item_open" and t.level == 1]
    assert len(items) == len(story(events, at=str, value=lambda _, v: str(v)).lines)
    notes = markdown_it.MarkdownIt("commonmark").parse(sections(out)["Notes"])
    assert len([t for t in notes if t.type == "list_item_open" and t.level == 1]) == len(
        [e for e in events if e.kind == Kind.NOTE])
    assert "\x1b" not in out and "\x00" not in out and "\r" not in out


# --- what the record proves ----------------------------------------------------------------------


def test_relayed_and_direct_approvals(tmp_path: Path) -> None:
    text = pir(build_verified(tmp_path))
    approvals = text.split("### Approvals")[1].split("###")[0]
    assert "| security-lead | priya | direct | v1.4.3 |" in approvals
    assert "| platform-lead | marco | relayed by sam | v1.4.3 |" in approvals
    assert "For v1.4.3: complete." in approvals


def test_waived_and_stale_approvals_are_loud(tmp_path: Path) -> None:
    text = pir(build_promoted(tmp_path))
    approvals = text.split("### Approvals")[1].split("###")[0]
    assert f"| platform-lead | — | **WAIVED** by sam | v1.4.4 | 2026-03-12 22:33:00 | reason: " \
           f"{WAIVER_REASON} |" in approvals
    assert "| security-lead | priya | direct; **STALE** (target is now v1.4.4) | v1.4.3 |" in \
           approvals
    assert "relayed by sam; **STALE** (target is now v1.4.4)" in approvals
    assert "complete, with 1 WAIVED (platform-lead)" in approvals
    wrong = sections(text)["What Went Wrong"]
    assert f"- ❌ Approval WAIVED for platform-lead by sam: {WAIVER_REASON}" in wrong


def test_simulated_incident_and_approval(tmp_path: Path) -> None:
    builder = IncidentBuilder(tmp_path / "sim.db")
    builder.declare("22:04:05", simulated=True, rate_count=0)
    builder.add("22:05:00", Kind.APPROVED, "warroom", role="security-lead", user="sim-priya",
                kind="simulated", version="v1.4.3")
    built = builder.finish()
    text = pir(built)
    assert "**SIMULATED incident** (warroom demo)" in text
    assert "| security-lead | sim-priya | **SIMULATED** (demo, not a real approval) |" in text
    assert "- ❌ Approval of security-lead was SIMULATED, not given by a person." in text
    assert "**MISSING**: platform-lead" in text
    assert "Duration: 0h 00m (still open)" in text


def test_canary_stages_dwell_and_overrides(tmp_path: Path) -> None:
    text = pir(build_verified(tmp_path))
    canary = text.split("### Canary")[1].split("###")[0]
    assert "| 1% | 1 of 4 | 22:11:02 | sam | advance | 3m 20s | 5m 00s |" in canary
    assert "| 10% | 2 of 4 | 22:14:22 | sam | advance | 6m 58s | 10m 00s |" in canary
    assert (f"- 22:14:20 — sam, advance to 10%: overrode **hold** (hold at 1%: 1m 42s left of "
            f"5m 00s); reason: {HOLD_OVERRIDE_REASON}") in canary
    assert "“100% immediately” was not used." in canary


def test_rollback_from_preflight_to_verification(tmp_path: Path) -> None:
    text = pir(build_verified(tmp_path))
    rollback = text.split("### Rollback")[1].split("###")[0]
    assert "- **Preflight** to v1.4.2: PASSED at 22:10:09 UTC — all checks passed" in rollback
    assert "| target deployable | ok | registry has redaction-api:v1.4.2 |" in rollback
    assert ("- 22:20:00 — requested (automatic, at canary weight 10%) by warroom: sustained "
            "breach of error-rate (3 in a row)") in rollback
    assert "- 22:20:40 — progress: 3/6 pods on v1.4.2" in rollback
    # The commander's console was closed for 30 s of it: not counted.
    assert ("- 22:21:25 — completed: the deployer reports v1.4.2 live (55s after the request, "
            "not counting 30s with no console open)") in rollback
    assert "- 22:21:25 — verification started: guardrails must hold for 1m 00s" in rollback
    assert "**Verification**: **ROLLBACK VERIFIED** at 22:22:30 UTC, 2m 30s after the request" \
           in rollback
    assert "| guardrails healthy on the stable track for 1m 00s | ok | error-rate, p95-latency |" \
           in rollback
    guardrails = text.split("### Guardrails")[1].split("###")[0]
    assert ("| error-rate | 2 | 1 (1 sustained) | 3 polls, 20s from 22:19:40 | 6.10% | 2.00% | — |"
            in guardrails)
    assert "- 22:20:00 — error-rate: sustained breach (3 in a row) → **rollback**" in guardrails
    resolution = sections(text)["Resolution"]
    assert resolution.startswith("\n**Rolled back to v1.4.2** (automatic, requested at canary "
                                 "weight 10% at 22:20:00 UTC): **ROLLBACK VERIFIED** at "
                                 "22:22:30 UTC. v1.4.3 did not ship.")


def test_not_verified_says_so_loudly(tmp_path: Path) -> None:
    text = pir(build_not_verified(tmp_path))
    resolution = sections(text)["Resolution"]
    assert f"**ROLLBACK NOT VERIFIED** at 22:31:35 UTC: {NOT_VERIFIED_REASON}." in resolution
    assert "Duration: 0h 28m (still open)" in text
    assert f"It was NOT VERIFIED at 22:31:35 UTC: {NOT_VERIFIED_REASON}." in sections(text)[
        "Summary"]
    assert f"- ❌ Rollback NOT verified: {NOT_VERIFIED_REASON}" in sections(text)[
        "What Went Wrong"]
    assert ("| guardrails healthy on the stable track | **FAILED** | error-rate on the stable "
            "track: baseline 5.20% > limit 2.00% (max) |") in text
    actions = sections(text)["Action Items"]
    assert (f"- [ ] INC-1-2: Confirm by hand that v1.4.2 is live and healthy — rollback NOT "
            f"VERIFIED: {NOT_VERIFIED_REASON} (@owner, by YYYY-MM-DD)") in actions
    assert "command handover** from sam (bastion-1) to lee (bastion-2)" in text
    assert "- **Commander**: lee (declared by sam; 1 command handover)" in text
    assert "Not started: the checklist opens when" in text


def test_promoted_lists_the_post_emergency_checklist(tmp_path: Path) -> None:
    built = build_promoted(tmp_path)
    text = pir(built)
    gates = text.split("### Post-emergency gates")[1].split("###")[0]
    state = fold(built.events)
    for item in state.post_checklist():
        assert f"| {item} |" in gates
    assert ("| eval-gate: Run the skipped eval against the promoted version | **FAILED** | "
            "v1.4.4 regresses 2 address-redaction cases |") in gates
    assert "| Schedule the post-incident review | **open** | — | — | — |" in gates
    actions = sections(text)["Action Items"]
    assert ("- [ ] INC-1-1: Run the skipped eval against the promoted version (eval-gate "
            "bypass, v1.4.4) — failed: v1.4.4 regresses 2 address-redaction cases (@owner, by "
            "YYYY-MM-DD)") in actions
    assert "- [ ] INC-1-3: Schedule the post-incident review — open (@owner, by YYYY-MM-DD)" in \
           actions
    resolution = sections(text)["Resolution"]
    assert ("**v1.4.4 shipped to 100%** of redaction-api at 2026-03-12 23:40:02 UTC via **100% "
            "IMMEDIATELY**, 1h 35m after declaration (P0 target 2h 00m: met).") in resolution
    assert f"reason: {IMMEDIATE_REASON}" in text
    assert "Duration: 2h 15m (still open)" in text


def test_impact_figures_from_samples(tmp_path: Path) -> None:
    impact = sections(pir(build_verified(tmp_path)))["Impact"]
    assert "| error-rate/canary | 54 | 6.10% | 22:19:40 | 2.00% | 40s (22:19:30 → 22:20:00) |" \
           in impact
    # The limit comes from the engine's <guardrail>/limit series, which is not listed itself.
    assert "| p95-latency/canary | 54 | 0.42 s | 22:19:40 | 0.42 s – 0.43 s | never |" in impact
    assert "/limit" not in impact
    assert "- **Canary weight reached**: v1.4.3 reached 10% canary weight" in impact
    for prompt in ("Users affected", "Revenue impact", "Reputation impact"):
        assert re.search(rf"- \*\*{prompt}\*\*: _Fill in: [^_]+_\n", impact)


def test_without_config_or_samples(tmp_path: Path) -> None:
    built = build_verified(tmp_path)
    text = render_pir(built.events, config=None, samples={}, now=None)
    assert "_No metric samples were recorded for this incident._" in text
    assert "| error-rate | 2 | 1 (1 sustained) | 3 polls, 20s from 22:19:40 | 0.061 | 0.02 | — |" \
        in text
    assert "exported" not in text.split("## Summary")[0]
    raw = render_pir(built.events, config=None, samples=built.samples, now=None)
    assert "| error-rate/canary | 54 | 0.061 | 22:19:40 | 0.02 |" in raw


def test_no_invented_text_in_human_sections(tmp_path: Path) -> None:
    allowed_bullet = re.compile(r"^(- ✅ |- ❌ |- \[ \] INC-1-\d+: .* \(@owner, by YYYY-MM-DD\)$)")
    for variant, build in BUILDERS.items():
        found = sections(pir(build(tmp_path / variant)))
        for name in HUMAN_SECTIONS:
            for line in filter(None, found[name].split("\n")):
                prompt = line.startswith("_") and line.endswith("_")
                template = re.fullmatch(r"\d\. \*\*\w+\*\*: _Fill in\._", line)
                assert prompt or template or allowed_bullet.match(line), (variant, name, line)
        for name in ("Root Cause", "Prevention", "Lessons Learned"):
            assert "✅" not in found[name] and "❌" not in found[name]


def test_limit_sources_for_time_over_the_limit(tmp_path: Path) -> None:
    built = build_verified(tmp_path)
    record = build_record(built.events, built.config)
    canary = {"error-rate/canary": built.samples["error-rate/canary"]}
    # Without the engine's limit series, the limits reported by guardrail-change events serve.
    (from_events,) = series_figures(record, canary)
    assert (from_events.limit_text, from_events.over_s) == ("2.00%", 40.0)
    # Without either, the config's absolute max does, and says so.
    no_events = build_record([e for e in built.events if e.kind != Kind.GUARDRAIL_CHANGED],
                             built.config)
    (from_config,) = series_figures(no_events, canary)
    assert (from_config.limit_text, from_config.over_s) == ("2.00% (config max)", 40.0)
    # Without any limit, only the peak is known.
    (bare,) = series_figures(build_record(no_events.events), canary)
    assert (bare.limit_text, bare.over_s, bare.peak) == ("—", None, 0.061)


def test_an_empty_timeline_is_refused() -> None:
    with pytest.raises(ValueError, match="declaration"):
        render_pir([], config=None, samples={}, now=None)


def test_failed_rollback_and_blind_guardrail(tmp_path: Path) -> None:
    builder = IncidentBuilder(tmp_path / "failed.db")
    builder.declare("22:04:05", rate_count=0)
    builder.add("22:11:02", Kind.WEIGHT_SET, "sam", percent=1, stage_index=0, action="advance")
    builder.add("22:12:00", Kind.GUARDRAIL_CHANGED, "warroom", name="error-rate",
                status="cant_evaluate", previous="unknown", canary=None, baseline=None,
                limit=None, detail="query failed: connection refused", breaches=0,
                consecutive=3)
    builder.add("22:13:00", Kind.ROLLBACK_REQUESTED, "sam", target="v1.4.2",
                from_version="v1.4.3", weight=1, automatic=False, reason="commander pressed R")
    builder.add("22:13:05", Kind.ROLLBACK_FAILED, "warroom", target="v1.4.2",
                error="deploy API answered 503")
    text = pir(builder.finish())
    assert "**Rolled back to v1.4.2** (manual, requested at canary weight 1% at 22:13:00 UTC): " \
           "**ROLLBACK FAILED** at 22:13:05 UTC: deploy API answered 503." in text
    assert "- 22:13:05 — **FAILED** (5s after the request): deploy API answered 503" in text
    assert "**Verification**: none — the rollback **FAILED**." in text
    wrong = sections(text)["What Went Wrong"]
    assert "- ❌ Rollback FAILED: deploy API answered 503" in wrong
    assert "- ❌ Guardrail error-rate could not be evaluated at 22:12:00: query failed: " \
           "connection refused" in wrong
    assert "- ❌ The canary started before the rollback was ready" in wrong
    assert "Confirm by hand that v1.4.2 is live and healthy — rollback FAILED" in text


# --- the file and the words ----------------------------------------------------------------------


def test_the_export_file_is_private(tmp_path: Path) -> None:
    import stat

    from console.cli import main

    built = build_verified(tmp_path)
    out = tmp_path / "INC-1-PIR.md"
    old = os.umask(0o022)  # a umask that would leave a plain file world-readable
    try:
        assert main(["export", "1", "-o", str(out), "--db", str(built.path)]) == 0
        from console import cli

        assert cli._LEFT_FOR_EXIT == []  # a caller in its own process: nothing kept for it
        written = tmp_path / "console-export.md"
        from console.export import write_private

        write_private(written, "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert stat.S_IMODE(written.stat().st_mode) == 0o600
    assert out.read_text(encoding="utf-8").startswith(f"# Post-Incident Review: INC-1 — {TITLE}")


def test_stored_messages_are_never_cut_mid_word() -> None:
    from console.model import clip

    text = "verification waits: error-rate on the stable track: query " + "x" * 10 + " tail"
    assert clip(text, 60) == "verification waits: error-rate on the stable track: query…"
    assert clip("short", 60) == "short"
    assert len(clip("a" * 400)) == 300 and clip("a" * 400).endswith("…")


def _episodes_as_before(runs: list[GuardrailRun]) -> tuple[object, ...]:
    """The per-guardrail table's figures as they were computed before :class:`_Episodes`
    (a pass each): the reference its one pass must agree with."""
    breaches = [run for run in runs if run.status == "breach"]
    most = max((run.count for run in breaches), default=0)
    longest = max((run for run in breaches if run.count == most),
                  key=lambda run: run.span_s, default=None)
    peaks = [run.peak for run in breaches if run.peak is not None]
    raw: dict[str, set[float]] = {}
    for run in runs:
        raw.setdefault(run.mode, set()).update(run.limits)
    return (len(breaches), sum(1 for r in breaches if r.sustained), longest,
            max(peaks) if peaks else None,
            sum(1 for run in runs if run.status == "cant_evaluate"), raw)


_RUN = st.tuples(st.sampled_from(["breach", "healthy", "cant_evaluate", "warn"]),
                 st.sampled_from(["canary", "stable"]), st.integers(1, 4),
                 st.integers(0, 3), st.one_of(st.none(), st.sampled_from([0.5, 1.5, 2.0])),
                 st.booleans(), st.lists(st.sampled_from([0.02, 0.05, 1.0]), max_size=2))


@settings(max_examples=300, deadline=None)
@given(st.lists(_RUN, max_size=12))
def test_the_guardrail_table_reads_its_runs_in_one_pass(specs: list[tuple[Any, ...]]) -> None:
    """Breach episodes, sustained, the longest (most polls, then the longest span, the first
    of equals), the peak, the runs that could not be evaluated and the limits per track: what
    one pass gathers is what the separate passes found."""
    base = datetime(2026, 12, 2, 22, 0, tzinfo=UTC)

    def event(number: int, seconds: int) -> Event:
        return Event(number, 1, base + timedelta(seconds=seconds), Kind.GUARDRAIL_CHANGED,
                     "warroom", {}, "", "")

    runs = []
    for number, (status, mode, count, span, peak, sustained, limits) in enumerate(specs):
        runs.append(GuardrailRun("g", status, "healthy", mode, event(2 * number, 10 * number),
                                 event(2 * number + 1, 10 * number + span), count, peak,
                                 sustained, list(limits)))
    episodes = _Episodes(runs)
    assert (episodes.breaches, episodes.sustained, episodes.longest, episodes.peak,
            episodes.blind, episodes.limits) == _episodes_as_before(runs)
