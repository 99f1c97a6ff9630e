"""The timeline widget, driven through a tiny app and checked on what it renders.

Rows are read back with ``Timeline.render_line`` (what the compositor asks for) and the border with
``Timeline.render_lines`` (border, subtitle and all), so the assertions are about the screen.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from rich.style import Style
from textual import on
from textual.app import App, ComposeResult
from textual.color import Color
from textual.geometry import Region

from console.model import LOUD_KINDS, Event, Kind
from widgets.text import printable, truncate_cells
from widgets.timeline import FILTERS, Timeline

T0 = datetime(2026, 11, 22, 22, 4, 5, tzinfo=UTC)

HOSTILE = [
    "[/]",
    "[bold]",
    "[link=x]y[/link]",
    "\x1b[31mred",
    "\r\n\t\x00\x7f",
    "z" * 5000,
]


def note(event_id: int, text: str | None = None, actor: str = "alice") -> Event:
    """A note event; its text defaults to ``note <id>``."""
    return Event(event_id, 1, T0 + timedelta(seconds=event_id), Kind.NOTE, actor,
                 {"text": f"note {event_id}" if text is None else text})


def event(event_id: int, kind: str, actor: str = "warroom", /, **payload: Any) -> Event:
    """An event of any kind; keyword arguments are its payload."""
    return Event(event_id, 1, T0 + timedelta(seconds=event_id), kind, actor, payload)


def notes(first: int, last: int) -> list[Event]:
    """Notes ``first`` … ``last`` inclusive."""
    return [note(i) for i in range(first, last + 1)]


class TimelineApp(App[None]):
    """The timeline alone on a screen, recording the FilterChanged messages it posts."""

    def __init__(self, events: Sequence[Event] = ()) -> None:
        super().__init__()
        self.initial = list(events)
        self.filter_messages: list[Timeline.FilterChanged] = []

    def compose(self) -> ComposeResult:
        yield Timeline(self.initial, id="timeline")

    @on(Timeline.FilterChanged)
    def record(self, message: Timeline.FilterChanged) -> None:
        self.filter_messages.append(message)


def visible(timeline: Timeline) -> list[str]:
    """The text of every row on screen, top to bottom, as rendered."""
    height = timeline.scrollable_content_region.height
    return [timeline.render_line(y).text for y in range(height)]


def visible_rows(timeline: Timeline) -> list[str]:
    """The non-blank rows on screen."""
    return [row for row in visible(timeline) if row.strip()]


def border_bottom(timeline: Timeline) -> str:
    """The bottom border line as drawn, with its subtitle."""
    width, height = timeline.outer_size
    return timeline.render_lines(Region(0, 0, width, height))[-1].text


def note_number(row: str) -> int:
    """The ``<n>`` of a rendered ``note <n>`` row."""
    match = re.search(r"Note: note (\d+)", row)
    assert match, row
    return int(match.group(1))


def hex_of(color: Any) -> str:
    assert color is not None
    return Color.from_rich_color(color).hex


async def test_rows_are_oldest_first_and_newest_last() -> None:
    app = TimelineApp(notes(1, 5))
    async with app.run_test(size=(80, 24)) as pilot:
        timeline = app.query_one(Timeline)
        timeline.append_events(notes(6, 12))
        await pilot.pause()
        rows = visible_rows(timeline)
        assert [note_number(row) for row in rows] == list(range(1, 13))
        assert rows[0].startswith("22:04:06 alice       Note: note 1")


async def test_line_shows_utc_time_actor_and_sentence() -> None:
    local = datetime(2026, 11, 22, 23, 30, 0, tzinfo=UTC).astimezone(
        __import__("datetime").timezone(timedelta(hours=5)))
    app = TimelineApp([Event(1, 1, local, Kind.NOTE, "a-very-long-actor-name", {"text": "hi"})])
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        row = visible(app.query_one(Timeline))[0]
        assert row.startswith("23:30:00 a-very-lo…  Note: hi")


async def test_follows_new_events_at_the_bottom() -> None:
    app = TimelineApp(notes(1, 50))
    async with app.run_test(size=(80, 24)) as pilot:
        timeline = app.query_one(Timeline)
        await pilot.pause()
        assert timeline.follow
        assert note_number(visible_rows(timeline)[-1]) == 50
        timeline.append_events(notes(51, 60))
        await pilot.pause()
        rows = visible_rows(timeline)
        assert note_number(rows[-1]) == 60
        assert len(rows) == timeline.scrollable_content_region.height
        assert "new" not in border_bottom(timeline)


async def test_scrollbar_thumb_is_at_the_newest_row_when_the_bar_appears() -> None:
    # The console's first read lands on an empty timeline that has had its layout (no bar yet):
    # the jump to the newest row happens while the bar is hidden, and the bar appears after.
    app = TimelineApp()
    async with app.run_test(size=(80, 24)) as pilot:
        timeline = app.query_one(Timeline)
        await pilot.pause()
        assert not timeline.show_vertical_scrollbar
        timeline.append_events(notes(1, 100))
        await pilot.pause()
        assert note_number(visible_rows(timeline)[-1]) == 100
        assert timeline.show_vertical_scrollbar
        assert timeline.scroll_y == timeline.max_scroll_y > 0
        # The thumb is drawn from the bar's own position: it must agree with the view.
        assert timeline.vertical_scrollbar.position == timeline.scroll_y


async def test_stays_put_when_scrolled_up_and_hints_new_events() -> None:
    app = TimelineApp(notes(1, 100))
    async with app.run_test(size=(80, 24)) as pilot:
        timeline = app.query_one(Timeline)
        timeline.focus()
        await pilot.pause()
        await pilot.press("pageup")
        await pilot.pause()
        assert not timeline.follow
        before = visible(timeline)
        assert note_number(before[-1]) < 100

        timeline.append_events(notes(101, 107))
        await pilot.pause()
        assert visible(timeline) == before  # the reader's place is kept
        assert "7 new ↓" in border_bottom(timeline)
        assert timeline.new_count == 7

        await pilot.press("end")
        await pilot.pause()
        assert timeline.follow
        assert note_number(visible_rows(timeline)[-1]) == 107
        assert "new" not in border_bottom(timeline)


async def test_scrolling_back_to_the_bottom_resumes_following() -> None:
    app = TimelineApp(notes(1, 60))
    async with app.run_test(size=(80, 24)) as pilot:
        timeline = app.query_one(Timeline)
        timeline.focus()
        await pilot.press("home")
        await pilot.pause()
        assert not timeline.follow
        assert note_number(visible_rows(timeline)[0]) == 1
        timeline.append_events(notes(61, 62))
        await pilot.pause()
        assert "2 new ↓" in border_bottom(timeline)
        for _ in range(5):
            await pilot.press("pagedown")
        await pilot.pause()
        assert timeline.follow
        assert "new" not in border_bottom(timeline)
        timeline.append_events(notes(63, 63))
        await pilot.pause()
        assert note_number(visible_rows(timeline)[-1]) == 63


async def test_setting_follow_jumps_to_the_newest() -> None:
    app = TimelineApp(notes(1, 80))
    async with app.run_test(size=(80, 24)) as pilot:
        timeline = app.query_one(Timeline)
        timeline.follow = False
        timeline.scroll_to(y=0, animate=False)
        await pilot.pause()
        assert note_number(visible_rows(timeline)[0]) == 1
        timeline.follow = True
        await pilot.pause()
        assert note_number(visible_rows(timeline)[-1]) == 80


async def test_duplicates_by_id_are_ignored() -> None:
    app = TimelineApp(notes(1, 5))
    async with app.run_test(size=(80, 24)) as pilot:
        timeline = app.query_one(Timeline)
        timeline.append_events(notes(3, 8))  # 3..5 again, then 6..8
        timeline.append_events([note(2, "a replay of 2")])
        await pilot.pause()
        assert [note_number(row) for row in visible_rows(timeline)] == list(range(1, 9))
        assert timeline.event_count == 8


async def test_clear_events_empties_the_view() -> None:
    app = TimelineApp(notes(1, 40))
    async with app.run_test(size=(80, 24)) as pilot:
        timeline = app.query_one(Timeline)
        timeline.clear_events()
        await pilot.pause()
        assert visible_rows(timeline) == []
        timeline.append_events(notes(41, 42))
        await pilot.pause()
        assert [note_number(row) for row in visible_rows(timeline)] == [41, 42]


MIXED = [
    event(1, Kind.DECLARED, "alice", priority="P0", category="security", service="pay",
          from_version="v1", to_version="v2", bypasses=[], commander="alice"),
    event(2, Kind.APPROVED, "priya", role="security-lead", user="priya", kind="direct",
          version="v2"),
    note(3, "looking at the dashboards"),
    event(4, Kind.GUARDRAIL_CHANGED, name="errors", status="breach", detail="5% > 2%"),
    event(5, Kind.GUARDRAIL_ACTION, name="errors", action="rollback", breaches=3),
    event(6, Kind.ROLLBACK_REQUESTED, target="v1", weight=10, automatic=True, reason="breach"),
    event(7, Kind.ROLLBACK_NOT_VERIFIED, target="v1", reason="error rate still high"),
    event(8, Kind.PREFLIGHT_PASSED, target="v1"),
    event(9, Kind.WEIGHT_REQUESTED, "alice", from_percent=1, to_percent=10, action="advance",
          overrides=[{"block": "hold", "reason": "customer down"}]),
    event(10, Kind.HANDOVER, "bob", previous_user="alice", user="bob", reason="shift change"),
    note(11, "handing over"),
    event(12, Kind.ROLLBACK_VERIFIED, target="v1"),
]


@pytest.mark.parametrize(
    ("name", "expected_ids"),
    [
        ("all", list(range(1, 13))),
        ("actions", [2, 6, 7, 8, 9, 10, 12]),
        ("guardrails", [4, 5]),
        ("notes", [3, 11]),
        ("loud", [5, 7, 10]),
    ],
)
async def test_filters_show_only_their_events(name: str, expected_ids: list[int]) -> None:
    app = TimelineApp(MIXED)
    async with app.run_test(size=(100, 30)) as pilot:
        timeline = app.query_one(Timeline)
        timeline.set_filter(name)
        await pilot.pause()
        rows = visible_rows(timeline)
        assert len(rows) == len(expected_ids)
        by_id = {e.id: e for e in MIXED}
        for row, event_id in zip(rows, expected_ids, strict=True):
            assert row.startswith(by_id[event_id].ts.strftime("%H:%M:%S")), (row, event_id)
        if name == "loud":
            assert all(by_id[i].kind in LOUD_KINDS for i in expected_ids)
        if name != "all":
            assert f"{name} {len(expected_ids)}/12" in border_bottom(timeline)


async def test_new_events_obey_the_filter() -> None:
    app = TimelineApp(MIXED)
    async with app.run_test(size=(100, 30)) as pilot:
        timeline = app.query_one(Timeline)
        timeline.set_filter("notes")
        timeline.append_events([event(13, Kind.WEIGHT_SET, percent=10), note(14, "late note")])
        await pilot.pause()
        rows = visible_rows(timeline)
        assert [row.split("Note: ", 1)[1].strip() for row in rows] == [
            "looking at the dashboards", "handing over", "late note"]


async def test_f_cycles_filters_and_posts_filter_changed() -> None:
    app = TimelineApp(MIXED)
    async with app.run_test(size=(100, 30)) as pilot:
        timeline = app.query_one(Timeline)
        timeline.focus()
        for _ in FILTERS:
            await pilot.press("f")
        await pilot.pause()
        names = [message.filter for message in app.filter_messages]
        assert names == ["actions", "guardrails", "notes", "loud", "all"]
        assert app.filter_messages[0].shown == 7
        assert app.filter_messages[0].total == 12
        assert app.filter_messages[0].control is timeline
        assert timeline.filter == "all"
        assert len(visible_rows(timeline)) == 12
        with pytest.raises(ValueError):
            timeline.set_filter("everything")


async def test_bindings_have_descriptions() -> None:
    keys = {binding.key: binding.description for binding in Timeline.BINDINGS}  # type: ignore[union-attr]
    assert keys["home"] and keys["end"] and keys["f"]


async def test_hostile_text_renders_literally() -> None:
    events = [note(i + 1, text) for i, text in enumerate(HOSTILE)]
    events += [note(len(HOSTILE) + 1 + i, "ok", actor=text) for i, text in enumerate(HOSTILE)]
    events.append(note(100, "plain afterwards"))
    app = TimelineApp(events)
    async with app.run_test(size=(80, 24)) as pilot:
        timeline = app.query_one(Timeline)
        await pilot.pause()
        rows = visible(timeline)
        for y, row in enumerate(rows):
            # Nothing that a terminal would interpret gets through.
            assert not any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in row), repr(row)
            strip = timeline.render_line(y)
            assert strip.cell_length == timeline.scrollable_content_region.width
            for segment in strip:
                assert segment.style is None or segment.style.link is None
        assert rows[0].rstrip().endswith("Note: [/]")
        assert rows[1].rstrip().endswith("Note: [bold]")
        assert rows[2].rstrip().endswith("Note: [link=x]y[/link]")
        assert rows[3].rstrip().endswith("Note: ␛[31mred")
        assert rows[4].rstrip().endswith("Note: ␍␊␉␀␡")
        assert rows[5].endswith("zzz…")  # 5,000 characters, cut to the width with an ellipsis
        assert rows[6][9:19] == "[/]       "
        assert rows[7][9:19] == "[bold]    "
        assert rows[8][9:19] == "[link=x]y…"
        assert rows[9][9:19] == "␛[31mred  "
        assert rows[10][9:19] == "␍␊␉␀␡     "
        assert rows[11][9:19] == "zzzzzzzzz…"
        # No style bleeds from hostile rows into the next one.
        plain = timeline.render_line(len(events) - 1)
        assert plain.text.startswith("22:05:45 alice       Note: plain afterwards")
        reference = timeline.render_line(6)  # a note with a hostile actor: same sentence style
        assert [s.style for s in plain][-2] == [s.style for s in reference][-2]
        assert all(not (s.style and s.style.bold) for s in plain)


async def test_wide_terminal_shows_more_of_a_long_sentence() -> None:
    long_text = "word " * 100
    narrow_app = TimelineApp([note(1, long_text)])
    async with narrow_app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        narrow = visible(narrow_app.query_one(Timeline))[0].rstrip()
    wide_app = TimelineApp([note(1, long_text)])
    async with wide_app.run_test(size=(200, 24)) as pilot:
        await pilot.pause()
        wide = visible(wide_app.query_one(Timeline))[0].rstrip()
    assert narrow.endswith("…") and wide.endswith("…")
    assert len(wide) > len(narrow) + 100


async def test_loud_and_rollback_lines_are_styled_from_the_theme() -> None:
    app = TimelineApp(MIXED)
    async with app.run_test(size=(100, 30)) as pilot:
        timeline = app.query_one(Timeline)
        await pilot.pause()
        theme = app.theme_variables

        def sentence_style(event_id: int) -> Style:
            strip = timeline.render_line(event_id - 1)
            style = list(strip)[4].style  # time, space, actor, gap, sentence
            assert style is not None
            return style

        not_verified = sentence_style(7)
        assert hex_of(not_verified.bgcolor) == Color.parse(theme["error"]).hex
        assert not_verified.bold
        # The alarm colour spans the whole row, time and padding included.
        assert {hex_of(s.style.bgcolor) for s in timeline.render_line(6) if s.style} == {
            Color.parse(theme["error"]).hex}
        assert hex_of(sentence_style(12).color) == Color.parse(theme["success"]).hex
        assert hex_of(sentence_style(10).color) == Color.parse(theme["error"]).hex  # loud
        assert hex_of(sentence_style(5).color) == Color.parse(theme["error"]).hex  # loud
        note_style = sentence_style(3)
        assert note_style.bgcolor == timeline.rich_style.bgcolor


async def test_malformed_payload_still_renders_a_row() -> None:
    bad = event(1, Kind.DECLARED, bypasses=["not-a-dict"], priority="P0")
    app = TimelineApp([bad, note(2)])
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        rows = visible_rows(app.query_one(Timeline))
        assert "incident_declared" in rows[0]
        assert note_number(rows[1]) == 2


async def test_narrow_view_drops_the_actor_column() -> None:
    app = TimelineApp([note(1, "hello there")])
    async with app.run_test(size=(30, 10)) as pilot:
        await pilot.pause()
        assert visible(app.query_one(Timeline))[0].startswith("22:04:06  Note: hello there")


async def test_hundred_thousand_events_load_and_the_last_page_renders() -> None:
    events = [note(i) for i in range(1, 100_001)]
    app = TimelineApp()
    async with app.run_test(size=(80, 24)) as pilot:
        timeline = app.query_one(Timeline)
        timeline.append_events(events)
        await pilot.pause()
        rows = visible_rows(timeline)
        height = timeline.scrollable_content_region.height
        assert [note_number(row) for row in rows] == list(range(100_001 - height, 100_001))
        timeline.append_events(notes(100_001, 101_000))
        await pilot.pause()
        assert note_number(visible_rows(timeline)[-1]) == 101_000
        timeline.set_filter("loud")
        await pilot.pause()
        assert visible_rows(timeline) == []
        timeline.set_filter("all")
        timeline.focus()
        await pilot.press("home")
        await pilot.pause()
        assert note_number(visible_rows(timeline)[0]) == 1


def test_printable_and_truncate_cells() -> None:
    assert printable("a\x1b[0m\x00\x7f\x9b\u202eb") == "a␛[0m␀␡��b"
    assert truncate_cells("abcdef", 4) == "abc…"
    assert truncate_cells("abc", 4) == "abc"
    assert truncate_cells("日本語テキスト", 5) == "日本…"
    assert truncate_cells("x" * 5000, 10) == "x" * 9 + "…"
    assert truncate_cells("anything", 0) == ""


def selected_rows(timeline: Timeline) -> list[str]:
    """The rows on screen drawn with the selection's background."""
    cursor = timeline.get_component_rich_style("timeline--cursor").bgcolor
    height = timeline.scrollable_content_region.height
    rows = []
    for y in range(height):
        strip = timeline.render_line(y)
        if any(segment.style is not None and segment.style.bgcolor == cursor
               for segment in strip):
            rows.append(strip.text)
    return rows


