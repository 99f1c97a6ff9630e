"""The panes render what they are given: words, loud verdicts, and outside text as plain data.

Each test mounts one pane in a tiny app, at the size the console gives it at 80×24 (about 40×8)
and at a large size, calls ``show`` / ``set_series`` and reads the rendered screen back as text
(and, where the look is the point, as styles).
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from rich.style import Style
from textual.app import App, ComposeResult
from textual.strip import Strip
from textual.widget import Widget
from textual.widgets import Sparkline

from console.model import Event, Figures, Kind
from console.state import IncidentState, fold
from widgets.approvals import ApprovalsPane
from widgets.canary import CanaryPane, fit_lines
from widgets.checklist import ChecklistPane
from widgets.graphs import MetricGraph
from widgets.guardrails import GuardrailDetail, GuardrailsPane
from widgets.rollback import RollbackPane
from widgets.text import safe_text

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SMALL = (40, 8)
LARGE = (160, 30)

#: Outside text that must come out literally: markup, a link, ANSI, control characters.
HOSTILE = "[/] [bold]x[link=x]y[/link] \x1b[31mred\x07\x00 end"
HOSTILE_SHOWN = "[/] [bold]x[link=x]y[/link] ␛[31mred␇␀ end"

PLAN = [
    {"percent": 1, "hold_s": 300},
    {"percent": 10, "hold_s": 600},
    {"percent": 50, "hold_s": 600},
    {"percent": 100, "hold_s": 0},
]


class Events:
    """Hand-made timelines: ``add(kind, payload, minutes=..., actor=...)`` then ``state()``."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def add(self, kind: str, payload: dict[str, Any], *, minutes: float = 0,
            actor: str = "ic") -> Events:
        self.events.append(Event(len(self.events) + 1, 7, T0 + timedelta(minutes=minutes), kind,
                                 actor, payload))
        return self

    def state(self) -> IncidentState:
        return fold(self.events)


def declared(**extra: Any) -> Events:
    payload: dict[str, Any] = {
        "title": "payments 500s", "priority": "P1", "category": "security",
        "service": "payments", "from_version": "v1.4.1", "to_version": "v1.4.2",
        "commander": "ic", "required_roles": ["security-lead", "platform-lead"], "plan": PLAN,
        "checklist": ["schema is backward compatible", "feature flags default off"],
        "guardrails": [{"name": "error_rate", "consecutive": 3, "on_breach": "rollback"},
                       {"name": "p99_latency", "consecutive": 2}],
        "bypasses": [{"element": "eval-gate", "reason": "no time", "compensation": "run later",
                      "post_gate": "run the eval suite on the shipped build"}],
    }
    payload.update(extra)
    return Events().add(Kind.DECLARED, payload)


def at_ten_percent() -> Events:
    """Declared, then 1% at minute 1 and 10% at minute 8."""
    return (
        declared()
        .add(Kind.WEIGHT_REQUESTED, {"from_percent": 0, "to_percent": 1, "action": "advance"},
             minutes=1)
        .add(Kind.WEIGHT_SET, {"percent": 1, "stage_index": 0, "action": "advance"}, minutes=1)
        .add(Kind.WEIGHT_REQUESTED, {"from_percent": 1, "to_percent": 10, "action": "advance"},
             minutes=8)
        .add(Kind.WEIGHT_SET, {"percent": 10, "stage_index": 1, "action": "advance"}, minutes=8)
    )


class Host(App[None]):
    """One pane on an empty screen; records the messages the pane posts."""

    def __init__(self, pane: Widget) -> None:
        super().__init__()
        self.pane = pane
        self.chosen: list[ChecklistPane.ItemChosen] = []

    def compose(self) -> ComposeResult:
        yield self.pane

    def on_checklist_pane_item_chosen(self, message: ChecklistPane.ItemChosen) -> None:
        self.chosen.append(message)


