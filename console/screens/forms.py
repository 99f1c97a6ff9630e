"""Modals that take typed text: notes, reasons for overrides, "100% now", waivers, closing."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static

from console.policy import REASON_MIN_CHARS as MIN_REASON

FORM_CSS = """
{name} {{
    align: center middle;
}}
{name} > Vertical {{
    width: 80;
    max-width: 100%;
    height: auto;
    max-height: 100%;
    border: thick $accent;
    background: $surface;
    padding: 0 1;
}}
{name} .form--title {{
    text-style: bold;
}}
{name} VerticalScroll {{
    height: auto;
    max-height: 1fr;
}}
{name} Label {{
    width: 100%;
}}
{name} .form--hint {{
    color: $text-muted;
}}
{name} .form--error {{
    color: $error;
    text-style: bold;
}}
{name}.-loud > Vertical {{
    border: thick $error;
}}
{name}.-loud .form--title {{
    background: $error;
    color: $text;
}}
{name} .form--confirm {{
    color: $error;
    text-style: bold;
}}
"""


#: How long a note may take to be recorded before its dialog says "saving…".
SAVING_SHOWN_AFTER_S = 0.25


class NoteModal(ModalScreen[str | None]):
    """A note for the timeline; Enter saves, Escape cancels.

    Given ``save``, Enter hands the text to it and the dialog stays, its box read-only and
    "saving…", until the app says the note is recorded (:meth:`saved`): the dialog closes in
    the frame that shows the note on the timeline, never before the note is on disk. If it
    could not be recorded (:meth:`failed`), the dialog says why and keeps the text. Without
    ``save`` it dismisses with the text, like the other forms.
    """

    DEFAULT_CSS = FORM_CSS.format(name="NoteModal")
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, save: Callable[[str], None] | None = None) -> None:
        super().__init__()
        self._save_text = save
        self.saving = False

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static("Add a note to the timeline", classes="form--title")
            yield Input(placeholder="what happened, who said what…", id="note")
            yield Static("Enter = save    Escape = cancel", classes="form--hint", id="note-hint")

    @on(Input.Submitted)
    def _save(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        if self.saving:
            return
        if not text or self._save_text is None:
            self.dismiss(text or None)
            return
        self.saving = True
        # A note is on disk in milliseconds: say "saving…" (and take the box's keys away) only
        # if it takes long enough to be seen, rather than draw a frame for it every time.
        self.set_timer(SAVING_SHOWN_AFTER_S, self._show_saving)
        self._save_text(text)

    def _show_saving(self) -> None:
        if self.saving and self.is_attached:
            self.query_one(Input).disabled = True
            self.query_one("#note-hint", Static).update("saving…")

    def saved(self) -> None:
        """The note is recorded (and on the timeline): close."""
        self.dismiss(None)

    def failed(self, why: str) -> None:
        """The note could not be recorded: say why, keep the text to try again."""
        self.saving = False
        box = self.query_one(Input)
        box.disabled = False
        box.focus()
        self.query_one("#note-hint", Static).update(
            Content.styled(f"Not saved: {why}. Enter = try again    Escape = cancel",
                           "$error"))

    def action_cancel(self) -> None:
        if not self.saving:  # being recorded: it lands, and the dialog closes with it
            self.dismiss(None)


@dataclass(frozen=True)
class BlockToOverride:
    code: str
    words: str


class OverrideModal(ModalScreen[dict[str, str] | None]):
    """Advance despite blocks: each needs its own typed reason, which becomes an event."""

    DEFAULT_CSS = FORM_CSS.format(name="OverrideModal")
    # Enter is a priority binding of the screen, not the Input's own submit: the app runs it
    # before it forwards the next key, so what is typed right after Enter lands in the next box
    # (with Input.Submitted the next keys reach the old box before its message bubbles up).
    BINDINGS = [Binding("escape", "cancel", "Cancel"),
                Binding("enter", "next_or_proceed", "Next / proceed", show=False, priority=True)]
    #: The first reason field, not the scroll container around the fields: typing must land there.
    AUTO_FOCUS = "Input"

    def __init__(self, title: str, blocks: list[BlockToOverride], *, loud: bool = False,
                 extra_reason: str | None = None,
                 confirm_words: tuple[str, ...] = (),
                 reasons: dict[str, str] | None = None) -> None:
        super().__init__(classes="-loud" if loud else "")
        self._title = title
        self._blocks = blocks
        self._reasons = dict(reasons or {})  # typed in an earlier form for the same blocks
        self._extra_reason = extra_reason
        # A typed confirmation (DESIGN.md): the last field must read one of these exactly.
        self._confirm_words = confirm_words

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(Content(self._title), classes="form--title")
            with VerticalScroll():
                if self._extra_reason is not None:
                    yield Label(Content(self._extra_reason))
                    yield Input(placeholder="a specific reason (recorded)", id="reason-main")
                for block in self._blocks:
                    yield Label(Content(f"OVERRIDE: {block.words}"), id=f"block-{block.code}")
                    yield Input(self._reasons.get(block.code, ""),
                                placeholder="why it is safe to proceed anyway (recorded)",
                                id=f"reason-{block.code}")
                if self._confirm_words:
                    words = " or ".join(self._confirm_words)
                    yield Label(Content(f"To confirm, type {words}:"), classes="form--confirm")
                    yield Input(placeholder=words, id="confirm")
            yield Static("", classes="form--error", id="error")
            yield Static("Enter = next / proceed    Escape = cancel", classes="form--hint")

    def show_blocks(self, blocks: list[BlockToOverride]) -> bool:
        """Show the blocks as they stand now (a hold's countdown ticks in its words); False
        when they are no longer the same blocks (the form must be made again)."""
        if [b.code for b in blocks] != [b.code for b in self._blocks]:
            return False
        for old, new in zip(self._blocks, blocks, strict=True):
            if new.words != old.words:
                self.query_one(f"#block-{new.code}", Label).update(
                    Content(f"OVERRIDE: {new.words}"))
        self._blocks = blocks
        return True

    def typed_reasons(self) -> dict[str, str]:
        """The reasons typed so far, by block code."""
        return {(field.id or "").removeprefix("reason-"): field.value
                for field in self.query(Input) if (field.id or "").startswith("reason-")}

    def action_next_or_proceed(self) -> None:
        inputs = list(self.query(Input))
        focused = self.focused
        index = inputs.index(focused) if isinstance(focused, Input) and focused in inputs else 0
        if index + 1 < len(inputs) and not inputs[index + 1].value.strip():
            self.set_focus(inputs[index + 1])
            return
        # Each box handles its keys on its own queue: read the values only after every box has
        # handled the keys already sent to it (a callback queued behind them, box by box).
        def after(position: int) -> None:
            if position == len(inputs):
                self._proceed(inputs)
            else:
                inputs[position].call_later(after, position + 1)

        after(0)

    def _proceed(self, inputs: list[Input]) -> None:
        if not self.is_attached or self.app.screen is not self:
            return  # cancelled meanwhile
        reasons: dict[str, str] = {}
        for field in inputs:
            value = field.value.strip()
            if field.id == "confirm":
                if value not in self._confirm_words:
                    self.query_one("#error", Static).update(Content(
                        f"Not confirmed: type {' or '.join(self._confirm_words)} exactly."))
                    self.set_focus(field)
                    return
                continue
            if len(value) < MIN_REASON:
                self.query_one("#error", Static).update(
                    f"Each reason must be specific (at least {MIN_REASON} characters).")
                self.set_focus(field)
                return
            reasons[(field.id or "").removeprefix("reason-")] = value
        self.dismiss(reasons)

    def action_cancel(self) -> None:
        self.dismiss(None)


class ReasonModal(ModalScreen[str | None]):
    """One typed reason (closing, waiving a checklist item, a gate's result detail)."""

    DEFAULT_CSS = FORM_CSS.format(name="ReasonModal")
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, prompt: str, *, required: bool = True) -> None:
        super().__init__()
        self._title = title
        self._prompt = prompt
        self._required = required

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(Content(self._title), classes="form--title")
            yield Label(Content(self._prompt))
            yield Input(id="reason")
            yield Static("", classes="form--error", id="error")
            yield Static("Enter = save    Escape = cancel", classes="form--hint")

    @on(Input.Submitted)
    def _save(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        if self._required and len(text) < MIN_REASON:
            self.query_one("#error", Static).update("Give a specific reason (at least 8 "
                                                    "characters).")
            return
        self.dismiss(text)

    def action_cancel(self) -> None:
        self.dismiss(None)


class MilestoneModal(ModalScreen[tuple[str, str] | None]):
    """Mark a milestone now: a key chooses it (d detected, i impact started, m mitigated, r
    resolved), then an optional "how we know" and Enter. An earlier moment is marked with
    ``warroom mark ID MILESTONE --at TIME``."""

    DEFAULT_CSS = FORM_CSS.format(name="MilestoneModal")
    BINDINGS = [Binding("escape", "cancel", "Cancel")]
    CHOICES: tuple[tuple[str, str], ...] = (("d", "detected"), ("i", "impact-started"),
                                            ("m", "mitigated"), ("r", "resolved"))

    def __init__(self, marked: dict[str, str]) -> None:
        super().__init__()
        self._marked = marked  # milestone → when it is marked already ("21:52 UTC")
        self._chosen: str | None = None

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static("Mark a milestone (now)", classes="form--title")
            for key, name in self.CHOICES:
                already = self._marked.get(name)
                note = f"  (marked: {already}; marking again corrects it)" if already else ""
                yield Label(Content(f"  {key}  {name}{note}"))
            yield Label(Content("How do we know? (optional, recorded)"), id="prompt")
            yield Input(id="reason", disabled=True)
            yield Static("d / i / m / r = choose    Enter = save    Escape = cancel",
                         classes="form--hint")

    def on_key(self, event: events.Key) -> None:
        if self._chosen is not None:
            return
        for key, name in self.CHOICES:
            if event.key == key:
                event.stop()
                self._chosen = name
                self.query_one("#prompt", Label).update(
                    Content(f"{name}: how do we know? (optional, recorded)"))
                field = self.query_one("#reason", Input)
                field.disabled = False
                field.focus()

    @on(Input.Submitted)
    def _save(self, event: Input.Submitted) -> None:
        if self._chosen is not None:
            self.dismiss((self._chosen, event.value.strip()))

    def action_cancel(self) -> None:
        self.dismiss(None)


@dataclass(frozen=True)
class RelayRequest:
    """An approval given elsewhere, as the commander typed it into the ``A`` form."""

    role: str
    relayed_from: str
    evidence: str


class RelayApprovalModal(ModalScreen[RelayRequest | None]):
    """Record a relayed approval: a digit chooses the waiting role, then who gave it (exactly as
    on the roster) and the evidence. Every approval rule is listed under the form, and a refusal
    of an earlier try is shown at its top with the values kept for correction."""

    DEFAULT_CSS = FORM_CSS.format(name="RelayApprovalModal") + """
    RelayApprovalModal .form--rules {
        color: $text-muted;
    }
    """
    # Enter is a priority binding, as in OverrideModal: keys typed straight after it land in
    # the next box, never in the one just left.
    BINDINGS = [Binding("escape", "cancel", "Cancel"),
                Binding("enter", "next_or_save", "Next / save", show=False, priority=True)]

    def __init__(self, waiting: list[str], rosters: dict[str, list[str]], rules: list[str], *,
                 refusal: str | None = None, previous: RelayRequest | None = None) -> None:
        super().__init__(classes="-loud" if refusal else "")
        self._waiting = waiting[:9]  # chosen with one digit each
        self._rosters = rosters
        self._rules = rules
        self._refusal = refusal
        self._previous = previous
        chosen = previous.role if previous is not None else None
        if chosen is None and len(self._waiting) == 1:
            chosen = self._waiting[0]
        self._chosen: str | None = chosen if chosen in self._waiting else None

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static("Record a relayed approval (given on a call or in chat)",
                         classes="form--title")
            with VerticalScroll():
                if self._refusal:
                    yield Label(Content(f"REFUSED: {self._refusal}"), classes="form--error",
                                id="refusal")
                for number, role in enumerate(self._waiting, start=1):
                    roster = ", ".join(self._rosters.get(role, [])) or "no roster"
                    yield Label(Content(f"  {number}  {role}  (roster: {roster})"))
                yield Label(self._prompt(), id="prompt")
                previous = self._previous
                yield Input(value=previous.relayed_from if previous else "",
                            placeholder="who gave it, exactly as on the roster",
                            id="relayed-from", disabled=self._chosen is None)
                yield Input(value=previous.evidence if previous else "",
                            placeholder="evidence: where and when it was given (recorded)",
                            id="evidence", disabled=self._chosen is None)
                yield Static(Content("The approval rules:\n" + "\n".join(
                    f"  · {rule}" for rule in self._rules)), classes="form--rules")
            yield Static("", classes="form--error", id="error")
            yield Static("digit = choose the role    Enter = next / save    Escape = cancel",
                         classes="form--hint")

    def on_mount(self) -> None:
        if self._chosen is not None:
            self.query_one("#relayed-from", Input).focus()

    def _prompt(self) -> Content:
        if self._chosen is None:
            return Content(f"Press 1–{len(self._waiting)} to choose the role.")
        return Content(f"{self._chosen}: who approved, and the evidence?")

    def on_key(self, event: events.Key) -> None:
        if self._chosen is not None or not event.character or not event.character.isdigit():
            return
        index = int(event.character) - 1
        if 0 <= index < len(self._waiting):
            event.stop()
            self._chosen = self._waiting[index]
            self.query_one("#prompt", Label).update(self._prompt())
            for field in self.query(Input):
                field.disabled = False
            self.query_one("#relayed-from", Input).focus()

    def action_next_or_save(self) -> None:
        if self._chosen is None:
            self.query_one("#error", Static).update(
                Content(f"Choose the role first: press 1–{len(self._waiting)}."))
            return
        who = self.query_one("#relayed-from", Input)
        evidence = self.query_one("#evidence", Input)
        if self.focused is who and not evidence.value.strip():
            self.set_focus(evidence)
            return
        # Read the values only after both boxes handled the keys already sent to them.
        who.call_later(lambda: evidence.call_later(self._save))

    def _save(self) -> None:
        if not self.is_attached or self.app.screen is not self or self._chosen is None:
            return  # cancelled meanwhile
        who = self.query_one("#relayed-from", Input)
        evidence = self.query_one("#evidence", Input)
        if not who.value.strip():
            self.query_one("#error", Static).update("Name who gave the approval.")
            self.set_focus(who)
            return
        if len(evidence.value.strip()) < MIN_REASON:
            self.query_one("#error", Static).update(Content(
                f"Say where the approval was given (at least {MIN_REASON} characters), e.g. "
                "'bridge call 22:14'."))
            self.set_focus(evidence)
            return
        self.dismiss(RelayRequest(self._chosen, who.value, evidence.value.strip()))

    def action_cancel(self) -> None:
        self.dismiss(None)
