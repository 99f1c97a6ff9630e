"""Confirmations: `y` confirms, any other key cancels (DESIGN.md's contract for the rollback)."""

from __future__ import annotations

from textual import events
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Static


class ConfirmModal(ModalScreen[bool]):
    """Says exactly what will happen; `y` confirms, any other key cancels."""

    DEFAULT_CSS = """
    ConfirmModal {
        align: center middle;
    }
    ConfirmModal > Vertical {
        width: 76;
        max-width: 100%;
        height: auto;
        max-height: 100%;
        border: thick $warning;
        background: $surface;
        padding: 0 1;
    }
    ConfirmModal .confirm--title {
        text-style: bold;
        color: $warning;
    }
    ConfirmModal .confirm--keys {
        margin-top: 1;
        text-style: bold;
    }
    ConfirmModal.-danger > Vertical {
        border: thick $error;
    }
    ConfirmModal.-danger .confirm--title {
        color: $text;
        background: $error;
    }
    """

    def __init__(self, title: str, lines: list[str], confirm_words: str, *,
                 danger: bool = False, name: str | None = None) -> None:
        super().__init__(name=name, classes="-danger" if danger else "")
        self._title = title
        self._lines = lines
        self._confirm_words = confirm_words

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(Content(self._title), classes="confirm--title")
            # Versions, reasons and names come from outside: plain Content, never markup.
            yield Static(Content("\n".join(self._lines)), classes="confirm--body")
            yield Static(Content(f"y = {self._confirm_words}    any other key = cancel"),
                         classes="confirm--keys")

    def on_key(self, event: events.Key) -> None:
        event.stop()
        event.prevent_default()
        self.dismiss(event.key == "y")


class ConfirmRollbackModal(ConfirmModal):
    """The rollback confirmation: target, current weight, what counts as verified."""

    def __init__(self, service: str, target: str, from_version: str, weight: int,
                 hold_s: float, guardrails: list[str], deployer_kind: str,
                 harm: str = "") -> None:
        checks = ", ".join(guardrails) if guardrails else "no guardrails configured"
        # When the change is the fix for an ongoing harm, going back brings the harm back:
        # say so before anyone presses y (seed 002: then the hotfix path).
        warning = [
            f"⚠ {from_version} is the FIX for: {harm}",
            f"  Rolling back puts {target} back: that harm is LIVE again, and the",
            "  next step is the hotfix path (seed 002), not the end of the emergency.",
            "",
        ] if harm else []
        lines = [
            *warning,
            f"Service:        {service}",
            f"Roll back to:   {target}   (from {from_version})",
            f"Canary weight:  {weight}% → 0%",
            f"Deployer:       {deployer_kind}",
            "",
            "Counts as VERIFIED only when:",
            f"  1. the deployer reports {target} live,",
            "  2. the canary weight reads 0%,",
            f"  3. guardrails stay healthy on the stable track for {hold_s:g}s ({checks}).",
            "Otherwise the console says ROLLBACK NOT VERIFIED, and why.",
        ]
        super().__init__(f"ROLL BACK {service} to {target}?", lines, f"roll back to {target}",
                         danger=True)