@dataclass
class Shot:
    """The screen as it was: its rows as strips (text and styles)."""

    strips: list[Strip]

    @classmethod
    def of(cls, app: App[Any]) -> Shot:
        return cls(list(app.screen._compositor.render_strips()))

    @property
    def text(self) -> str:
        """The whole screen as plain text, one line per row."""
        return "\n".join(strip.text for strip in self.strips)

    @property
    def words(self) -> str:
        """The text with rows, borders and padding removed: wrapped words join up again."""
        rows = [row.strip().strip("│┃╭╮╰╯┏┓┗┛━─").strip() for row in self.text.splitlines()]
        return " ".join(" ".join(rows).split())

    def styles(self, words: str) -> list[Style]:
        """The styles of every segment whose text contains ``words``."""
        return [
            segment.style
            for strip in self.strips
            for segment in strip
            if words in segment.text and segment.style is not None
        ]


async def shown(pane: Widget, size: tuple[int, int], show: Any) -> Shot:
    """Mount ``pane`` at ``size``, call ``show(pane)``, return what the screen showed."""
    app = Host(pane)
    async with app.run_test(size=size) as pilot:
        show(pane)
        await pilot.pause()
        return Shot.of(app)


def both_sizes() -> pytest.MarkDecorator:
    return pytest.mark.parametrize("size", [SMALL, LARGE], ids=["40x8", "160x30"])


# --- shared helpers ------------------------------------------------------------------------------


def test_safe_text_shows_controls_and_never_obeys_them() -> None:
    assert safe_text("a\x1b[31mb\x07c") == "a␛[31mb␇c"
    assert safe_text("line one\nline two\r\n\tend") == "line one line two  end"
    assert safe_text("x" * 50, limit=10) == "x" * 9 + "…"
    assert safe_text("evil\u202etxt.exe") == "evil�txt.exe"
    assert safe_text("a\nb", multiline=True) == "a\nb"
    assert safe_text("a\u2028b") == "a b"
    assert safe_text(None) == ""


def test_fit_lines_says_how_much_it_left_out() -> None:
    from textual.content import Content

    lines = [Content(f"line {n}") for n in range(6)]
    fitted = fit_lines(lines, 20, 3).plain.splitlines()
    assert fitted == ["line 0", "line 1", "⋯ 4 more lines"]
    assert fit_lines(lines, 20, 10).plain.splitlines() == [f"line {n}" for n in range(6)]


# --- canary --------------------------------------------------------------------------------------


@both_sizes()
async def test_canary_shows_ladder_hold_and_what_blocks(size: tuple[int, int]) -> None:
    state = at_ten_percent().state()
    now = T0 + timedelta(minutes=11, seconds=48)  # 3m 48s into a 10m hold... 6m 12s left
    blocks = [
        ("approvals", "approvals missing: platform-lead", True),
        ("hold", "hold at 10%: 6m 12s left of 10m 00s", True),
        ("in-flight", "a traffic change is in flight", False),
    ]
    shot = await shown(CanaryPane(), size, lambda p: p.show(state, now, blocks))
    words = shot.words
    assert "0% ▸ 1%✓ ▸ [10%] ▸ 50% ▸ 100%" in words
    assert "hold 6m 12s left of 10m [override]" in words
    assert "✗ approvals missing: platform-lead [override]" in words or "⋯" in words
    assert "3 blocks" in shot.text  # the count is on the border, whatever the box hides
    if size == LARGE:
        assert "weight 10%" in words
        assert "✗ approvals missing: platform-lead [override]" in words
        assert "✗ a traffic change is in flight" in words
        assert "in flight [override]" not in words  # not overridable: not offered
    # The current stage is drawn reversed, in the accent colour.
    assert any(style.reverse and style.bold for style in shot.styles("[10%]"))


async def test_canary_ready_and_watch_mode() -> None:
    state = at_ten_percent().state()
    now = T0 + timedelta(minutes=30)
    shot = await shown(CanaryPane(), SMALL, lambda p: p.show(state, now, []))
    assert "✓ ready to advance to 50% — press a" in shot.words
    assert "hold done" in shot.words
    shot = await shown(CanaryPane(), SMALL, lambda p: p.show(state, now, [], can_act=False))
    assert "ready to advance to 50%" in shot.words
    assert "press a" not in shot.words


