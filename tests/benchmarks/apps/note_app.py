"""The baseline of key_to_redrawn: a minimal Textual app that records a note and redraws.

`n` opens a modal with one input; Enter writes the note as a row to SQLite (WAL,
synchronous=FULL, one committed transaction, like a durable event) and only then shows it in the
list below. The keys are the console's (`n`, text, Enter), so the two are measured alike.

    python note_app.py DB_PATH
"""

from __future__ import annotations

import sqlite3
import sys

from textual.app import App, ComposeResult
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Footer, Header, Input, Log, Static


class NoteModal(ModalScreen[str]):
    CSS = """
    NoteModal { align: center middle; }
    #box { width: 60; height: 6; border: round $primary; }
    """

    def compose(self) -> ComposeResult:
        with Vertical(id="box"):
            yield Static("Add a note")
            yield Input(placeholder="note")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value)


class NoteApp(App[None]):
    CSS = "Log { border: round $primary; height: 1fr; }"
    BINDINGS = [("n", "note", "Note"), ("q", "quit", "Quit")]

    def __init__(self, path: str) -> None:
        super().__init__()
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.execute("PRAGMA journal_mode = WAL")
        self.db.execute("PRAGMA synchronous = FULL")
        self.db.execute("CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, text TEXT)")

    def compose(self) -> ComposeResult:
        yield Header()
        log = Log(id="notes")
        log.border_title = "Notes"
        yield log
        yield Footer()

    def action_note(self) -> None:
        self.push_screen(NoteModal(), self._save)

    def _save(self, text: str | None) -> None:
        if not text:
            return
        self.db.execute("BEGIN IMMEDIATE")
        self.db.execute("INSERT INTO notes (text) VALUES (?)", (text,))
        self.db.execute("COMMIT")
        self.query_one(Log).write_line(text)


if __name__ == "__main__":
    NoteApp(sys.argv[1]).run()
