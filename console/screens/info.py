"""Read-only screens: the `?` help and the guardrail detail view."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Static

HELP_INTRO = """\
warroom — running an emergency change
(seed 000: handle emergencies without abandoning discipline)
"""

HELP_OUTRO = """\
TIMELINE
  f   cycle the filter (all / actions / guardrails / notes / loud)
  end / home   the newest / the oldest event;  ↑ ↓ PgUp PgDn  scroll
  ctrl+p       the command palette (every action by name)

WATCHING (`warroom watch ID`): the same screen, read-only; no action keys.
Approvals are given from the approvers' own shells:
  warroom approve ID --role ROLE

Press Escape or ? to close this help."""


def help_text(watching: bool = False) -> str:
    """The help, made from the table of actions (console/actions.py)."""
    from console.actions import help_lines

    heading = "KEYS" + (" (the ones marked 'also watching' work here)" if watching else "")
    return "\n".join([HELP_INTRO, heading, *help_lines(), "", HELP_OUTRO])


class HelpScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    HelpScreen {
        align: center middle;
    }
    HelpScreen > VerticalScroll {
        width: 92;
        max-width: 100%;
        height: auto;
        max-height: 100%;
        border: thick $accent;
        background: $surface;
        padding: 0 1;
    }
    """
    BINDINGS = [Binding("escape,question_mark,q", "close", "Close")]

    def __init__(self, *, watching: bool = False) -> None:
        super().__init__()
        self._watching = watching

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static(Content(help_text(self._watching)))

    def action_close(self) -> None:
        self.dismiss(None)


class GuardrailDetailModal(ModalScreen[None]):
    """Each guardrail's resolved queries, raw values and last error, shown literally."""

    DEFAULT_CSS = """
    GuardrailDetailModal {
        align: center middle;
    }
    GuardrailDetailModal > VerticalScroll {
        width: 100%;
        height: 100%;
        border: thick $accent;
        background: $surface;
        padding: 0 1;
    }
    """
    BINDINGS = [Binding("escape,g,q", "close", "Close")]

    def __init__(self, readings: list[dict[str, Any]]) -> None:
        super().__init__()
        self._readings = readings

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static(Content(render_detail(self._readings)))

    def action_close(self) -> None:
        self.dismiss(None)


def render_detail(readings: list[dict[str, Any]]) -> str:
    """Each guardrail: its status as recorded and its newest figures (what the panes show),
    then how it was last evaluated: the queries as sent, the raw values, the last error."""
    if not readings:
        return ("No evaluation yet (guardrails are evaluated once the canary carries "
                "traffic).\n\nEscape closes.")
    lines: list[str] = []
    for reading in readings:
        lines.append(f"■ {reading.get('name')}: {reading.get('status')}")
        if reading.get("figures"):
            lines.append(f"  figures:  {reading.get('figures')}")
        lines.append(f"  why:      {reading.get('detail')}")
        if reading.get("rule"):
            lines.append(f"  decided by: {reading.get('rule')}")
        if reading.get("evidence"):
            lines.append(f"  evidence: {reading.get('evidence')}")
        if isinstance(reading.get("comparison"), str):
            lines.append(f"  compare:  {reading.get('comparison')}")
        if reading.get("rules"):
            lines.append(f"  rules:    {reading.get('rules')}")
        if reading.get("last"):
            lines.append(f"  last evaluation ({reading.get('mode')}): {reading.get('last')}")
        for role, query in (reading.get("queries") or {}).items():
            lines.append(f"  {role + ' query:':<16}{query}")
        for role, values in (reading.get("raw") or {}).items():
            lines.append(f"  {role + ' raw:':<16}{values}")
        if reading.get("error"):
            lines.append(f"  last error: {reading.get('error')}")
        lines.append(f"  at {reading.get('ts')}")
        lines.append("")
    lines.append("Escape closes.")
    return "\n".join(lines)