async def test_canary_pending_error_and_immediate_are_loud() -> None:
    events = at_ten_percent()
    events.add(Kind.WEIGHT_REQUESTED, {"from_percent": 10, "to_percent": 50, "action": "advance"},
               minutes=20)
    shot = await shown(CanaryPane(), LARGE,
                         lambda p: p.show(events.state(), T0 + timedelta(minutes=20), []))
    assert "setting 50%…" in shot.words
    assert "ready to advance" not in shot.words

    events.add(Kind.WEIGHT_FAILED, {"percent": 50, "stage_index": 2, "action": "advance",
                                    "error": "HTTP 503 " + HOSTILE}, minutes=20)
    events.add(Kind.WEIGHT_REQUESTED, {"from_percent": 10, "to_percent": 100,
                                       "action": "immediate", "reason": "bleeding"}, minutes=21)
    events.add(Kind.WEIGHT_SET, {"percent": 100, "stage_index": 3, "action": "immediate"},
               minutes=21)
    state = events.state()
    state.last_weight_error = "HTTP 503 " + HOSTILE  # as if the last change had failed
    blocks = [("final", "the canary is at 100%: nothing to advance", False)]
    shot = await shown(CanaryPane(), LARGE,
                            lambda p: p.show(state, T0 + timedelta(minutes=22), blocks))
    words = shot.words
    assert f"✗ WEIGHT CHANGE FAILED: HTTP 503 {HOSTILE_SHOWN}" in words
    assert "⚠ 100% IMMEDIATELY was used" in words
    assert "at 100% — post-emergency checklist below" in words
    assert "nothing to advance" not in words
    assert "\x1b" not in shot.text
    assert any(s.reverse and s.bold for s in shot.styles("WEIGHT CHANGE FAILED"))
    assert any(s.reverse and s.bold for s in shot.styles("IMMEDIATELY"))


async def test_canary_never_marks_a_skipped_stage_as_passed() -> None:
    """100 % immediately from 1 %: 10 % and 50 % were never stood at, so no ✓ beside them, and
    the pane says which stages the change skipped."""
    events = (
        declared()
        .add(Kind.WEIGHT_REQUESTED, {"from_percent": 0, "to_percent": 1, "action": "advance"},
             minutes=1)
        .add(Kind.WEIGHT_SET, {"percent": 1, "stage_index": 0, "action": "advance"}, minutes=1)
        .add(Kind.WEIGHT_REQUESTED, {"from_percent": 1, "to_percent": 100,
                                     "action": "immediate", "reason": "exfiltration live"},
             minutes=3)
        .add(Kind.WEIGHT_SET, {"percent": 100, "stage_index": 3, "action": "immediate"},
             minutes=3)
    )
    shot = await shown(CanaryPane(), LARGE,
                       lambda p: p.show(events.state(), T0 + timedelta(minutes=4), []))
    words = shot.words
    assert "0% ▸ 1%✓ ▸ 10% ▸ 50% ▸ [100%]" in words
    assert "10%✓" not in words and "50%✓" not in words
    assert "⚠ 100% IMMEDIATELY was used: 10%, 50% skipped" in words
    assert any(s.strike for s in shot.styles("10%"))


async def test_canary_never_ticks_a_stage_it_was_taken_back_from() -> None:
    """Rolled back from 10 %: 1 % passed (✓), 10 % did not (✗, red); advanced again after an
    abort, the stage passed the second time is ticked again."""
    events = at_ten_percent()
    events.add(Kind.WEIGHT_SET, {"percent": 0, "stage_index": -1, "action": "rollback"},
               minutes=12)
    shot = await shown(CanaryPane(), LARGE,
                       lambda p: p.show(events.state(), T0 + timedelta(minutes=13), []))
    words = shot.words
    assert "[0%] ▸ 1%✓ ▸ 10%✗ ▸ 50% ▸ 100%" in words
    assert "10%✓" not in words
    # red like a block, not green like a passed stage
    pulled, passed = shot.styles("10%✗"), shot.styles("1%✓")
    assert pulled and passed and pulled[0].color != passed[0].color

    # Aborted from 1 % on the way, then advanced past it: 1 % passed; 10 % is current.
    events = (
        declared()
        .add(Kind.WEIGHT_SET, {"percent": 1, "stage_index": 0, "action": "advance"}, minutes=1)
        .add(Kind.WEIGHT_SET, {"percent": 0, "stage_index": -1, "action": "abort"}, minutes=2)
    )
    shot = await shown(CanaryPane(), LARGE,
                       lambda p: p.show(events.state(), T0 + timedelta(minutes=3), []))
    assert "[0%] ▸ 1%✗ ▸ 10% ▸ 50% ▸ 100%" in shot.words
    events.add(Kind.WEIGHT_SET, {"percent": 1, "stage_index": 0, "action": "advance"}, minutes=4)
    events.add(Kind.WEIGHT_SET, {"percent": 10, "stage_index": 1, "action": "advance"}, minutes=6)
    shot = await shown(CanaryPane(), LARGE,
                       lambda p: p.show(events.state(), T0 + timedelta(minutes=7), []))
    assert "0% ▸ 1%✓ ▸ [10%] ▸ 50% ▸ 100%" in shot.words


