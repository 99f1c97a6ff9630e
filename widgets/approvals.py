"""The approvals pane: one row per required role — who approved, how, and when.

How an approval was given is part of the record and always shown: ``direct``, ``relayed via X``
(recorded by X, with evidence), ``WAIVED (reason)`` (a waiver stays a waiver forever),
``simulated``; a role without a current approval says ``waiting``. Approvals given for an earlier
target version are stale: they no longer count and are shown struck through as ``stale (vX)``;
an approval whose approver is or became the commander is ``stale (priya took command)``.

Rows are drawn as text (not a ``DataTable``) so the pane can choose its layout by width: aligned
columns with the time when there is room, one compact line per row in a 40-column box.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, ClassVar, Literal

from textual.content import Content
from textual.widget import Widget

from widgets.canary import fit_lines, hhmm, loud, set_subtitle
from widgets.text import safe_text

if TYPE_CHECKING:
    from console.state import Approval, IncidentState

RowKind = Literal["direct", "relayed", "waived", "simulated", "waiting", "stale"]

_MARKS: dict[str, str] = {
    "direct": "✓",
    "relayed": "✓",
    "simulated": "✓",
    "waived": "~",
    "waiting": "○",
    "stale": "·",
}


@dataclass(frozen=True)
class ApprovalRow:
    """One row as shown; ``key`` is stable (``role:ROLE`` or ``stale:EVENT_ID``)."""

    key: str
    kind: RowKind
    role: str
    person: str
    how: str
    time: str
    extra: str = ""  # evidence of a relayed approval, or a note; shown when there is room


def _row_for(approval: Approval, key: str) -> ApprovalRow:
    role = safe_text(approval.role, limit=60)
    person = safe_text(approval.user, limit=60)
    time = hhmm(approval.ts)
    if approval.stale:
        # an earlier version's approval says which version; any other says why (the approver
        # is, or took over as, the commander)
        why = (approval.stale_reason if approval.stale_reason
               and approval.stale_reason != "given for an earlier version" else approval.version)
        how = f"stale ({safe_text(why, limit=60)})"
        return ApprovalRow(key, "stale", role, person, how, time)
    if approval.kind == "waived":
        reason = safe_text(approval.reason, limit=200)
        return ApprovalRow(key, "waived", role, person, f"WAIVED ({reason})", time)
    if approval.kind == "relayed":
        via = safe_text(approval.recorded_by or "?", limit=60)
        evidence = safe_text(approval.evidence, limit=200)
        extra = f"evidence: {evidence}" if evidence else ""
        return ApprovalRow(key, "relayed", role, person, f"relayed via {via}", time, extra)
    if approval.kind == "simulated":
        return ApprovalRow(key, "simulated", role, person, "simulated", time)
    note = safe_text(approval.note, limit=200)
    return ApprovalRow(key, "direct", role, person, "direct", time, f"note: {note}" if note else "")


def approval_rows(state: IncidentState) -> tuple[ApprovalRow, ...]:
    """Rows in a stable order: each required role, its stale approvals under it, then extras."""
    counted = state.current_approvals()
    rows: list[ApprovalRow] = []
    for role in state.required_roles:
        approval = counted.get(role)
        if approval is None:
            rows.append(ApprovalRow(f"role:{role}", "waiting", safe_text(role, limit=60), "—",
                                    "waiting", ""))
        else:
            rows.append(_row_for(approval, f"role:{role}"))
        rows.extend(
            _row_for(stale, f"stale:{stale.event_id}")
            for stale in state.approvals
            if stale.stale and stale.role == role
        )
    for role, approval in counted.items():
        if role not in state.required_roles:  # given although not required: still on record
            rows.append(_row_for(approval, f"role:{role}"))
    return tuple(rows)


class ApprovalsPane(Widget):
    """Approvals by role. Call :meth:`show` on every refresh; it repaints only on a change."""

    BORDER_TITLE = "Approvals"

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "approvals-pane--approved",
        "approvals-pane--relayed",
        "approvals-pane--waived",
        "approvals-pane--simulated",
        "approvals-pane--waiting",
        "approvals-pane--stale",
        "approvals-pane--muted",
        "approvals-pane--refused",
    }

    DEFAULT_CSS = """
    ApprovalsPane {
        width: 1fr;
        height: 1fr;
        padding: 0 1;
        border: round $accent 40%;
        border-title-color: $accent;
        border-subtitle-color: $text-muted;
    }
    ApprovalsPane.-missing { border-subtitle-color: $warning; }
    ApprovalsPane.-complete { border-subtitle-color: $success; }
    ApprovalsPane > .approvals-pane--approved { color: $success; }
    ApprovalsPane > .approvals-pane--relayed { color: $accent; text-style: bold; }
    ApprovalsPane > .approvals-pane--waived { color: $warning; text-style: bold; }
    ApprovalsPane > .approvals-pane--simulated { color: $text-muted; text-style: italic; }
    ApprovalsPane > .approvals-pane--waiting { color: $warning; }
    ApprovalsPane > .approvals-pane--stale { color: $text-muted; text-style: strike; }
    ApprovalsPane > .approvals-pane--muted { color: $text-muted; }
    ApprovalsPane > .approvals-pane--refused { color: $error; text-style: bold; }
    ApprovalsPane.-refused { border: round $error; }
    """

    def __init__(
        self, *, name: str | None = None, id: str | None = None, classes: str | None = None
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self._rows: tuple[ApprovalRow, ...] | None = None
        self._refusal: str | None = None
        self._rules: tuple[str, ...] = ()

    @property
    def rows(self) -> tuple[ApprovalRow, ...]:
        """The rows last shown."""
        return self._rows or ()

    @property
    def refusal(self) -> str | None:
        """The refusal of the commander's last relayed approval, while it is shown."""
        return self._refusal

    def show_refusal(self, refusal: str | None, rules: list[str]) -> None:
        """Say loudly, above the rows, why the rules refused a relayed approval, and list every
        rule under them (``None`` clears it: the role was approved or the relay corrected)."""
        self._refusal = refusal
        self._rules = tuple(rules) if refusal else ()
        self.set_class(refusal is not None, "-refused")
        self.refresh()

    def show(self, state: IncidentState, now: datetime | None = None) -> None:
        """Show the approvals of ``state`` (``now`` is accepted for symmetry and unused)."""
        rows = approval_rows(state)
        if rows == self._rows:
            return
        self._rows = rows
        required = len(state.required_roles)
        missing = len(state.missing_roles)
        counted = state.current_approvals()
        waived = sum(1 for role in state.required_roles
                     if role in counted and counted[role].kind == "waived")
        self.update_classes({"-missing": missing > 0,  # one restyle for both
                             "-complete": missing == 0 and required > 0})
        if required:
            approved = required - missing - waived
            parts = [f"{approved}/{required} approved" if approved == required
                     else f"{approved} approved"]
            if waived:
                parts.append(f"{waived} waived")
            if missing:
                parts.append(f"{missing} waiting")
            set_subtitle(self, " · ".join(parts))
        else:
            set_subtitle(self, "no approvals required")
        self.refresh()

    def render(self) -> Content:
        """Aligned columns when they fit, else one compact line per row."""
        if self._rows is None:
            return Content.styled("waiting for the incident…", ".approvals-pane--muted")
        if not self._rows:
            return Content.styled("no approvals required", ".approvals-pane--muted")
        width, height = self.size
        lines = self._lines(self._rows, width)
        if self._refusal is not None:
            refused = loud(" REFUSED ", ".approvals-pane--refused") + Content.styled(
                f" {safe_text(self._refusal, limit=400)}", ".approvals-pane--refused")
            lines = [refused, *lines,
                     Content.styled("The approval rules:", ".approvals-pane--muted"),
                     *(Content.styled(f"· {rule}", ".approvals-pane--muted")
                       for rule in self._rules)]
        return fit_lines(lines, width, height, ".approvals-pane--muted")

    @staticmethod
    def _style(kind: RowKind) -> str:
        return {
            "direct": ".approvals-pane--approved",
            "relayed": ".approvals-pane--relayed",
            "waived": ".approvals-pane--waived",
            "simulated": ".approvals-pane--simulated",
            "waiting": ".approvals-pane--waiting",
            "stale": ".approvals-pane--stale",
        }[kind]

    @classmethod
    def _lines(cls, rows: tuple[ApprovalRow, ...], width: int) -> list[Content]:
        role_w = max(len(row.role) for row in rows)
        person_w = min(24, max(len(row.person) for row in rows))
        time_w = len("00:00 UTC")
        # Columns: mark, role, person, time, then how (which may be long: a waiver's reason).
        table_w = 2 + role_w + 2 + person_w + 2 + time_w + 2 + len("relayed via someone")
        lines: list[Content] = []
        for row in rows:
            style = cls._style(row.kind)
            stale = ".approvals-pane--stale" if row.kind == "stale" else ""
            mark = (f"{_MARKS[row.kind]} ", style)
            if width <= 0 or table_w <= width:
                person = Content.styled(row.person, stale)
                if person.cell_length > person_w:
                    person = person.truncate(person_w, ellipsis=True)
                line = Content.assemble(
                    mark, (row.role.ljust(role_w), stale), "  ",
                    person.pad_right(person_w - person.cell_length), "  ",
                    (row.time.ljust(time_w), ".approvals-pane--muted"), "  ", (row.how, style),
                )
                if row.extra:
                    line = line + Content.styled(f"  {row.extra}", ".approvals-pane--muted")
                if row.kind != "waived" and width > 0:
                    line = line.truncate(width, ellipsis=True)
            else:
                # Narrow: "✓ security-lead priya · direct", one line each; a waiver wraps
                # rather than lose its reason.
                if row.kind == "waiting":
                    line = Content.assemble(mark, row.role, (" · ", ".approvals-pane--muted"),
                                            (row.how, style))
                elif row.kind == "stale":  # which version it was for matters more than who
                    line = Content.assemble(mark, (row.role, stale), " ", (row.how, style), " ",
                                            (row.person, stale))
                else:
                    line = Content.assemble(mark, row.role, " ", row.person,
                                            (" · ", ".approvals-pane--muted"), (row.how, style))
                if row.kind != "waived":
                    line = line.truncate(width, ellipsis=True)
                with_time = line + Content.styled(f"  {row.time[:5]}", ".approvals-pane--muted")
                if row.time and with_time.cell_length <= width:
                    line = with_time
            lines.append(line)
        return lines
