"""The console's actions as one table (console/actions.py): every key safe, each confirmed as
its kind says, nothing built from a stale state, and no silent quit mid-action (issue 11)."""

from __future__ import annotations

import re

from textual.command import CommandPalette

from console.actions import ACTIONS, BY_NAME, COMMANDER_ONLY, palette_order
from console.model import Kind
from console.screens.confirm import ConfirmModal
from console.screens.forms import OverrideModal
from tests.app.conftest import Rig, exits_of, region_text, screen_text, settle, squash, toasts_text

SIZE = (80, 24)


def test_the_table_is_the_one_source_of_the_bindings() -> None:
    from console.app import WarroomApp

    bound = {(b.key, b.action) for b in WarroomApp.BINDINGS}
    assert bound == {(a.key, a.name) for a in ACTIONS}
    assert {a.name for a in ACTIONS} <= {name.removeprefix("action_")
                                         for name in dir(WarroomApp)
                                         if name.startswith("action_")}
    # The dangerous come last in the palette; 100% now is typed-confirmed and never first.
    order = [a.name for a in palette_order()]
    assert order[-1] == "immediate" and BY_NAME["immediate"].confirm == "typed"
    assert order.index("rollback") > order.index("note")
    assert BY_NAME["rollback"].key == "R" and BY_NAME["rollback"].confirm == "y"


def test_the_readme_explains_every_key_of_the_table() -> None:
    """README's key table is read by people before an incident: a key added to the table and
    not to the README fails here."""
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme.split("## The keys", 1)[1].split("\n## ", 1)[0]
    first_cells = [line.split("|")[1] for line in section.splitlines()
                   if line.startswith("| `")]
    # each key is a code span of its own (a key may be "," itself)
    documented = {key for cell in first_cells for key in re.findall(r"`([^`]+)`", cell)}
    missing = [a.shown_key for a in ACTIONS if a.shown_key not in documented]
    assert not missing, f"keys of console/actions.py missing from README's key table: {missing}"


async def test_the_palette_lists_100_percent_last(rig: Rig) -> None:
    rig.ready()
    app = rig.app()
    async with app.run_test(size=(100, 40)) as pilot:
        await settle(pilot)
        titles = [command.title for command in app.get_system_commands(app.screen)]
        labels = {a.label for a in ACTIONS if a.name != "quit"}
        warroom = [t for t in titles if t.removeprefix("⚠ ") in labels]
        assert warroom[0] == "Advance" and warroom[-1] == "⚠ 100% now"
        app.action_command_palette()
        await settle(pilot)
        assert isinstance(app.screen, CommandPalette)


async def test_a_watcher_has_no_commander_keys(rig: Rig) -> None:
    app = rig.app(watch=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert all(not app.check_action(name, ()) for name in COMMANDER_ONLY)
        titles = {command.title for command in app.get_system_commands(app.screen)}
        assert "Advance" not in titles and "⚠ ROLLBACK" not in titles and "Export" in titles


async def test_pause_holds_the_canary_and_resume_lifts_it(rig: Rig) -> None:
    rig.ready()
    rig.engine.advance()
    rig.past_hold()
    app = rig.app()
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await settle(pilot)
        before = rig.last_id()
        await pilot.press("p")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmModal)
        assert "traffic is not changed" in squash(screen_text(app))
        await pilot.press("y")
        await settle(pilot)
        assert rig.kinds(before) == [Kind.PAUSED]
        assert rig.sim.current_weight() == 1  # held where it was, not aborted
        await pilot.press("a")
        await settle(pilot)
        assert "Cannot advance: paused by alice" in toasts_text(app)
        assert "paused by alice" in squash(screen_text(app))
        await pilot.press("p")
        await settle(pilot)
        await pilot.press("y")
        await settle(pilot)
        assert rig.kinds(before) == [Kind.PAUSED, Kind.RESUMED]
        assert rig.engine.advance_blocks() == []


