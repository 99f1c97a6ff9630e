"""The canary pane: the stage ladder, the hold timer and, in words, what blocks ``advance``.

The app calls :meth:`CanaryPane.show` on every refresh with the folded state, the clock and the
policy's blocks (plain ``(code, words, overridable)`` tuples: widgets never import the policy).
The pane turns them into a small immutable view and repaints only when that view changed.

This module also holds the few layout helpers every pane shares (:func:`fit_lines`,
:func:`hhmm`, :func:`loud`): a pane in a small box shows its most important lines first and says
how many it had to leave out. Untrusted text goes through :mod:`widgets.text` first.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, ClassVar

from textual.content import Content
from textual.widget import Widget

from console.model import format_duration
from widgets.text import safe_text

if TYPE_CHECKING:
    from console.state import IncidentState, StageVisit

Block = tuple[str, str, bool]
"""One thing that stops ``advance``: ``(code, words, overridable)``."""

def _pulled_back(visits: Sequence[StageVisit], current: int) -> set[int]:
    """The stages the canary stood at and was last taken back from (an abort or a rollback to a
    lower weight), not advanced past: ticking them would say they passed."""
    pulled: set[int] = set()
    for index, visit in enumerate(visits):
        if visit.left is None:
            continue
        following = visits[index + 1].percent if index + 1 < len(visits) else current
        if following > visit.percent:
            pulled.discard(visit.percent)
        elif following < visit.percent:
            pulled.add(visit.percent)
    return pulled


def hhmm(ts: datetime | None) -> str:
    """``14:02 UTC`` (empty for no time)."""
    if ts is None:
        return ""
    return ts.astimezone(UTC).strftime("%H:%M UTC")


def short_duration(seconds: float) -> str:
    """Like :func:`console.model.format_duration`, without a trailing zero part: ``10m``."""
    return format_duration(seconds).removesuffix(" 00s")


def fit_lines(
    lines: Iterable[Content], width: int, height: int, more_style: str = ""
) -> Content:
    """Wrap ``lines`` to ``width`` and keep the first ``height`` rows.

    Lines are given most important first. When they do not all fit, the last row says how many
    were left out (``⋯ 3 more lines``) so a small box never hides that it is hiding something.
    Before the widget has a size (``width`` or ``height`` ≤ 0) the lines are joined as they are.
    """
    lines = list(lines)
    if width <= 0 or height <= 0:
        return Content("\n").join(lines)
    rows: list[Content] = []
    for line in lines:
        rows.extend(line.wrap(width) if line.cell_length > width else [line])
    if len(rows) > height:
        hidden = len(rows) - (height - 1)
        more = Content.styled(f"⋯ {hidden} more line{'s' if hidden != 1 else ''}", more_style)
        rows = [*rows[: height - 1], more.truncate(width, ellipsis=True)]
    return Content("\n").join(rows)


def loud(text: str, style: str) -> Content:
    """``text`` in a component style, reversed: the loudest look a pane has.

    Textual 8.2.8 resolves a ``.component`` span through ``get_visual_style``, which keeps bold,
    italic, underline and strike but drops ``reverse``; so ``reverse`` is added here as its own
    span and the component class sets the colour (``$error`` → an ``$error`` background).
    """
    return Content.styled(text, style).stylize("reverse")


def set_subtitle(widget: Widget, text: str) -> None:
    """Set a border subtitle as literal text, and only when it changed (setting repaints)."""
    if (widget.border_subtitle or "") != Content(text).markup:
        widget.border_subtitle = Content(text) if text else None


@dataclass(frozen=True)
class CanaryView:
    """What the canary pane shows, already in words; compared to skip needless repaints."""

    # (label, "current" | "reached" | "pulled" | "skipped" | "future"): a stage below the weight
    # that the canary never stood at (100 % immediately) is skipped, never shown as passed; a
    # stage it stood at and was taken back from (abort, rollback) is pulled, never ticked.
    ladder: tuple[tuple[str, str], ...]
    weight: int
    hold: str  # "" when there is no stage
    hold_done: bool
    hold_block: Block | None
    pending: str
    error: str
    immediate: bool
    promoted: bool
    blocks: tuple[Block, ...]
    ready: str
    overrides: tuple[tuple[str, str], ...]
    flagger: str = ""  # what Flagger asked `warroom gate` last, and which gates are open


def flagger_line(state: IncidentState) -> str:
    """One line on Flagger's gates: the run it presented, what it asked last, what is open."""
    if not state.flagger_checksum:
        return ""
    opened = [gate for gate, decision in state.flagger_gates.items()
              if decision.open and decision.checksum == state.flagger_checksum]
    asks = sorted(state.flagger_asks.values(), key=lambda ask: ask.ts)
    text = f"Flagger run {state.flagger_checksum}"
    if asks:
        last = asks[-1]
        text += f": asked {last.gate} ({last.phase}) → {last.answer}"
    return safe_text(text + (f"; open: {', '.join(opened)}" if opened else
                             "; every gate closed"), limit=200)


