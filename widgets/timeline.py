"""The incident's running timeline: one line per event, newest last, fast at any length.

``Timeline`` is a Line API widget (``ScrollView.render_line``), after Toolong's ``log_lines``: it
renders only the rows on screen, each into a ``Strip`` built from plain ``Segment`` objects with
explicit styles, cached in an ``LRUCache`` keyed by ``(event id, width, style generation)``. There
is no widget per row, and the timeline holds a *window* of rows, not the history:

- Rows are numbered under the current filter (0 is the oldest). The widget keeps the rows it has
  been given in a bounded map (row number → event) and knows how many rows there are in all.
- A row on screen that it does not hold renders as a placeholder and is asked for with
  :class:`Timeline.RowsWanted` (a page at a time): the app reads that page from the store in a
  worker and hands it back with :meth:`Timeline.fill`. No I/O happens on the UI thread.
- New events arrive at the end with :meth:`Timeline.append_events` (the app pushes them as they
  commit); the filter is matched here, so counts stay right without a query.
- :meth:`Timeline.reset` gives the row count and the newest rows under a filter (the app's answer
  to :class:`Timeline.FilterChanged`, and how it opens an incident of any length).

Given events directly (``Timeline(events)`` / ``append_events`` without a ``reset``), the timeline
is its own source: it holds them all and filters them itself (small views and tests).

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
        Kind.PAUSED,
        Kind.RESUMED,
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

    Attributes down: the app calls :meth:`append_events` with new events (in id order),
    :meth:`reset` and :meth:`fill` with rows it read, and may set :attr:`follow`. Messages up:
    :class:`Timeline.FilterChanged` when the filter changes, :class:`Timeline.RowsWanted` when
    rows on screen are not held.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("home", "scroll_home", "Oldest", show=False),
        Binding("end", "scroll_end", "Newest"),
        Binding("f", "cycle_filter", "Filter"),
        # ↑/↓ select an event (the console's ``h`` highlights the selected one); Escape or End
        # lets go of it. Page up/down still scroll.
        Binding("up", "cursor_up", "Select earlier", show=False),
        Binding("down", "cursor_down", "Select later", show=False),
        Binding("escape", "clear_cursor", "Unselect", show=False),
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
        "timeline--pending",
        "timeline--cursor",
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
        &.-chain-broken {
            border: heavy $error;
            border-title-color: $error;
            border-title-style: bold;
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
        & > .timeline--pending { color: $text-muted; }
        & > .timeline--cursor { background: $accent 35%; }
    }
    """

    BORDER_TITLE = "Timeline"

    #: Width of the actor column; longer names are cut with an ellipsis.
    ACTOR_WIDTH: ClassVar[int] = 10
    #: Below this many columns the actor column is dropped to leave room for the sentence.
    NARROW_WIDTH: ClassVar[int] = 44
    #: Strips kept in the render cache (a few screens at any width).
    CACHE_SIZE: ClassVar[int] = 2048
    #: Rows asked for at a time.
    PAGE: ClassVar[int] = 200
    #: Rows held at most (beyond it, rows far from the view are dropped and read again if
    #: needed): memory is bounded by what is on screen, not by the incident's length.
    MAX_HELD: ClassVar[int] = 4000

    follow: reactive[bool] = reactive(True, init=False)
    """Keep the newest event in view. Scrolling up clears it; End or reaching the bottom sets it."""
    cursor: reactive[int | None] = reactive(None, init=False)
    """The selected row under the current filter (↑/↓), or ``None``: nothing selected (``h``
    then highlights the newest event)."""
    chain: reactive[str] = reactive("", init=False)
    """How far the record's hash chain is verified, for the border title (``chain ✓ to #N``,
    ``verifying chain…``, ``CHAIN BROKEN at #N``); empty: not shown."""

    @dataclass
    class FilterChanged(Message):
        """Posted when the timeline's filter changes (by ``f`` or :meth:`Timeline.set_filter`).

        A timeline fed by the app waits for :meth:`Timeline.reset` with the rows of the new
        filter; ``top_event_id`` is the event at the top of the view before the change, so the
        app can keep the view near the same moment (``anchor_row``).
        """

        timeline: Timeline
        """The timeline whose filter changed."""
        filter: str
        """The new filter's name (a key of :data:`FILTERS`)."""
        shown: int
        """Events shown under the new filter (known once the rows are reset)."""
        total: int
        """All events of the incident."""
        top_event_id: int | None = None
        """The event at the top of the view before the change, if any."""

        @property
        def control(self) -> Timeline:
            """The timeline that sent the message (for ``@on(..., "#selector")``)."""
            return self.timeline

    @dataclass
    class RowsWanted(Message):
        """Rows ``offset`` … ``offset + limit - 1`` under ``kinds`` are on screen but not held:
        read them and hand them back with :meth:`Timeline.fill` (quoting ``generation``)."""

        timeline: Timeline
        generation: int
        kinds: frozenset[str] | None
        offset: int
        limit: int

        @property
        def control(self) -> Timeline:
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
        # Held rows: row number under the current filter → event.
        self._held: dict[int, Event] = {}
        self._row_total = 0
        self._event_total = 0
        self._filter = "all"
        self._kinds: frozenset[str] | None = None
        self._last_id: int | None = None
        self._new_count = 0
        self._generation = 0  # of the filter: answers for an older filter are ignored
        self._style_generation = 0  # of the styles: part of every cached strip's key
        self._asked: set[int] = set()  # pages asked for and not filled yet
        # Fed by the app (reset was called) or its own source (every event held below).
        self._fed = False
        self._own: list[Event] = []
        self._line_cache: LRUCache[tuple[int, int, int, bool], Strip] = LRUCache(self.CACHE_SIZE)
        self._styles: dict[str, Style] | None = None
        # Set before the first styling (on_mount would style the pane a second time).
        self.set_class(self.follow, "-following", update=False)
        if events:
            self.append_events(events)

    # --- public API -----------------------------------------------------------------------------

    @property
    def filter(self) -> str:
        """The current filter: ``all``, ``actions``, ``guardrails``, ``notes`` or ``loud``."""
        return self._filter

    @property
    def kinds(self) -> frozenset[str] | None:
        """The kinds the current filter shows (``None``: every kind)."""
        return self._kinds

    @property
    def event_count(self) -> int:
        """All events of the incident, whatever the filter."""
        return self._event_total

    @property
    def row_count(self) -> int:
        """Rows under the current filter."""
        return self._row_total

    @property
    def held_count(self) -> int:
        """Rows held in memory (bounded by :attr:`MAX_HELD` when fed by the app)."""
        return len(self._held)

    @property
    def new_count(self) -> int:
        """Rows added below the view since the user scrolled up (0 while following)."""
        return self._new_count

    @property
    def last_event_id(self) -> int | None:
        """The id of the newest event seen, or ``None`` when empty."""
        return self._last_id

    @property
    def generation(self) -> int:
        """Changes with the filter: answers to older :class:`RowsWanted` are ignored."""
        return self._generation

    @property
    def cursor_event(self) -> Event | None:
        """The selected event, if a row is selected and held."""
        return None if self.cursor is None else self._held.get(self.cursor)

    def row_event(self, row: int) -> Event | None:
        """The event shown on ``row`` (0 is the oldest under the current filter), if held."""
        return self._held.get(row)

    def append_events(self, events: Sequence[Event]) -> None:
        """Add events, which arrive in id order; an id already seen is ignored.

        While :attr:`follow` is set the view stays on the newest event; otherwise it stays put and
        the border shows how many new rows are below.
        """
        kinds = self._kinds
        last_id = self._last_id
        added = 0
        late = False
        for event in events:
            event_id = event.id
            if last_id is not None and event_id <= last_id:
                if not self._fed:
                    late |= self._insert_own(event)
                continue
            last_id = event_id
            self._event_total += 1
            if not self._fed:
                self._own.append(event)
            if kinds is None or event.kind in kinds:
                self._held[self._row_total] = event
                self._row_total += 1
                added += 1
        self._last_id = last_id
        if late:
            self._rebuild_own()
            self._after_rows_changed(0)
        elif added:
            self._trim()
            self._after_rows_changed(added)

    def reset(self, row_total: int, event_total: int, tail: Sequence[Event],
              anchor_row: int | None = None, up_to_id: int | None = None) -> None:
        """Rows under the current filter, read by the app: how many there are, how many events
        in all, and the newest rows (oldest first). From now on rows the view needs and does not
        hold are asked for with :class:`RowsWanted`. ``anchor_row``: scroll there (a filter
        change that keeps the view near the same moment) unless following. ``up_to_id``: the
        newest event the counts include (later events are added by :meth:`append_events`)."""
        if self._unchanged(row_total, event_total, tail, anchor_row, up_to_id):
            return  # the same rows (a replay's clock moving between two events): nothing to draw
        following = self.follow
        self._fed = True
        self._own = []
        self._held.clear()
        self._asked.clear()
        self._row_total = max(row_total, len(tail))
        self._event_total = event_total
        first = self._row_total - len(tail)
        for index, event in enumerate(tail):
            self._held[first + index] = event
        newest = up_to_id if up_to_id is not None else (tail[-1].id if tail else None)
        if newest is not None:
            self._last_id = newest
        self._new_count = 0
        self._line_cache.clear()
        self._set_virtual_rows()  # may clamp the view (and so follow)
        if following:
            self.follow = True
            self._scroll_to_newest()
        elif self.is_mounted:
            if anchor_row is not None:
                self.scroll_to(y=anchor_row, animate=False, force=True)
            self.follow = False
            self._sync_follow()
        self._update_subtitle()
        self.refresh()

    def _unchanged(self, row_total: int, event_total: int, tail: Sequence[Event],
                   anchor_row: int | None, up_to_id: int | None) -> bool:
        """Whether a :meth:`reset` would show what is held already: the same counts, the same
        newest event and the same newest rows, and no row to scroll to."""
        if not self._fed or anchor_row is not None or self._new_count:
            return False
        newest = up_to_id if up_to_id is not None else (tail[-1].id if tail else None)
        if (max(row_total, len(tail)), event_total, newest) != (
                self._row_total, self._event_total, self._last_id):
            return False
        first = self._row_total - len(tail)
        held = self._held
        return all((row := held.get(first + index)) is not None and row.id == event.id
                   for index, event in enumerate(tail))

    def fill(self, generation: int, offset: int, events: Sequence[Event]) -> None:
        """Rows the app read for a :class:`RowsWanted` (ignored if the filter changed since)."""
        if generation != self._generation:
            return
        self._asked.discard(offset // self.PAGE)
        for index, event in enumerate(events):
            self._held[offset + index] = event
        self._trim()
        self.refresh()

    def clear_events(self) -> None:
        """Forget every event (the filter and follow mode are kept)."""
        self._held.clear()
        self._own = []
        self._asked.clear()
        self._row_total = 0
        self._event_total = 0
        self._last_id = None
        self._new_count = 0
        self._line_cache.clear()
        self._set_virtual_rows()
        if self.is_mounted:
            self.scroll_to(y=0, animate=False, force=True)
        self._update_subtitle()
        self.refresh()

    def set_filter(self, name: str) -> None:
        """Show only the events of filter ``name`` and post :class:`Timeline.FilterChanged`.

        A timeline fed by the app waits for :meth:`reset`; one that holds its own events
        filters them in one pass. Raises ``ValueError`` for an unknown name.
        """
        if name not in FILTERS:
            raise ValueError(f"unknown timeline filter {name!r}; expected one of {list(FILTERS)}")
        if name == self._filter:
            return
        top = self.row_event(self.scroll_offset.y)
        self.cursor = None  # rows are numbered anew under the new filter
        self._filter = name
        self._kinds = FILTERS[name]
        self._generation += 1
        self._line_cache.clear()
        self._asked.clear()
        self._new_count = 0
        if self._fed:
            # Keep what is known until the app's reset: nothing is held for the new filter.
            self._held.clear()
            self.refresh()
        else:
            self._rebuild_own()
            self._set_virtual_rows()
            if self.follow:
                self._scroll_to_newest()
            elif top is not None and self.is_mounted:
                # Stay near the same moment: the first shown event at or after the old top row.
                rows = [self._held[i] for i in range(self._row_total)]
                row = bisect_left(rows, top.id, key=_event_id)
                self.scroll_to(y=row, animate=False, force=True)
                self._sync_follow()
            self._update_subtitle()
            self.refresh()
        self.post_message(self.FilterChanged(self, name, self._row_total, self._event_total,
                                             top.id if top is not None else None))

    def next_filter(self) -> str:
        """The filter after the current one, in the order ``f`` cycles."""
        names = list(FILTERS)
        return names[(names.index(self._filter) + 1) % len(names)]

    # --- actions --------------------------------------------------------------------------------

    def action_cycle_filter(self) -> None:
        """Show the next filter (``f``)."""
        self.set_filter(self.next_filter())

    def action_cursor_up(self) -> None:
        """Select the event above the selected one (the bottom row in view when nothing is
        selected); the view follows the selection and stops following new events."""
        if not self._row_total:
            return
        top = self.scroll_offset.y
        bottom = min(self._row_total, top + self.scrollable_content_region.height) - 1
        if self.cursor is None or not top <= self.cursor <= bottom:
            row = bottom
        else:
            row = max(0, self.cursor - 1)
        self._select(row)

    def action_cursor_down(self) -> None:
        """Select the event below the selected one; below the newest, let go and follow."""
        if self.cursor is None:
            return
        if self.cursor + 1 >= self._row_total:
            self.action_clear_cursor()
            self.follow = True
            return
        self._select(self.cursor + 1)

    def action_clear_cursor(self) -> None:
        """Nothing selected (Escape)."""
        self.cursor = None

    def _select(self, row: int) -> None:
        self.follow = False
        self.cursor = row
        if row < self.scroll_offset.y:
            self.scroll_to(y=row, animate=False, force=True)
        elif row >= self.scroll_offset.y + self.scrollable_content_region.height:
            self.scroll_to(y=row - self.scrollable_content_region.height + 1, animate=False,
                           force=True)

    def watch_cursor(self, old: int | None, new: int | None) -> None:
        self._line_cache.clear()  # the selected row is drawn in its own colour
        self._update_subtitle()
        self.refresh()

    def action_scroll_end(self) -> None:
        """Jump to the newest event and follow new ones (``end``); lets go of a selection."""
        self.cursor = None
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

    def watch_show_vertical_scrollbar(self, shown: bool) -> None:
        """Put the thumb where the view is when the bar appears.

        Textual moves the thumb only while the bar is shown, so a scroll to the newest row made
        before the first layout (the first events arrive before it) left the thumb at the top
        beside the bottom rows, or not, depending on which came first.
        """
        if shown:
            self.vertical_scrollbar.position = self.scroll_y

    def _sync_follow(self) -> None:
        """Turn follow on when the view is at the bottom without having scrolled there."""
        if (
            not self.follow
            and self.is_mounted
            and self.size
            and self.scroll_offset.y >= self.max_scroll_y
        ):
            self.follow = True

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

    def watch_chain(self, chain: str) -> None:
        self.border_title = f"Timeline · {chain}" if chain else self.BORDER_TITLE
        self.set_class(chain.startswith("CHAIN BROKEN"), "-chain-broken")

    def on_mount(self) -> None:
        """Start on the newest event when following."""
        self.set_class(self.follow, "-following")
        self._update_subtitle()
        if self.follow:
            self.call_after_refresh(self._catch_up)

    # --- internals ------------------------------------------------------------------------------

    def _insert_own(self, event: Event) -> bool:
        """A late event (older than the newest) given to a self-fed timeline: put it in its
        place by id; a duplicate is ignored. Whether it was inserted."""
        index = bisect_left(self._own, event.id, key=_event_id)
        if index < len(self._own) and self._own[index].id == event.id:
            return False
        self._own.insert(index, event)
        self._event_total += 1
        return True

    def _rebuild_own(self) -> None:
        kinds = self._kinds
        rows = self._own if kinds is None else [e for e in self._own if e.kind in kinds]
        self._held = dict(enumerate(rows))
        self._row_total = len(rows)

    def _trim(self) -> None:
        """Fed by the app, hold at most :attr:`MAX_HELD` rows: drop those farthest from the
        view (they are read again if the view comes back to them)."""
        if not self._fed or len(self._held) <= self.MAX_HELD:
            return
        centre = self.scroll_offset.y + self.size.height // 2
        keep = sorted(self._held, key=lambda row: abs(row - centre))[: self.MAX_HELD // 2]
        self._held = {row: self._held[row] for row in sorted(keep)}

    def _after_rows_changed(self, added: int) -> None:
        self._sync_follow()  # at the bottom (e.g. all rows fit) means following
        self._set_virtual_rows()
        if self.follow:
            self._scroll_to_newest()
        else:
            self._new_count += added
            self._update_subtitle()
        self.refresh()

    def _set_virtual_rows(self) -> None:
        """The scrollable height is the row count. The box's own size does not depend on it,
        so once the timeline is laid out a new count is not a layout of the whole screen (a
        replay's jump, a new event): the scrollbar and the scroll position are brought up to
        date here, as Textual does for a scroll view after a layout (``_scroll_update``; if the
        bar appears or goes, Textual lays the screen out by itself)."""
        size = Size(0, self._row_total)
        if size == self.virtual_size:
            return
        if self.is_mounted and self.size:
            self.set_reactive(Timeline.virtual_size, size)
            self._scroll_update(size)
        else:
            self.virtual_size = size

    def _update_subtitle(self) -> None:
        parts: list[str] = []
        selected = self.cursor_event
        if selected is not None:
            parts.append(f"#{selected.id:,} selected (h highlights · Esc)")
        if self._filter != "all":
            parts.append(f"{self._filter} {self._row_total:,}/{self._event_total:,}")
        if self._new_count and not self.follow:
            parts.append(f"{self._new_count:,} new ↓ (End)")
        self.border_subtitle = " · ".join(parts) if parts else None

    def notify_style_update(self) -> None:
        """Styles changed (theme, focus, CSS): drop the cached styles and strips."""
        super().notify_style_update()
        self._styles = None
        self._style_generation += 1
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
        if not 0 <= index < self._row_total:
            return Strip.blank(width, self.rich_style)
        event = self._held.get(index)
        if event is None:
            self._want(index // self.PAGE)
            return self._placeholder(width)
        selected = index == self.cursor
        key = (event.id, width, self._style_generation, selected)
        strip = self._line_cache.get(key)
        if strip is None:
            strip = self._render_event(event, width)
            if selected:
                # After the row's own styles, so its background wins over theirs.
                cursor = self._line_styles()["timeline--cursor"]
                mark = (Style(bgcolor=cursor.bgcolor) if cursor.bgcolor is not None
                        else Style(reverse=True))
                strip = Strip(Segment.apply_style(list(strip), post_style=mark),
                              strip.cell_length)
            self._line_cache[key] = strip
        return strip

    def _want(self, page: int) -> None:
        if page in self._asked or not self._fed:
            return
        self._asked.add(page)
        # Not posted from here: render_line runs in the screen's context, which would make the
        # screen the message's sender, and Textual stops a message at its sender's level.
        self.call_later(self._ask, self._generation, page)

    def _ask(self, generation: int, page: int) -> None:
        if generation != self._generation or page not in self._asked:
            return  # the filter changed since
        offset = page * self.PAGE
        self.post_message(self.RowsWanted(self, generation, self._kinds, offset,
                                          max(0, min(self.PAGE, self._row_total - offset))))

    def _placeholder(self, width: int) -> Strip:
        style = self._line_styles()["timeline--pending"]
        return Strip([Segment("⋯", style)], 1).adjust_cell_length(width, self._line_styles()[""])

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