async def test_canary_repaints_only_when_the_view_changes() -> None:
    state = at_ten_percent().state()
    now = T0 + timedelta(minutes=9)
    pane = CanaryPane()
    app = Host(pane)
    async with app.run_test(size=SMALL) as pilot:
        pane.show(state, now, [])
        await pilot.pause()
        first = pane.view
        pane.show(state, now, [])
        assert pane.view is first
        pane.show(state, now + timedelta(seconds=1), [])
        assert pane.view is not first  # the hold timer moved


# --- approvals -----------------------------------------------------------------------------------


def approvals_state() -> IncidentState:
    return (
        declared(required_roles=["security-lead", "platform-lead", "sre", "qa"])
        .add(Kind.APPROVED, {"role": "security-lead", "user": "priya", "kind": "direct",
                             "version": "v1.4.0"}, minutes=1, actor="priya")
        .add(Kind.APPROVED, {"role": "platform-lead", "user": "bob", "kind": "relayed",
                             "version": "v1.4.2", "relayed_from": "bob",
                             "evidence": "slack msg"}, minutes=2)
        .add(Kind.WAIVED, {"role": "sre", "reason": "no one on call", "version": "v1.4.2"},
             minutes=3)
        .add(Kind.APPROVED, {"role": "qa", "user": "sim-qa", "kind": "simulated",
                             "version": "v1.4.2"}, minutes=4)
        .state()
    )


@both_sizes()
async def test_approvals_show_how_each_was_given(size: tuple[int, int]) -> None:
    state = approvals_state()
    shot = await shown(ApprovalsPane(), size, lambda p: p.show(state, T0))
    words = shot.words
    assert "○ security-lead · waiting" in words or "security-lead — " in words
    assert "stale (v1.4.0)" in words
    assert "relayed via ic" in words
    assert "WAIVED (no one on call)" in words
    assert "simulated" in words
    assert "2 approved · 1 waived · 1 waiting" in shot.text
    assert any(style.strike for style in shot.styles("priya"))  # the stale row is struck
    if size == LARGE:
        assert "12:02 UTC" in words
        assert "evidence: slack msg" in words
        assert "waiting" in words


async def test_approvals_rows_are_keyed_and_stable() -> None:
    state = approvals_state()
    pane = ApprovalsPane()
    app = Host(pane)
    async with app.run_test(size=LARGE) as pilot:
        pane.show(state, T0)
        await pilot.pause()
        keys = [row.key for row in pane.rows]
        assert keys[:2] == ["role:security-lead", "stale:2"]
        first = pane.rows
        pane.show(state, T0)
        assert pane.rows is first


# --- rollback ------------------------------------------------------------------------------------


def rollback_events() -> Events:
    return (
        declared()
        .add(Kind.CHECKLIST_ACKED, {"items": ["a", "b"]}, minutes=1)
        .add(Kind.PREFLIGHT_PASSED, {"target": "v1.4.1", "detail": "passed", "checks": [
            {"name": "image exists", "ok": True, "detail": "sha256:abc"},
            {"name": "schema", "ok": True, "detail": ""}]}, minutes=1)
    )


@both_sizes()
async def test_rollback_idle_shows_target_preflight_and_the_key(size: tuple[int, int]) -> None:
    state = rollback_events().state()
    shot = await shown(RollbackPane(), size, lambda p: p.show(state, T0, can_act=True))
    words = shot.words
    assert "target v1.4.1" in words
    assert "preflight ✓ passed" in words
    assert "press R to roll back to v1.4.1" in shot.text
    if size == LARGE:
        assert "checklist ✓ acknowledged by ic" in words
        assert "✓ image exists — sha256:abc" in words
    shot = await shown(RollbackPane(), size, lambda p: p.show(state, T0, can_act=False))
    assert "press R" not in shot.text


