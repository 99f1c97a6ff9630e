"""The guardrails pane (one line per guardrail) and the detail view behind it.

:class:`GuardrailsPane` shows each guardrail's status in words — healthy / BREACH / insufficient
evidence / can't evaluate / not yet evaluated — with the figures when healthy (canary vs baseline
vs limit, in the guardrail's unit) and the evaluator's own detail when not, plus the failure
budget (``breaches 1/3``) and what a sustained breach does.

:class:`GuardrailDetail` is what an operator opens when a guardrail says "can't evaluate": the
resolved queries, the raw values and the last error, exactly as the evaluator saw them. The app
shows it in a modal; it renders plain dicts literally (PromQL's ``{}`` and ``[5m]`` included).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from textual.content import Content
from textual.widget import Widget
from textual.widgets import Static

from console.model import GUARDRAIL_STATUS_WORDS, Figures, evidence_words
from console.model import format_value as format_figure
from widgets.canary import fit_lines, loud, set_subtitle
from widgets.text import safe_text

if TYPE_CHECKING:
    from console.state import GuardrailState, IncidentState

Units = Mapping[str, tuple[str, float]]
"""Guardrail name → ``(unit, scale)``: a raw value times ``scale`` is shown with ``unit``."""

_MARKS: dict[str, str] = {
    "healthy": "✓",
    "warn": "~",
    "breach": "✗",
    "insufficient": "?",
    "cant_evaluate": "!",
    "unknown": "…",
}


@dataclass(frozen=True)
class GuardrailRow:
    """One guardrail as shown."""

    name: str
    status: str
    word: str
    budget: str
    figures: str
    detail: str
    shadow: bool = False  # evaluated and recorded, never gates
    evidence: str = ""  # the evidence counter, when the guardrail needs evidence
    comparison: str = ""  # the Mann-Whitney comparison of the stage, in words


def figures_line(figures: Figures, unit: str, scale: float) -> str:
    """``canary 2.69% > limit 2.00% · base 0.30%``: the newest samples, one formatter. With a
    warn band, ``canary 1.50% > warn 1.00% · limit 2.00% · base 0.30%`` inside it."""
    canary = format_figure(figures.canary, unit, scale)
    base = format_figure(figures.baseline, unit, scale)
    limit = format_figure(figures.limit, unit, scale)
    over = (figures.canary is not None and figures.limit is not None
            and figures.canary > figures.limit)
    if over:
        return f"canary {canary} > limit {limit} · base {base}"
    if figures.warn is None:
        return f"canary {canary} · base {base} · limit {limit}"
    warn = format_figure(figures.warn, unit, scale)
    if figures.canary is not None and figures.canary > figures.warn:
        return f"canary {canary} > warn {warn} · limit {limit} · base {base}"
    return f"canary {canary} · base {base} · warn {warn} · limit {limit}"


def budget_words(guard: GuardrailState, poll_interval_s: float | None = None) -> str:
    """The failure budget in words: ``breaches 2/8 → rollback in 6 polls (~12s)``, or
    ``sustained (9 in a row) → rollback`` once the count reached ``consecutive``."""
    breaches, needed = guard.breaches, max(1, guard.consecutive)
    if guard.shadow:  # recorded and counted, never acted on
        return f"shadow · breaches {breaches}/{needed}, never acts"
    acts = guard.on_breach in ("rollback", "hold")
    if breaches >= needed and guard.status == "breach":
        return f"sustained ({breaches} in a row)" + (f" → {guard.on_breach}" if acts else "")
    words = f"breaches {breaches}/{needed}"
    if not acts:
        return words
    left = needed - breaches
    # The countdown runs only while a canary is judged (the app passes no interval otherwise).
    if guard.on_breach == "rollback" and guard.status == "breach" and poll_interval_s:
        polls = "poll" if left == 1 else "polls"
        return f"{words} → rollback in {left} {polls} (~{left * poll_interval_s:.0f}s)"
    return f"{words} → {guard.on_breach}"


def _status_words(key: str) -> str:
    """``breach`` → ``BREACH``; ``shadow breach`` → ``shadow BREACH``."""
    shadow, _, status = key.rpartition(" ")
    word = GUARDRAIL_STATUS_WORDS.get(status, status)
    return f"{shadow} {word}" if shadow else word


class GuardrailsPane(Widget):
    """One line per guardrail. Call :meth:`show` on every refresh; repaints only on a change."""

    BORDER_TITLE = "Guardrails"

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "guardrails-pane--healthy",
        "guardrails-pane--warn",
        "guardrails-pane--breach",
        "guardrails-pane--insufficient",
        "guardrails-pane--cant-evaluate",
        "guardrails-pane--unknown",
        "guardrails-pane--muted",
    }

    DEFAULT_CSS = """
    GuardrailsPane {
        width: 1fr;
        height: 1fr;
        padding: 0 1;
        border: round $accent 40%;
        border-title-color: $accent;
        border-subtitle-color: $text-muted;
    }
    GuardrailsPane.-healthy { border-subtitle-color: $success; }
    GuardrailsPane.-unsure { border-subtitle-color: $warning; }
    GuardrailsPane.-breach { border: heavy $error; border-subtitle-color: $error; }
    GuardrailsPane > .guardrails-pane--healthy { color: $success; }
    GuardrailsPane > .guardrails-pane--warn { color: $warning; text-style: bold reverse; }
    /* BREACH is drawn reversed (widgets.canary.loud). */
    GuardrailsPane > .guardrails-pane--breach { color: $error; text-style: bold; }
    GuardrailsPane > .guardrails-pane--insufficient { color: $warning; }
    GuardrailsPane > .guardrails-pane--cant-evaluate { color: $warning; text-style: bold; }
    GuardrailsPane > .guardrails-pane--unknown { color: $text-muted; text-style: italic; }
    GuardrailsPane > .guardrails-pane--muted { color: $text-muted; }
    """

    def __init__(
        self, *, name: str | None = None, id: str | None = None, classes: str | None = None
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self._rows: tuple[GuardrailRow, ...] | None = None

    @property
    def rows(self) -> tuple[GuardrailRow, ...]:
        """The rows last shown."""
        return self._rows or ()

    def show(
        self, state: IncidentState, now: datetime | None = None, *, units: Units | None = None,
        figures: Mapping[str, Figures] | None = None, poll_interval_s: float | None = None,
        needed: Mapping[str, float] | None = None, comparisons: Mapping[str, str] | None = None,
    ) -> None:
        """Show ``state.guardrails``: each status as recorded (the events), each figure the
        newest sample (``figures``, :class:`console.model.Figures` — the same the graphs show),
        in its ``(unit, scale)`` from ``units``. With ``poll_interval_s``, a breach that will
        roll back by itself says in how many polls. ``needed`` is each guardrail's
        ``min_evidence`` (its evidence counter is shown while short of it); ``comparisons``
        the words of each Mann-Whitney comparison of the stage."""
        units = units or {}
        figures = figures or {}
        needed = needed or {}
        comparisons = comparisons or {}
        rows: list[GuardrailRow] = []
        for name, guard in state.guardrails.items():
            unit, scale = units.get(name, ("", 1.0))
            unit = safe_text(unit, limit=20)
            shown = figures.get(name, Figures())
            need = needed.get(name)
            rows.append(GuardrailRow(
                name=safe_text(name, limit=40),
                status=guard.status,
                word=GUARDRAIL_STATUS_WORDS.get(guard.status, safe_text(guard.status, limit=40)),
                budget=safe_text(budget_words(guard, poll_interval_s), limit=60),
                figures=figures_line(shown, unit, scale),
                detail=safe_text(guard.detail),
                shadow=guard.shadow,
                evidence=evidence_words(shown, need) if need else "",
                comparison=safe_text(comparisons.get(name, ""), limit=120),
            ))
        new = tuple(rows)
        if new == self._rows:
            return
        self._rows = new
        counts: dict[str, int] = {}
        for row in new:
            key = f"shadow {row.status}" if row.shadow else row.status
            counts[key] = counts.get(key, 0) + 1
        # A shadow never gates, so it never paints the pane: it is counted apart.
        breach = counts.get("breach", 0)
        unsure = sum(counts.get(s, 0) for s in ("warn", "insufficient", "cant_evaluate",
                                                 "unknown"))
        self.update_classes({"-breach": breach > 0,  # one restyle for the three
                             "-unsure": breach == 0 and unsure > 0,
                             "-healthy": bool(new) and breach == 0 and unsure == 0})
        if not new:
            subtitle = ""
        elif all(key in ("healthy", "shadow healthy") for key in counts):
            subtitle = "all healthy"
        else:
            subtitle = " · ".join(
                f"{count} {_status_words(status)}"
                for status, count in counts.items() if status not in ("healthy", "shadow healthy")
            )
        set_subtitle(self, subtitle)
        self.refresh()

    def render(self) -> Content:
        """Two lines per guardrail when there is room, else one each."""
        if self._rows is None:
            return Content.styled("waiting for the incident…", ".guardrails-pane--muted")
        if not self._rows:
            return Content.styled("no guardrails configured", ".guardrails-pane--muted")
        width, height = self.size
        return fit_lines(self._lines(self._rows, width, height), width, height,
                         ".guardrails-pane--muted")

    @staticmethod
    def _style(status: str) -> str:
        return {
            "healthy": ".guardrails-pane--healthy",
            "warn": ".guardrails-pane--warn",
            "breach": ".guardrails-pane--breach",
            "insufficient": ".guardrails-pane--insufficient",
            "cant_evaluate": ".guardrails-pane--cant-evaluate",
        }.get(status, ".guardrails-pane--unknown")

    @classmethod
    def _lines(cls, rows: tuple[GuardrailRow, ...], width: int, height: int) -> list[Content]:
        name_w = max(len(row.name) for row in rows)
        word_w = max(len(row.word) for row in rows)
        budget_w = max(len(row.budget) for row in rows)

        aligned_heads: dict[str, bool] = {}  # whether a head carried the rollback countdown

        def head(row: GuardrailRow, aligned: bool) -> Content:
            # A shadow's status is shown, never shouted: it gates nothing.
            style = ".guardrails-pane--muted" if row.shadow else cls._style(row.status)
            word = (loud(row.word, style) if row.status == "breach" and not row.shadow
                    else Content.styled(row.word, style))
            if aligned:  # a table: names and words in columns, the full budget
                aligned_heads[row.name] = True
                return Content.assemble(
                    (_MARKS.get(row.status, "…") + " ", style), row.name.ljust(name_w), "  ",
                    word, " " * (word_w - len(row.word) + 2),
                    (row.budget.ljust(budget_w), ".guardrails-pane--muted"),
                )
            mark = (_MARKS.get(row.status, "…") + " ", style)
            short = row.budget.removeprefix("breaches ")
            # Narrower and narrower: the count and what a breach does (an automatic rollback
            # coming must stay in view), then the count alone, then without the gaps.
            candidates = [
                (row.budget, "  "), (short, "  "), (short.split(" (~")[0], "  "),
                (row.budget.split(" → ")[0], "  "), (short.split(" → ")[0], " "),
            ]
            for budget, gap in candidates:
                line = Content.assemble(mark, row.name, gap, word, gap,
                                        (budget, ".guardrails-pane--muted"))
                if width <= 0 or line.cell_length <= width:
                    break
            aligned_heads[row.name] = " → rollback in" in budget
            return line

        def tail(row: GuardrailRow) -> Content:
            # Figures when there are figures to judge by (healthy, WARN or in breach: the newest
            # sample); the evidence counter while there is too little evidence; the recorded
            # reason when there is nothing to trust (can't evaluate…).
            figured = row.status in ("healthy", "warn", "breach") or not row.detail
            if row.status == "insufficient" and row.evidence:
                text = row.evidence
            else:
                text = row.figures if figured else row.detail
            if row.comparison and figured:
                text = f"{text} · {row.comparison}"
            coming = row.budget.partition(" → ")[2]
            if coming.startswith("rollback in") and not aligned_heads.get(row.name, False):
                # The head had no room for it: an automatic rollback must not come unannounced.
                text = f"{coming.split(' (~')[0]} · {text}"
            return Content.styled(text, ".guardrails-pane--muted"
                                  if row.status == "healthy" else "")

        if width <= 0:
            return [Content.assemble(head(row, True), "  ", tail(row)) for row in rows]
        wide = [Content.assemble(head(row, True), "  ", tail(row)) for row in rows]
        if all(line.cell_length <= width for line in wide):
            return wide

        def rows_needed(lines: list[Content]) -> int:
            return sum(len(line.wrap(width)) if line.cell_length > width else 1
                       for line in lines)

        # Two lines per guardrail: a problem's detail wraps (it is the why), figures are cut.
        two: list[Content] = []
        for row in rows:
            two.append(head(row, False).truncate(width, ellipsis=True))
            line = Content("  ") + tail(row)
            two.append(line if row.status != "healthy" else line.truncate(width, ellipsis=True))
        if rows_needed(two) <= height:
            return two
        cut = [line.truncate(width, ellipsis=True) for line in two]
        if len(cut) <= height:
            return cut
        # A tight box: one line per guardrail, the why cut to fit.
        return [
            (head(row, False) if row.status == "healthy"
             else Content.assemble(head(row, False), " · ", tail(row))
             ).truncate(width, ellipsis=True)
            for row in rows
        ]


class GuardrailDetail(Static):
    """Each guardrail's resolved queries, raw values and last error, shown literally.

    Give it plain dicts (``name``, ``status``, ``detail``, ``queries: {role: query}``,
    ``raw: {role: [values]}``, ``error``) through :meth:`show`; the app puts it in a modal.
    """

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "guardrail-detail--name",
        "guardrail-detail--label",
        "guardrail-detail--error",
        "guardrail-detail--muted",
    }

    DEFAULT_CSS = """
    GuardrailDetail {
        width: 1fr;
        height: auto;
        padding: 0 1;
    }
    GuardrailDetail > .guardrail-detail--name { text-style: bold; color: $accent; }
    GuardrailDetail > .guardrail-detail--label { color: $text-muted; }
    GuardrailDetail > .guardrail-detail--error { color: $error; text-style: bold; }
    GuardrailDetail > .guardrail-detail--muted { color: $text-muted; }
    """

    def __init__(
        self,
        items: Sequence[Mapping[str, Any]] = (),
        *,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__("", markup=False, name=name, id=id, classes=classes)
        self._items: tuple[Mapping[str, Any], ...] = ()
        if items:
            self.show(items)

    def show(self, items: Sequence[Mapping[str, Any]]) -> None:
        """Show ``items`` (one plain dict per guardrail)."""
        self._items = tuple(items)
        self.update(self.build(self._items))

    @classmethod
    def build(cls, items: Sequence[Mapping[str, Any]]) -> Content:
        """The literal text of ``items``, as one ``Content``."""
        if not items:
            return Content.styled("no guardrail readings yet", ".guardrail-detail--muted")
        blocks: list[Content] = []
        for item in items:
            status = str(item.get("status") or "unknown")
            word = GUARDRAIL_STATUS_WORDS.get(status, safe_text(status, limit=40))
            lines = [Content.assemble(
                (safe_text(item.get("name", "?"), limit=80), ".guardrail-detail--name"),
                "  ", word,
            )]
            detail = item.get("detail")
            if detail:
                lines.append(cls._field("detail", detail))
            queries = item.get("queries") or {}
            if isinstance(queries, Mapping):
                for role, query in queries.items():
                    lines.append(cls._field(f"query {safe_text(role, limit=20)}", query))
            raw = item.get("raw") or {}
            if isinstance(raw, Mapping):
                for role, values in raw.items():
                    if isinstance(values, list | tuple):
                        shown = ", ".join(safe_text(v, limit=40) for v in values) or "(none)"
                    else:
                        shown = safe_text(values)
                    lines.append(cls._field(f"raw {safe_text(role, limit=20)}", shown))
            error = item.get("error")
            if error:
                lines.append(cls._field("error", error, ".guardrail-detail--error"))
            else:
                lines.append(cls._field("error", "none", ".guardrail-detail--muted"))
            blocks.append(Content("\n").join(lines))
        return Content("\n\n").join(blocks)

    @staticmethod
    def _field(label: str, value: object, style: str = "") -> Content:
        """``  label  value``; a multi-line value keeps its lines, indented under the first."""
        text = safe_text(value, limit=4000, multiline=True)
        indent = "\n" + " " * 18
        text = indent.join(text.split("\n"))
        return Content.assemble(
            (f"  {label} ".ljust(18), ".guardrail-detail--label"), (text, style)
        )
