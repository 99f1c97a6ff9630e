"""The console as a person drives it: every key, what the screen then shows, what the store records.

Each test runs the real app (``make_app``) on a real SQLite incident at 80×24 through Pilot. The
engine, the simulator and the screen share one ManualClock; the app is built with ``live=False``
and :func:`settle` plays the store-watch cycle once, so nothing depends on wall-clock timing
(except the one test that checks the live store-watch loop, against a deadline).
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from textual import events
from textual.containers import Vertical, VerticalScroll
from textual.pilot import Pilot
from textual.widgets import Input

from console.actions import COMMANDER_ONLY as COMMANDER_ACTIONS
from console.app import WATCHING, WarroomApp
from console.model import Kind
from console.screens.checklist import ChecklistModal
from console.screens.confirm import ConfirmModal, ConfirmRollbackModal
from console.screens.forms import NoteModal, OverrideModal, ReasonModal
from console.screens.info import GuardrailDetailModal, HelpScreen
from tests.app.conftest import (
    Rig,
    RigFactory,
    region_text,
    screen_text,
    settle,
    squash,
    toasts_text,
)

SIZE = (80, 24)


# --- helpers --------------------------------------------------------------------------------------


def shown(app: WarroomApp) -> str:
    """The whole screen, whitespace folded (so wrapped sentences read as one)."""
    return squash(screen_text(app))


def pane(app: WarroomApp, widget: Any) -> str:
    return squash(region_text(app, widget))


def modal_text(app: WarroomApp) -> str:
    """What the open modal says, inside its frame (wrapped lines read as one)."""
    box = next(child for child in app.screen.children
               if isinstance(child, Vertical | VerticalScroll))
    return squash(region_text(app, box))


def nospace(text: str) -> str:
    return "".join(text.split())


async def type_text(pilot: Pilot[Any], text: str) -> None:
    """Type ``text`` key by key, as a person would."""
    await pilot.press(*text)


async def paste(pilot: Pilot[Any], text: str) -> None:
    """Paste ``text`` into the focused widget (how control characters reach an input)."""
    focused = pilot.app.focused
    assert focused is not None
    focused.post_message(events.Paste(text))
    await pilot.pause()


def to_ten_percent(rig: Rig) -> None:
    rig.to_ten_percent()


# --- the screen at start --------------------------------------------------------------------------


async def test_commander_screen_at_start(rig: Rig) -> None:
    app = rig.app()
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await settle(pilot)
        header = pane(app, app.header)
        assert "COMMANDER" in header and "INC-1" in header and "P0" in header
        assert "2h 00m left" in header and "cmdr alice" in header
        canary = pane(app, app.canary)
        assert "[0%] ▸ 1% ▸ 10% ▸ 50% ▸ 100%" in canary
        assert "approvals missing: security-lead, platform-lead" in canary
        assert "target v1.4.2" in pane(app, app.rollback_pane)
        assert "security-lead" in pane(app, app.approvals)
        assert "Declared P0 security emergency on redaction-api" in pane(app, app.timeline)


async def test_an_open_console_keeps_its_heap_out_of_the_collector_until_it_closes(
        rig: Rig) -> None:
    # A full collection walked everything the console holds and took 60-90 ms on a busy
    # console, on whatever key was being answered. Once the first reading is shown, what is
    # held for the console's life is frozen; closing gives it back (many consoles run here).
    import gc

    assert gc.get_freeze_count() == 0
    app = rig.app()
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await settle(pilot)
        deadline = time.monotonic() + 20
        while gc.get_freeze_count() == 0 and time.monotonic() < deadline:
            await pilot.pause(0.02)  # it waits for the frame after the first reading
        assert gc.get_freeze_count() > 0
        assert "INC-1" in pane(app, app.header)
    assert gc.get_freeze_count() == 0


# --- a: advance -----------------------------------------------------------------------------------


async def test_advance_with_blocks_lists_each_block_and_escape_cancels(rig: Rig) -> None:
    app = rig.app()
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await settle(pilot)
        before = rig.last_id()
        await pilot.press("a")
        await settle(pilot)
        assert isinstance(app.screen, OverrideModal)
        text = shown(app)
        assert "Advance canary 0% → 1%? Blocked — override each block with a reason" in text
        assert "OVERRIDE: approvals missing: security-lead, platform-lead" in text
        assert "OVERRIDE: rollback preflight has not run yet" in text
        assert len(app.screen.query(Input)) == 2  # one reason per block
        await pilot.press("escape")
        await settle(pilot)
        assert not isinstance(app.screen, OverrideModal)
        assert rig.kinds(before) == []


async def test_typing_straight_on_after_enter_lands_in_the_next_box(rig: Rig) -> None:
    """A fast typist does not wait for the focus to move: every key after Enter belongs to the
    next box. (With Input.Submitted, the keys typed before its message bubbled up went into the
    box just left: the second reason was appended to the first.)"""
    app = rig.app()
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await settle(pilot)
        before = rig.last_id()
        await pilot.press("a")
        await settle(pilot)
        assert isinstance(app.screen, OverrideModal)
        # All the keys at once, as a terminal delivers a fast typist's burst: each is queued
        # before the first is handled (Pilot.press would wait for idle after every key).
        for char in "approvers are on the call\rpreflight runs right now\r":
            key = "enter" if char == "\r" else "space" if char == " " else char
            app.post_message(events.Key(key, char))
        await settle(pilot)
        assert not isinstance(app.screen, OverrideModal), shown(app)
        request = rig.events()[-2]
        assert request.kind == Kind.WEIGHT_REQUESTED
        assert [(o["block"], o["reason"]) for o in request.payload["overrides"]] == [
            ("approvals", "approvers are on the call"),
            ("preflight", "preflight runs right now"),
        ]
        assert rig.kinds(before) == [Kind.WEIGHT_REQUESTED, Kind.WEIGHT_SET]


async def test_advance_override_refuses_a_short_reason_then_records_each_one(rig: Rig) -> None:
    app = rig.app()
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await settle(pilot)
        before = rig.last_id()
        await pilot.press("a")
        await settle(pilot)
        await type_text(pilot, "nope")
        await pilot.press("enter")  # next reason
        await type_text(pilot, "preflight runs on the bridge now")
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, OverrideModal), "a 4-letter reason must be refused"
        assert "Each reason must be specific (at least 8 characters)." in shown(app)
        assert rig.kinds(before) == []
        # The refused field has the focus again: fix it and proceed.
        focused = app.focused
        assert isinstance(focused, Input) and focused.id == "reason-approvals"
        await pilot.press(*["backspace"] * 4)
        await type_text(pilot, "both leads agreed on the bridge call")
        await pilot.press("enter")
        await settle(pilot)
        assert not isinstance(app.screen, OverrideModal)
        new = rig.events()[-2:]
        assert [e.kind for e in new] == [Kind.WEIGHT_REQUESTED, Kind.WEIGHT_SET]
        request, done = new
        assert request.payload["action"] == "advance"
        assert (request.payload["from_percent"], request.payload["to_percent"]) == (0, 1)
        assert [(o["block"], o["reason"]) for o in request.payload["overrides"]] == [
            ("approvals", "both leads agreed on the bridge call"),
            ("preflight", "preflight runs on the bridge now"),
        ]
        assert done.payload["percent"] == 1
        assert done.payload["request_id"] == request.id
        canary = pane(app, app.canary)
        assert "[1%]" in canary
        # The timeline row is cut at 80 columns, but says the advance was an override.
        assert "Advance to 1% requested; OVERRIDES: approvals" in pane(app, app.timeline)


async def test_advance_when_ready_asks_and_y_sets_one_percent(rig: Rig) -> None:
    rig.ready()
    app = rig.app()
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await settle(pilot)
        assert "ready to advance to 1% — press a" in pane(app, app.canary)
        before = rig.last_id()
        await pilot.press("a")
        await settle(pilot)
        assert type(app.screen) is ConfirmModal
        text = shown(app)
        assert "Advance canary 0% → 1%?" in text
        assert "redaction-api: v1.4.3 gets 1% of traffic" in text
        assert "Minimum hold at 1%: 20s." in text
        assert "y = advance to 1% any other key = cancel" in text
        await pilot.press("y")
        await settle(pilot)
        assert rig.kinds(before) == [Kind.WEIGHT_REQUESTED, Kind.WEIGHT_SET]
        request, done = rig.events()[-2:]
        assert request.payload["overrides"] == [] and request.payload["to_percent"] == 1
        assert done.payload["percent"] == 1 and rig.sim.current_weight() == 1
        canary = pane(app, app.canary)
        assert "0% ▸ [1%] ▸ 10%" in canary and "hold 20s left of 20s" in canary
        assert "Canary weight is 1% (advance)" in pane(app, app.timeline)


@pytest.mark.parametrize("key", ["n", "escape", "enter", "space", "Y"])
async def test_advance_confirmation_any_other_key_cancels(rig: Rig, key: str) -> None:
    rig.ready()
    app = rig.app()
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await settle(pilot)
        before = rig.last_id()
        await pilot.press("a")
        await settle(pilot)
        assert type(app.screen) is ConfirmModal
        await pilot.press(key)
        await settle(pilot)
        assert len(app.screen_stack) == 1
        assert rig.kinds(before) == []
        assert rig.sim.current_weight() == 0


async def test_hold_after_the_first_stage_is_a_block_to_override(rig: Rig) -> None:
    rig.ready()
    rig.engine.advance()
    rig.tick(4)
    app = rig.app()
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await settle(pilot)
        assert "✗ hold 16s left of 20s" in pane(app, app.canary)
        before = rig.last_id()
        await pilot.press("a")
        await settle(pilot)
        assert isinstance(app.screen, OverrideModal)
        assert "OVERRIDE: hold at 1%: 16s left of 20s" in shown(app)
        await pilot.press("escape")
        await settle(pilot)
        assert rig.kinds(before) == []


async def test_the_advance_form_follows_the_hold_never_a_stale_block(rig: Rig) -> None:
    """The form opened during a hold counts it down with the canary pane beside it, and once
    the hold is over it is the plain y confirmation (the bench once saw the pane say ready
    while a form opened two seconds earlier still said "2s left")."""
    rig.ready()
    rig.engine.advance()
    rig.tick(4)
    app = rig.app()
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await settle(pilot)
        before = rig.last_id()
        await pilot.press("a")
        await settle(pilot)
        assert "OVERRIDE: hold at 1%: 16s left of 20s" in shown(app)
        await type_text(pilot, "half a reason")
        rig.tick(6)  # the commander's polls keep the guardrails judged
        await settle(pilot)
        assert isinstance(app.screen, OverrideModal)
        assert "OVERRIDE: hold at 1%: 10s left of 20s" in shown(app)
        assert "✗ hold 10s left of 20s" in pane(app, app.canary)
        rig.tick(11)
        await settle(pilot)
        assert not isinstance(app.screen, OverrideModal), shown(app)
        assert isinstance(app.screen, ConfirmModal)
        text = shown(app)
        assert "Advance canary 1% → 10%?" in text and "y = advance to 10%" in text
        assert "hold at 1%" not in modal_text(app)
        assert Kind.WEIGHT_REQUESTED not in rig.kinds(before)
        await pilot.press("y")
        await settle(pilot)
        request = rig.events(Kind.WEIGHT_REQUESTED)[-1]
        assert request.id > before and not request.payload.get("overrides")
        assert rig.events(Kind.WEIGHT_SET)[-1].payload["percent"] == 10


async def test_guardrail_breach_is_a_block_and_can_be_overridden(rig: Rig) -> None:
    to_ten_percent(rig)
    rig.tick(4)  # two polls of the bad build at 10%
    app = rig.app()
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await settle(pilot)
        assert "guardrails not healthy: error-ratio BREACH; p99-latency BREACH" in pane(
            app, app.canary)
        assert "BREACH" in pane(app, app.guardrails_pane)
        before = rig.last_id()
        await pilot.press("a")
        await settle(pilot)
        assert isinstance(app.screen, OverrideModal)
        text = shown(app)
        assert "Advance canary 10% → 50%?" in text
        assert "OVERRIDE: hold at 10%: 26s left of 30s" in text
        assert "OVERRIDE: guardrails not healthy: error-ratio BREACH; p99-latency BREACH" in text
        await type_text(pilot, "hold waived by the CTO")
        await pilot.press("enter")
        await type_text(pilot, "breach is the known log noise")
        await pilot.press("enter")
        await settle(pilot)
        request = rig.events(Kind.WEIGHT_REQUESTED)[-1]
        assert request.id > before
        assert [o["block"] for o in request.payload["overrides"]] == ["hold", "guardrails"]
        assert rig.events(Kind.WEIGHT_SET)[-1].payload["percent"] == 50


@pytest.mark.parametrize("situation", ["at-100", "rolling-back"])
async def test_a_non_overridable_block_only_notifies(make_rig: RigFactory, situation: str
                                                      ) -> None:
    rig = make_rig("bad")
    rig.ready()
    if situation == "at-100":
        rig.engine.immediate("regulator deadline at midnight")
        expected = "Cannot advance: the canary is at 100%: nothing to advance"
    else:
        rig.engine.advance()
        rig.engine.request_rollback("the bridge decided")
        expected = "Cannot advance: a rollback was requested (in progress)"
    app = rig.app()
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await settle(pilot)
        before = rig.last_id()
        await pilot.press("a")
        await settle(pilot)
        assert len(app.screen_stack) == 1, "no modal for a block nobody can override"
        assert expected in toasts_text(app)
        assert rig.kinds(before) == []


# --- x: abort -------------------------------------------------------------------------------------


async def test_abort_confirms_then_sets_zero(rig: Rig) -> None:
    rig.ready()
    rig.engine.advance()
    app = rig.app()
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await settle(pilot)
        before = rig.last_id()
        await pilot.press("x")
        await settle(pilot)
        assert type(app.screen) is ConfirmModal
        text = shown(app)
        assert "Abort the canary of redaction-api?" in text
        assert "Canary weight 1% → 0%: all traffic back to v1.4.2." in text
        assert "This is not a rollback" in text
        await pilot.press("q")  # any other key: nothing happens (and the app does not quit)
        await settle(pilot)
        assert rig.kinds(before) == [] and app.is_running
        await pilot.press("x", "y")
        await settle(pilot)
        assert rig.kinds(before) == [Kind.WEIGHT_REQUESTED, Kind.WEIGHT_SET]
        request, done = rig.events()[-2:]
        assert request.payload["action"] == "abort" and request.payload["to_percent"] == 0
        assert done.payload["percent"] == 0 and rig.sim.current_weight() == 0
        assert "[0%]" in pane(app, app.canary)
        # Nothing left to abort: a notification, no modal, no event.
        mark = rig.last_id()
        await pilot.press("x")
        await settle(pilot)
        assert len(app.screen_stack) == 1
        assert "Cannot abort: the canary weight is already 0%" in toasts_text(app)
        assert rig.kinds(mark) == []


# --- R: rollback ----------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["n", "escape", "enter", "r"])
async def test_rollback_confirmation_says_what_happens_and_other_keys_cancel(
        rig: Rig, key: str) -> None:
    to_ten_percent(rig)
    app = rig.app()
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await settle(pilot)
        before = rig.last_id()
        await pilot.press("R")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmRollbackModal)
        text = shown(app)
        assert "ROLL BACK redaction-api to v1.4.2?" in text
        assert "Roll back to: v1.4.2 (from v1.4.3)" in text
        assert "Canary weight: 10% → 0%" in text
        assert "Counts as VERIFIED only when:" in text
        assert "1. the deployer reports v1.4.2 live," in text
        assert "2. the canary weight reads 0%," in text
        assert "3. guardrails stay healthy on the stable track for 15s" in text
        assert "Otherwise the console says ROLLBACK NOT VERIFIED, and why." in text
        assert "y = roll back to v1.4.2 any other key = cancel" in text
        await pilot.press(key)
        await settle(pilot)
        assert len(app.screen_stack) == 1
        assert rig.kinds(before) == []
        assert rig.events(Kind.ROLLBACK_REQUESTED) == []
        assert "Rollback cancelled." in toasts_text(app)
        assert rig.sim.rollbacks == []


async def test_rollback_y_runs_and_is_verified(rig: Rig) -> None:
    to_ten_percent(rig)
    app = rig.app()
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await settle(pilot)
        before = rig.last_id()
        await pilot.press("R", "y")
        await settle(pilot)
        # the weight-0 step is journalled like any traffic change (a restart finishes it)
        assert rig.kinds(before) == [Kind.ROLLBACK_REQUESTED, Kind.ROLLBACK_PROGRESS,
                                     Kind.ROLLBACK_STARTED, Kind.WEIGHT_REQUESTED,
                                     Kind.WEIGHT_SET]
        request = rig.events(Kind.ROLLBACK_REQUESTED)[0]
        assert request.actor == "alice"
        assert request.payload["target"] == "v1.4.2" and request.payload["weight"] == 10
        assert request.payload["automatic"] is False
        assert "rollback to v1.4.2 in progress" in pane(app, app.rollback_pane)
        assert "[0%]" in pane(app, app.canary)
        # Another R while it runs: refused in words.
        await pilot.press("R")
        await settle(pilot)
        assert len(app.screen_stack) == 1
        assert "Cannot roll back: a rollback is already running" in toasts_text(app)

        # The deployer needs rollback_seconds; then the stable track must hold for the hold.
        rig.tick(rig.config.deploy.rollback_seconds + 1)  # type: ignore[union-attr]
        await settle(pilot)
        assert Kind.ROLLBACK_COMPLETED in rig.kinds(before)
        assert rig.events(Kind.ROLLBACK_VERIFIED) == []
        assert "VERIFIED" not in pane(app, app.rollback_pane)
        rig.tick(rig.config.rollback.verification_hold_s + 2)
        await settle(pilot)
        verified = rig.events(Kind.ROLLBACK_VERIFIED)
        assert len(verified) == 1
        assert all(check["ok"] for check in verified[0].payload["checks"])
        assert rig.state().rollback_status == "verified"
        rollback = pane(app, app.rollback_pane)
        assert "✓ ROLLBACK VERIFIED: v1.4.2 live at 22:00 UTC" in rollback
        assert "verified" in str(app.rollback_pane.border_subtitle)
        app.clear_notifications()  # the earlier "Cannot roll back" toast covers the timeline
        await pilot.pause()
        assert "ROLLBACK VERIFIED: v1.4.2 live, weight 0%" in pane(app, app.timeline)


async def test_rollback_that_never_goes_live_is_not_verified_with_the_reason(
        make_rig: RigFactory) -> None:
    rig = make_rig("bad", fail_rollback=True)
    to_ten_percent(rig)
    app = rig.app()
    timeout = rig.config.rollback.verify_timeout_s
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await settle(pilot)
        await pilot.press("R", "y")
        await settle(pilot)
        rig.tick(timeout - 10)
        await settle(pilot)
        assert rig.state().rollback_status == "in_progress", "not a verdict before the timeout"
        assert "NOT VERIFIED" not in shown(app)
        rig.tick(20)
        await settle(pilot)
        verdict = rig.events(Kind.ROLLBACK_NOT_VERIFIED)
        assert len(verdict) == 1
        reason = verdict[0].payload["reason"]
        assert "the deployer still reports v1.4.3, not v1.4.2" in reason
        rollback = pane(app, app.rollback_pane)
        assert "✗ ROLLBACK NOT VERIFIED: after 2m" in rollback
        assert "the deployer still reports v1.4.3, not v1.4.2" in rollback
        assert "NOT VERIFIED" in str(app.rollback_pane.border_subtitle)
        assert app.rollback_pane.has_class("-alarm")
        assert "ROLLBACK NOT VERIFIED" in pane(app, app.timeline)


async def test_automatic_rollback_on_sustained_breach_is_verified(rig: Rig) -> None:
    """The bad build at 10%: error-ratio (on_breach = rollback) breaches 8 polls in a row."""
    to_ten_percent(rig)
    app = rig.app()
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await settle(pilot)
        polls = 0
        while not rig.events(Kind.ROLLBACK_REQUESTED):
            rig.tick(rig.config.monitoring.poll_interval_s)
            polls += 1
            assert polls <= 20, "no automatic rollback after 20 polls of a breaching build"
        action = rig.events(Kind.GUARDRAIL_ACTION)
        assert [(a.payload["name"], a.payload["action"]) for a in action][-1] == (
            "error-ratio", "rollback")
        request = rig.events(Kind.ROLLBACK_REQUESTED)[0]
        assert request.payload["automatic"] is True and request.actor == "warroom"
        assert "sustained breach of error-ratio (8 in a row)" in request.payload["reason"]
        await settle(pilot)
        assert "(automatic)" in pane(app, app.rollback_pane)
        rig.tick(30)
        await settle(pilot)
        assert rig.state().rollback_status == "verified"
        rollback = pane(app, app.rollback_pane)
        assert "✓ ROLLBACK VERIFIED (automatic): v1.4.2 live" in rollback
        assert "[0%]" in pane(app, app.canary)


# --- n: note --------------------------------------------------------------------------------------


HOSTILE_NOTES = ["[bold]x[/]", "[link=y]z[/link]", "\x1b[31mred"]


async def test_notes_are_recorded_exactly_and_shown_literally(rig: Rig) -> None:
    app = rig.app()
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await settle(pilot)
        for text in HOSTILE_NOTES:
            await pilot.press("n")
            await settle(pilot)
            assert isinstance(app.screen, NoteModal)
            if "\x1b" in text:
                await paste(pilot, text)  # nobody can type ESC into a field: it is pasted
            else:
                await type_text(pilot, text)
            await pilot.press("enter")
            await settle(pilot)
        notes = rig.events(Kind.NOTE)
        assert [n.payload["text"] for n in notes] == HOSTILE_NOTES
        assert {n.actor for n in notes} == {"alice"}
        timeline = region_text(app, app.timeline)
        assert "Note: [bold]x[/]" in timeline
        assert "Note: [link=y]z[/link]" in timeline
        assert "Note: ␛[31mred" in timeline  # the escape is shown, never obeyed


async def test_note_escape_or_empty_records_nothing(rig: Rig) -> None:
    app = rig.app()
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await settle(pilot)
        before = rig.last_id()
        await pilot.press("n")
        await type_text(pilot, "never mind")
        await pilot.press("escape")
        await settle(pilot)
        await pilot.press("n", "enter")
        await settle(pilot)
        assert len(app.screen_stack) == 1
        assert rig.kinds(before) == []


async def test_the_note_dialog_closes_with_the_note_shown_and_stays_if_not_recorded(
        rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    """Enter = save: the dialog closes once the note is recorded, in the frame that shows it;
    a note that cannot be recorded keeps the dialog open, says why and keeps the text."""
    app = rig.app()
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await settle(pilot)
        await pilot.press("n")
        await type_text(pilot, "on disk first")
        await pilot.press("enter")
        await settle(pilot)
        assert len(app.screen_stack) == 1
        assert "Note: on disk first" in region_text(app, app.timeline)

        def refuse(text: str) -> None:
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(rig.engine, "note", refuse)
        before = rig.last_id()
        await pilot.press("n")
        await type_text(pilot, "lost?")
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, NoteModal)
        said = modal_text(app)
        assert "Not saved:" in said and "No space left on device" in said
        assert app.screen.query_one(Input).value == "lost?"
        assert rig.last_id() == before
        await pilot.press("escape")
        await settle(pilot)
        assert len(app.screen_stack) == 1


# --- e: export ------------------------------------------------------------------------------------


async def test_export_writes_the_pir_and_says_where(make_rig: RigFactory) -> None:
    rig = make_rig("bad")
    # A directory name that looks like markup: the notification must show the path literally.
    rig.export_dir = rig.export_dir / "pir[b]drafts"
    rig.export_dir.mkdir()
    rig.ready()
    app = rig.app()
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await settle(pilot)
        before = rig.last_id()
        await pilot.press("e")
        await settle(pilot)
        path = rig.export_dir / "INC-1-PIR-20260314T220000Z.md"
        assert path.is_file()
        assert list(rig.export_dir.iterdir()) == [path]
        text = path.read_text(encoding="utf-8")
        assert "INC-1" in text and "Internal API exposes PII in agent responses" in text
        toast = toasts_text(app)
        assert "Exported" in toast
        assert nospace(f"PIR written to {path}") in nospace(toast)
        assert rig.kinds(before) == [], "exporting records nothing"


# --- c, !, ?, g -----------------------------------------------------------------------------------


async def test_checklist_ack_confirms_each_item(rig: Rig) -> None:
    rig.approve_all()
    rig.engine.preflight()
    app = rig.app()
    items = rig.config.rollback.compatibility_checklist
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await settle(pilot)
        assert "rollback compatibility checklist not acknowledged" in pane(app, app.canary)
        before = rig.last_id()
        await pilot.press("c")
        await settle(pilot)
        assert type(app.screen) is ConfirmModal
        text = modal_text(app)
        assert "Rollback compatibility checklist" in text
        for item in items:
            assert f"• {item}" in text
        assert "y = I confirm each item" in text
        await pilot.press("n")
        await settle(pilot)
        assert rig.kinds(before) == []
        await pilot.press("c", "y")
        await settle(pilot)
        assert rig.kinds(before) == [Kind.CHECKLIST_ACKED]
        acked = rig.events(Kind.CHECKLIST_ACKED)[0]
        assert acked.payload["items"] == items and acked.actor == "alice"
        assert "checklist ✓ acknowledged by alice" in pane(app, app.rollback_pane)
        assert "ready to advance to 1%" in pane(app, app.canary)
        await pilot.press("c")
        await settle(pilot)
        assert len(app.screen_stack) == 1
        assert "already acknowledged" in toasts_text(app)
        assert rig.kinds(before) == [Kind.CHECKLIST_ACKED]


async def test_immediate_needs_a_reason_and_is_recorded_as_immediate(rig: Rig) -> None:
    rig.ready()
    app = rig.app()
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await settle(pilot)
        before = rig.last_id()
        await pilot.press("!")
        await settle(pilot)
        assert isinstance(app.screen, OverrideModal) and app.screen.has_class("-loud")
        assert "100% IMMEDIATELY" in shown(app)
        assert "Why must this ship to 100% now?" in shown(app)
        await pilot.press("escape")
        await settle(pilot)
        assert rig.kinds(before) == []
        await pilot.press("!")
        await type_text(pilot, "asap")
        await pilot.press("enter")  # on to the typed confirmation
        await type_text(pilot, "100")
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, OverrideModal)
        assert "at least 8 characters" in shown(app)
        assert rig.kinds(before) == []
        # Back in the reason field, its text selected: typing replaces it.
        await type_text(pilot, "asap - regulator deadline at midnight")
        app.screen.query_one("#confirm", Input).value = "yes"
        await pilot.press("enter")
        await settle(pilot)
        assert "Not confirmed: type redaction-api or 100 exactly" in shown(app)
        assert rig.kinds(before) == []
        await pilot.press("ctrl+a", "ctrl+k")  # the confirmation field has the focus
        await type_text(pilot, "redaction-api")
        await pilot.press("enter")
        await settle(pilot)
        assert rig.kinds(before) == [Kind.WEIGHT_REQUESTED, Kind.WEIGHT_SET]
        request, done = rig.events()[-2:]
        assert request.payload["action"] == "immediate"
        assert request.payload["reason"] == "asap - regulator deadline at midnight"
        assert request.payload["to_percent"] == 100 and done.payload["percent"] == 100
        assert "100% IMMEDIATELY was used" in pane(app, app.canary)
        # Once at 100%, "100% now" is refused in words.
        mark = rig.last_id()
        await pilot.press("!")
        await settle(pilot)
        assert len(app.screen_stack) == 1
        assert "Cannot go to 100%" in toasts_text(app)
        assert rig.kinds(mark) == []


async def test_help_opens_and_closes(rig: Rig) -> None:
    app = rig.app()
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await settle(pilot)
        await pilot.press("?")
        await settle(pilot)
        assert isinstance(app.screen, HelpScreen)
        text = shown(app)
        assert "KEYS" in text and "Roll back to the stable version" in text
        await pilot.press("?")
        await settle(pilot)
        assert len(app.screen_stack) == 1
        await pilot.press("?")
        await pilot.press("escape")
        await settle(pilot)
        assert len(app.screen_stack) == 1


async def test_guardrail_detail_shows_queries_and_values_literally(rig: Rig) -> None:
    to_ten_percent(rig)
    rig.tick(2)
    app = rig.app()
    async with app.run_test(size=(120, 36), notifications=True) as pilot:
        await settle(pilot)
        await pilot.press("g")
        await settle(pilot)
        assert isinstance(app.screen, GuardrailDetailModal)
        await pilot.press("escape")
        await settle(pilot)
        assert len(app.screen_stack) == 1
        app._poll()  # the commander's poll cycle, once
        await settle(pilot)
        await pilot.press("g")
        await settle(pilot)
        text = shown(app)
        assert "■ error-ratio: BREACH █ █ figures: canary 2.03% > limit 2.00%" in text
        assert "last evaluation (canary)" not in text  # live and recorded agree
        assert 'sim:error_ratio{service="redaction-api", track="canary"}' in text
        assert "■ p99-latency:" in text
        await pilot.press("g")
        await settle(pilot)
        assert len(app.screen_stack) == 1


# --- the good build, to 100% and the post-emergency checklist -------------------------------------


async def test_good_build_to_100_then_the_post_emergency_checklist(make_rig: RigFactory) -> None:
    rig = make_rig("good")
    rig.ready()
    app = rig.app()
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await settle(pilot)
        assert not app.checklist.display
        for percent in (1, 10, 50, 100):
            assert rig.engine.advance_blocks() == []
            rig.engine.advance()
            assert rig.engine.state.canary_percent == percent
            rig.past_hold()
            await settle(pilot)
        assert rig.events(Kind.GUARDRAIL_CHANGED)
        assert all(g.status == "healthy" for g in rig.state().guardrails.values())
        assert "✓ at 100% — post-emergency checklist below" in pane(app, app.canary)
        assert app.checklist.display and not app.approvals.display
        checklist = squash(region_text(app, app.checklist, border=True))
        assert "Post-emergency checklist" in checklist and "0/4 recorded" in checklist
        assert "press k to record each item" in toasts_text(app)
        items = rig.state().post_checklist()

        before = rig.last_id()
        # On the main screen p keeps its meaning (pause): it never marks an item passed.
        await pilot.press("p")
        await settle(pilot)
        assert "Cannot pause: the canary is at 100%" in toasts_text(app)
        assert rig.kinds(before) == []
        await pilot.press("k")  # the checklist mode, with its own keys on screen
        await settle(pilot)
        assert isinstance(app.screen, ChecklistModal), toasts_text(app)
        assert "p passed" in shown(app) and "f failed" in shown(app)
        await pilot.press("p")  # the first item passed, with a detail
        await settle(pilot)
        assert isinstance(app.screen, ReasonModal)
        await type_text(pilot, "error rate 0.3% for 15m")
        await pilot.press("enter")
        await settle(pilot)
        await pilot.press("down", "f", "enter")  # failed, no detail
        await settle(pilot)
        await pilot.press("down", "w", "enter")  # waived needs a reason: refused empty
        await settle(pilot)
        assert isinstance(app.screen, ReasonModal)
        assert "Give a specific reason" in shown(app)
        await type_text(pilot, "covered by the weekly freeze review")
        await pilot.press("enter")
        await settle(pilot)
        gates = rig.events(Kind.GATE_RECORDED)
        assert [e.kind for e in rig.events()[-3:]] == [Kind.GATE_RECORDED] * 3
        assert rig.kinds(before) == [Kind.GATE_RECORDED] * 3
        assert [(g.payload["item"], g.payload["result"], g.payload["detail"]) for g in gates] == [
            (items[0], "passed", "error rate 0.3% for 15m"),
            (items[1], "failed", ""),
            (items[2], "waived", "covered by the weekly freeze review"),
        ]
        assert isinstance(app.screen, ChecklistModal)
        await pilot.press("escape")
        await settle(pilot)
        assert "3/4 recorded" in squash(region_text(app, app.checklist, border=True))


# --- watching -------------------------------------------------------------------------------------


async def test_watcher_says_watching_and_its_action_keys_do_nothing(rig: Rig) -> None:
    rig.ready()
    rig.engine.advance()
    app = rig.app(watch=True)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await settle(pilot)
        assert app.mode == WATCHING
        assert "WATCHING" in pane(app, app.header)
        assert "[1%]" in pane(app, app.canary)
        assert "press a" not in shown(app) and "press R" not in shown(app)
        footer = squash(screen_text(app).splitlines()[-1])
        assert "Advance" not in footer and "ROLLBACK" not in footer
        before = rig.last_id()
        for key in ("a", "x", "R", "n", "c", "p", "!", "C", "y"):
            await pilot.press(key)
            await settle(pilot)
            assert len(app.screen_stack) == 1, f"{key!r} opened something in watch mode"
        assert rig.kinds(before) == []
        assert rig.sim.rollbacks == [] and rig.sim.current_weight() == 1
        assert all(not app.check_action(action, ()) for action in COMMANDER_ACTIONS)


async def test_watcher_shows_what_the_commander_records(rig: Rig) -> None:
    """Deterministic: one store-watch cycle after the commit shows it."""
    app = rig.app(watch=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        rig.ready()
        rig.engine.note("bridge: go for 1%")
        await settle(pilot)
        assert "Note: bridge: go for 1%" in pane(app, app.timeline)
        assert "ready to advance to 1%" in pane(app, app.canary)
        assert "press a" not in pane(app, app.canary)


async def test_live_watcher_picks_up_a_commit_by_itself(rig: Rig) -> None:
    """The live store-watch loop (every 0.25 s): no help from the test, a bounded wait."""
    app = rig.app(watch=True, live=True)
    async with app.run_test(size=SIZE) as pilot:
        deadline = time.monotonic() + 10
        while app.timeline.event_count == 0:
            assert time.monotonic() < deadline, "the watcher never read the store"
            await pilot.pause(0.05)
        note = rig.engine.note("seen by the watcher?")
        committed = time.monotonic()
        while app.timeline.last_event_id != note.id:
            assert time.monotonic() - committed < 10, "the watcher never showed the note"
            await pilot.pause(0.05)
        await pilot.pause()
        assert "Note: seen by the watcher?" in pane(app, app.timeline)
