"""The baseline of watch_latency: a minimal Textual watcher of an incident's notes.

It opens the database read-only through the project's store, asks ``PRAGMA data_version``
every 50 ms (the cheap "anything new?" of DESIGN.md), reads only the events after the last one
it saw, and writes the new notes' text to a log. What the console's watcher could do at least.

    python watch_app.py DB_PATH [INCIDENT_ID]
"""

from __future__ import annotations

import sys

from textual.app import App, ComposeResult
from textual.widgets import Footer, Header, Log

from console.model import Kind
from console.store import Store

POLL_S = 0.05


class WatchApp(App[None]):
    CSS = "Log { border: round $primary; height: 1fr; }"
    BINDINGS = [("q", "quit", "Quit")]

    def __init__(self, path: str, incident_id: int) -> None:
        super().__init__()
        self.store = Store(path, readonly=True)
        self.incident_id = incident_id
        self.seen_version: int | None = None
        self.last_id = 0

    def compose(self) -> ComposeResult:
        yield Header()
        log = Log(id="notes")
        log.border_title = "Notes"
        yield log
        yield Footer()

    def on_mount(self) -> None:
        self.set_interval(POLL_S, self.poll)

    def poll(self) -> None:
        version = self.store.data_version()
        if version == self.seen_version:
            return
        self.seen_version = version
        events = self.store.events(self.incident_id, after_id=self.last_id)
        if not events:
            return
        self.last_id = events[-1].id
        log = self.query_one(Log)
        for event in events:
            if event.kind == Kind.NOTE:
                log.write_line(str(event.payload.get("text", "")))


if __name__ == "__main__":
    WatchApp(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 1).run()
