"""The key footer, rebuilt only when the keys it shows change.

Textual's ``Footer`` removes and mounts every key widget whenever its screen says its bindings
were updated — at every focus change, every ``refresh_bindings()`` and every return from a modal
dialog — even when the keys, their labels and whether they are enabled are exactly as before.
On this console that was ≈ 40 widgets restyled and laid out after each dialog closed (a replay's
jump form, a note, a confirmation): the largest part of the redraw that follows a key.
:class:`SteadyFooter` compares what it would show with what it shows and rebuilds only on a
difference; what it shows, and when it changes, is Textual's own.
"""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Footer

__all__ = ["SteadyFooter"]


class SteadyFooter(Footer):
    """A ``Footer`` that skips a rebuild when its keys are unchanged."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._shown: tuple[Any, ...] | None = None  # what the last rebuild showed

    def _keys(self) -> tuple[Any, ...]:
        """Everything the footer's keys are made from: each active binding (key, action,
        label, group, shown or not), whether it is enabled, its tooltip and how the key is
        displayed; and the footer's own settings."""
        app = self.app
        return (
            self.compact, self.show_command_palette, self.combine_groups,
            tuple((name, binding, enabled, tooltip, app.get_key_display(binding))
                  for name, (_node, binding, enabled, tooltip)
                  in self.screen.active_bindings.items()),
        )

    def compose(self) -> ComposeResult:
        self._shown = self._keys() if self._bindings_ready else None
        yield from super().compose()

    def bindings_changed(self, screen: Screen[Any]) -> None:
        if (self._shown is not None and screen.app.app_focus and self.is_attached
                and screen is self.screen and self._keys() == self._shown):
            return  # the same keys: nothing to rebuild
        super().bindings_changed(screen)
