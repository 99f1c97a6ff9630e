"""The post-emergency checklist as its own mode: ``k`` opens it, its keys are on its own screen.

After 100 % or a verified rollback, each item (verify the fix, run every bypassed gate, schedule
the PIR) is recorded here: ↑/↓ choose, ``p`` passed, ``f`` failed, ``w`` waived (the app asks
for a reason), Escape goes back. Outside this mode ``p`` and ``f`` never mean passed or failed.
"""

from __future__ import annotations

from datetime import datetime

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Static

from console.state import IncidentState
from widgets.checklist import ChecklistPane


class ChecklistModal(ModalScreen[None]):
    """The checklist, interactive; the app keeps it current with :meth:`show`."""

    DEFAULT_CSS = """
    ChecklistModal {
        align: center middle;
    }
    ChecklistModal > Vertical {
        width: 100;
        max-width: 100%;
        height: auto;
        max-height: 100%;
        border: thick $accent;
        background: $surface;
        padding: 0 1;
    }
    ChecklistModal ChecklistPane {
        height: auto;
        min-height: 5;
        max-height: 20;
    }
    ChecklistModal .checklist--keys {
        text-style: bold;
        margin-top: 1;
    }
    """
    BINDINGS = [Binding("escape,k,q", "close", "Back")]

    def __init__(self, state: IncidentState, now: datetime) -> None:
        super().__init__()
        self._state = state
        self._now = now

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(Content("Post-emergency checklist (seed 000)"), classes="form--title")
            yield ChecklistPane(interactive=True, id="checklist-mode")
            yield Static(Content("↑/↓ choose   p passed   f failed   w waived (a reason)   "
                                 "Escape back"), classes="checklist--keys")

    def on_mount(self) -> None:
        pane = self.query_one(ChecklistPane)
        pane.show(self._state, self._now, can_act=True)
        pane.focus()

    def show(self, state: IncidentState, now: datetime) -> None:
        """The record moved (an item was recorded): show it."""
        self.query_one(ChecklistPane).show(state, now, can_act=True)

    def action_close(self) -> None:
        self.dismiss(None)
