"""Benchmark of the timeline widget, headless: does it stay fast at 100,000 events?

Run ``python tests/benchmarks/bench_timeline.py`` (``make bench``). Everything is measured in the
same run and compared with a baseline from that run, so the ratios mean something on any machine:

(a) baseline: render one screen of a 1,000-event timeline (``render_line`` for every visible row,
    cold cache);
(b) the same with 100,000 events;
(c) append 1,000 events to a 100,000-event timeline, then render the screen it shows;
(d) change the filter at 100,000 events (one pass over them), then render the screen;
(e) scroll a page up at 100,000 events (rows not seen before), then render the screen.

Medians over several repetitions; no pass or fail. Finishes in well under 30 s.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from textual.app import App, ComposeResult

from console.model import Event, Kind
from widgets.timeline import Timeline

SIZE = (120, 40)
T0 = datetime(2026, 11, 22, 22, 0, 0, tzinfo=UTC)


def make_events(first: int, count: int) -> list[Event]:
    """A realistic mix: notes, guardrail changes, weight changes and the odd loud event."""
    events = []
    for event_id in range(first, first + count):
        ts = T0 + timedelta(milliseconds=250 * event_id)
        match event_id % 10:
            case 0:
                events.append(Event(event_id, 1, ts, Kind.GUARDRAIL_CHANGED, "warroom",
                                    {"name": "error-rate", "status": "healthy",
                                     "detail": f"canary 0.{event_id % 97:02d}% vs baseline 0.4%"}))
            case 3:
                events.append(Event(event_id, 1, ts, Kind.WEIGHT_SET, "alice",
                                    {"percent": event_id % 100, "action": "advance"}))
            case 7 if event_id % 1000 == 7:
                events.append(Event(event_id, 1, ts, Kind.ROLLBACK_NOT_VERIFIED, "warroom",
                                    {"reason": "error rate still above the limit"}))
            case _:
                events.append(Event(event_id, 1, ts, Kind.NOTE, "alice",
                                    {"text": f"observation {event_id}: p99 latency back to "
                                             "normal on eu-west, watching the queue depth"}))
    return events


class BenchApp(App[None]):
    """A screen holding one timeline."""

    def compose(self) -> ComposeResult:
        yield Timeline()


def render_screen(timeline: Timeline, *, cold: bool) -> None:
    """Render every visible row, as the compositor does for a full repaint."""
    if cold:
        timeline._line_cache.clear()  # the benchmark's business: measure rendering, not lookups
    for y in range(timeline.scrollable_content_region.height):
        timeline.render_line(y)


def median_ms(action: Callable[[], object], repeat: int,
              setup: Callable[[], object] | None = None) -> float:
    """Median wall time of ``action`` in milliseconds (``setup`` runs untimed before each)."""
    times = []
    for _ in range(repeat):
        if setup is not None:
            setup()
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


async def measure() -> list[tuple[str, float]]:
    """Run the five measurements in one headless app; return (label, median ms) rows."""
    results: list[tuple[str, float]] = []
    small = make_events(1, 1_000)
    large = make_events(1, 100_000)
    extra = make_events(100_001, 60_000)  # appended 1,000 at a time

    app = BenchApp()
    async with app.run_test(size=SIZE) as pilot:
        timeline = app.query_one(Timeline)

        timeline.append_events(small)
        await pilot.pause()
        results.append(("(a) render a screen, 1k events, cold cache",
                        median_ms(lambda: render_screen(timeline, cold=True), 200)))

        timeline.clear_events()
        timeline.append_events(large)
        await pilot.pause()
        results.append(("(b) render a screen, 100k events, cold cache",
                        median_ms(lambda: render_screen(timeline, cold=True), 200)))

        batches = iter(extra[i:i + 1_000] for i in range(0, len(extra), 1_000))

        def append_batch() -> None:
            timeline.append_events(next(batches))
            render_screen(timeline, cold=False)

        results.append(("(c) append 1k to 100k events + render", median_ms(append_batch, 40)))
        await pilot.pause()

        names = iter(["notes", "guardrails"] * 20)

        def change_filter() -> None:
            timeline.set_filter(next(names))
            render_screen(timeline, cold=False)

        results.append(("(d) filter change at 100k events + render",
                        median_ms(change_filter, 20)))
        timeline.set_filter("all")
        await pilot.pause()

        page = timeline.scrollable_content_region.height

        def page_up() -> None:
            timeline.scroll_to(y=max(0, timeline.scroll_offset.y - page), animate=False)
            render_screen(timeline, cold=False)

        timeline.follow = False
        results.append(("(e) page up at 100k events + render", median_ms(page_up, 100)))
    return results


def main() -> None:
    """Print the table: median time and ratio to the baseline (a), from this run."""
    started = time.perf_counter()
    results = asyncio.run(measure())
    baseline = results[0][1]
    width = max(len(label) for label, _ in results)
    print(f"Timeline benchmark (headless, {SIZE[0]}x{SIZE[1]}, medians)")
    print(f"{'measurement':<{width}}  {'median ms':>10}  {'× (a)':>8}")
    print(f"{'-' * width}  {'-' * 10}  {'-' * 8}")
    for label, ms in results:
        print(f"{label:<{width}}  {ms:>10.3f}  {ms / baseline:>8.2f}")
    print(f"total run time {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