@both_sizes()
async def test_rollback_not_verified_is_the_loudest_thing_on_screen(size: tuple[int, int]) -> None:
    events = rollback_events()
    events.add(Kind.ROLLBACK_REQUESTED, {"target": "v1.4.1", "reason": "breach"}, minutes=5)
    events.add(Kind.ROLLBACK_PROGRESS, {"message": "pods 2/4"}, minutes=6)
    events.add(Kind.ROLLBACK_NOT_VERIFIED, {
        "target": "v1.4.1", "reason": "error_rate still 4% " + HOSTILE,
        "checks": [{"name": "version live", "ok": True},
                   {"name": "guardrails", "ok": False, "detail": "error_rate breach"}]},
        minutes=9)
    state = events.state()
    pane = RollbackPane()
    shot = await shown(pane, size, lambda p: p.show(state, T0, can_act=True))
    words = shot.words
    assert "✗ ROLLBACK NOT VERIFIED: error_rate still 4%" in words
    assert "NOT VERIFIED" in shot.text.splitlines()[1]  # the first line inside the border
    loud = shot.styles("ROLLBACK NOT VERIFIED")
    assert loud and all(style.bold and style.reverse for style in loud)
    assert pane.has_class("-alarm")
    assert "\x1b" not in shot.text
    if size == LARGE:
        assert HOSTILE_SHOWN in words
        assert "✗ guardrails — error_rate breach" in words
        assert "• pods 2/4" in words
        assert "press R to retry the rollback to v1.4.1" in words


async def test_rollback_failed_in_progress_and_verified() -> None:
    events = rollback_events()
    events.add(Kind.ROLLBACK_REQUESTED, {"target": "v1.4.1", "reason": "breach"}, minutes=5)
    events.add(Kind.ROLLBACK_STARTED, {"target": "v1.4.1", "detail": "deploy #42"}, minutes=5)
    shot = await shown(RollbackPane(), LARGE,
                            lambda p: p.show(events.state(), T0, can_act=True))
    assert "⟳ rollback to v1.4.1 in progress" in shot.words
    assert "press R" not in shot.text

    failed = Events()
    failed.events = [*events.events]
    failed.add(Kind.ROLLBACK_FAILED, {"target": "v1.4.1", "error": "deployer said no"},
               minutes=6)
    shot = await shown(RollbackPane(), SMALL, lambda p: p.show(failed.state(), T0))
    assert "✗ ROLLBACK FAILED: deployer said no" in shot.words
    assert all(s.reverse and s.bold for s in shot.styles("ROLLBACK FAILED"))

    events.add(Kind.ROLLBACK_VERIFIED, {"target": "v1.4.1", "checks": []}, minutes=12)
    pane = RollbackPane()
    shot = await shown(pane, SMALL, lambda p: p.show(events.state(), T0, can_act=True))
    assert "✓ ROLLBACK VERIFIED: v1.4.1 live at 12:12 UTC" in shot.words
    assert pane.has_class("-verified") and not pane.has_class("-alarm")


async def test_rollback_preflight_failed_and_checklist_missing() -> None:
    state = (
        declared()
        .add(Kind.PREFLIGHT_FAILED, {"target": "v1.4.1", "detail": "image gone " + HOSTILE,
                                     "checks": [{"name": "image", "ok": False,
                                                 "detail": "404"}]}, minutes=1)
        .state()
    )
    shot = await shown(RollbackPane(), LARGE, lambda p: p.show(state, T0))
    words = shot.words
    assert f"preflight ✗ FAILED: image gone {HOSTILE_SHOWN}" in words
    assert "checklist ✗ not acknowledged (2 items)" in words
    assert "✗ image — 404" in words


# --- guardrails ----------------------------------------------------------------------------------


