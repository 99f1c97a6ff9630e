"""The status page update, edited before it goes public: the draft in a text box, its blanks
found, then (in a ConfirmModal) the exact post shown for `y`."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Static, TextArea

from console.screens.forms import FORM_CSS

_BLANK_HINT = "ctrl+s = preview the post    Escape = cancel (nothing is posted)"


class StatusPageModal(ModalScreen[str | None]):
    """The update's text, editable; ctrl+s hands it on unless a draft blank is left in it."""

    DEFAULT_CSS = FORM_CSS.format(name="StatusPageModal") + """
    StatusPageModal > Vertical { width: 100; }
    StatusPageModal TextArea { height: 14; }
    """
    BINDINGS = [Binding("escape", "cancel", "Cancel"),
                Binding("ctrl+s", "preview", "Preview", priority=True)]
    AUTO_FOCUS = "TextArea"

    def __init__(self, title: str, lines: list[str], body: str) -> None:
        super().__init__()
        self._title = title
        self._lines = lines
        self._body = body

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(Content(self._title), classes="form--title")
            # the status, the component, who sees it: facts from the record, shown as text
            yield Static(Content("\n".join(self._lines)))
            yield TextArea(self._body, soft_wrap=True, id="body")
            yield Static("", classes="form--error", id="error")
            yield Static(_BLANK_HINT, classes="form--hint")

    def action_preview(self) -> None:
        from console.statuspage import blanks

        text = self.query_one("#body", TextArea).text.strip()
        left = blanks(text)
        error = self.query_one("#error", Static)
        if not text:
            error.update(Content("The update has no text."))
            return
        if left:
            error.update(Content("Fill in the draft's blanks first: " + ", ".join(left[:4])))
            return
        self.dismiss(text)

    def action_cancel(self) -> None:
        self.dismiss(None)
