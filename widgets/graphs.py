"""A metric graph: the canary against the baseline over time, with the limit as a line and the
moments that changed things (stage changes, approvals, overrides, the rollback) marked on the
time axis.

Given room, :class:`MetricGraph` draws a textual-plotext plot (imported only when first needed:
it costs ≈ 0.2 s at start-up). In a small box (below :attr:`MetricGraph.PLOT_MIN_WIDTH` ×
:attr:`MetricGraph.PLOT_MIN_HEIGHT`) it shows a sparkline of the canary instead. Both forms keep
one line of figures on top: ``canary 4.1% · base 0.3% · limit 2.0%``. The plot is rebuilt only
when the series (or the size class, or the theme) changed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar, TypeGuard

from textual.app import ComposeResult
from textual.content import Content
from textual.events import Resize
from textual.widget import Widget
from textual.widgets import Sparkline, Static

from widgets.canary import loud
from widgets.guardrails import format_figure
from widgets.text import safe_text

if TYPE_CHECKING:
    from textual_plotext import PlotextPlot

Point = tuple[float, float | None]
"""``(unix_ts, value)``; ``None`` is a gap (no answer at that time)."""
Mark = tuple[float, str, bool]
"""``(unix_ts, label, loud)``: a moment drawn as a vertical line with its label on top."""
#: Rows the marks' labels may use, from the top of the plot down, before they overlap.
MARK_ROWS = 3


def _finite(value: float | None) -> TypeGuard[float]:
    return value is not None and math.isfinite(value)


def _latest(series: Sequence[Point]) -> float | None:
    """The newest sample's value; None when the newest sample has none (the canary carries no
    traffic, the query failed): a figure from before that would pass for a current one."""
    if not series:
        return None
    value = series[-1][1]
    return value if _finite(value) else None


def _segments(series: Sequence[Point]) -> list[tuple[list[float], list[float]]]:
    """Split a series at its gaps, so the plot does not draw a line across missing data."""
    segments: list[tuple[list[float], list[float]]] = []
    xs: list[float] = []
    ys: list[float] = []
    for ts, value in series:
        if _finite(value):
            xs.append(float(ts))
            ys.append(float(value))
        elif xs:
            segments.append((xs, ys))
            xs, ys = [], []
    if xs:
        segments.append((xs, ys))
    return segments


class MetricGraph(Widget):
    """Canary vs baseline with the limit line. Feed it with :meth:`set_series`."""

    PLOT_MIN_WIDTH: ClassVar[int] = 30
    """Narrower than this (outer width), the graph is a sparkline."""
    PLOT_MIN_HEIGHT: ClassVar[int] = 9
    """Lower than this (outer height), the graph is a sparkline."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "metric-graph--canary",
        "metric-graph--baseline",
        "metric-graph--limit",
        "metric-graph--warn",
        "metric-graph--over",
        "metric-graph--muted",
        "metric-graph--mark",
        "metric-graph--mark-loud",
    }

    DEFAULT_CSS = """
    MetricGraph {
        width: 1fr;
        height: 1fr;
        padding: 0 1;
        border: round $accent 40%;
        border-title-color: $accent;
        layout: vertical;
    }
    MetricGraph.-over { border: heavy $error; }
    MetricGraph > .metric-graph--canary { color: $warning; }
    MetricGraph > .metric-graph--baseline { color: $primary-lighten-1; }
    MetricGraph > .metric-graph--limit { color: $error; }
    MetricGraph > .metric-graph--warn { color: $warning-darken-2; }
    /* A canary over its limit is drawn reversed (widgets.canary.loud). */
    MetricGraph > .metric-graph--over { color: $error; text-style: bold; }
    MetricGraph > .metric-graph--muted { color: $text-muted; }
    MetricGraph > .metric-graph--mark { color: $success; }
    MetricGraph > .metric-graph--mark-loud { color: $error; }
    MetricGraph > #figures { height: 1; width: 1fr; }
    MetricGraph > Sparkline { height: 1fr; width: 1fr; }
    MetricGraph > Sparkline > .sparkline--max-color { color: $warning; }
    MetricGraph > Sparkline > .sparkline--min-color { color: $warning 30%; }
    MetricGraph > PlotextPlot { height: 1fr; width: 1fr; }
    MetricGraph.-compact > PlotextPlot { display: none; }
    MetricGraph.-plot > Sparkline { display: none; }
    MetricGraph.-empty > Sparkline { display: none; }
    MetricGraph.-no-canary > Sparkline { display: none; }
    MetricGraph.-empty > PlotextPlot { display: none; }
    """

    def __init__(
        self,
        title: str = "",
        *,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self._title = ""
        self._unit = ""
        self._canary: tuple[Point, ...] = ()
        self._baseline: tuple[Point, ...] = ()
        self._limit: float | None = None
        self._warn: float | None = None
        self._marks: tuple[Mark, ...] = ()
        self._signature: tuple[Any, ...] | None = None
        self._drawn: tuple[Any, ...] | None = None  # the signature the plot was last built from
        self._plot: PlotextPlot | None = None
        self.add_class("-compact", "-empty")
        if title:
            self.border_title = Content(safe_text(title, limit=80))

    # --- attributes down -------------------------------------------------------------------------

    def set_series(
        self,
        title: str,
        unit: str,
        canary: Sequence[Point],
        baseline: Sequence[Point],
        limit: float | None,
        warn: float | None = None,
        marks: Sequence[Mark] = (),
    ) -> None:
        """Show ``canary`` and ``baseline`` (``(unix_ts, value | None)``, oldest first).

        Values are already scaled to ``unit``; ``limit`` (same unit) is drawn as a horizontal
        line, and ``warn``, where the warn band starts, as another below it; each of ``marks``
        (``(unix_ts, label, loud)``) inside the plotted time is a vertical line with its label.
        Calling again with the same data costs a comparison and draws nothing.
        """
        signature = (title, unit, tuple(canary), tuple(baseline), limit, warn, tuple(marks))
        if signature == self._signature:
            return
        self._signature = signature
        self._title = safe_text(title, limit=80)
        self._unit = safe_text(unit, limit=20)
        self._canary = tuple(canary)
        self._baseline = tuple(baseline)
        self._limit = limit if _finite(limit) else None
        self._warn = warn if _finite(warn) else None
        self._marks = tuple((ts, safe_text(label, limit=20), is_loud)
                            for ts, label, is_loud in marks)
        self.border_title = Content(self._title) if self._title else None
        self._update()

    @property
    def is_compact(self) -> bool:
        """True when the widget shows the sparkline form."""
        return self.has_class("-compact")

    @property
    def has_data(self) -> bool:
        """True when either series has at least one value."""
        return any(_finite(v) for _t, v in self._canary) or any(
            _finite(v) for _t, v in self._baseline
        )

    # --- composition -----------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Static(self._figures(), id="figures", markup=False)
        yield Sparkline([], id="spark")

    def on_mount(self) -> None:
        self.app.theme_changed_signal.subscribe(self, lambda _theme: self._theme_changed())

    def on_resize(self, event: Resize) -> None:
        self._update()

    def _theme_changed(self) -> None:
        self._drawn = None  # line colours come from the theme
        self._update()

    def _update(self) -> None:
        """Pick the form for the current size and bring it up to date."""
        if not self.is_mounted:
            return
        width, height = self.outer_size
        compact = width < self.PLOT_MIN_WIDTH or height < self.PLOT_MIN_HEIGHT
        empty = not self.has_data
        canary, limit = _latest(self._canary), self._limit
        self.update_classes({"-compact": compact, "-plot": not compact, "-empty": empty,
                             "-over": canary is not None and limit is not None
                             and canary > limit})  # one restyle, not one a class
        figures = self.query_one_optional("#figures", Static)
        if figures is None:
            return  # taken down (the console is closing) before the reading that came late
        # one line of a fixed size (DEFAULT_CSS): its new text needs no layout of the screen
        figures.update(self._figures(), layout=False)
        if empty:
            return
        if compact:
            spark = self.query_one_optional("#spark", Sparkline)
            if spark is None:
                return
            values = [float(v) for _t, v in self._canary if _finite(v)]
            self.set_class(not values, "-no-canary")  # a flat line would look like data
            if list(spark.data or []) != values:
                spark.data = values
        else:
            self._draw_plot()

    # --- the figures line ------------------------------------------------------------------------

    def _figures(self) -> Content:
        if not self.has_data:
            return Content.styled("no data yet", ".metric-graph--muted")
        canary, baseline, limit = _latest(self._canary), _latest(self._baseline), self._limit
        over = canary is not None and limit is not None and canary > limit
        width = self.size.width

        def figures(canary_word: str, base_word: str, limit_word: str) -> Content:
            figure = format_figure(canary, self._unit)
            parts: list[str | tuple[str, str] | Content] = [
                (canary_word, ".metric-graph--muted"),
                loud(figure, ".metric-graph--over") if over
                else Content.styled(figure, ".metric-graph--canary"),
                (base_word, ".metric-graph--muted"),
                (format_figure(baseline, self._unit), ".metric-graph--baseline"),
            ]
            if limit is not None:
                parts += [(limit_word, ".metric-graph--muted"),
                          (format_figure(limit, self._unit), ".metric-graph--limit")]
            return Content.assemble(*parts)

        for words in (("canary ", " · base ", " · limit "), ("canary ", " base ", " limit "),
                      ("canary ", " base ", " lim ")):
            line = figures(*words)
            if width <= 0 or line.cell_length <= width:
                return line
        return line.truncate(width, ellipsis=True)

    # --- the plot --------------------------------------------------------------------------------

    def _rgb(self, component: str) -> tuple[int, int, int]:
        """A component class's colour as RGB for plotext, blended on the widget's background."""
        _, background = self.background_colors
        return (background + self.get_component_styles(component).color).rgb

    def _draw_plot(self) -> None:
        if self._plot is None:
            from textual_plotext import PlotextPlot  # lazily: ≈ 0.2 s of imports

            self._plot = PlotextPlot()
            self.mount(self._plot)
        drawn = self._signature  # the plot redraws itself for a new size; data is what costs
        if drawn == self._drawn:
            return
        self._drawn = drawn
        plt = self._plot.plt
        plt.clear_data()
        # The time axis spans the samples and the marks (an approval or a stage change just
        # before the first sample, a rollback just after the last, is still shown).
        points = [ts for ts, v in (*self._canary, *self._baseline) if _finite(v)]
        points += [ts for ts, _label, _loud in self._marks]
        start, end = min(points), max(points)
        for series, component in ((self._baseline, "metric-graph--baseline"),
                                  (self._canary, "metric-graph--canary")):
            color = self._rgb(component)
            # No legend: the figures line above names each colour, and the plot's top row is
            # where the marks' labels go.
            for xs, ys in _segments(series):
                plt.plot(xs, ys, color=color, marker="braille")
        values = [v for _t, v in (*self._canary, *self._baseline) if _finite(v)]
        top = max(values)
        if self._limit is not None:
            plt.hline(self._limit, color=self._rgb("metric-graph--limit"))
            top = max(top, self._limit)
        if self._warn is not None:
            plt.hline(self._warn, color=self._rgb("metric-graph--warn"))
            top = max(top, self._warn)
        bottom = min(0.0, min(values))
        ceiling = top * 1.1 if top > 0 else 1.0
        plt.ylim(bottom, ceiling)
        self._draw_marks(plt, start, end, bottom, ceiling)
        if end > start:
            plt.xlim(start, end)
            ticks = [start + (end - start) * i / 3 for i in range(4)]
        else:
            ticks = [start]
        plt.xticks(ticks, [datetime.fromtimestamp(t, UTC).strftime("%H:%M") for t in ticks])
        self._plot.refresh()

    def _draw_marks(self, plt: Any, start: float, end: float, bottom: float,
                    ceiling: float) -> None:
        """Each mark inside the plotted time: a vertical line, its label at the top; a label that
        would run into the one before it goes a row lower (up to :data:`MARK_ROWS`)."""
        shown = list(self._marks)
        if not shown:
            return
        columns = max(1, self.size.width - 8)  # the y axis's labels take a few columns
        per_column = (end - start) / columns if end > start else 1.0
        row_height = (ceiling - bottom) / max(1, self.size.height - 4)
        row_ends: list[float] = [-math.inf] * MARK_ROWS
        background = self.background_colors[1].rgb
        for ts, label, is_loud in shown:
            color = self._rgb("metric-graph--mark-loud" if is_loud else "metric-graph--mark")
            plt.vline(ts, color=color)
            width = (len(label) + 1) * per_column
            # A label that would run off the right edge ends at its line instead.
            right = ts + width > end
            left = ts - width if right else ts
            row = next((i for i, ends in enumerate(row_ends) if left > ends), None)
            if row is None:
                continue  # no room for its label: the line alone says something happened
            row_ends[row] = ts if right else ts + width
            plt.text(label, x=ts, y=ceiling - row * row_height, color=color,
                     background=background, alignment="right" if right else "left")