async def test_keys_typed_fast_never_act_on_a_stale_state(rig: Rig) -> None:
    """c y a y typed at once: the advance dialog is built only after the acknowledgement has
    landed, so it is the plain confirmation (no override form for the `y` to fall into)."""
    rig.approve_all()
    rig.engine.preflight()
    app = rig.app()
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await settle(pilot)
        before = rig.last_id()
        await pilot.press("c", "y", "a")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmModal), "built from the state after the ack"
        assert not isinstance(app.screen, OverrideModal)
        await pilot.press("y")
        await settle(pilot)
        assert rig.kinds(before) == [Kind.CHECKLIST_ACKED, Kind.WEIGHT_REQUESTED,
                                     Kind.WEIGHT_SET]


async def test_quitting_mid_rollback_asks_and_says_what_goes_on(make_rig) -> None:  # type: ignore[no-untyped-def]
    rig = make_rig("bad", fail_rollback=True)
    rig.ready()
    rig.engine.advance()
    rig.engine.request_rollback("drill")
    app = rig.app()
    exits = exits_of(app)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("q")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmModal) and not exits
        text = squash(screen_text(app))
        assert "Quit while this is under way?" in text and "being verified" in text
        await pilot.press("n")  # any other key: stay
        await settle(pilot)
        assert len(app.screen_stack) == 1 and not exits
        await pilot.press("q")
        await settle(pilot)
        await pilot.press("y")
        await settle(pilot)
        assert exits == [()]


async def test_quitting_an_idle_console_asks_nothing(rig: Rig) -> None:
    app = rig.app()
    exits = exits_of(app)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("q")
        await settle(pilot)
        assert exits == [()] and len(app.screen_stack) == 1


async def test_m_marks_a_milestone_and_h_highlights_the_newest_event(rig: Rig) -> None:
    from console.screens.forms import MilestoneModal, ReasonModal
    from tests.app.test_console import type_text

    app = rig.app()
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await settle(pilot)
        await pilot.press("m")
        await settle(pilot)
        assert isinstance(app.screen, MilestoneModal)
        await pilot.press("d")
        await type_text(pilot, "pager at 21:52")
        await pilot.press("enter")
        await settle(pilot)
        (mark,) = rig.events(Kind.MILESTONE)
        assert (mark.payload["milestone"], mark.payload["reason"]) == ("detected",
                                                                       "pager at 21:52")
        await pilot.press("h")
        await settle(pilot)
        assert isinstance(app.screen, ReasonModal)
        await type_text(pilot, "when we knew")
        await pilot.press("enter")
        await settle(pilot)
        (highlight,) = rig.events(Kind.HIGHLIGHTED)
        assert highlight.payload == {"event_id": mark.id, "reason": "when we knew"}


async def test_a_relays_an_approval_given_on_the_bridge(rig: Rig) -> None:
    """``A``: a digit chooses the waiting role, then who gave it and the evidence; recorded as
    relayed, by the commander, with the evidence, and the pane says so."""
    from console.screens.forms import RelayApprovalModal
    from tests.app.test_console import type_text

    app = rig.app()
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await settle(pilot)
        await pilot.press("A")
        await settle(pilot)
        assert isinstance(app.screen, RelayApprovalModal)
        waiting = rig.state().missing_roles
        await pilot.press(str(waiting.index("platform-lead") + 1))
        await type_text(pilot, "marco")
        await pilot.press("enter")
        await type_text(pilot, "bridge call 22:14, said go")
        await pilot.press("enter")
        await settle(pilot)
        (approval,) = rig.events(Kind.APPROVED)
        assert approval.actor == "alice"
        assert {k: approval.payload[k] for k in ("role", "user", "kind", "relayed_from",
                                                 "evidence")} == {
            "role": "platform-lead", "user": "marco", "kind": "relayed",
            "relayed_from": "marco", "evidence": "bridge call 22:14, said go"}
        assert any(row.role == "platform-lead" and row.how == "relayed via alice"
                   for row in app.approvals.rows)
        assert "platform-lead marco · relayed" in squash(region_text(app, app.approvals))
        assert "Relayed approval recorded: platform-lead by marco" in toasts_text(app)


