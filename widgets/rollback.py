"""The rollback pane: the way back, whether it is ready, and whether a rollback really worked.

Before a rollback it shows the target version, the preflight result with its checks and whether
the compatibility checklist was acknowledged, and (in commander mode) the key that starts it. During
one it shows the deployer's progress. After one it gives the verdict: VERIFIED, or — in the loudest
style the app has, across the whole pane — ROLLBACK NOT VERIFIED / ROLLBACK FAILED with the reason.
A rollback nobody can confirm must never look like one that worked.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, ClassVar

from textual.content import Content
from textual.widget import Widget

from console.model import RollbackStatus
from widgets.canary import fit_lines, hhmm, loud, set_subtitle, short_duration
from widgets.text import safe_text

if TYPE_CHECKING:
    from console.state import Check as RecordedCheck
    from console.state import IncidentState

Check = tuple[bool, str, str]
"""One check as shown: ``(ok, name, detail)``."""

#: Statuses in which a rollback can be started from this pane's point of view (the app decides).
_IDLE: frozenset[str] = frozenset({"none", "preflight_passed", "preflight_failed", "not_verified",
                                   "failed"})


def _checks(raw: Iterable[RecordedCheck]) -> tuple[Check, ...]:
    return tuple(
        (check.ok, safe_text(check.name or "?", limit=80), safe_text(check.detail))
        for check in raw
    )


def verification_clock(state: IncidentState, now: datetime | None,
                       timeout_s: float | None) -> str:
    """The clocks of a rollback under way, in words that tick: how long the stable track has
    held and how long it still must, or what it waits for — and when it becomes NOT VERIFIED."""
    if not state.rollback_active or now is None:
        return ""
    target = safe_text(state.rollback_target, limit=40)
    parts: list[str] = []
    started = state.rollback_completed_ts or state.rollback_requested_ts
    if state.rollback_completed_ts is None:
        parts.append(f"waiting for the deployer to report {target}")
    elif state.verify_holding_since is not None:
        held = max(0.0, (now - state.verify_holding_since).total_seconds())
        left = max(0.0, state.verify_hold_s - held)
        # Lower case: the loud words are kept for the verdict itself.
        parts.append(f"stable track healthy {short_duration(held)} of "
                     f"{short_duration(state.verify_hold_s)}: verified in {short_duration(left)}"
                     " if it holds")
    else:
        waiting = safe_text(state.verify_waiting, limit=160) or "the stable track to be healthy"
        parts.append(f"verification waits: {waiting}")
    if timeout_s is not None and started is not None and state.verify_holding_since is None:
        left = timeout_s - (now - started).total_seconds()
        parts.append(f"not verified in {short_duration(max(0.0, left))} unless it does")
    return " — ".join(parts)


def watch_line(state: IncidentState) -> str:
    """What the watch after a verified rollback says: how long it still reads the live version,
    that it held, or — the alarm — what is live instead of the target and since when."""
    target = safe_text(state.rollback_target, limit=40)
    if state.watch_status == "reverted":
        live = safe_text(state.watch_live, limit=120)
        since = f" since {hhmm(state.watch_reverted_ts)}" if state.watch_reverted_ts else ""
        return f"{live} is live, not {target}{since}"
    if state.watch_status == "watching" and state.watch_until is not None:
        # a time, not a countdown: the pane is redrawn when the record changes, not every second
        return f"watching the live version until {hhmm(state.watch_until)}: it must stay {target}"
    if state.watch_status == "held":
        return f"watch ended: {target} stayed live"
    return ""


@dataclass(frozen=True)
class RollbackView:
    """What the rollback pane shows, already made safe; compared to skip needless repaints."""

    status: RollbackStatus
    target: str
    detail: str
    automatic: bool
    finished: str
    progress: tuple[str, ...]
    checks: tuple[Check, ...]
    preflight_ok: bool | None
    preflight_detail: str
    preflight_checks: tuple[Check, ...]
    checklist_acked: bool
    checklist_acked_by: str
    checklist_items: int
    hint: str
    countdown: str  # the verification's clocks, in words ("" when none runs)
    watch: str = ""  # after VERIFIED: "watching" | "reverted" | "held" | "" (no watch)
    watch_line: str = ""  # what the watch says, in words
    escalation: str = ""


class RollbackPane(Widget):
    """Target, preflight, checklist, progress and the verdict of the rollback.

    Call :meth:`show` on every refresh. ``can_act`` (commander mode) adds the hint
    "press R to roll back to vX" while a rollback can be started.
    """

    BORDER_TITLE = "Rollback"

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "rollback-pane--alarm",
        "rollback-pane--verified",
        "rollback-pane--active",
        "rollback-pane--ok",
        "rollback-pane--bad",
        "rollback-pane--warn",
        "rollback-pane--muted",
    }

    DEFAULT_CSS = """
    RollbackPane {
        width: 1fr;
        height: 1fr;
        padding: 0 1;
        border: round $accent 40%;
        border-title-color: $accent;
        border-subtitle-color: $text-muted;
    }
    RollbackPane.-hint { border-subtitle-color: $accent; border-subtitle-style: bold; }
    RollbackPane.-verified { border: round $success; border-subtitle-color: $success; }
    RollbackPane.-active { border: round $warning; border-subtitle-color: $warning; }
    RollbackPane.-alarm {
        border: heavy $error;
        border-title-color: $error;
        border-subtitle-color: $error;
        border-subtitle-style: bold reverse;
        background: $error 15%;
    }
    /* Drawn reversed (widgets.canary.loud): an $error bar across the pane, bold. */
    RollbackPane > .rollback-pane--alarm { color: $error; text-style: bold; }
    RollbackPane > .rollback-pane--verified { color: $success; text-style: bold; }
    RollbackPane > .rollback-pane--active { color: $warning; text-style: bold; }
    RollbackPane > .rollback-pane--ok { color: $success; }
    RollbackPane > .rollback-pane--bad { color: $error; text-style: bold; }
    RollbackPane > .rollback-pane--warn { color: $warning; }
    RollbackPane > .rollback-pane--muted { color: $text-muted; }
    """

    def __init__(
        self, *, name: str | None = None, id: str | None = None, classes: str | None = None
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self._view: RollbackView | None = None

    @property
    def view(self) -> RollbackView | None:
        """The last view shown."""
        return self._view

    def show(self, state: IncidentState, now: datetime | None = None, *,
             can_act: bool = False, verify_timeout_s: float | None = None) -> None:
        """Show the rollback of ``state``; ``can_act`` is True in commander mode;
        ``verify_timeout_s`` (the config's) turns into the NOT VERIFIED countdown."""
        target = safe_text(state.rollback_target, limit=80)
        hint = ""
        if can_act and not state.closed and target and state.rollback_status in _IDLE:
            again = state.rollback_status in ("not_verified", "failed")
            hint = f"press R to {'retry the rollback' if again else 'roll back'} to {target}"
        view = RollbackView(
            status=state.rollback_status,
            target=target,
            detail=safe_text(state.rollback_detail),
            automatic=state.rollback_automatic,
            finished=hhmm(state.rollback_finished_ts),
            progress=tuple(safe_text(line) for line in state.rollback_progress),
            checks=_checks(state.rollback_checks),
            preflight_ok=state.preflight_ok,
            preflight_detail=safe_text(state.preflight_detail),
            preflight_checks=_checks(state.preflight_checks),
            checklist_acked=state.checklist_acked,
            checklist_acked_by=safe_text(state.checklist_acked_by, limit=60),
            checklist_items=len(state.compatibility_checklist),
            hint=hint,
            countdown=verification_clock(state, now, verify_timeout_s),
            watch=state.watch_status if state.watch_status != "none" else "",
            watch_line=watch_line(state),
            escalation=safe_text(state.escalation) if not state.closed else "",
        )
        if view == self._view:
            return
        self._view = view
        status = view.status
        undone = view.watch == "reverted" or bool(view.escalation)
        self.update_classes({  # one restyle for the four
            "-alarm": status in ("not_verified", "failed") or undone,
            "-verified": status == "verified" and not undone,
            "-active": status in ("requested", "in_progress"),
            "-hint": bool(hint) and status not in ("not_verified", "failed"),
        })
        subtitle = {
            "not_verified": "NOT VERIFIED",
            "failed": "FAILED",
            "verified": "verified",
            "requested": "rollback requested",
            "in_progress": "rolling back…",
        }.get(status, "")
        if view.watch == "reverted":
            subtitle = "ROLLBACK UNDONE"
        elif view.escalation:
            subtitle = "ESCALATED"
        elif view.watch == "watching":
            subtitle = "verified · watching"
        if hint:
            subtitle = f"{subtitle} · {hint}" if subtitle else hint
        set_subtitle(self, subtitle)
        self.refresh()

    def render(self) -> Content:
        """The verdict first, then progress, target, preflight and checklist."""
        view = self._view
        if view is None:
            return Content.styled("waiting for the incident…", ".rollback-pane--muted")
        width, height = self.size
        return fit_lines(self._lines(view, width), width, height, ".rollback-pane--muted")

    @staticmethod
    def _check_lines(checks: tuple[Check, ...], indent: str = "  ") -> list[Content]:
        return [
            Content.assemble(
                indent,
                ("✓ " if ok else "✗ ", ".rollback-pane--ok" if ok else ".rollback-pane--bad"),
                name,
                (f" — {detail}" if detail else "", ".rollback-pane--muted"),
            )
            for ok, name, detail in checks
        ]

    @classmethod
    def _lines(cls, view: RollbackView, width: int) -> list[Content]:
        lines: list[Content] = []
        how = " (automatic)" if view.automatic else ""
        when = f" at {view.finished}" if view.finished else ""
        alarms = []
        if view.watch == "reverted":
            alarms.append(f"✗ ROLLBACK UNDONE: {view.watch_line}")
        if view.escalation:
            alarms.append(f"✗ ESCALATED: the commander decides — {view.escalation}")
        for words in alarms:
            alarm = Content(words)
            rows = alarm.wrap(width) if width > 0 else [alarm]
            lines.extend(loud(row.pad_right(max(0, width - row.cell_length)).plain,
                              ".rollback-pane--alarm") for row in rows)
        if view.status in ("not_verified", "failed"):
            words = "ROLLBACK NOT VERIFIED" if view.status == "not_verified" else "ROLLBACK FAILED"
            alarm = Content(f"✗ {words}{how}: {view.detail or 'no reason given'}")
            # A solid bar across the pane: every wrapped row padded to the full width.
            rows = alarm.wrap(width) if width > 0 else [alarm]
            lines.extend(loud(row.pad_right(max(0, width - row.cell_length)).plain,
                              ".rollback-pane--alarm") for row in rows)
            lines.extend(cls._check_lines(view.checks))
        elif view.status == "verified":
            lines.append(Content.styled(f"✓ ROLLBACK VERIFIED{how}: {view.target} live{when}",
                                        ".rollback-pane--verified"))
            if view.watch in ("watching", "held") and view.watch_line:
                lines.append(Content.styled(f"  {view.watch_line}", ".rollback-pane--muted"))
            lines.extend(cls._check_lines(view.checks))
        elif view.status in ("requested", "in_progress"):
            verb = "requested" if view.status == "requested" else "in progress"
            lines.append(Content.styled(f"⟳ rollback to {view.target} {verb}{how}",
                                        ".rollback-pane--active"))
            if view.countdown:
                lines.append(Content.styled(f"  {view.countdown}", ".rollback-pane--warn"))
            elif view.detail:
                lines.append(Content.styled(f"  {view.detail}", ".rollback-pane--warn"))
        if view.progress:
            lines.extend(Content.styled(f"  • {line}", ".rollback-pane--muted")
                         for line in view.progress[-8:])

        if view.target:
            lines.append(Content.assemble(("target ", ".rollback-pane--muted"), view.target))
        else:
            lines.append(Content.styled("✗ no rollback target known", ".rollback-pane--bad"))

        if view.preflight_ok is True:
            pre = Content.assemble(("preflight ", ".rollback-pane--muted"),
                                   ("✓ passed", ".rollback-pane--ok"))
        elif view.preflight_ok is False:
            pre = Content.assemble(("preflight ", ".rollback-pane--muted"),
                                   ("✗ FAILED", ".rollback-pane--bad"))
        else:
            pre = Content.assemble(("preflight ", ".rollback-pane--muted"),
                                   ("not run yet", ".rollback-pane--warn"))
        if view.preflight_detail and view.preflight_detail not in ("passed", "ok"):
            pre = pre + Content.styled(f": {view.preflight_detail}", ".rollback-pane--muted")
        lines.append(pre)

        if view.checklist_acked:
            by = f" by {view.checklist_acked_by}" if view.checklist_acked_by else ""
            lines.append(Content.assemble(("checklist ", ".rollback-pane--muted"),
                                          (f"✓ acknowledged{by}", ".rollback-pane--ok")))
        elif view.checklist_items:
            lines.append(Content.assemble(
                ("checklist ", ".rollback-pane--muted"),
                (f"✗ not acknowledged ({view.checklist_items} items)", ".rollback-pane--warn"),
            ))
        if view.status in ("none", "preflight_passed", "preflight_failed"):
            lines.extend(cls._check_lines(view.preflight_checks))
        return lines
