"""Read-only screens: the `?` help and the guardrail detail view."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Static

HELP_TEXT = """\
warroom — running an emergency change
(seed 000: handle emergencies without abandoning discipline)

KEYS (commander)
  a   advance the canary to the next stage (1% → 10% → 50% → 100%).
      Blocked until approvals are complete, the rollback preflight
      passed and the compatibility checklist is acknowledged, the
      stage's hold has elapsed and the guardrails are healthy. Every
      block is stated in words; each can be overridden only with a
      typed reason, which is recorded.
  !   100% IMMEDIATELY — for the rarest cases (active exfiltration, a
      regulatory deadline): needs a reason; loudly recorded.
  x   abort: canary weight to 0% (the spec stays on the new version —
      not a rollback)
  R   ROLLBACK to the stable version: a confirmation says what will
      happen; y confirms, any other key cancels. The console then
      VERIFIES it: deployer reports the target, weight 0%, guardrails
      healthy on the stable track for the verification hold.
  c   acknowledge the rollback compatibility checklist (seed 002)
  p   run the rollback preflight again
  n   add a note to the timeline
  e   export the post-incident review (PIR) to a file and show its path
  g   guardrail details: resolved queries, raw values, last errors
  C   close the incident (after the post-emergency checklist, or waive
      it with a reason)
  f   cycle the timeline filter (all / actions / guardrails / notes /
      loud)
  ?   this help     ctrl+p  command palette     q  quit (releases command)

POST-EMERGENCY CHECKLIST (after 100% or a verified rollback)
  ↑/↓ choose an item, then p passed / f failed / w waived (with a reason)

WATCHING (`warroom watch ID`): the same screen, read-only; no action keys.
Approvals are given from the approvers' own shells:
  warroom approve ID --role ROLE

Press Escape or ? to close this help."""


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

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static(Content(HELP_TEXT))

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
    if not readings:
        return ("No evaluation yet (guardrails are evaluated once the canary carries "
                "traffic).\n\nEscape closes.")
    lines: list[str] = []
    for reading in readings:
        lines.append(f"■ {reading.get('name')}: {reading.get('status')} ({reading.get('mode')})")
        lines.append(f"  why:      {reading.get('detail')}")
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
