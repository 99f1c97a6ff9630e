"""The incident header, driven through a tiny app with an injected clock, checked as rendered."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, Self

import pytest
from rich.segment import Segment
from textual.app import App, ComposeResult
from textual.color import Color

from console.state import IncidentState
from widgets.header import IncidentHeader

T0 = datetime(2026, 11, 22, 22, 0, 0, tzinfo=UTC)

HOSTILE_TITLE = "[bold]x[/] [link=x]y[/link] [/] \x1b[31mred\r\n\t\x00\x7f end"


def incident(**changes: object) -> IncidentState:
    """A P0 security incident declared at T0 (2 h target), commanded by alice."""
    state = IncidentState(
        incident_id=7,
        title="Payments API returns 500s for EU customers after the v2.3.1 deploy",
        priority="P0",
        category="customer-blocking",
        commander="alice",
        declared_ts=T0,
        target_hours=2.0,
    )
    return replace(state, **changes)  # type: ignore[arg-type]


class HeaderApp(App[None]):
    """One header at the top of an otherwise empty screen."""

    def __init__(self, header: IncidentHeader, css: str = "") -> None:
        super().__init__()
        self.header = header
        self.extra_css = css

    def compose(self) -> ComposeResult:
        yield self.header

    def on_mount(self) -> None:
        if self.extra_css:
            self.stylesheet.add_source(self.extra_css, read_from=("test", "extra"))
            self.stylesheet.reparse()
            self.refresh_css()


def line(header: IncidentHeader, y: int = 0) -> str:
    """Line ``y`` of the header, as rendered."""
    return header.render_line(y).text


def segment_with(header: IncidentHeader, needle: str, y: int = 0) -> Segment:
    """The rendered segment that contains ``needle``."""
    for segment in header.render_line(y):
        if needle in segment.text:
            return segment
    raise AssertionError(f"{needle!r} not rendered in {line(header, y)!r}")


def theme_hex(app: App[None], name: str) -> str:
    return Color.parse(app.theme_variables[name]).hex


def fg_hex(segment: Segment) -> str:
    assert segment.style is not None and segment.style.color is not None
    return Color.from_rich_color(segment.style.color).hex


def bg_hex(segment: Segment) -> str:
    assert segment.style is not None and segment.style.bgcolor is not None
    return Color.from_rich_color(segment.style.bgcolor).hex


@pytest.mark.parametrize(
    ("minutes", "band", "colour", "words"),
    [
        (10, "ok", "success", "P0 target 1h 50m left"),  # more than half of 2 h left
        (75, "warning", "warning", "P0 target 45m 00s left"),  # below half
        (108, "critical", "error", "P0 target 12m 00s left"),  # below 15 minutes
        (132, "critical", "error", "target MISSED by 12m 00s"),  # missed
    ],
)
async def test_time_left_colour_follows_the_clock(
    minutes: int, band: str, colour: str, words: str
) -> None:
    header = IncidentHeader(incident(), now=T0 + timedelta(minutes=minutes))
    app = HeaderApp(header)
    async with app.run_test(size=(200, 24)) as pilot:
        await pilot.pause()
        assert words in line(header)
        assert header.urgency == band
        assert header.time_left_component == f"incident-header--{band}"
        assert header.has_class(f"-{band}")
        assert fg_hex(segment_with(header, words)) == theme_hex(app, colour)


async def test_colour_changes_as_now_moves() -> None:
    header = IncidentHeader(incident(), now=T0 + timedelta(minutes=5))
    app = HeaderApp(header)
    async with app.run_test(size=(200, 24)) as pilot:
        await pilot.pause()
        assert fg_hex(segment_with(header, "left")) == theme_hex(app, "success")
        header.now = T0 + timedelta(minutes=90)
        await pilot.pause()
        assert fg_hex(segment_with(header, "left")) == theme_hex(app, "warning")
        assert header.has_class("-warning") and not header.has_class("-ok")
        header.now = T0 + timedelta(hours=3)
        await pilot.pause()
        assert "target MISSED by 1h 00m" in line(header)
        assert fg_hex(segment_with(header, "MISSED")) == theme_hex(app, "error")


class CountingHeader(IncidentHeader):
    """A header that counts its repaints (an idle watcher pays for each one)."""

    repaints = 0

    def refresh(self, *args: Any, **kwargs: Any) -> Self:
        if kwargs.get("repaint", True):
            self.repaints += 1
        return super().refresh(*args, **kwargs)


async def test_a_tick_draws_only_when_the_header_changes() -> None:
    # Under an hour the clocks show seconds: every tick is drawn. An hour or more both ways
    # (elapsed, and left to a 4 h target) they show minutes: a tick inside the same minute
    # changes nothing on screen and draws nothing; the tick that turns the minute draws it.
    header = CountingHeader(incident(target_hours=4.0), now=T0 + timedelta(minutes=20))
    app = HeaderApp(header)
    async with app.run_test(size=(200, 24)) as pilot:
        await pilot.pause()
        assert "elapsed 20m 00s  P0 target 3h 40m left" in line(header)
        before = header.repaints
        header.now = T0 + timedelta(minutes=20, seconds=1)
        await pilot.pause()
        assert header.repaints == before + 1
        assert "elapsed 20m 01s" in line(header)

        header.now = T0 + timedelta(minutes=70, seconds=1)
        await pilot.pause()
        assert "elapsed 1h 10m  P0 target 2h 49m left" in line(header)
        before = header.repaints
        for second in range(2, 60):
            header.now = T0 + timedelta(minutes=70, seconds=second)
            await pilot.pause()
        assert header.repaints == before
        assert "elapsed 1h 10m  P0 target 2h 49m left" in line(header)
        header.now = T0 + timedelta(minutes=71, seconds=1)
        await pilot.pause()
        assert header.repaints == before + 1
        assert "elapsed 1h 11m  P0 target 2h 48m left" in line(header)


async def test_shows_everything_when_wide() -> None:
    header = IncidentHeader(incident(), now=T0 + timedelta(minutes=13))
    app = HeaderApp(header)
    async with app.run_test(size=(200, 24)) as pilot:
        await pilot.pause()
        text = line(header)
        for part in ("COMMANDER", "INC-7", "P0", "customer-blocking",
                     "Payments API returns 500s for EU customers after the v2.3.1 deploy",
                     "elapsed 13m 00s", "P0 target 1h 47m left", "cmdr alice"):
            assert part in text, (part, text)


@pytest.mark.parametrize("mode", ["COMMANDER", "WATCHING"])
async def test_essentials_survive_80_columns(mode: str) -> None:
    state = incident(title="T" * 300, category="customer-blocking", commander="c" * 80)
    header = IncidentHeader(state, mode=mode, now=T0 + timedelta(minutes=30))
    header.heartbeat_age_s = 4
    app = HeaderApp(header)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        text = line(header)
        assert len(text) <= 80
        for part in (mode, "INC-7", "P0", "1h 30m left"):
            assert part in text, (part, text)
        assert header.region.height == 1


async def test_essentials_survive_even_narrower() -> None:
    header = IncidentHeader(incident(), mode="WATCHING", now=T0 + timedelta(minutes=130))
    app = HeaderApp(header)
    async with app.run_test(size=(50, 24)) as pilot:
        await pilot.pause()
        text = line(header)
        for part in ("WATCHING", "INC-7", "P0", "MISSED by 10m 00s"):
            assert part in text, (part, text)


async def test_watching_badge_differs_from_commander_and_shows_heartbeat() -> None:
    watching = IncidentHeader(incident(), mode="WATCHING", now=T0, id="watching")
    watching.heartbeat_age_s = 2.2
    commanding = IncidentHeader(incident(), mode="COMMANDER", now=T0, id="commanding")
    app = HeaderApp(watching)
    async with app.run_test(size=(200, 24)) as pilot:
        await app.mount(commanding)
        await pilot.pause()
        assert "cmdr alice ♥ 2s" in line(watching)
        assert "♥" not in line(commanding)  # the commander does not watch their own pulse
        watch_badge = segment_with(watching, "WATCHING")
        command_badge = segment_with(commanding, "COMMANDER")
        assert watch_badge.text == " WATCHING "
        assert bg_hex(watch_badge) == theme_hex(app, "warning")
        assert bg_hex(command_badge) == theme_hex(app, "primary")
        assert bg_hex(watch_badge) != bg_hex(command_badge)
        assert watching.has_class("-watching") and not commanding.has_class("-watching")


async def test_stale_heartbeat_stands_out() -> None:
    header = IncidentHeader(incident(), mode="WATCHING", now=T0)
    header.heartbeat_age_s = 95
    app = HeaderApp(header)
    async with app.run_test(size=(200, 24)) as pilot:
        await pilot.pause()
        beat = segment_with(header, "♥ 1m 35s")
        assert fg_hex(beat) == theme_hex(app, "error")


async def test_closed_badge_and_frozen_clock() -> None:
    state = incident(closed=True, closed_ts=T0 + timedelta(minutes=90))
    header = IncidentHeader(state, now=T0 + timedelta(hours=5))
    app = HeaderApp(header)
    async with app.run_test(size=(200, 24)) as pilot:
        await pilot.pause()
        text = line(header)
        assert " CLOSED " in text
        assert "elapsed 1h 30m" in text  # the clock stopped at closure
        assert "closed 30m 00s before target" in text
        assert header.urgency == "ok"
        assert header.has_class("-closed")


async def test_hostile_title_and_commander_are_literal() -> None:
    state = incident(title=HOSTILE_TITLE, commander="[b]m[/b]\x1b]8;;x\x07")
    header = IncidentHeader(state, now=T0)
    app = HeaderApp(header)
    async with app.run_test(size=(200, 24)) as pilot:
        await pilot.pause()
        text = line(header)
        assert "[bold]x[/] [link=x]y[/link] [/] ␛[31mred␍␊␉␀␡ end" in text
        assert "cmdr [b]m[/b]␛]8;;x␇" in text
        assert not any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in text)
        for segment in header.render_line(0):
            assert segment.style is None or (segment.style.link is None
                                             and not segment.style.italic)
        assert header.region.height == 1


async def test_two_lines_give_the_title_its_own_line() -> None:
    header = IncidentHeader(incident(), now=T0, id="two")
    app = HeaderApp(header, css="#two { height: 2; }")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        first, second = line(header, 0), line(header, 1)
        for part in ("COMMANDER", "INC-7", "P0", "2h 00m left", "cmdr alice"):
            assert part in first
        assert second.startswith("customer-blocking  Payments API returns 500s for EU")


async def test_no_incident_yet() -> None:
    header = IncidentHeader(None, mode="WATCHING")
    app = HeaderApp(header)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert "WATCHING" in line(header)
        assert "no incident open" in line(header)
        header.state = incident()
        header.now = T0
        await pilot.pause()
        assert "INC-7" in line(header)


async def test_naive_now_and_lowercase_mode_are_accepted() -> None:
    header = IncidentHeader(incident(), mode="watching",
                            now=(T0 + timedelta(minutes=30)).replace(tzinfo=None))
    app = HeaderApp(header)
    async with app.run_test(size=(120, 24)) as pilot:
        await pilot.pause()
        assert " WATCHING " in line(header)
        assert "P0 target 1h 30m left" in line(header)


async def test_sim_and_the_environment_are_always_on_the_header() -> None:
    """Where you are, always on screen: a SIM badge while any adapter is simulated, and the
    environment's name in its colour (production red) — kept even at 80 columns."""
    header = IncidentHeader(incident(title="T" * 300, commander="c" * 40),
                            now=T0 + timedelta(minutes=30))
    header.simulated = ("traffic", "deploy")
    header.environment = ("production", "red")
    app = HeaderApp(header)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        text = line(header)
        assert "PRODUCTION" in text and "SIM" in text and "1h 30m left" in text, text
        from textual.color import Color as _Color

        badge = segment_with(header, "PRODUCTION")
        assert badge.style is not None and badge.style.bgcolor is not None
        assert _Color.from_rich_color(badge.style.bgcolor).hex == theme_hex(app, "error")
    everything = IncidentHeader(incident(), now=T0)
    everything.simulated = ("metrics", "traffic", "deploy")
    app = HeaderApp(everything)
    async with app.run_test(size=(120, 24)) as pilot:
        await pilot.pause()
        assert " SIM " in line(everything)
