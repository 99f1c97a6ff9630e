"""The incident header: who, what, how urgent, how long is left, and whose console this is.

``IncidentHeader`` renders one line (two if the app gives it ``height: 2``) from values handed to
it: an ``IncidentState``, the current time, the console's mode and, for watchers, the age of the
commander's heartbeat. It keeps no clock of its own; the app sets ``now`` (every second, say), so
tests inject any time they like.

What must survive a narrow terminal, in order: the mode badge, the incident id, the priority and the
time left to the priority's target. The category, the title, the elapsed time and the commander give
way first (dropped or shortened, title first) — at 80 columns the essentials are always there.

Title and commander are user text: sanitised by :func:`widgets.timeline.printable` and placed in a
``rich.text.Text`` by plain string, never parsed as markup.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, ClassVar, Literal, Self

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.geometry import Region
from textual.reactive import reactive
from textual.strip import Strip
from textual.widget import Widget

from console.model import format_duration
from widgets.text import printable, truncate_cells

if TYPE_CHECKING:
    from console.state import IncidentState

__all__ = ["IncidentHeader", "Urgency", "time_left_text", "urgency"]

Urgency = Literal["ok", "warning", "critical", "none"]

#: Below this many seconds to the target the countdown is critical, whatever the priority.
CRITICAL_S = 15 * 60


def urgency(state: IncidentState, now: datetime) -> Urgency:
    """How urgent the deploy target is: ``ok`` while more than half the target remains,
    ``warning`` below half, ``critical`` below 15 minutes or once missed; ``none`` without a target.

    A closed incident is judged by whether it closed before the target.
    """
    if state.deadline is None or state.target_hours <= 0:
        return "none"
    if state.closed and state.closed_ts is not None:
        if state.change_is_fix and not state.promoted:
            return "critical" if state.harm_back else "warning"  # the fix never shipped
        return "ok" if state.time_left_s(state.closed_ts) >= 0 else "critical"
    left = state.time_left_s(now)
    if left < CRITICAL_S:
        return "critical"
    if left > state.target_hours * 3600 / 2:
        return "ok"
    return "warning"


def time_left_text(state: IncidentState, now: datetime, *, short: bool = False) -> str:
    """``P0 target 1h 47m left``, ``target MISSED by 12m 00s``, or for a closed incident
    ``closed 47m 00s before target``; ``short`` drops the priority and the word *target*."""
    if state.deadline is None or state.target_hours <= 0:
        return "no target"
    if state.closed and state.closed_ts is not None:
        if state.change_is_fix and not state.promoted:
            # Closing is not shipping: the deploy target was for the fix, which never shipped.
            return "no fix shipped" if short else "closed, the fix NOT shipped"
        left = state.time_left_s(state.closed_ts)
        if short:
            return f"closed {format_duration(abs(left))} {'early' if left >= 0 else 'late'}"
        if left >= 0:
            return f"closed {format_duration(left)} before target"
        return f"closed {format_duration(-left)} after target"
    left = state.time_left_s(now)
    if left < 0:
        return f"MISSED by {format_duration(-left)}" if short else (
            f"target MISSED by {format_duration(-left)}")
    if short:
        return f"{format_duration(left)} left"
    return f"{state.priority} target {format_duration(left)} left"


@dataclass
class _Part:
    """One piece of the header line: its text, its style and how readily it gives way."""

    key: str
    text: str
    style: str
    short: str | None = None  # a shorter form tried before the part is dropped

    @property
    def width(self) -> int:
        return cell_len(self.text)


class IncidentHeader(Widget):
    """One or two lines at the top of the console: incident, urgency, commander, mode."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "incident-header--id",
        "incident-header--priority",
        "incident-header--priority-high",
        "incident-header--category",
        "incident-header--title",
        "incident-header--label",
        "incident-header--elapsed",
        "incident-header--ok",
        "incident-header--warning",
        "incident-header--critical",
        "incident-header--none",
        "incident-header--commander",
        "incident-header--heartbeat",
        "incident-header--stale",
        "incident-header--mode-commander",
        "incident-header--mode-watching",
        "incident-header--mode-replay",
        "incident-header--replay",
        "incident-header--closed",
        "incident-header--chain-broken",
        "incident-header--alarm",
        "incident-header--sim",
        "incident-header--env-red",
        "incident-header--env-amber",
        "incident-header--env-green",
        "incident-header--env-blue",
        "incident-header--env-none",
    }

    DEFAULT_CSS = """
    IncidentHeader {
        height: 1;
        width: 1fr;
        background: $panel;
        color: $foreground;
        & > .incident-header--id { color: $text; text-style: bold; }
        & > .incident-header--priority { color: $text; text-style: bold; }
        & > .incident-header--priority-high { color: $text-error; text-style: bold; }
        & > .incident-header--category { color: $text-muted; }
        & > .incident-header--title { color: $text; }
        & > .incident-header--label { color: $text-muted; }
        & > .incident-header--elapsed { color: $text; }
        & > .incident-header--ok { color: $success; text-style: bold; }
        & > .incident-header--warning { color: $warning; text-style: bold; }
        & > .incident-header--critical { color: $error; text-style: bold reverse; }
        & > .incident-header--none { color: $text-muted; }
        & > .incident-header--commander { color: $text-accent; }
        & > .incident-header--heartbeat { color: $text-success; }
        & > .incident-header--stale { color: $error; text-style: bold; }
        & > .incident-header--mode-commander {
            background: $primary; color: $text; text-style: bold;
        }
        & > .incident-header--mode-watching {
            background: $warning; color: $text; text-style: bold;
        }
        & > .incident-header--mode-replay {
            background: $accent; color: $text; text-style: bold;
        }
        & > .incident-header--replay { color: $text-accent; text-style: bold; }
        & > .incident-header--closed { background: $success-muted; color: $text; text-style: bold; }
        & > .incident-header--chain-broken {
            background: $error; color: $text; text-style: bold;
        }
        & > .incident-header--alarm {
            background: $error; color: $text; text-style: bold;
        }
        & > .incident-header--sim { background: $warning; color: $text; text-style: bold; }
        & > .incident-header--env-red { background: $error; color: $text; text-style: bold; }
        & > .incident-header--env-amber { background: $warning; color: $text; text-style: bold; }
        & > .incident-header--env-green { background: $success; color: $text; text-style: bold; }
        & > .incident-header--env-blue { background: $primary; color: $text; text-style: bold; }
        & > .incident-header--env-none { color: $text; text-style: bold; }
    }
    """

    #: A commander heartbeat older than this is shown as stale (in the error colour).
    HEARTBEAT_STALE_S: ClassVar[float] = 30.0
    #: The title is dropped rather than shown shorter than this.
    MIN_TITLE_WIDTH: ClassVar[int] = 10

    state: reactive[IncidentState | None] = reactive(None, always_update=True)
    """The folded incident; re-assign it (even the same object) after folding new events."""
    now: reactive[datetime] = reactive(lambda: datetime.now(UTC), always_update=True,
                                       repaint=False)
    """The time the clocks are computed at; the app sets it, tests inject it. The header is
    drawn again only when that changes what it shows (an hour away, the countdown moves once a
    minute)."""
    mode: reactive[str] = reactive("COMMANDER")
    """``COMMANDER`` or ``WATCHING``."""
    replay_clock: reactive[tuple[str, str] | None] = reactive(None)
    """In a replay: the replay clock, long and short (``22:14:05 UTC · +14m 05s · #1,234 ·
    ▶ 10×``); the mode is then ``REPLAY``."""
    heartbeat_age_s: reactive[float | None] = reactive(None)
    """Seconds since the commander's last heartbeat (shown to watchers), or ``None``."""
    simulated: reactive[tuple[str, ...]] = reactive(())
    """The adapters that are the simulator (``metrics``, ``traffic``, ``deploy``): a SIM badge
    says so while any is."""
    environment: reactive[tuple[str, str]] = reactive(("", "none"))
    """``(name, colour)`` of the environment (config ``[console]``): a badge in that colour."""
    chain_broken_at: reactive[str | None] = reactive(None)
    """Where verification found the record edited (``#N``), shown loudly; ``None`` while the
    chain holds."""

    def __init__(
        self,
        state: IncidentState | None = None,
        *,
        mode: str = "COMMANDER",
        now: datetime | None = None,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        """Create the header, optionally with a state, a mode and a fixed time."""
        super().__init__(name=name, id=id, classes=classes)
        self._styles: dict[str, tuple[object, Style]] = {}
        # What is on screen: (size, the text, its lines); None once something else changed.
        self._lines: tuple[tuple[int, int], Text, list[Strip]] | None = None
        self.set_reactive(IncidentHeader.state, state)
        self.set_reactive(IncidentHeader.mode, self.validate_mode(mode))
        if now is not None:
            self.set_reactive(IncidentHeader.now, self.validate_now(now))
        self._update_classes(update=False)  # before the first styling, not after it

    # --- derived values -------------------------------------------------------------------------

    @property
    def urgency(self) -> Urgency:
        """The colour band of the countdown now: ``ok``, ``warning``, ``critical`` or ``none``."""
        return "none" if self.state is None else urgency(self.state, self.now)

    @property
    def time_left_component(self) -> str:
        """The component class the countdown is drawn with (e.g. ``incident-header--warning``)."""
        return f"incident-header--{self.urgency}"

    # --- reactivity -----------------------------------------------------------------------------

    def validate_now(self, now: datetime) -> datetime:
        """A naive time is taken as UTC (comparing it with the aware declaration would raise)."""
        return now.replace(tzinfo=UTC) if now.tzinfo is None else now

    def validate_mode(self, mode: str) -> str:
        """Modes are shown in capitals: ``watching`` is ``WATCHING``."""
        return mode.strip().upper() or "COMMANDER"

    def _watch_state(self) -> None:
        self._update_classes()

    def _watch_now(self) -> None:
        self._update_classes()
        shown = self._lines
        if shown is None or shown[0] != tuple(self.size) or shown[1] != self.render():
            self.refresh()

    def _watch_mode(self) -> None:
        self._update_classes()

    def on_mount(self) -> None:
        """Set the CSS classes for the first render."""
        self._update_classes()

    def _update_classes(self, update: bool = True) -> None:
        """Mirror urgency, mode and closure as classes, so the app's CSS can react to them too."""
        band = self.urgency
        classes = {f"-{name}": band == name for name in ("ok", "warning", "critical", "none")}
        classes["-watching"] = self.mode == "WATCHING"
        classes["-closed"] = self.state is not None and self.state.closed
        self.update_classes(classes, update=update)  # one restyle, none if unchanged

    # --- rendering ------------------------------------------------------------------------------

    def _style(self, name: str) -> Style:
        # The full style: "auto" colours (e.g. $text on a badge) resolve against its background.
        # Textual forgets its own cache on every refresh, and the header is refreshed every
        # second for its clocks; this one is kept while the component's styles are the same
        # object (every restyle of this node, its own or its ancestors', makes new ones).
        component = f"incident-header--{name}"
        source = self._component_styles.get(component)
        cached = self._styles.get(name)
        if cached is None or cached[0] is not source:
            cached = self._styles[name] = (source, self.get_component_rich_style(component))
        return cached[1]

    def _badges(self) -> list[_Part]:
        mode = printable(self.mode)
        style = {"WATCHING": "mode-watching", "REPLAY": "mode-replay"}.get(mode, "mode-commander")
        short = {"COMMANDER": "CMDR", "WATCHING": "WATCH", "REPLAY": "REPLAY"}.get(mode, mode[:5])
        badges = [_Part("mode", f" {mode} ", style, short=f" {short} ")]
        if self.replay_clock is not None:
            long, brief = self.replay_clock
            badges.append(_Part("replay", printable(long), "replay", short=printable(brief)))
        name, colour = self.environment
        if name:
            badges.append(_Part("env", f" {printable(name).upper()} ", f"env-{colour}"))
        if self.simulated:
            everything = len(self.simulated) == 3
            badges.append(_Part("sim", " SIM " if everything else
                                f" SIM {'+'.join(self.simulated)} ", "sim", short=" SIM "))
        if self.chain_broken_at is not None:
            where = printable(self.chain_broken_at)
            badges.append(_Part("chain", f" CHAIN BROKEN at {where} ", "chain-broken",
                                short=f" CHAIN BROKEN {where} "))
        state = self.state
        if state is not None and not state.closed:
            # A verified rollback that did not stay rolled back, and a decision only the
            # commander can take: on every console, in the error colour, until they clear.
            if state.watch_status == "reverted":
                live = truncate_cells(printable(state.watch_live.split(" (")[0]), 24)
                badges.append(_Part("undone", f" ROLLBACK UNDONE: {live} live ", "alarm",
                                    short=" ROLLBACK UNDONE "))
            if state.escalation:
                badges.append(_Part("escalated", " ESCALATED: commander decides ", "alarm",
                                    short=" ESCALATED "))
        if state is not None and state.harm_back:
            # The fix was rolled back: what it was to stop is live again (seed 002: hotfix next).
            badges.append(_Part("harm", " HARM BACK: hotfix next ", "alarm",
                                short=" HARM BACK "))
        if state is not None and state.closed:
            badges.append(_Part("closed", " CLOSED ", "closed"))
        return badges

    def _commander(self, state: IncidentState) -> _Part | None:
        """``cmdr alice``: who holds command."""
        if not state.commander:
            return None
        return _Part("commander", f"cmdr {truncate_cells(printable(state.commander), 16)}",
                     "commander")

    def _heartbeat(self) -> _Part | None:
        """``♥ 2s`` for watchers: how fresh the commander's console is; stale ones stand out."""
        age = self.heartbeat_age_s
        if age is None or self.mode != "WATCHING":
            return None
        age = max(0.0, age)
        style = "stale" if age > self.HEARTBEAT_STALE_S else "heartbeat"
        return _Part("heartbeat", f"♥ {format_duration(age)}", style)

    def _parts(self, width: int, *, include_title: bool = True) -> list[_Part]:
        """The parts of line one, shortened or dropped until they fit ``width`` cells."""
        state = self.state
        badges = self._badges()
        if state is None:
            return [*badges, _Part("idle", "no incident open", "label")]
        now = self.now
        elapsed = format_duration(state.elapsed_s(now))
        parts: list[_Part] = [*badges, _Part("id", state.id_text, "id")]
        if state.priority:
            high = state.priority in ("P0", "P1")
            parts.append(_Part("priority", printable(state.priority),
                               "priority-high" if high else "priority"))
        if state.category:
            parts.append(_Part("category", printable(state.category), "category"))
        if include_title and state.title:
            parts.append(_Part("title", printable(state.title), "title"))
        parts.append(_Part("elapsed", f"elapsed {elapsed}", "elapsed"))
        parts.append(_Part("left", time_left_text(state, now), self.urgency,
                           short=time_left_text(state, now, short=True)))
        commander = self._commander(state)
        if commander is not None:
            parts.append(commander)
            heartbeat = self._heartbeat()
            if heartbeat is not None:
                parts.append(heartbeat)
        _fit(parts, width, self.MIN_TITLE_WIDTH)
        return parts

    def refresh(self, *regions: Region, repaint: bool = True, layout: bool = False,
                recompose: bool = False) -> Self:
        if repaint:
            self._lines = None
        return super().refresh(*regions, repaint=repaint, layout=layout, recompose=recompose)

    def render_line(self, y: int) -> Strip:
        """A line of :meth:`render` made straight into segments: the header is drawn every
        second while its clocks show seconds, and Textual's general path (Text to Content to
        strips) costs an idle watcher more than the rest of its second together."""
        width, height = self.size
        if self._lines is None or self._lines[0] != (width, height):
            base = self.rich_style
            console = self.app.console
            text = self.render()
            lines = []
            for line in text.split("\n", allow_blank=True)[:height]:
                segments = [Segment(segment.text, base + segment.style if segment.style else base)
                            for segment in line.render(console, end="")]
                lines.append(Strip(segments).adjust_cell_length(width, base))
            self._lines = ((width, height), text, lines)
        lines = self._lines[2]
        return lines[y] if y < len(lines) else Strip.blank(width, self.rich_style)

    def render(self) -> Text:
        """The header as plain-string ``Text`` with component styles (never markup)."""
        width, height = self.size
        state = self.state
        # Given two lines, the title gets line two to itself and line one keeps everything else.
        two_lines = height >= 2 and state is not None and bool(state.title)
        parts = self._parts(width, include_title=not two_lines)
        if two_lines:
            parts = [part for part in parts if part.key != "category"]
        text = Text(no_wrap=True, overflow="ellipsis", end="")
        for index, part in enumerate(parts):
            if index:
                text.append(" " * _gap(part))
            text.append(part.text, self._style(part.style))
        text.truncate(width, overflow="ellipsis")
        if two_lines and state is not None:
            text.append("\n")
            if state.category:
                category = truncate_cells(printable(state.category), max(0, width // 3))
                text.append(category, self._style("category"))
                text.append("  ")
                width -= cell_len(category) + 2
            text.append(truncate_cells(printable(state.title), width), self._style("title"))
        return text


def _gap(part: _Part) -> int:
    """Cells before ``part``: badges, and a heartbeat after its commander, sit one apart."""
    return 1 if part.key in ("closed", "heartbeat") else 2


def _fit(parts: list[_Part], width: int, min_title: int) -> None:
    """Shorten or drop parts, least essential first, until they fit ``width`` cells.

    Order: the title shrinks (to no less than twice ``min_title``), the category goes, the title
    shrinks further or goes, then the elapsed time, the heartbeat and the commander; last,
    the countdown and the mode badge take their short forms. Mode, id, priority and time left are
    never dropped.
    """

    def excess() -> int:
        used = sum(part.width for part in parts)
        used += sum(_gap(part) for part in parts[1:])
        return used - width

    def find(key: str) -> _Part | None:
        return next((part for part in parts if part.key == key), None)

    def shrink_title(floor: int) -> None:
        title = find("title")
        if title is not None:
            room = title.width - excess()
            if room >= floor:
                title.text = truncate_cells(title.text, room)
            elif floor == min_title:
                parts.remove(title)

    def drop(key: str) -> None:
        part = find(key)
        if part is not None:
            parts.remove(part)

    def shorten(key: str) -> None:
        part = find(key)
        if part is not None and part.short is not None:
            part.text, part.short = part.short, None

    steps = [
        lambda: shrink_title(2 * min_title),
        lambda: drop("category"),
        lambda: shrink_title(min_title),
        lambda: shorten("replay"),
        lambda: drop("elapsed"),
        lambda: drop("heartbeat"),
        lambda: drop("commander"),
        lambda: shorten("escalated"),
        lambda: shorten("undone"),
        lambda: shorten("left"),
        lambda: shorten("mode"),
    ]
    for step in steps:
        if excess() <= 0:
            return
        step()