def guardrail_state() -> IncidentState:
    return (
        declared(guardrails=[{"name": "error_rate", "consecutive": 3, "on_breach": "rollback"},
                             {"name": "p99_latency", "consecutive": 2}, "evidence", "saturation"])
        .add(Kind.GUARDRAIL_CHANGED, {"name": "error_rate", "status": "breach", "canary": 0.041,
                                      "baseline": 0.003, "limit": 0.02, "breaches": 1,
                                      "consecutive": 3,
                                      "detail": "canary 4.1% > limit 2.0%"}, minutes=4)
        .add(Kind.GUARDRAIL_CHANGED, {"name": "p99_latency", "status": "healthy", "canary": 0.31,
                                      "baseline": 0.29, "limit": 0.5, "breaches": 0,
                                      "detail": "ok"}, minutes=4)
        .add(Kind.GUARDRAIL_CHANGED, {"name": "evidence", "status": "cant_evaluate",
                                      "detail": "query failed: " + HOSTILE}, minutes=4)
        .state()
    )


@both_sizes()
async def test_guardrails_status_words_figures_and_budget(size: tuple[int, int]) -> None:
    state = guardrail_state()
    units = {"error_rate": ("%", 100.0), "p99_latency": ("s", 1.0)}
    # The figures are the newest samples (not the status change's): the same the graphs show.
    figures = {"error_rate": Figures(0.043, 0.003, 0.02), "p99_latency": Figures(0.31, 0.29, 0.5)}
    pane = GuardrailsPane()
    shot = await shown(pane, size, lambda p: p.show(state, T0, units=units, figures=figures,
                                                    poll_interval_s=2.0))
    words = shot.words
    assert "error_rate" in words and "BREACH" in words
    assert "breaches 1/3" in words
    assert "p99_latency" in words and "healthy" in words
    assert "can't evaluate" in words
    assert "saturation" in words and "not yet evaluated" in words
    assert pane.has_class("-breach")
    assert any(s.reverse and s.bold for s in shot.styles("BREACH"))
    assert "\x1b" not in shot.text
    if size == LARGE:
        assert "canary 0.31 s · base 0.29 s · limit 0.50 s" in words
        assert "canary 4.30% > limit 2.00% · base 0.30%" in words  # newest, not the event's 4.1
        assert f"query failed: {HOSTILE_SHOWN}" in words
        assert "breaches 1/3 → rollback in 2 polls (~4s)" in words


async def test_guardrail_detail_renders_queries_and_errors_literally() -> None:
    items = [
        {"name": "error_rate", "status": "cant_evaluate", "detail": "no answer",
         "queries": {"canary": 'sum(rate(http_errors{service="pay",track="canary"}[5m]))',
                     "baseline": "up\n  and [bold]x[/bold]"},
         "raw": {"canary": [0.1, "NaN"], "baseline": []},
         "error": "HTTP 400: " + HOSTILE},
        {"name": "p99", "status": "healthy", "detail": "ok", "queries": {}, "raw": {},
         "error": None},
    ]
    detail = GuardrailDetail()
    shot = await shown(detail, LARGE, lambda d: d.show(items))
    assert 'sum(rate(http_errors{service="pay",track="canary"}[5m]))' in shot.text
    assert "[bold]x[/bold]" in shot.text
    assert "0.1, NaN" in shot.text and "(none)" in shot.text
    assert f"HTTP 400: {HOSTILE_SHOWN}" in shot.text
    assert "can't evaluate" in shot.text and "error           none" in shot.text
    assert "\x1b" not in shot.text


# --- graphs --------------------------------------------------------------------------------------


def series(values: list[float | None]) -> list[tuple[float, float | None]]:
    return [(T0.timestamp() + 60 * n, v) for n, v in enumerate(values)]


CANARY = series([0.5, 0.8, None, 1.6, 2.9, 4.1])
BASELINE = series([0.3, 0.3, 0.3, 0.3, 0.3, 0.3])


async def test_graph_is_a_sparkline_with_figures_in_a_small_box() -> None:
    graph = MetricGraph()
    app = Host(graph)
    async with app.run_test(size=(40, 6)) as pilot:
        graph.set_series("error rate " + HOSTILE, "%", CANARY, BASELINE, 2.0)
        await pilot.pause()
        shot = Shot.of(app)
        assert graph.is_compact
        spark = graph.query_one(Sparkline)
        assert spark.display and spark.data == [0.5, 0.8, 1.6, 2.9, 4.1]
    assert graph._plot is None  # textual-plotext never even imported for it
    assert "canary 4.10% base 0.30% limit 2.00%" in shot.text  # 36 columns: no dots
    assert "error rate [/] [bold]x" in shot.text
    assert any(s.reverse for s in shot.styles("4.10%"))  # over the limit
    assert graph.has_class("-over")
    assert "\x1b" not in shot.text