async def test_up_and_down_select_an_event_and_escape_lets_go() -> None:
    app = TimelineApp(notes(1, 60))
    async with app.run_test(size=(80, 24)) as pilot:
        timeline = app.query_one(Timeline)
        timeline.focus()
        await pilot.pause()
        assert timeline.cursor is None and timeline.cursor_event is None
        await pilot.press("up")  # the bottom row in view: the newest
        await pilot.pause()
        assert timeline.cursor_event is not None and timeline.cursor_event.id == 60
        await pilot.press("up", "up")
        await pilot.pause()
        assert timeline.cursor_event is not None and timeline.cursor_event.id == 58
        assert [note_number(row) for row in selected_rows(timeline)] == [58]
        assert "#58 selected" in border_bottom(timeline)
        assert not timeline.follow  # a new event does not move the selection out of view
        timeline.append_events(notes(61, 61))
        await pilot.pause()
        assert timeline.cursor_event is not None and timeline.cursor_event.id == 58
        assert [note_number(row) for row in selected_rows(timeline)] == [58]
        await pilot.press("escape")
        await pilot.pause()
        assert timeline.cursor is None and selected_rows(timeline) == []
        assert "selected" not in border_bottom(timeline)


async def test_the_selection_scrolls_into_view_and_down_past_the_newest_follows() -> None:
    app = TimelineApp(notes(1, 60))
    async with app.run_test(size=(80, 24)) as pilot:
        timeline = app.query_one(Timeline)
        timeline.focus()
        await pilot.pause()
        height = timeline.scrollable_content_region.height
        for _ in range(height + 5):
            await pilot.press("up")
        await pilot.pause()
        selected = timeline.cursor_event
        assert selected is not None and selected.id == 60 - (height + 4)
        assert [note_number(row) for row in selected_rows(timeline)] == [selected.id]
        await pilot.press("home")  # scrolls; the selection stays where it was
        await pilot.pause()
        await pilot.press("up")  # out of view: the selection comes back to the view's bottom
        await pilot.pause()
        assert timeline.cursor == height - 1
        await pilot.press("end")
        await pilot.pause()
        assert timeline.cursor is None and timeline.follow
        await pilot.press("up", "down")  # the newest, then below it: let go, follow
        await pilot.pause()
        assert timeline.cursor is None and timeline.follow