async def test_a_refused_relay_is_shown_with_every_rule_and_can_be_corrected(rig: Rig) -> None:
    """The commander relays for a name not on the roster (a look-alike spelling): nothing is
    recorded, the approvals pane says REFUSED and why, with every approval rule, and the form
    opens again with what was typed; corrected, it is recorded."""
    from console.policy import approval_rules
    from console.screens.forms import RelayApprovalModal
    from tests.app.test_console import type_text

    app = rig.app()
    async with app.run_test(size=(200, 50), notifications=True) as pilot:
        await settle(pilot)
        before = rig.last_id()
        await pilot.press("A")
        await settle(pilot)
        await pilot.press(str(rig.state().missing_roles.index("security-lead") + 1))
        await type_text(pilot, "Priya ")
        await pilot.press("enter")
        await type_text(pilot, "bridge call 22:14")
        await pilot.press("enter")
        await settle(pilot)
        assert rig.last_id() == before  # nothing recorded
        assert app.approvals.refusal is not None
        assert "Priya" in app.approvals.refusal and "'priya' is" in app.approvals.refusal
        pane = squash(region_text(app, app.approvals))
        assert "REFUSED" in pane and "The approval rules:" in pane
        for rule in approval_rules(rig.config):
            assert squash(rule)[:40] in pane, rule
        # the form again, loud, with the refusal and the values kept
        form = app.screen
        assert isinstance(form, RelayApprovalModal)
        assert "REFUSED" in squash(screen_text(app))
        field = form.query_one("#relayed-from")
        assert field.value == "Priya " and field.has_focus  # type: ignore[attr-defined]
        await pilot.press("ctrl+u")  # clear the box, type the roster's spelling
        await type_text(pilot, "priya")
        await pilot.press("enter")
        await settle(pilot)
        (approval,) = rig.events(Kind.APPROVED)
        assert (approval.payload["user"], approval.payload["kind"]) == ("priya", "relayed")
        assert app.approvals.refusal is None
        assert "REFUSED" not in squash(screen_text(app))


async def test_a_says_so_when_nothing_waits(rig: Rig) -> None:
    rig.approve_all()
    app = rig.app()
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await settle(pilot)
        await pilot.press("A")
        await settle(pilot)
        assert len(app.screen_stack) == 1
        assert "nothing to relay" in toasts_text(app)


async def test_a_watcher_cannot_relay(rig: Rig) -> None:
    app = rig.app(watch=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        before = rig.last_id()
        await pilot.press("A")
        await settle(pilot)
        assert len(app.screen_stack) == 1 and rig.last_id() == before


async def test_h_highlights_the_event_selected_on_the_timeline(rig: Rig) -> None:
    """↑ selects events on the timeline (the newest first, then earlier ones); ``h`` highlights
    the selected one, not the newest; with nothing selected it takes the newest."""
    from console.screens.forms import ReasonModal
    from tests.app.test_console import type_text

    for text in ("bridge opened", "security on the call", "PII confirmed in responses"):
        rig.engine.note(text)
    notes = rig.events(Kind.NOTE)
    app = rig.app()
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await settle(pilot)
        assert app.timeline.has_focus
        await pilot.press("up", "up", "up")
        await settle(pilot)
        selected = app.timeline.cursor_event
        assert selected is not None and selected.id == notes[0].id
        await pilot.press("h")
        await settle(pilot)
        assert isinstance(app.screen, ReasonModal)
        assert f"#{notes[0].id}" in screen_text(app) and "bridge opened" in screen_text(app)
        await type_text(pilot, "first call")
        await pilot.press("enter")
        await settle(pilot)
        (highlight,) = rig.events(Kind.HIGHLIGHTED)
        assert highlight.payload == {"event_id": notes[0].id, "reason": "first call"}
        await pilot.press("escape", "h")  # nothing selected: the newest (not a highlight)
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        assert [e.payload["event_id"] for e in rig.events(Kind.HIGHLIGHTED)] == [
            notes[0].id, notes[-1].id]