async def test_graph_plots_canary_baseline_and_limit_when_there_is_room() -> None:
    graph = MetricGraph()
    app = Host(graph)
    async with app.run_test(size=LARGE) as pilot:
        graph.set_series("latency", "s", CANARY, BASELINE, 2.0)
        await pilot.pause()
        await pilot.pause()
        text = Shot.of(app).text
        assert not graph.is_compact
        assert graph._plot is not None and graph._plot.display
        assert not graph.query_one(Sparkline).display
        assert "canary" in text and "base" in text  # the figures line names the colours
        assert "12:00" in text and "12:05" in text  # time ticks in UTC
        assert any("\u2800" <= ch <= "\u28ff" for ch in text)  # plotext's braille lines
        # Same data again: nothing is rebuilt.
        built = graph._drawn
        calls: list[str] = []
        original = graph._plot.plt.clear_data
        graph._plot.plt.clear_data = lambda: calls.append("clear")  # type: ignore[method-assign]
        graph.set_series("latency", "s", list(CANARY), list(BASELINE), 2.0)
        await pilot.pause()
        assert calls == [] and graph._drawn is built
        graph._plot.plt.clear_data = original  # type: ignore[method-assign]
        # New data: rebuilt.
        graph.set_series("latency", "s", [*CANARY, (CANARY[-1][0] + 60, 5.0)], BASELINE, 2.0)
        await pilot.pause()
        assert graph._drawn is not built


@pytest.mark.parametrize("size", [(40, 6), LARGE], ids=["small", "large"])
async def test_graph_without_data_says_so(size: tuple[int, int]) -> None:
    graph = MetricGraph()
    shot = await shown(graph, size, lambda g: g.set_series(
        "error rate", "%", series([None, None]), [], None))
    assert "no data yet" in shot.text
    assert graph._plot is None


# --- checklist -----------------------------------------------------------------------------------


def promoted() -> Events:
    return at_ten_percent().add(Kind.WEIGHT_SET, {"percent": 100, "stage_index": 3},
                                minutes=30)


async def test_checklist_is_hidden_until_it_applies() -> None:
    pane = ChecklistPane()
    app = Host(pane)
    async with app.run_test(size=SMALL) as pilot:
        pane.show(at_ten_percent().state(), T0)
        await pilot.pause()
        assert not pane.display
        pane.show(promoted().state(), T0)
        await pilot.pause()
        assert pane.display
        assert "☐ Verify resolution" in Shot.of(app).text


async def test_the_main_screen_checklist_only_shows() -> None:
    """Outside the checklist mode the pane takes no keys: p and f never mark an item."""
    state = promoted().state()
    pane = ChecklistPane()
    app = Host(pane)
    async with app.run_test(size=(80, 24)) as pilot:
        pane.show(state, T0, can_act=True)
        assert not pane.can_focus
        pane.action_choose("passed")
        await pilot.pause()
        assert app.chosen == []


@both_sizes()
async def test_checklist_keys_post_item_chosen(size: tuple[int, int]) -> None:
    events = promoted().add(Kind.GATE_RECORDED, {"item": "Schedule the post-incident review",
                                                 "result": "waived", "detail": HOSTILE},
                            minutes=31)
    state = events.state()
    pane = ChecklistPane(interactive=True)  # the checklist mode's pane
    app = Host(pane)
    async with app.run_test(size=size) as pilot:
        pane.show(state, T0, can_act=True)
        pane.focus()
        await pilot.pause()
        text = Shot.of(app).text
        assert "1/3 recorded" in text
        assert "\x1b" not in text
        await pilot.press("p")
        await pilot.press("down", "f")
        await pilot.press("down", "down", "w")  # stops at the last item
        await pilot.press("up", "up", "up", "p")  # and at the first
        await pilot.pause()
        items = state.post_checklist()
        assert [(m.item, m.result) for m in app.chosen] == [
            (items[0], "passed"), (items[1], "failed"), (items[2], "waived"), (items[0], "passed"),
        ]
        if size == LARGE:
            shown_words = Shot.of(app).words
            assert f"~ Schedule the post-incident review — waived: {HOSTILE_SHOWN}" in shown_words