async def test_a_filter_change_lets_go_of_the_selection() -> None:
    app = TimelineApp(notes(1, 10))
    async with app.run_test(size=(80, 24)) as pilot:
        timeline = app.query_one(Timeline)
        timeline.focus()
        await pilot.press("up")
        await pilot.pause()
        assert timeline.cursor is not None
        await pilot.press("f")
        await pilot.pause()
        assert timeline.cursor is None


async def test_a_reset_to_other_rows_is_no_layout_and_the_same_rows_draw_nothing() -> None:
    """The app's reset (a replay's jump): a new row count updates the scrollbar in place, not
    by a layout of the screen; the same rows again (a replay's clock between two events) keep
    what is drawn."""
    app = TimelineApp()
    async with app.run_test(size=(80, 24)) as pilot:
        timeline = app.query_one(Timeline)
        timeline.reset(500, 500, notes(301, 500), up_to_id=500)
        await pilot.pause()
        assert timeline.show_vertical_scrollbar
        assert note_number(visible_rows(timeline)[-1]) == 500
        layouts = timeline._layout_updates
        timeline.reset(900, 900, notes(701, 900), up_to_id=900)
        assert timeline._layout_updates == layouts  # no layout asked for
        assert timeline.virtual_size.height == 900
        assert timeline.vertical_scrollbar.window_virtual_size == 900
        assert timeline.scroll_y == timeline.max_scroll_y  # still on the newest row
        await pilot.pause()
        assert note_number(visible_rows(timeline)[-1]) == 900
        strip = timeline.render_line(0)
        timeline.reset(900, 900, notes(701, 900), up_to_id=900)
        assert timeline.render_line(0) is strip  # the cached line: nothing was rebuilt
        timeline.reset(900, 900, [*notes(702, 900), note(950)], up_to_id=950)
        await pilot.pause()
        assert note_number(visible_rows(timeline)[-1]) == 950
