"""The baseline of start-up and idle figures: a bare Textual app (Header, Footer, one Static).

Its one pane carries a border title, so "every pane titled" means the same thing for it as for
the console. Run as a script with the project's interpreter (the same Textual).
"""

from __future__ import annotations

from textual.app import App, ComposeResult
from textual.widgets import Footer, Header, Static

TITLE = "Bare"


class BareApp(App[None]):
    CSS = "#pane { border: round $primary; height: 1fr; }"
    BINDINGS = [("q", "quit", "Quit")]

    def compose(self) -> ComposeResult:
        yield Header()
        pane = Static("A bare Textual app: the baseline of the benchmarks.", id="pane")
        pane.border_title = TITLE
        yield pane
        yield Footer()


if __name__ == "__main__":
    BareApp().run()