async def test_checklist_in_watch_mode_posts_nothing() -> None:
    pane = ChecklistPane()
    app = Host(pane)
    async with app.run_test(size=SMALL) as pilot:
        pane.show(promoted().state(), T0, can_act=False)
        pane.focus()
        await pilot.press("p", "f", "w")
        await pilot.pause()
        assert app.chosen == []


# --- every pane, hostile text, both sizes -------------------------------------------------------


@both_sizes()
async def test_hostile_text_is_never_markup_anywhere(size: tuple[int, int]) -> None:
    """Outside strings in every field a pane shows: no MarkupError, no escape reaches the screen."""
    state = (
        declared(required_roles=[HOSTILE], from_version=HOSTILE, to_version="v2" + HOSTILE,
                 guardrails=[HOSTILE],
                 bypasses=[{"element": "freeze", "reason": HOSTILE, "compensation": HOSTILE,
                            "post_gate": HOSTILE * 5}])
        .add(Kind.APPROVED, {"role": HOSTILE, "user": HOSTILE, "kind": "relayed",
                             "evidence": HOSTILE, "version": "v2" + HOSTILE}, actor=HOSTILE)
        .add(Kind.GUARDRAIL_CHANGED, {"name": HOSTILE, "status": "breach", "detail": HOSTILE})
        .add(Kind.PREFLIGHT_FAILED, {"target": HOSTILE, "detail": HOSTILE,
                                     "checks": [{"name": HOSTILE, "ok": False,
                                                 "detail": HOSTILE}]})
        .add(Kind.ROLLBACK_REQUESTED, {"target": HOSTILE, "reason": HOSTILE})
        .add(Kind.ROLLBACK_PROGRESS, {"message": HOSTILE * 20})
        .add(Kind.ROLLBACK_NOT_VERIFIED, {"target": HOSTILE, "reason": HOSTILE})
        .add(Kind.WEIGHT_SET, {"percent": 100, "stage_index": 3})
        .add(Kind.GATE_RECORDED, {"item": HOSTILE, "result": "passed", "detail": HOSTILE})
        .state()
    )
    state.last_weight_error = HOSTILE
    blocks = [(HOSTILE, HOSTILE, True), ("hold", HOSTILE, False)]
    panes: list[tuple[Widget, Any]] = [
        (CanaryPane(), lambda p: p.show(state, T0, blocks)),
        (ApprovalsPane(), lambda p: p.show(state, T0)),
        (RollbackPane(), lambda p: p.show(state, T0, can_act=True)),
        (GuardrailsPane(), lambda p: p.show(state, T0, units={HOSTILE: (HOSTILE, 1.0)})),
        (ChecklistPane(), lambda p: p.show(state, T0)),
        (MetricGraph(), lambda g: g.set_series(HOSTILE, HOSTILE, CANARY, BASELINE, 1.0)),
        (GuardrailDetail(), lambda d: d.show([{"name": HOSTILE, "status": HOSTILE,
                                               "detail": HOSTILE, "queries": {HOSTILE: HOSTILE},
                                               "raw": {HOSTILE: [HOSTILE]},
                                               "error": HOSTILE}])),
    ]
    for pane, show in panes:
        shot = await shown(pane, size, show)
        name = type(pane).__name__
        assert not {"\x1b", "\x07", "\x00"} & set(shot.text), name
        assert "[/" in shot.text, (name, shot.text)  # shown, not parsed as markup


def test_widgets_import_no_core_io_and_plotext_lazily() -> None:
    """The panes import neither the store, the engine, the policy nor the adapters — and
    textual-plotext only once a plot is drawn (it costs ≈ 0.2 s at start-up)."""
    root = Path(__file__).resolve().parents[2]
    code = (
        "import sys\n"
        "import widgets.canary, widgets.approvals, widgets.rollback, widgets.guardrails\n"
        "import widgets.graphs, widgets.checklist\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] == 'adapters' or m in\n"
        "             ('console.store', 'console.engine', 'console.policy', 'console.config',\n"
        "              'textual_plotext', 'plotext'))\n"
        "print(','.join(bad))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True,
                            text=True, check=True, timeout=60)
    assert result.stdout.strip() == ""
