"""The incident's running timeline: one line per event, newest last, fast at 100,000 events.

``Timeline`` is a Line API widget (``ScrollView.render_line``), after Toolong's ``log_lines``: it
keeps the events in a list and renders only the rows on screen, each into a ``Strip`` built from
plain ``Segment`` objects with explicit styles, cached in an ``LRUCache`` keyed by
``(event id, width, generation)``. There is no widget per row.

Costs, with *n* events and *h* visible rows:

- ``append_events(batch)``: O(len(batch)) list appends, plus O(h) rendering of the rows on screen.
- scrolling: O(h) per frame; rows already seen come from the cache.
- ``set_filter(name)``: one O(n) pass to build the filtered row list, then O(h) rendering.

Every string that reaches the screen (actor, sentence, kind) is user data: it is sanitised by
:func:`printable` (control characters become visible placeholders) and placed in a ``Segment``,
which is never parsed as markup, so ``[bold]``, ``[/]``, ``[link=x]`` and ANSI escapes show
literally.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC
from operator import attrgetter
from typing import ClassVar, Final

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from textual.binding import Binding, BindingType
from textual.cache import LRUCache
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from console.model import LOUD_KINDS, Event, Kind, describe
from widgets.text import printable, truncate_cells

__all__ = ["FILTERS", "Timeline", "event_matches"]

# --- filters --------------------------------------------------------------------------------------

#: The actions a commander takes or the engine takes for them: canary, rollback, approvals,
#: overrides (carried by weight requests), the rollback preflight and command handovers.
ACTION_KINDS: Final = frozenset(
    {
        Kind.APPROVED,
        Kind.WAIVED,
        Kind.HANDOVER,
        Kind.CHECKLIST_ACKED,
        Kind.PREFLIGHT_REQUESTED,
        Kind.PREFLIGHT_PASSED,
        Kind.PREFLIGHT_FAILED,
        Kind.WEIGHT_REQUESTED,
        Kind.WEIGHT_SET,
        Kind.WEIGHT_FAILED,
        Kind.ROLLBACK_REQUESTED,
        Kind.ROLLBACK_STARTED,
        Kind.ROLLBACK_PROGRESS,
        Kind.ROLLBACK_COMPLETED,
        Kind.ROLLBACK_FAILED,
        Kind.VERIFICATION_STARTED,
        Kind.ROLLBACK_VERIFIED,
        Kind.ROLLBACK_NOT_VERIFIED,
    }
)
GUARDRAIL_KINDS: Final = frozenset({Kind.GUARDRAIL_CHANGED, Kind.GUARDRAIL_ACTION})
NOTE_KINDS: Final = frozenset({Kind.NOTE})

#: Filter names in the order ``f`` cycles through them, each with the kinds it shows
#: (``None``: every kind).
FILTERS: Final[dict[str, frozenset[str] | None]] = {
    "all": None,
    "actions": ACTION_KINDS,
    "guardrails": GUARDRAIL_KINDS,
    "notes": NOTE_KINDS,
    "loud": LOUD_KINDS,
}


def event_matches(event: Event, filter_name: str) -> bool:
    """Whether ``event`` is shown under the filter ``filter_name``."""
    kinds = FILTERS[filter_name]
    return kinds is None or event.kind in kinds


# --- line styles ----------------------------------------------------------------------------------

_ALARM_KINDS: Final = frozenset({Kind.ROLLBACK_NOT_VERIFIED, Kind.ROLLBACK_FAILED})


def line_component(event: Event) -> str | None:
    """The component class that styles the sentence of ``event`` (``None``: the plain text)."""
    kind = event.kind
    if kind in _ALARM_KINDS:
        return "timeline--alarm"
    if kind == Kind.ROLLBACK_VERIFIED:
        return "timeline--verified"
    if kind in LOUD_KINDS:
        return "timeline--loud"
    if kind in GUARDRAIL_KINDS:
        status = event.payload.get("status") if isinstance(event.payload, dict) else None
        return "timeline--breach" if status == "breach" else "timeline--guardrail"
    if kind in NOTE_KINDS:
        return "timeline--note"
    if kind in ACTION_KINDS:
        return "timeline--action"
    return None


def safe_describe(event: Event) -> str:
    """``describe(event)``, or a fallback sentence if a malformed payload makes it fail.

    A timeline row must never take the console down: the event is still shown, by kind.
    """
    try:
        return describe(event)
    except Exception:  # any malformed payload: the row still renders
        return f"{event.kind}: (payload could not be read)"


# --- the widget -----------------------------------------------------------------------------------

_event_id: Callable[[Event], int] = attrgetter("id")


class Timeline(ScrollView, can_focus=True):
    """The incident's timeline, newest last, with auto-scroll ("follow") and filters.

    Attributes down: the app calls :meth:`append_events` with new events (in id order) and may
    set :attr:`follow`. Messages up: :class:`Timeline.FilterChanged` when the filter changes.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("home", "scroll_home", "Oldest", show=False),
        Binding("end", "scroll_end", "Newest"),
        Binding("f", "cycle_filter", "Filter"),
    ]

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "timeline--time",
        "timeline--actor",
        "timeline--action",
        "timeline--guardrail",
        "timeline--breach",
        "timeline--note",
        "timeline--loud",
        "timeline--verified",
        "timeline--alarm",
    }

    DEFAULT_CSS = """
    Timeline {
        overflow-x: hidden;
        overflow-y: auto;
        background: $surface;
        color: $foreground;
        border: round $border-blurred;
        border-title-color: $foreground-muted;
        border-subtitle-color: $warning;
        border-subtitle-style: bold;
        border-subtitle-align: right;
        &:focus {
            border: round $border;
        }
        & > .timeline--time { color: $text-muted; }
        & > .timeline--actor { color: $text-accent; }
        & > .timeline--action { color: $text-primary; }
        & > .timeline--guardrail { color: $text-warning; }
        & > .timeline--breach { color: $text-error; text-style: bold; }
        & > .timeline--note { color: $foreground; text-style: italic; }
        & > .timeline--loud { color: $error; text-style: bold; }
        & > .timeline--verified { color: $success; text-style: bold; }
        & > .timeline--alarm { background: $error; color: $text; text-style: bold; }
    }
    """

    BORDER_TITLE = "Timeline"

    #: Width of the actor column; longer names are cut with an ellipsis.
    ACTOR_WIDTH: ClassVar[int] = 10
    #: Below this many columns the actor column is dropped to leave room for the sentence.
    NARROW_WIDTH: ClassVar[int] = 44
    #: Strips kept in the render cache (a few screens at any width).
    CACHE_SIZE: ClassVar[int] = 2048

    follow: reactive[bool] = reactive(True, init=False)
    """Keep the newest event in view. Scrolling up clears it; End or reaching the bottom sets it."""

    @dataclass
    class FilterChanged(Message):
        """Posted when the timeline's filter changes (by ``f`` or :meth:`Timeline.set_filter`)."""

        timeline: Timeline
        """The timeline whose filter changed."""
        filter: str
        """The new filter's name (a key of :data:`FILTERS`)."""
        shown: int
        """Events shown under the new filter."""
        total: int
        """All events held by the timeline."""

        @property
        def control(self) -> Timeline:
            """The timeline that sent the message (for ``@on(..., "#selector")``)."""
            return self.timeline

    def __init__(
        self,
        events: Sequence[Event] = (),
        *,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
        disabled: bool = False,
    ) -> None:
        """Create a timeline, optionally with its first events (in id order)."""
        super().__init__(name=name, id=id, classes=classes, disabled=disabled)
        self._events: list[Event] = []
        # The rows on screen under the current filter; the very same list as ``_events`` for "all".
        self._rows: list[Event] = self._events
        self._filter = "all"
        self._kinds: frozenset[str] | None = None
        self._last_id: int | None = None
        self._new_count = 0
        self._generation = 0
        self._line_cache: LRUCache[tuple[int, int, int], Strip] = LRUCache(self.CACHE_SIZE)
        self._styles: dict[str, Style] | None = None
        if events:
            self.append_events(events)

    # --- public API -----------------------------------------------------------------------------

    @property
    def filter(self) -> str:
        """The current filter: ``all``, ``actions``, ``guardrails``, ``notes`` or ``loud``."""
        return self._filter

    @property
    def event_count(self) -> int:
        """All events held, whatever the filter."""
        return len(self._events)

    @property
    def row_count(self) -> int:
        """Rows under the current filter."""
        return len(self._rows)

    @property
    def new_count(self) -> int:
        """Rows added below the view since the user scrolled up (0 while following)."""
        return self._new_count

    @property
    def last_event_id(self) -> int | None:
        """The id of the newest event held, or ``None`` when empty."""
        return self._last_id

    def row_event(self, row: int) -> Event | None:
        """The event shown on ``row`` (0 is the oldest under the current filter)."""
        return self._rows[row] if 0 <= row < len(self._rows) else None

    def append_events(self, events: Sequence[Event]) -> None:
        """Add events, which arrive in id order; an id already held is ignored.

        While :attr:`follow` is set the view stays on the newest event; otherwise it stays put and
        the border shows how many new rows are below.
        """
        all_events = self._events
        rows = self._rows
        kinds = self._kinds
        filtered = rows is not all_events
        added = 0
        reordered = False
        last_id = self._last_id
        for event in events:
            event_id = event.id
            if last_id is None or event_id > last_id:
                all_events.append(event)
                last_id = event_id
                if filtered and (kinds is None or event.kind in kinds):
                    rows.append(event)
                    added += 1
                elif not filtered:
                    added += 1
            else:
                # Older than the newest: a duplicate (ignored) or, against the contract, a late
                # event, which is put in its place by id.
                index = bisect_left(all_events, event_id, key=_event_id)
                if index < len(all_events) and all_events[index].id == event_id:
                    continue
                all_events.insert(index, event)
                reordered = True
        self._last_id = last_id
        if reordered:
            self._rebuild_rows()
            self._after_rows_changed(0)
        elif added:
            self._after_rows_changed(added)

    def clear_events(self) -> None:
        """Forget every event (the filter and follow mode are kept)."""
        self._events.clear()
        if self._rows is not self._events:
            self._rows = []
        self._last_id = None
        self._new_count = 0
        self._line_cache.clear()
        self.virtual_size = Size(0, 0)
        if self.is_mounted:
            self.scroll_to(y=0, animate=False, force=True)
        self._update_subtitle()
        self.refresh()

    def set_filter(self, name: str) -> None:
        """Show only the events of filter ``name`` and post :class:`Timeline.FilterChanged`.

        One O(n) pass over the events. Raises ``ValueError`` for an unknown name.
        """
        if name not in FILTERS:
            raise ValueError(f"unknown timeline filter {name!r}; expected one of {list(FILTERS)}")
        if name == self._filter:
            return
        top = self.row_event(self.scroll_offset.y)
        self._filter = name
        self._kinds = FILTERS[name]
        self._generation += 1
        self._rebuild_rows()
        self._new_count = 0
        self.virtual_size = Size(0, len(self._rows))
        if self.follow:
            self._scroll_to_newest()
        elif top is not None and self.is_mounted:
            # Stay near the same moment: the first shown event at or after the old top row.
            row = bisect_left(self._rows, top.id, key=_event_id)
            self.scroll_to(y=row, animate=False, force=True)
            self._sync_follow()
        self._update_subtitle()
        self.refresh()
        self.post_message(self.FilterChanged(self, name, len(self._rows), len(self._events)))

    def next_filter(self) -> str:
        """The filter after the current one, in the order ``f`` cycles."""
        names = list(FILTERS)
        return names[(names.index(self._filter) + 1) % len(names)]

    # --- actions --------------------------------------------------------------------------------

    def action_cycle_filter(self) -> None:
        """Show the next filter (``f``)."""
        self.set_filter(self.next_filter())

    def action_scroll_end(self) -> None:
        """Jump to the newest event and follow new ones (``end``)."""
        if self.follow:
            self._scroll_to_newest()
        else:
            self.follow = True

    def action_scroll_home(self) -> None:
        """Jump to the oldest event and stop following (``home``)."""
        self.follow = False
        self.scroll_to(y=0, animate=False, force=True)

    # --- follow mode ----------------------------------------------------------------------------

    def watch_follow(self, follow: bool) -> None:
        """Following: jump to the newest event and clear the "new" hint."""
        if follow:
            self._new_count = 0
            # Never scroll from inside a scroll animation step (watch_scroll_y turns follow on
            # only at the bottom, where there is nothing to do): stopping the running animation
            # from its own callback breaks Textual's animator.
            if self.scroll_y < self.max_scroll_y:
                self._scroll_to_newest()
        self.set_class(follow, "-following")
        self._update_subtitle()

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        """Reaching the bottom turns follow on; moving up (the user scrolling) turns it off."""
        super().watch_scroll_y(old_value, new_value)
        if new_value >= self.max_scroll_y:
            if not self.follow:
                self.follow = True
        elif new_value < old_value and self.follow:
            self.follow = False

    def _sync_follow(self) -> None:
        """Turn follow on when the view is at the bottom without having scrolled there."""
        if (
            not self.follow
            and self.is_mounted
            and self.size
            and self.scroll_offset.y >= self.max_scroll_y
        ):
            self.follow = True

    def watch_show_vertical_scrollbar(self, shown: bool) -> None:
        """Put the thumb where the view is when the bar appears.

        Textual moves the thumb only while the bar is shown, so a scroll to the newest row made
        before the first layout (the first events arrive before it) left the thumb at the top
        beside the bottom rows, or not, depending on which came first.
        """
        if shown:
            self.vertical_scrollbar.position = self.scroll_y

    def on_resize(self) -> None:
        """A shorter view must still end on the newest event while following."""
        if self.follow:
            self.call_after_refresh(self._catch_up)

    def _catch_up(self) -> None:
        """After a layout: still following? Then show the newest (the user may have moved)."""
        if self.follow:
            self._scroll_to_newest()

    def _scroll_to_newest(self) -> None:
        # ``force``: the scrollbar that allows scrolling appears only at the next layout.
        if self.is_mounted:
            self.scroll_to(y=self.max_scroll_y, animate=False, force=True)

    def on_mount(self) -> None:
        """Start on the newest event when following."""
        self.set_class(self.follow, "-following")
        self._update_subtitle()
        if self.follow:
            self.call_after_refresh(self._catch_up)

    # --- internals ------------------------------------------------------------------------------

    def _rebuild_rows(self) -> None:
        kinds = self._kinds
        if kinds is None:
            self._rows = self._events
        else:
            self._rows = [event for event in self._events if event.kind in kinds]

    def _after_rows_changed(self, added: int) -> None:
        self._sync_follow()  # at the bottom (e.g. all rows fit) means following
        self.virtual_size = Size(0, len(self._rows))
        if self.follow:
            self._scroll_to_newest()
        else:
            self._new_count += added
            self._update_subtitle()
        self.refresh()

    def _update_subtitle(self) -> None:
        parts: list[str] = []
        if self._filter != "all":
            parts.append(f"{self._filter} {len(self._rows):,}/{len(self._events):,}")
        if self._new_count and not self.follow:
            parts.append(f"{self._new_count:,} new ↓ (End)")
        self.border_subtitle = " · ".join(parts) if parts else None

    def notify_style_update(self) -> None:
        """Styles changed (theme, focus, CSS): drop the cached styles and strips."""
        super().notify_style_update()
        self._styles = None
        self._generation += 1
        self._line_cache.clear()

    def _line_styles(self) -> dict[str, Style]:
        """The style of each part of a line, by component class (``""``: the widget's own)."""
        if self._styles is None:
            # The full component style: "auto" colours resolve against the widget's background.
            styles = {"": self.rich_style}
            for name in self.COMPONENT_CLASSES:
                styles[name] = self.get_component_rich_style(name)
            self._styles = styles
        return self._styles

    def render_line(self, y: int) -> Strip:
        """Render row ``y`` of the view: the event at ``scroll_y + y`` under the current filter."""
        index = self.scroll_offset.y + y
        width = self.scrollable_content_region.width
        rows = self._rows
        if not 0 <= index < len(rows):
            return Strip.blank(width, self.rich_style)
        event = rows[index]
        key = (event.id, width, self._generation)
        strip = self._line_cache.get(key)
        if strip is None:
            strip = self._render_event(event, width)
            self._line_cache[key] = strip
        return strip

    def _render_event(self, event: Event, width: int) -> Strip:
        """One event as a line ``HH:MM:SS actor  sentence``, cut to ``width`` cells."""
        styles = self._line_styles()
        component = line_component(event)
        line_style = styles[component] if component else styles[""]
        alarm = component == "timeline--alarm"
        time_style = line_style if alarm else styles["timeline--time"]
        actor_style = line_style if alarm else styles["timeline--actor"]

        ts = event.ts
        ts = ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)
        segments = [Segment(f"{ts.hour:02d}:{ts.minute:02d}:{ts.second:02d}", time_style)]
        used = 8
        if width >= self.NARROW_WIDTH:
            actor = truncate_cells(printable(event.actor), self.ACTOR_WIDTH)
            actor = actor + " " * (self.ACTOR_WIDTH - cell_len(actor))
            segments += [Segment(" ", line_style), Segment(actor, actor_style)]
            used += 1 + self.ACTOR_WIDTH
        segments.append(Segment("  ", line_style))
        used += 2
        sentence = truncate_cells(printable(safe_describe(event)), max(0, width - used))
        segments.append(Segment(sentence, line_style))
        strip = Strip(segments, used + cell_len(sentence))
        # Crop when the view is narrower than the time column; pad alarm rows with their colour.
        return strip.adjust_cell_length(width, line_style if alarm else styles[""])