class CanaryPane(Widget):
    """The canary stages: where we are, how long to hold, and what stops the next step.

    Call :meth:`show` on every refresh. Nothing here acts: the app binds ``a`` (advance) and
    decides, through the policy, what the blocks are.
    """

    BORDER_TITLE = "Canary"

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "canary-pane--current",
        "canary-pane--reached",
        "canary-pane--pulled",
        "canary-pane--future",
        "canary-pane--skipped",
        "canary-pane--block",
        "canary-pane--override",
        "canary-pane--ready",
        "canary-pane--pending",
        "canary-pane--loud",
        "canary-pane--immediate",
        "canary-pane--muted",
    }

    DEFAULT_CSS = """
    CanaryPane {
        width: 1fr;
        height: 1fr;
        padding: 0 1;
        border: round $accent 40%;
        border-title-color: $accent;
        border-subtitle-color: $text-muted;
    }
    CanaryPane.-blocked { border-subtitle-color: $error; }
    CanaryPane.-ready { border: round $success; border-subtitle-color: $success; }
    CanaryPane.-loud { border: heavy $error; border-subtitle-color: $error; }
    /* The current stage, the weight error and "100% IMMEDIATELY" are drawn reversed (loud()). */
    CanaryPane > .canary-pane--current { color: $accent; text-style: bold; }
    CanaryPane > .canary-pane--reached { color: $success; }
    CanaryPane > .canary-pane--pulled { color: $error; }
    CanaryPane > .canary-pane--future { color: $text-muted; }
    CanaryPane > .canary-pane--skipped { color: $warning; text-style: strike; }
    CanaryPane > .canary-pane--block { color: $error; text-style: bold; }
    CanaryPane > .canary-pane--override { color: $warning; }
    CanaryPane > .canary-pane--ready { color: $success; text-style: bold; }
    CanaryPane > .canary-pane--pending { color: $accent; text-style: bold italic; }
    CanaryPane > .canary-pane--loud { color: $error; text-style: bold; }
    CanaryPane > .canary-pane--immediate { color: $warning; text-style: bold; }
    CanaryPane > .canary-pane--muted { color: $text-muted; }
    """

    def __init__(
        self, *, name: str | None = None, id: str | None = None, classes: str | None = None
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self._view: CanaryView | None = None

    @property
    def view(self) -> CanaryView | None:
        """The last view shown (for tests and for the app's own checks)."""
        return self._view

    # --- attributes down -------------------------------------------------------------------------

    def show(
        self,
        state: IncidentState,
        now: datetime,
        blocks: Sequence[Block],
        *,
        can_act: bool = True,
    ) -> None:
        """Show the canary of ``state`` at ``now``; ``blocks`` are what stops ``advance``.

        ``can_act`` is False in watch mode: the pane then does not tell anyone to press ``a``.
        """
        view = self._make_view(state, now, blocks, can_act)
        if view == self._view:
            return
        self._view = view
        loud = bool(view.error) or view.immediate
        self.update_classes({"-loud": loud,  # one restyle for the three
                             "-blocked": bool(view.blocks or view.hold_block) and not loud,
                             "-ready": bool(view.ready) and not loud})
        count = len(view.blocks) + (1 if view.hold_block else 0)
        if view.promoted:
            subtitle = "at 100%"
        elif view.pending:
            subtitle = view.pending
        elif count:
            subtitle = f"✗ {count} block{'s' if count != 1 else ''}"
        elif view.ready:
            subtitle = "✓ ready"
        else:
            subtitle = ""
        set_subtitle(self, subtitle)
        self.refresh()

    @staticmethod
    def _make_view(
        state: IncidentState, now: datetime, blocks: Sequence[Block], can_act: bool
    ) -> CanaryView:
        current = state.canary_percent
        visited = {visit.percent for visit in state.visits}
        pulled = _pulled_back(state.visits, current)
        percents = [0, *(stage.percent for stage in state.plan if stage.percent > 0)]
        if current not in percents:
            percents = sorted({*percents, current})
        ladder = tuple(
            (
                f"{percent}%",
                "current" if percent == current
                else "pulled" if percent in pulled
                else "reached" if percent > 0 and percent in visited
                else "skipped" if 0 < percent < current
                else "future",
            )
            for percent in percents
        )

        stage = state.current_stage
        hold = ""
        hold_done = False
        if stage is not None and current > 0:
            remaining = state.hold_remaining_s(now)
            if remaining > 0:
                hold = f"hold {format_duration(remaining)} left of {short_duration(stage.hold_s)}"
            else:
                hold, hold_done = "hold done", True

        own: list[Block] = []
        hold_block: Block | None = None
        for code, words, overridable in blocks:
            block = (safe_text(code), safe_text(words), bool(overridable))
            if code == "hold":
                hold_block = block
            elif code == "final" and state.promoted:
                continue  # "nothing to advance" is what the promoted line says, better
            else:
                own.append(block)
        if hold_block is not None and not hold:
            own.insert(0, hold_block)  # no stage to hang it on: keep it as a plain block
            hold_block = None

        pending = ""
        if state.pending_weight is not None:
            request = state.pending_weight.request
            action = safe_text(request.action, limit=40)
            to = safe_text(request.to_percent, limit=10)
            pending = {
                "abort": f"setting {to}% (abort)…",
                "immediate": f"setting {to}% IMMEDIATELY…",
                "rollback": f"setting {to}% for the rollback…",
            }.get(action, f"setting {to}%…")

        ready = ""
        nxt = state.next_stage
        if not own and hold_block is None and not pending and nxt is not None:
            ready = f"ready to advance to {nxt.percent}%" + (" — press a" if can_act else "")

        return CanaryView(
            ladder=ladder,
            weight=current,
            hold=hold,
            hold_done=hold_done,
            hold_block=hold_block,
            pending=pending,
            error=safe_text(state.last_weight_error),
            immediate=state.immediate_used,
            promoted=state.promoted,
            blocks=tuple(own),
            ready=ready,
            overrides=tuple(
                (safe_text(o.block, limit=40), safe_text(o.reason)) for o in state.overrides
            ),
            flagger=flagger_line(state),
        )

    # --- drawing ---------------------------------------------------------------------------------

    def render(self) -> Content:
        """The pane's lines, most important first, fitted to the box."""
        view = self._view
        if view is None:
            return Content.styled("waiting for the incident…", ".canary-pane--muted")
        width, height = self.size
        return fit_lines(self._lines(view, width), width, height, ".canary-pane--muted")

    @staticmethod
    def _lines(view: CanaryView, width: int = 0) -> list[Content]:
        parts: list[str | tuple[str, str] | Content] = []
        for index, (label, kind) in enumerate(view.ladder):
            if index:
                parts.append((" ▸ ", ".canary-pane--muted"))
            if kind == "current":
                parts.append(loud(f"[{label}]", ".canary-pane--current"))
            elif kind == "reached":
                parts.append((f"{label}✓", ".canary-pane--reached"))
            elif kind == "pulled":
                parts.append((f"{label}✗", ".canary-pane--pulled"))
            elif kind == "skipped":
                parts.append((label, ".canary-pane--skipped"))
            else:
                parts.append((label, ".canary-pane--future"))
        lines = [Content.assemble(*parts)]

        status: list[str | tuple[str, str]] = []
        if view.hold_block is not None:
            status += [("✗ ", ".canary-pane--block"), view.hold]
            if view.hold_block[2]:
                status.append((" [override]", ".canary-pane--override"))
        elif view.hold:
            mark = "✓ " if view.hold_done else ""
            status.append((mark + view.hold, ".canary-pane--muted"))
        weight = Content(f"weight {view.weight}%")
        hold = Content.assemble(*status)
        if not hold:
            lines.append(weight)
        elif width and weight.cell_length + 3 + hold.cell_length > width:
            # A narrow box: the ladder already marks the weight; keep the timer on one line.
            lines.append(hold)
        else:
            lines.append(Content.assemble(weight, " · ", hold))

        if view.flagger:
            lines.append(Content.styled(view.flagger, ".canary-pane--muted"))
        if view.error:
            lines.append(loud(f"✗ WEIGHT CHANGE FAILED: {view.error}", ".canary-pane--loud"))
        if view.immediate:
            skipped = [label for label, kind in view.ladder if kind == "skipped"]
            lines.append(loud("⚠ 100% IMMEDIATELY was used"
                              + (f": {', '.join(skipped)} skipped" if skipped else ""),
                              ".canary-pane--immediate"))
        if view.pending:
            lines.append(Content.styled(view.pending, ".canary-pane--pending"))
        if view.promoted:
            lines.append(Content.styled("✓ at 100% — post-emergency checklist below",
                                        ".canary-pane--ready"))
        for _code, words, overridable in view.blocks:
            block: list[str | tuple[str, str]] = [("✗ ", ".canary-pane--block"), words]
            if overridable:
                block.append((" [override]", ".canary-pane--override"))
            lines.append(Content.assemble(*block))
        if view.ready:
            lines.append(Content.styled(f"✓ {view.ready}", ".canary-pane--ready"))
        for code, reason in view.overrides:
            lines.append(Content.assemble(("⚑ overridden ", ".canary-pane--override"),
                                          code, (f": {reason}", ".canary-pane--muted")))
        return lines
