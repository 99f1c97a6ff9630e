"""The console's actions, in one table: key, label, how each is confirmed, who may run it.

The key bindings, the footer, the command palette, the ``?`` help and the commander-only check
are all made from :data:`ACTIONS`, so a new action is one row here and one ``action_<name>``
method on the app. The confirmation kinds (DESIGN.md, "The screen"):

``none``
    View keys and forms that are their own confirmation (a note is saved with Enter).
``y``
    A dialog says what will happen; ``y`` confirms, any other key cancels (advance, pause, abort,
    acknowledge, and the rollback: ``R`` then ``y``, a contract).
``typed``
    The irreversible or dangerous: the person types the service name (or ``100``) to confirm,
    in a dialog drawn in the error colour (100 % immediately).

No Textual import here: the table is data, and the app turns it into bindings.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

Confirm = Literal["none", "y", "typed"]


@dataclass(frozen=True)
class Action:
    """One thing a person can do from the console."""

    name: str  # the app's ``action_<name>`` method
    key: str  # Textual key name
    shown_key: str  # how the key is written in the help
    label: str  # the footer's word
    description: str  # the palette's and the help's sentence
    confirm: Confirm
    commander_only: bool
    footer: bool = True  # shown in the footer (the rest: help and palette)
    danger: bool = False  # drawn loud; listed last in the palette
    priority: bool = False  # the binding works even when a pane has the focus
    replay: bool = False  # works in a replay only (``warroom replay``, ``r`` on a watcher)


ACTIONS: tuple[Action, ...] = (
    Action("advance", "a", "a", "Advance",
           "Advance the canary to the next stage (1% → 10% → 50% → 100%). Blocked until the "
           "approvals are complete, the rollback preflight passed and the compatibility "
           "checklist is acknowledged, the stage's hold has elapsed and the guardrails are "
           "healthy; each block is stated in words and can be overridden only with a typed "
           "reason, which is recorded.", "y", True),
    Action("pause", "p", "p", "Pause",
           "Pause the canary at its current weight (or resume it): advance is held until "
           "resumed. Not an abort — traffic stays where it is. Recorded.", "y", True,
           footer=False),
    Action("abort", "x", "x", "Abort",
           "Abort: the canary weight to 0%. The deploy spec stays on the new version — not a "
           "rollback.", "y", True),
    Action("rollback", "R", "R", "ROLLBACK",
           "Roll back to the stable version: a confirmation says exactly what will happen; y "
           "confirms, any other key cancels. The console then VERIFIES it: the deployer reports "
           "the target, the weight reads 0%, and the guardrails stay healthy on the stable "
           "track for the verification hold — or it says ROLLBACK NOT VERIFIED, and why.",
           "y", True, danger=True),
    Action("relay_approval", "A", "A", "Relay approval",
           "Record an approval given elsewhere (a bridge call, a chat message) for a role still "
           "waiting: who gave it, exactly as on the role's roster, and the evidence. The approval "
           "rules apply (a rostered person, one role each, never the commander or the declarer); "
           "a refusal is shown in the approvals pane with every rule.", "none", True,
           footer=False),
    Action("note", "n", "n", "Note", "Add a note to the timeline.", "none", True),
    Action("mark_milestone", "m", "m", "Milestone",
           "Mark a milestone now: detected, impact started, mitigated or resolved (the PIR "
           "measures time to detect, mitigate and resolve from them; an earlier moment: warroom "
           "mark ID MILESTONE --at TIME).", "none", True, footer=False),
    Action("highlight", "h", "h", "Highlight",
           "Highlight the event selected on the timeline (↑/↓ select, Escape lets go; with "
           "nothing selected, the newest) as a moment that matters (the PIR lists it); "
           "recorded as a fact of its own.", "none", True, footer=False),
    Action("ack_checklist", "c", "c", "Ack checklist",
           "Acknowledge the rollback compatibility checklist (seed 002), before the first "
           "stage.", "y", True, footer=False),
    Action("preflight", "P", "P", "Preflight",
           "Run the rollback preflight again (read-only on the deployer; it runs by itself "
           "when the console opens).", "none", True, footer=False),
    Action("checklist", "k", "k", "Checklist",
           "Record the post-emergency checklist (after 100% or a verified rollback): a mode "
           "with its own keys — ↑/↓ choose, p passed, f failed, w waived (with a reason), "
           "Escape leaves.", "none", True, footer=False),
    Action("close_incident", "C", "C", "Close",
           "Close the incident (open checklist items need a reason and are recorded as "
           "waived).", "none", True, footer=False),
    Action("status_page", "s", "s", "Status page",
           "Post the status page update ([statuspage]): the comms draft's text for where the "
           "incident stands (investigating, identified, monitoring, resolved), edited in a box — "
           "its [blanks] must be filled — then shown exactly as it will be posted; y posts it. "
           "Each post and each failure is recorded.", "y", True, footer=False),
    Action("export", "e", "e", "Export",
           "Export the post-incident review (PIR) to a file and show its path.", "none", False),
    Action("detail", "g", "g", "Detail",
           "Guardrail detail: each guardrail's queries as sent, its figures, the rule that "
           "decided and its last error.", "none", False, footer=False),
    Action("help", "question_mark", "?", "Help", "Every key and what it does.", "none", False),
    Action("quit", "q", "q", "Quit",
           "Quit (releases command). While an action or a rollback verification is in flight, "
           "asks first and says what goes on without the console.", "none", False),
    Action("immediate", "exclamation_mark", "!", "100% now",
           "100% IMMEDIATELY: skips the remaining stages (seed 000: active exfiltration, an "
           "immediate regulatory deadline). Needs a reason and the service name typed to "
           "confirm; loudly recorded.", "typed", True, footer=False, danger=True),
    # Replay (warroom replay ID, or r on a watcher): the console as it was at any moment, from
    # the record alone. Nothing acts in a replay.
    Action("replay", "r", "r", "Replay",
           "Replay (a watcher): the console as it was at any moment, from the record alone — "
           "opens paused at now; r again goes back to watching live.", "none", False),
    Action("replay_play", "space", "space", "Play",
           "Replay: play or pause (the clock runs at the chosen speed and stops at the end, "
           "or at now on a live incident).", "none", False, replay=True),
    Action("replay_faster", "plus", "+", "Faster",
           "Replay: play faster (1×, 2×, 5×, 10×, 30×, 60×).", "none", False, footer=False,
           replay=True),
    Action("replay_slower", "minus", "-", "Slower", "Replay: play slower.", "none", False,
           footer=False, replay=True),
    Action("replay_next_event", "full_stop", ".", "Next event",
           "Replay: step to the next event.", "none", False, replay=True),
    Action("replay_previous_event", "comma", ",", "Prev event",
           "Replay: step back one event.", "none", False, replay=True),
    Action("replay_next_stage", "right_square_bracket", "]", "Next stage",
           "Replay: jump to the next stage change (weight set).", "none", False, footer=False,
           replay=True),
    Action("replay_previous_stage", "left_square_bracket", "[", "Prev stage",
           "Replay: jump back to the previous stage change.", "none", False, footer=False,
           replay=True),
    Action("replay_next_breach", "b", "b", "Next breach",
           "Replay: jump to the next change of a guardrail to BREACH.", "none", False,
           footer=False, replay=True),
    Action("replay_previous_breach", "B", "B", "Prev breach",
           "Replay: jump back to the previous change to BREACH.", "none", False, footer=False,
           replay=True),
    Action("replay_next_action", "greater_than_sign", ">", "Next action",
           "Replay: jump to the next action (a request, an approval, a note, a pause...).",
           "none", False, footer=False, replay=True),
    Action("replay_previous_action", "less_than_sign", "<", "Prev action",
           "Replay: jump back to the previous action.", "none", False, footer=False,
           replay=True),
    Action("replay_goto", "t", "t", "Go to time",
           "Replay: jump to a time (HH:MM[:SS] UTC, ISO 8601, +15m after the declaration, "
           "-15m before the end).", "none", False, replay=True),
)

BY_NAME: dict[str, Action] = {action.name: action for action in ACTIONS}

#: Actions only a commander may take: a watcher's console neither shows nor runs them.
COMMANDER_ONLY: frozenset[str] = frozenset(a.name for a in ACTIONS if a.commander_only)
#: Actions of a replay: shown and run only while the console replays.
REPLAY_ONLY: frozenset[str] = frozenset(a.name for a in ACTIONS if a.replay)


def palette_order() -> Iterator[Action]:
    """The actions as the command palette lists them: the safe first, the dangerous last."""
    yield from (action for action in ACTIONS if not action.danger)
    yield from (action for action in ACTIONS if action.danger)


def help_lines(width: int = 72) -> list[str]:
    """The ``?`` help's key lines, wrapped to ``width`` columns after the key."""
    import textwrap

    lines: list[str] = []
    for action in ACTIONS:
        how = {"y": " [y to confirm]", "typed": " [type to confirm]", "none": ""}[action.confirm]
        who = "" if action.commander_only else " (also watching)"
        text = f"{action.description}{how}{who}"
        wrapped = textwrap.wrap(text, width - 6) or [""]
        lines.append(f"  {action.shown_key:<3} {wrapped[0]}")
        lines.extend(f"      {rest}" for rest in wrapped[1:])
    return lines
