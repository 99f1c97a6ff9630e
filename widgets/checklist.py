"""The post-emergency checklist: verify the fix, run every bypassed gate, schedule the PIR.

It appears once the change is at 100% (or a rollback is verified) and stays until each item is
recorded. On the main screen it only shows; marking is a mode of its own (``k`` opens the
checklist screen, console/screens/checklist.py), where the pane is ``interactive``: the selected
row moves with up/down (or j); ``p``, ``f`` and ``w`` post :class:`ChecklistPane.ItemChosen`
with ``passed``, ``failed`` or ``waived`` for that item. The pane records nothing itself: the app
asks for a detail or a reason if it wants one and appends the event.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, ClassVar

from textual.binding import Binding, BindingType
from textual.content import Content
from textual.message import Message
from textual.reactive import reactive
from textual.widget import Widget

from widgets.canary import fit_lines, hhmm, set_subtitle
from widgets.text import safe_text

if TYPE_CHECKING:
    from console.state import IncidentState

_MARKS: dict[str, tuple[str, str]] = {
    "passed": ("✓", ".checklist-pane--passed"),
    "failed": ("✗", ".checklist-pane--failed"),
    "waived": ("~", ".checklist-pane--waived"),
    "": ("☐", ".checklist-pane--open"),
}


@dataclass(frozen=True)
class ChecklistRow:
    """One item: ``item`` is the exact text the app records; the rest is made safe to show."""

    item: str
    label: str
    result: str  # passed | failed | waived | "" (open)
    detail: str
    by: str


class ChecklistPane(Widget, can_focus=True):
    """The post-emergency checklist with a selected row. Hidden while it does not apply."""

    BORDER_TITLE = "Post-emergency checklist"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "cursor_up", "Previous item", show=False),
        Binding("down,j", "cursor_down", "Next item", show=False),
        Binding("p", "choose('passed')", "Passed"),
        Binding("f", "choose('failed')", "Failed"),
        Binding("w", "choose('waived')", "Waived"),
    ]

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "checklist-pane--cursor",
        "checklist-pane--passed",
        "checklist-pane--failed",
        "checklist-pane--waived",
        "checklist-pane--open",
        "checklist-pane--muted",
    }

    DEFAULT_CSS = """
    ChecklistPane {
        width: 1fr;
        height: 1fr;
        padding: 0 1;
        border: round $accent 40%;
        border-title-color: $accent;
        border-subtitle-color: $warning;
    }
    ChecklistPane:focus { border: round $accent; }
    ChecklistPane.-done { border-subtitle-color: $success; }
    ChecklistPane > .checklist-pane--cursor { background: $accent 15%; }
    ChecklistPane:focus > .checklist-pane--cursor { background: $accent 40%; text-style: bold; }
    ChecklistPane > .checklist-pane--passed { color: $success; }
    ChecklistPane > .checklist-pane--failed { color: $error; text-style: bold; }
    ChecklistPane > .checklist-pane--waived { color: $warning; }
    ChecklistPane > .checklist-pane--open { color: $text-muted; }
    ChecklistPane > .checklist-pane--muted { color: $text-muted; }
    """

    cursor: reactive[int] = reactive(0)
    """Index of the selected item."""

    @dataclass
    class ItemChosen(Message):
        """The user marked the selected item; the app records it (and may ask for a detail)."""

        item: str
        """The checklist item, exactly as ``IncidentState.post_checklist()`` gives it."""
        result: str
        """``passed``, ``failed`` or ``waived``."""

    def __init__(
        self, *, interactive: bool = False, name: str | None = None, id: str | None = None,
        classes: str | None = None
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        # Only the checklist mode marks items: on the main screen p and f keep their meaning.
        self.can_focus = interactive
        self._interactive = interactive
        self._rows: tuple[ChecklistRow, ...] = ()
        self._can_act = True
        self._top = 0  # first item drawn, so the cursor stays in view in a small box
        self.display = False

    @property
    def rows(self) -> tuple[ChecklistRow, ...]:
        """The items last shown."""
        return self._rows

    @property
    def selected(self) -> ChecklistRow | None:
        """The selected item, if any."""
        return self._rows[self.cursor] if 0 <= self.cursor < len(self._rows) else None

    def show(self, state: IncidentState, now: datetime | None = None, *,
             can_act: bool = True) -> None:
        """Show the checklist of ``state``; hidden unless ``state.checklist_active``.

        ``can_act`` is False in watch mode: the keys then post nothing.
        """
        self._can_act = can_act
        active = state.checklist_active
        if self.display != active:
            self.display = active
        rows = tuple(
            ChecklistRow(
                item=item,
                label=safe_text(item),
                result=state.gates[item].result if item in state.gates else "",
                detail=safe_text(state.gates[item].detail) if item in state.gates else "",
                by=(f"{safe_text(state.gates[item].actor, limit=40)} "
                    f"{hhmm(state.gates[item].ts)}") if item in state.gates else "",
            )
            for item in (state.post_checklist() if active else [])
        )
        if rows == self._rows:
            return
        self._rows = rows
        if self.cursor >= len(rows):
            self.cursor = max(0, len(rows) - 1)
        done = sum(1 for row in rows if row.result)
        self.set_class(bool(rows) and done == len(rows), "-done")
        set_subtitle(self, f"{done}/{len(rows)} recorded" if rows else "")
        self.refresh()

    # --- keys ------------------------------------------------------------------------------------

    def action_cursor_up(self) -> None:
        """Select the previous item."""
        if self.cursor > 0:
            self.cursor -= 1

    def action_cursor_down(self) -> None:
        """Select the next item."""
        if self.cursor < len(self._rows) - 1:
            self.cursor += 1

    def action_choose(self, result: str) -> None:
        """Post :class:`ItemChosen` for the selected item (not in watch mode)."""
        row = self.selected
        if (row is None or not self._can_act or not self._interactive
                or result not in ("passed", "failed", "waived")):
            return
        self.post_message(self.ItemChosen(row.item, result))

    def watch_cursor(self) -> None:
        self.refresh()

    # --- drawing ---------------------------------------------------------------------------------

    def render(self) -> Content:
        """One line per item; the selected one wraps in full and always stays in view."""
        if not self._rows:
            return Content.styled("nothing to do yet", ".checklist-pane--muted")
        width, height = self.size
        blocks = [self._row_lines(index, row, width) for index, row in enumerate(self._rows)]
        if width <= 0 or height <= 0:
            return Content("\n").join(line for block in blocks for line in block)
        cursor = min(self.cursor, len(blocks) - 1)
        self._top = min(self._top, cursor)
        while self._top < cursor and sum(len(b) for b in blocks[self._top:cursor + 1]) > height:
            self._top += 1
        lines = [line for block in blocks[self._top:] for line in block]
        return fit_lines(lines, width, height, ".checklist-pane--muted")

    def _row_lines(self, index: int, row: ChecklistRow, width: int) -> list[Content]:
        mark, style = _MARKS.get(row.result, _MARKS[""])
        tail = ""
        if row.result:
            tail = f" — {row.result}"
            if row.detail:
                tail += f": {row.detail}"
            if row.by:
                tail += f" ({row.by})"
        line = Content.assemble((f"{mark} ", style), row.label, (tail, ".checklist-pane--muted"))
        if index != self.cursor:
            return [line.truncate(width, ellipsis=True) if width > 0 else line]
        rows = line.wrap(width) if width > 0 else [line]
        return [r.pad_right(max(0, width - r.cell_length)).stylize_before(
            ".checklist-pane--cursor") for r in rows]
