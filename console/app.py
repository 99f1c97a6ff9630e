"""The Textual console: the commander's screen and the watcher's, from one code path.

Every pane renders from the store: a "store-watch" worker notices new commits through the
store's change feed (SQLite's ``PRAGMA data_version``, PostgreSQL's LISTEN/NOTIFY) and folds the
new events; the commander's actions go through the
:class:`~console.engine.Engine` in workers and come back the same way, as events. So a watcher
shows what the commander sees within a fraction of a second, and a restarted console resumes
exactly where it was.
"""

from __future__ import annotations

import contextlib
import copy
import queue
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from textual import events, on, work
from textual.actions import ActionParseResult
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal
from textual.content import Content
from textual.dom import DOMNode
from textual.geometry import Size
from textual.message import Message
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Static
from textual.worker import Worker, WorkerState, get_current_worker

from adapters.secrets import scrub
from console.actions import ACTIONS, BY_NAME, COMMANDER_ONLY, REPLAY_ONLY, palette_order
from console.model import Figures, format_incident_id, format_ts
from widgets.footer import SteadyFooter

if TYPE_CHECKING:
    # Type-only: the first frame is drawn before any of these is imported (they cost more
    # than Textual itself); each is imported where it is first used.
    from textual.driver import Driver
    from textual.timer import Timer

    from adapters.base import Clock
    from console import policy
    from console.config import Config
    from console.engine import Engine
    from console.heartbeat import Heartbeat
    from console.marks import Mark
    from console.model import Event
    from console.replay import Jump, Moment, Replay
    from console.screens.forms import NoteModal, OverrideModal, RelayRequest
    from console.state import IncidentState
    from console.store import ChainProblem, ChainWalk, ChangeFeed, Lease, RecordStore, TimelineRows
    from widgets.checklist import ChecklistPane
    from widgets.header import IncidentHeader
    from widgets.timeline import Timeline

COMMANDER = "COMMANDER"
WATCHING = "WATCHING"
REPLAY = "REPLAY"
#: How often a playing replay moves its clock (seconds of real time).
PLAY_TICK_S = 0.25
#: Longest a moment typed in the replay's time form holds the screen (see ``_hold_screen``).
HOLD_S = 0.2
#: Events the background chain verification checks between two looks at whether a replay's jump
#: is waiting to be read and drawn (it then waits: see ``_walk_chain``) ...
CHAIN_STEP = 2_000
#: ... and between two reports of how far it got.
CHAIN_REPORT = 20_000
#: The worker groups that run a commander's action (a dialog waits for them to land).
ACTION_GROUPS = frozenset({"canary-action", "rollback"})
#: New events pushed to the timeline in one snapshot at most; beyond it the timeline is reset
#: to its newest rows (a burst of thousands is read as a window, not one by one).
MAX_PUSH = 500


@dataclass
class StoreSnapshot:
    """What the store-watch worker read: the state, the timeline's new events (or its newest
    rows, on the first read), the graphs' samples, the lease."""

    events: list[Event]
    state: IncidentState | None  # None: nothing changed since the last snapshot
    samples: dict[str, list[tuple[float, float | None]]]
    lease: Lease | None
    rows: TimelineRows | None = None
    generation: int = 0
    #: each Mann-Whitney comparison of the stage, in words, from the recorded samples
    comparisons: dict[str, str] = field(default_factory=dict)
    #: the graphs' marks in their window: stage changes, approvals, overrides, the rollback
    marks: list[Mark] = field(default_factory=list)
    #: a replay's snapshot: the moment it shows (None: the live record)
    moment: Moment | None = None
    #: a replay's: the moment is the last there is (the end, or now on a live incident)
    at_end: bool = False
    #: a replay's: the newest event id of the whole record
    event_total: int = 0
    #: a replay's: how many moves its worker has applied so far
    moves: int = 0
    #: a replay's: the last moment there is (the close, or now on a live incident)
    end: datetime | None = None


class WarroomApp(App[int]):
    """The console for one incident."""

    def notify(self, message: str, *args: Any, **kwargs: Any) -> None:
        """Every toast goes through the one scrub: an adapter's error may quote a secret."""
        super().notify(scrub(message), *args, **kwargs)

    CSS_PATH = "app.tcss"
    TITLE = "warroom"
    ENABLE_COMMAND_PALETTE = True
    # Made from the one table of actions (console/actions.py): footer, palette and help too.
    BINDINGS: ClassVar[list[Any]] = [
        Binding(action.key, action.name, action.label, show=action.footer,
                tooltip=action.description)
        for action in ACTIONS
    ]

    class Snapshot(Message):
        def __init__(self, snapshot: StoreSnapshot) -> None:
            super().__init__()
            self.snapshot = snapshot

    class StoreTrouble(Message):
        """The store-watch could not read the database (``error``), or can again (None)."""

        def __init__(self, error: Exception | None) -> None:
            super().__init__()
            self.error = error

    class ChainChecked(Message):
        """The background verification got this far (``problem``: where the chain broke)."""

        def __init__(self, verified_to: int, checked: int, at_head: bool,
                     problem: ChainProblem | None, *, keyed: bool = False,
                     unverified: str = "") -> None:
            super().__init__()
            self.verified_to = verified_to
            self.checked = checked
            self.at_head = at_head
            self.problem = problem
            self.keyed = keyed  # the declaration says HMAC-SHA256
            self.unverified = unverified  # why only the links were checked (no key here)

    class PollDone(Message):
        def __init__(self, readings: list[dict[str, Any]]) -> None:
            super().__init__()
            self.readings = readings

    class LeaseLost(Message):
        """The heartbeat found the lease taken over: this console no longer commands."""

    class LeaseTrouble(Message):
        """The heartbeat cannot write the database (``error``), or can again (None)."""

        def __init__(self, error: Exception | None) -> None:
            super().__init__()
            self.error = error

    class Opened(Message):
        """The console's opening steps are done (config, record, adapters, engine)."""

        def __init__(self, parts: ConsoleParts) -> None:
            super().__init__()
            self.parts = parts

    class OpeningFailed(Message):
        """An opening step failed: the console closes and the launcher says why."""

        def __init__(self, error: BaseException) -> None:
            super().__init__()
            self.error = error

    #: Known once the console is open (at once, unless it opens behind its first frame).
    config: Config
    store_path: Path | str
    incident_id: int

    def __init__(self, *, store_path: Path | str | None, incident_id: int | None,
                 config: Config | None, clock: Clock,
                 engine: Engine | None = None, lease: Lease | None = None,
                 live: bool = True, export_dir: Path | None = None,
                 replay_at: datetime | None = None, replay_only: bool = False,
                 opening: Callable[[], ConsoleParts] | None = None) -> None:
        super().__init__()
        if store_path is not None:
            self.store_path = store_path
        if incident_id is not None:
            self.incident_id = incident_id
        if config is not None:
            self.config = config
        self.clock = clock
        self.engine = engine
        self.lease = lease
        # Opening behind the first frame (a commander's console on a terminal): the layout is
        # drawn first, the steps run in a thread once it is up, and the keys that act on the
        # incident are refused, in words, until they are done.
        self._opening = opening
        self.opening_thread: threading.Thread | None = None
        self.opening_error: BaseException | None = None
        self.opened_parts: ConsoleParts | None = None  # what the steps opened (to close)
        self._opened = False  # ... and applied here (the keys act from then on)
        commander = engine is not None or opening is not None
        self.mode = COMMANDER if commander else REPLAY if replay_only else WATCHING
        self.live = live
        self.export_dir = export_dir
        self._state: IncidentState | None = None
        self._reader: RecordStore | None = None
        self._feed: ChangeFeed | None = None
        self._samples: dict[str, list[tuple[float, float | None]]] = {}
        self._comparisons: dict[str, str] = {}
        self._marks: list[Mark] = []
        self._lease_seen: Lease | None = None
        self._heartbeat: Heartbeat | None = None
        self._readings: list[dict[str, Any]] = []
        self._last_export: Path | None = None
        self._stopping = threading.Event()  # set when the console closes: the loops end
        self._heap_frozen = False
        self._chain_walk: ChainWalk | None = None
        self._chain_at_head = False
        self._chain_verifying = False
        self._chain_problem: ChainProblem | None = None
        # Commander actions under way (in workers), and keys pressed meanwhile: a dialog is
        # built only once the action before it has landed, from the state it left.
        self._in_flight: set[Worker[None]] = set()
        self._note_forms: dict[Worker[None], NoteModal] = {}  # note dialogs awaiting their note
        self._advance_form: OverrideModal | None = None  # open, and following the state
        self._deferred: list[str] = []
        # Replay (``warroom replay``, or ``r`` on a watcher): the moment shown, play and speed.
        # Moves are queued to one worker that applies them in order (a burst of keys is never
        # read from a stale moment) and reads the record as it was.
        self.replay_only = replay_only
        self._replay_at = replay_at
        self._moment: Moment | None = None
        self._replay_end = False
        self._replay_total = 0
        self._replay_until: datetime | None = None  # the end of what there is to replay
        self._play_on = False
        self._play_timer: Timer | None = None  # exists only while a replay plays
        self._speed = 0  # index into SPEEDS
        self._played_at = 0.0  # monotonic time of the last move of a playing clock
        self._replay_moves: queue.Queue[tuple[Any, ...] | None] = queue.Queue()
        self._replay_worker: Worker[None] | None = None
        self._chain_message: WarroomApp.ChainChecked | None = None
        self.replay_moves_asked = 0  # moves queued (UI thread) ...
        self.replay_moves_shown = 0  # ... and shown (what a test waits for)
        # Set while no replay move is waiting to be read or drawn: the chain's background
        # verification (CPU and the GIL for seconds on a long record) waits for it.
        self._replay_quiet = threading.Event()
        self._replay_quiet.set()
        self._held_for = 0  # the move a held screen waits for (0: not held)
        self._hold_timer: Timer | None = None
        self._relay_refusal: RelayRequest | None = None  # shown in the approvals pane
        self.title = "warroom" if incident_id is None else (
            f"warroom {format_incident_id(incident_id)}")

    @property
    def state(self) -> IncidentState:
        """The folded incident shown (an empty one until the first read)."""
        state = self._state
        if state is None:  # imported when first needed: never before the first frame
            from console.state import IncidentState

            state = self._state = IncidentState()
        return state

    @state.setter
    def state(self, state: IncidentState) -> None:
        self._state = state

    @property
    def opening(self) -> bool:
        """True while the console opens behind its first frame (nothing to act on yet)."""
        return self._opening is not None and not self._opened

    # --- layout ----------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        opening = self._opening is not None
        yield _opening_header(self.mode) if opening else self._header()
        yield from self._layout(opening=opening)
        yield SteadyFooter()

    def _header(self) -> IncidentHeader:
        from widgets.header import IncidentHeader

        return IncidentHeader(mode=self.mode, now=self.clock.now(), id="header")

    def _layout(self, *, opening: bool) -> list[Widget]:
        """The panes, in their rows. While the console opens, the same layout with every pane
        titled and saying so: the panes themselves (their styles, their component classes)
        are mounted once there is an incident to show."""
        if opening:
            top: list[Widget] = [_opening_pane("Canary", "canary"),
                                 _opening_pane("Rollback", "rollback")]
            mid: list[Widget] = [_opening_pane("Approvals", "approvals"),
                                 _opening_pane("Guardrails", "guardrails")]
            timeline: Widget = _opening_pane("Timeline", "timeline")
            graphs: list[Widget] = []
        else:
            # The panes' modules are imported here, after the first frame when it opens behind
            # one: none of them is needed to draw the opening layout.
            from widgets.approvals import ApprovalsPane
            from widgets.canary import CanaryPane
            from widgets.checklist import ChecklistPane
            from widgets.graphs import MetricGraph
            from widgets.guardrails import GuardrailsPane
            from widgets.rollback import RollbackPane
            from widgets.timeline import Timeline

            top = [CanaryPane(id="canary"), RollbackPane(id="rollback")]
            mid = [ApprovalsPane(id="approvals"), ChecklistPane(id="checklist"),
                   GuardrailsPane(id="guardrails")]
            timeline = Timeline(id="timeline")
            graphs = [MetricGraph(id=f"graph-{_css_id(g.name)}") for g in self.config.guardrails]
        return [Horizontal(*top, id="row-top"), Horizontal(*mid, id="row-mid"),
                Horizontal(*graphs, id="graphs"), timeline]

    def on_mount(self) -> None:
        # Stopped and continued (SIGTSTP, SIGCONT): the terminal's screen was given back while
        # stopped, so everything is drawn again, not only what changes next.
        self.app_resume_signal.subscribe(self, self._drawn_again)
        if self._opening is not None:
            # The first frame: the layout, every pane titled, nothing pretended. The opening
            # steps start once it is on the screen (on_ready).
            return
        self._panes_mounted()
        self._configure()
        self._go_live()

    def _drawn_again(self, _app: App[Any]) -> None:
        self.refresh(layout=True)

    def _panes_mounted(self) -> None:
        from widgets.approvals import ApprovalsPane
        from widgets.canary import CanaryPane
        from widgets.checklist import ChecklistPane
        from widgets.guardrails import GuardrailsPane
        from widgets.header import IncidentHeader
        from widgets.rollback import RollbackPane
        from widgets.timeline import Timeline

        self.header = self.query_one(IncidentHeader)
        self.canary = self.query_one(CanaryPane)
        self.rollback_pane = self.query_one(RollbackPane)
        self.approvals = self.query_one(ApprovalsPane)
        self.checklist = self.query_one(ChecklistPane)
        self.guardrails_pane = self.query_one(GuardrailsPane)
        self.timeline = self.query_one(Timeline)
        self._apply_size_class()
        self.timeline.focus()

    def on_ready(self) -> None:
        opening = self._opening
        if opening is None or self.opening_thread is not None:
            return

        def run() -> None:
            try:
                parts = opening()
            except BaseException as error:  # said by the launcher once the terminal is back
                self.opening_error = error
                self.post_message(self.OpeningFailed(error))
                return
            self.opened_parts = parts
            self.post_message(self.Opened(parts))

        self.opening_thread = threading.Thread(target=run, name="console-opening", daemon=True)
        self.opening_thread.start()

    @on(Opened)
    async def _on_opened(self, message: Opened) -> None:
        parts = message.parts
        self._opened = True
        self.config = parts.config
        self.store_path = parts.store_path
        self.incident_id = parts.incident_id
        self.engine = parts.engine
        self.lease = parts.lease
        self.title = f"warroom {format_incident_id(parts.incident_id)}"
        # The opening layout gives way to the panes, in the same places.
        await self.query("#header, #row-top, #row-mid, #graphs, #timeline").remove()
        await self.mount_all([self._header(), *self._layout(opening=False)],
                             before=self.query_one(SteadyFooter))
        self._panes_mounted()
        self._configure()
        self._go_live()
        self.refresh_bindings()

    @on(OpeningFailed)
    def _on_opening_failed(self, message: OpeningFailed) -> None:
        # The launcher prints the one line (the same as before a terminal is taken) and exits
        # with the same status, once Textual has given the terminal back.
        self.exit(return_code=2)

    def _configure(self) -> None:
        """What the config decides on screen: the badges, one graph per guardrail."""
        config = self.config
        self.header.simulated = tuple(config.simulated())
        self.header.environment = (config.console.environment, config.console.badge_colour())
        from widgets.graphs import MetricGraph

        graphs = {g.name: self.query_one(f"#graph-{_css_id(g.name)}", MetricGraph)
                  for g in config.guardrails}
        self.graphs = graphs
        # A class, not an inline style: the layout's own rules (console/app.tcss) must win.
        self.screen.set_class(not graphs, "-no-graphs")
        self._units = {g.name: (g.unit, g.scale) for g in config.guardrails}

    def _go_live(self) -> None:
        """Start reading the record (and, for a commander, the heartbeat and the engine)."""
        if not self.replay_only:
            self._watch_store()
        if self.live:
            if not self.replay_only:
                self._store_watch_loop()
            self.set_interval(1.0, self._tick)
        if self.engine is not None and self.live:
            self._start_heartbeat()
            self._startup()
        if self.replay_only:
            self._enter_replay(self._replay_at)

    def on_resize(self, event: events.Resize) -> None:
        self._apply_size_class(event.size)

    def get_driver_class(self) -> type[Driver]:
        """Textual's driver for this terminal, except that on Linux and macOS its input thread
        sleeps until a key comes instead of waking ten times a second (console/driver.py).
        A driver chosen from the environment (the browser's, under ``warroom serve``) stays."""
        from textual.drivers.linux_driver import LinuxDriver

        driver = super().get_driver_class()
        if driver is LinuxDriver:
            from console.driver import QuietLinuxDriver
            return QuietLinuxDriver
        return driver

    def get_default_screen(self) -> Screen[Any]:
        """The main screen, born with its size classes: setting them after the first styling
        would style every pane twice before the first frame."""
        classes = _size_classes(self.size)
        if self._opening is not None or not self.config.guardrails:
            classes.append("-no-graphs")
        return Screen(id="_default", classes=" ".join(classes))

    def _apply_size_class(self, size: Size | None = None) -> None:
        """One height band and the width class on the main screen (console/app.tcss), from the
        new size (the event's: ``self.size`` still says the old one while it is handled)."""
        wanted = _size_classes(size or self.size)
        screen = self.screen_stack[0] if self.screen_stack else self.screen
        classes = {name: name in wanted for name in (*_BANDS, "-wide")}
        screen.update_classes(classes)  # one restyle of the screen, none if the band is the same

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        """The command palette offers the console's actions too, from the table (the
        commander's only to them), the safe ones first and the dangerous last."""
        for action in palette_order():
            if self.opening:
                break  # nothing to act on yet
            if action.name != "quit" and self.check_action(action.name, ()):
                title = f"⚠ {action.label}" if action.danger else action.label
                yield SystemCommand(title, action.description,
                                    getattr(self, f"action_{action.name}"))
        for command in super().get_system_commands(screen):
            # in a browser (`warroom serve`) a screenshot would be a file delivered through the
            # server, which relays none
            if not (self.is_web and command.title == "Screenshot"):
                yield command

    async def run_action(self, action: str | ActionParseResult,
                         default_namespace: DOMNode | None = None,
                         namespaces: Mapping[str, DOMNode] | None = None) -> bool:
        """While the console opens, a key that acts on (or reads) the incident is refused in
        words: there is no engine, no record and no config to act with yet."""
        if self.opening and isinstance(action, str) and default_namespace in (None, self):
            name = action.partition("(")[0]
            if name in BY_NAME and name not in ("help", "quit"):
                self.notify(f"Still opening the record: {BY_NAME[name].label} works once the "
                            "panes show the incident.", severity="warning", timeout=4)
                return True
        return await super().run_action(action, default_namespace, namespaces)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "export" and self.is_web:
            return False  # `warroom serve`: a browser writes no file on the server's disk
        if action in REPLAY_ONLY:
            return self.mode == REPLAY
        if action == "replay":  # a watcher enters (and leaves) a replay; a commander acts
            return self.mode == WATCHING or (self.mode == REPLAY and not self.replay_only)
        return not (action in COMMANDER_ONLY and self.mode != COMMANDER)

    def _when_idle(self, name: str) -> bool:
        """False, and the key kept for later, while a commander action is still landing: the
        dialog it opens must be built from the state that action leaves, not from before it."""
        if self._in_flight:
            self._deferred.append(name)
            return False
        return True

    # --- reading the store (one path for commander and watchers) ---------------------------------

    def _watch_store(self) -> None:
        """Read what changed in the store now, off the UI thread (after an action lands, after a
        filter reset, and in tests). The timeline's position and filter are taken here, on the
        UI thread, so the read fetches exactly what the timeline lacks."""
        timeline = self.timeline
        self._read_store(timeline.last_event_id, timeline.kinds, timeline.generation)

    def _open_reader(self) -> RecordStore:
        """A read-only connection to the record (SQLite file or PostgreSQL)."""
        from console.store import open_store
        return open_store(self.store_path, readonly=True,
                          password_env=self.config.store.password_env)

    def _reader_store(self) -> RecordStore:
        reader = self._reader
        if reader is None:  # (re)open off the UI thread: first start, or after a failure
            reader = self._open_reader()
            try:  # listening starts before the first read, so no commit falls in between
                self._feed = reader.change_feed(self.incident_id)
            except BaseException:
                reader.close()
                raise
            self._reader = reader
        return reader

    @work(thread=True, group="store-watch", exit_on_error=False)
    def _read_store(self, after_id: int | None, kinds: frozenset[str] | None,
                    generation: int) -> None:
        self._read_once(self._reader_store(), after_id, kinds, generation)

    @work(thread=True, group="store-watch-loop", exit_on_error=False)
    def _store_watch_loop(self) -> None:
        """The live console's watch on the store, through its change feed: SQLite's
        ``PRAGMA data_version`` when the kernel says the record's files were written (or every
        0.1 s where it cannot say), PostgreSQL's LISTEN/NOTIFY (woken at the commit). Only a
        commit by another connection leads to a read and a message, so an idle console wakes
        for nothing, and reads, sends and renders nothing."""
        worker = get_current_worker()
        trouble = False
        while not worker.is_cancelled and not self._stopping.is_set():
            try:
                reader = self._reader_store()
                feed = self._feed
                if feed is None or not feed.wait(feed.patience, self._stopping):
                    continue
                timeline = self.timeline  # plain attributes: read as they are now
                self._read_once(reader, timeline.last_event_id, timeline.kinds,
                                timeline.generation)
                if trouble:
                    trouble = False
                    self.post_message(self.StoreTrouble(None))
            except Exception as error:  # a locked or briefly unreadable file: keep trying
                if not trouble:
                    trouble = True
                    self.post_message(self.StoreTrouble(error))
                self._close_reader()  # start over with a fresh connection
                self._stopping.wait(1.0)

    def _close_reader(self) -> None:
        for connection in (self._feed, self._reader):
            if connection is not None:
                with contextlib.suppress(Exception):
                    connection.close()
        self._feed = None
        self._reader = None

    def _read_once(self, reader: RecordStore, after_id: int | None, kinds: frozenset[str] | None,
                   generation: int) -> None:
        """Read the state, the timeline's new events (or its newest rows, the first time), the
        graphs' samples and the lease, and post them as one snapshot."""
        from console.marks import MARK_KINDS, MAX_MARKS, marks
        if self._feed is not None:
            self._feed.mark()
        state = reader.state(self.incident_id)  # a checkpoint and the tail, not the history
        events: list[Event] = []
        rows: TimelineRows | None = None
        if after_id is None:
            rows = reader.timeline_rows(self.incident_id, kinds, _timeline_page())
        else:
            events = reader.events(self.incident_id, after_id=after_id, limit=MAX_PUSH + 1)
            if len(events) > MAX_PUSH:
                events = []
                rows = reader.timeline_rows(self.incident_id, kinds, _timeline_page())
        since = self.clock.now().timestamp() - self.config.monitoring.graph_window_s
        samples = {
            series: reader.samples(self.incident_id, series, since)
            for g in self.config.guardrails
            for series in (f"{g.name}/canary", f"{g.name}/baseline", f"{g.name}/limit",
                           f"{g.name}/warn", f"{g.name}/evidence")
        }
        marked = marks(reader.events_tail(self.incident_id, MARK_KINDS, MAX_MARKS), since)
        self.post_message(self.Snapshot(StoreSnapshot(
            events=events, state=state, samples=samples, lease=reader.lease(self.incident_id),
            rows=rows, generation=generation,
            comparisons=self._comparisons_of(reader, state), marks=marked)))

    def _comparisons_of(self, reader: RecordStore, state: IncidentState,
                        now: datetime | None = None) -> dict[str, str]:
        """Each configured Mann-Whitney comparison, from the stage's recorded samples by the
        engine's own function: what the commander's poll judged by, on every console (and in a
        replay, as of its moment)."""
        from console.guardrails import compare, stage_samples

        comparisons: dict[str, str] = {}
        now = now or self.clock.now()
        for guardrail in self.config.guardrails:
            if guardrail.mann_whitney is None:
                continue
            canary, baseline = stage_samples(
                lambda series, since: reader.samples(self.incident_id, series, since),
                state, guardrail.name, now)
            comparison = compare(guardrail, canary, baseline)
            if comparison is not None and state.canary_percent > 0:
                comparisons[guardrail.name] = comparison.words
        return comparisons

    @on(StoreTrouble)
    def _store_trouble_changed(self, message: StoreTrouble) -> None:
        if message.error is None:
            self.notify("The incident database is readable again.", timeout=5)
        else:  # said once, not every tenth of a second
            self.notify(f"Cannot read the incident database: {message.error}; retrying.",
                        severity="error", timeout=20, markup=False)

    @on(Snapshot)
    def _on_snapshot(self, message: Snapshot) -> None:
        snapshot = message.snapshot
        if (snapshot.moment is not None) != (self.mode == REPLAY):
            return  # a live read that lands during a replay, or a replay's after it ended
        if not self._heap_frozen:
            self._heap_frozen = True
            self.call_after_refresh(self._freeze_heap)  # once the first reading is shown
        if snapshot.moment is not None:
            self._show_moment(snapshot)
            return
        self._lease_seen = snapshot.lease
        # Snapshots are read by several workers: never go back to an older state.
        if snapshot.state is not None and (
                snapshot.state.last_event_id >= self.state.last_event_id):
            self.state = snapshot.state
            rows = snapshot.rows
            if rows is not None and snapshot.generation == self.timeline.generation:
                self.timeline.reset(rows.row_total, rows.event_total, rows.tail,
                                    up_to_id=rows.up_to_id)
            elif snapshot.events:
                self.timeline.append_events(snapshot.events)
            # Verification starts once the first rows are on screen (opening never waits for
            # it), then follows the new events as they arrive.
            if self._chain_walk is None or (self._chain_at_head and not self._chain_verifying):
                self._verify_chain()
            self._samples = snapshot.samples
            self._comparisons = snapshot.comparisons
            self._marks = snapshot.marks
            self._render_panes()
            self._render_graphs()
        self._render_header()

    # --- the chain, verified in the background: opening never waits for it ---------------------

    def _verify_chain(self) -> None:
        if self._chain_problem is not None or self._chain_verifying:
            return
        self._chain_verifying = True
        if not self._chain_at_head:
            self.timeline.chain = "verifying chain…"
        self._walk_chain()

    @work(thread=True, group="chain-verify", exit_on_error=False)
    def _walk_chain(self) -> None:
        from console.store import ChainWalk
        walk = self._chain_walk
        if walk is None:  # its own connection: a long walk never holds up the store-watch
            walk = self._chain_walk = ChainWalk(self._open_reader(),
                                                self.incident_id)
        reported = walk.checked
        while True:
            # A replay's jump goes first: a person waits for it, not for the verification,
            # which would take half the time of each jump it overlaps (it holds the GIL
            # between its reads). Bounded: a jump that is never drawn delays it 0.5 s a step.
            self._replay_quiet.wait(0.5)
            if self._stopping.is_set():
                return
            at_head = walk.step(CHAIN_STEP)
            if not at_head and walk.checked - reported < CHAIN_REPORT:
                continue
            reported = walk.checked
            checker = walk.checker
            self.post_message(self.ChainChecked(walk.last_id, walk.checked, at_head,
                                                walk.problem, keyed=checker.keyed,
                                                unverified=checker.unverified))
            if at_head:
                return

    @on(ChainChecked)
    def _chain_checked(self, message: ChainChecked) -> None:
        problem = message.problem
        if message.at_head:
            self._chain_verifying = False
            self._chain_at_head = True
        self._chain_message = message
        if self.mode == REPLAY:
            self._show_replay_chain()
            if problem is None or problem.event_id is None or (
                    self._moment is not None and problem.event_id > self._moment.event_id):
                return  # a break after the moment shown is not shown yet
        if problem is None:
            self.timeline.chain = _chain_words(message)
            return
        if self._chain_problem is not None:
            return
        self._chain_problem = problem
        where = f"#{problem.event_id}" if problem.event_id is not None else "the record"
        self.timeline.chain = f"CHAIN BROKEN at {where} — the record was edited"
        self.header.chain_broken_at = where
        self.notify(f"CHAIN BROKEN at {where} — the record was edited: {problem.message}. "
                    "The console keeps working (a rollback is never blocked); the break is "
                    "recorded.", title="Record integrity", severity="error", timeout=60,
                    markup=False)
        if self.engine is not None:
            self._record_chain_break(problem, message.verified_to)

    @work(thread=True, group="canary-action", exit_on_error=False)
    def _record_chain_break(self, problem: ChainProblem, verified_to: int) -> None:
        engine = self.engine
        if engine is not None:
            engine.record_chain_break(problem.event_id, problem.message, verified_to)

    # --- the timeline's window: pages and filters are queries, read off the UI thread ------------

    # The timeline's and the checklist's messages are handled by name (on_<pane>_<message>), not
    # with @on(Pane.Message): @on would import every pane's module before the first frame.

    def on_timeline_rows_wanted(self, message: Timeline.RowsWanted) -> None:
        self._read_rows(message.generation, message.kinds, message.offset, message.limit)

    @work(thread=True, group="timeline-rows", exit_on_error=False)
    def _read_rows(self, generation: int, kinds: frozenset[str] | None, offset: int,
                   limit: int) -> None:
        events = self._reader_store().events_page(self.incident_id, kinds, offset, limit)
        self.call_from_thread(self.timeline.fill, generation, offset, events)

    def on_timeline_filter_changed(self, message: Timeline.FilterChanged) -> None:
        if self.mode == REPLAY:
            self._replay_move(("refresh",))
            return
        self._read_filter(self.timeline.generation, self.timeline.kinds, message.top_event_id)

    @work(thread=True, group="timeline-rows", exit_on_error=False)
    def _read_filter(self, generation: int, kinds: frozenset[str] | None,
                     top_event_id: int | None) -> None:
        rows = self._reader_store().timeline_rows(self.incident_id, kinds, _timeline_page(),
                                                  anchor_id=top_event_id)
        self.call_from_thread(self._apply_filter_rows, generation, rows)

    def _apply_filter_rows(self, generation: int, rows: TimelineRows) -> None:
        if generation != self.timeline.generation:
            return  # the filter changed again meanwhile
        self.timeline.reset(rows.row_total, rows.event_total, rows.tail,
                            anchor_row=rows.anchor_row, up_to_id=rows.up_to_id)
        # Events pushed after this snapshot was read were dropped with the old rows: read them.
        self._read_store(rows.up_to_id, self.timeline.kinds, generation)

    def _tick(self) -> None:
        """The clock moves: only what shows a clock is refreshed — the header (elapsed, time
        left, the heartbeat's age), the hold countdown while a stage holds, the verification's
        clocks while a rollback runs. Every other pane waits for an event."""
        state = self.state
        if state.declared_ts is None:
            return
        now = self._now()
        header = self.header
        header.now = now
        lease = self._lease_seen
        if self.mode == WATCHING and lease is not None:
            header.heartbeat_age_s = max(0.0, (now - lease.heartbeat_ts).total_seconds())
        can_act = self.mode == COMMANDER
        if state.current_stage is not None and not state.rolled_back and not state.closed:
            blocks = [(b.code, b.words, b.overridable) for b in self._blocks()]
            self.canary.show(state, now, blocks, can_act=can_act)
        if state.rollback_active:
            self.rollback_pane.show(state, now, can_act=can_act,
                                    verify_timeout_s=self.config.rollback.verify_timeout_s)
        self._follow_advance_form()

    def _now(self) -> datetime:
        moment = self._moment
        if self.mode == REPLAY and moment is not None:
            return moment.clock  # a replay's panes show the clock of its moment
        return self.clock.now()

    def _blocks(self) -> list[policy.Block]:
        from console import policy
        return policy.advance_blocks(self.state, self._now())

    def _render_header(self) -> None:
        header = self.header
        header.state = self.state
        header.now = self._now()
        header.mode = self.mode
        lease = self._lease_seen
        if self.mode == WATCHING and lease is not None:
            header.heartbeat_age_s = max(0.0, (self._now() - lease.heartbeat_ts).total_seconds())
        else:
            header.heartbeat_age_s = None
        header.replay_clock = self._replay_clock() if self.mode == REPLAY else None

    def _render_panes(self) -> None:
        state = self.state
        if state.declared_ts is None:
            return
        now = self._now()
        can_act = self.mode == COMMANDER
        blocks = [(b.code, b.words, b.overridable) for b in self._blocks()]
        self.canary.show(state, now, blocks, can_act=can_act)
        self.rollback_pane.show(state, now, can_act=can_act,
                                verify_timeout_s=self.config.rollback.verify_timeout_s)
        self.approvals.show(state, now)
        refused = self._relay_refusal
        if refused is not None and refused.role not in state.missing_roles:
            self._clear_relay_refusal()  # the role was approved or waived meanwhile
        judged = state.canary_percent > 0 and not state.rolled_back and not state.closed
        self.guardrails_pane.show(state, now, units=self._units, figures=self._figures(),
                                  poll_interval_s=self.config.monitoring.poll_interval_s
                                  if judged else None,
                                  needed={g.name: g.min_evidence for g in self.config.guardrails
                                          if g.evidence_query and g.min_evidence > 0},
                                  comparisons=self._comparisons)
        checklist_on = state.checklist_active
        appears = checklist_on and not self.checklist.display
        self.checklist.display = checklist_on
        self.approvals.display = not checklist_on
        if checklist_on:
            self.checklist.show(state, now, can_act=can_act)
            from console.screens.checklist import ChecklistModal

            if isinstance(self.screen, ChecklistModal):
                self.screen.show(state, now)
        if appears and can_act and state.checklist_open:
            self.notify("The post-emergency checklist is open: press k to record each item "
                        "(passed / failed / waived).", title="Checklist", timeout=15)
        self._follow_advance_form()

    def _figures(self) -> dict[str, Figures]:
        """Each guardrail's newest samples: the one road every pane, graph and detail view
        takes to a figure (the status comes from the recorded events)."""
        return {
            g.name: Figures.newest(self._samples.get(f"{g.name}/canary", []),
                                   self._samples.get(f"{g.name}/baseline", []),
                                   self._samples.get(f"{g.name}/limit", []), g.max,
                                   warn=self._samples.get(f"{g.name}/warn", []),
                                   evidence=self._samples.get(f"{g.name}/evidence", []))
            for g in self.config.guardrails
        }

    def _render_graphs(self) -> None:
        figures = self._figures()
        for guardrail in self.config.guardrails:
            graph = self.graphs[guardrail.name]
            scale = guardrail.scale

            def scaled(points: list[tuple[float, float | None]],
                       factor: float = scale) -> list[tuple[float, float | None]]:
                return [(ts, None if v is None else v * factor) for ts, v in points]

            limit = figures[guardrail.name].limit
            warn = figures[guardrail.name].warn
            graph.set_series(guardrail.name, guardrail.unit,
                             scaled(self._samples.get(f"{guardrail.name}/canary", [])),
                             scaled(self._samples.get(f"{guardrail.name}/baseline", [])),
                             None if limit is None else limit * scale,
                             None if warn is None else warn * scale, marks=self._marks)

    # --- replay: the console as it was at any moment, from the record alone ---------------------

    def _enter_replay(self, at: datetime | None = None) -> None:
        """Show the record as it was at ``at`` (None: its end, or now on a live incident),
        paused. Nothing acts: the commander's keys are off, there is no engine."""
        self.mode = REPLAY
        self._playing = False
        self.refresh_bindings()
        if self._replay_worker is None:
            self._replay_worker = self._replay_loop()
        self._replay_move(("at", at))
        self._render_header()

    def _leave_replay(self) -> None:
        """Back to watching the live record: its newest rows and state, read now."""
        self.mode = WATCHING
        self._playing = False
        self._moment = None
        self._replay_quiet.set()
        self.refresh_bindings()
        self._read_store(None, self.timeline.kinds, self.timeline.generation)
        self._render_header()
        if self._chain_message is not None:
            self._chain_checked(self._chain_message)

    def _replay_move(self, move: tuple[Any, ...]) -> None:
        self.replay_moves_asked += 1
        self._replay_quiet.clear()
        self._replay_moves.put(move)

    def _hold_screen(self) -> None:
        """Draw a typed jump once. Closing the form repaints and lays out the whole screen,
        and the moment it asked for, read a few milliseconds later, would draw it again: held
        until the moment is shown (at most HOLD_S), the form's close, the layout and the moment
        are one frame — and the read is not slowed by the drawing of a screen about to go."""
        if not self._held_for:
            self._begin_batch()
            self._hold_timer = self.set_timer(HOLD_S, self._release_screen)
        self._held_for = self.replay_moves_asked

    def _release_screen(self) -> None:
        if not self._held_for:
            return
        self._held_for = 0
        if self._hold_timer is not None:
            self._hold_timer.stop()
            self._hold_timer = None
        self._end_batch()
        self.screen.check_idle()  # what waited is drawn at the next frame

    def _replay_drawn(self) -> None:
        """After the screen was drawn: no move waiting any more? Then the verification may go on."""
        if self.replay_moves_shown >= self.replay_moves_asked:
            self._replay_quiet.set()

    @work(thread=True, group="replay", exit_on_error=False)
    def _replay_loop(self) -> None:
        """Apply the queued moves in order (those queued meanwhile all at once) and post the
        record as it was at the resulting moment."""
        from console.replay import Replay
        replay = Replay(self._open_reader(), self.incident_id)
        moment: Moment | None = None
        applied = 0
        try:
            while not self._stopping.is_set():
                move = self._replay_moves.get()  # closing puts None: no need to wake and look
                if move is None:
                    return
                moves = [move]
                while True:
                    try:
                        more = self._replay_moves.get_nowait()
                    except queue.Empty:
                        break
                    if more is None:
                        return
                    moves.append(more)
                at_end = False
                for one in moves:
                    moment, at_end = self._apply_move(replay, moment, one)
                applied += len(moves)
                if moment is not None:
                    timeline = self.timeline
                    snapshot = self._replay_snapshot(replay, moment, timeline.kinds,
                                                     timeline.generation)
                    snapshot.moves = applied
                    snapshot.at_end = at_end
                    self.post_message(self.Snapshot(snapshot))
        finally:
            self._replay_quiet.set()
            replay.store.close()

    def _apply_move(self, replay: Replay, moment: Moment | None,
                    move: tuple[Any, ...]) -> tuple[Moment, bool]:
        """The moment a move leads to, and whether it is the end (a clock asked for at or past
        the end — now, on a live incident — stops there)."""
        now = self.clock.now()
        end = replay.end(now)
        what = move[0]
        if what in ("at", "clock"):
            wanted = move[1] or end
            return replay.at(wanted, now), wanted >= end
        if moment is None:
            moment = replay.at(end, now)
        if what == "jump":
            moment = replay.jump(moment, move[1], forward=move[2]) or moment
        return moment, moment.clock >= end  # "refresh": the same moment, read again

    def _replay_snapshot(self, replay: Replay, moment: Moment, kinds: frozenset[str] | None,
                         generation: int) -> StoreSnapshot:
        """What the console showed at ``moment``: the state as of its event, the timeline up to
        it, the graphs' samples and marks up to its clock."""
        from console.marks import MARK_KINDS, MAX_MARKS, marks
        reader = replay.store
        state = replay.state(moment)
        rows = reader.timeline_rows(self.incident_id, kinds, _timeline_page(),
                                    up_to_id=state.last_event_id,
                                    event_count=state.event_count)
        until = moment.clock.timestamp()
        since = until - self.config.monitoring.graph_window_s
        samples = {
            series: reader.samples(self.incident_id, series, since, until)
            for g in self.config.guardrails
            for series in (f"{g.name}/canary", f"{g.name}/baseline", f"{g.name}/limit",
                           f"{g.name}/warn", f"{g.name}/evidence")
        }
        marked = marks(reader.events_tail(self.incident_id, MARK_KINDS, MAX_MARKS,
                                          up_to_id=moment.event_id), since, until)
        return StoreSnapshot(
            events=[], state=state, samples=samples, lease=None, rows=rows,
            generation=generation, comparisons=self._comparisons_of(reader, state, moment.clock),
            marks=marked, moment=moment, event_total=replay.last_event_id(),
            end=replay.end(self.clock.now()))

    def _show_moment(self, snapshot: StoreSnapshot) -> None:
        """Draw a replay's moment: every pane from its state, the timeline up to it."""
        moment = snapshot.moment
        assert moment is not None and snapshot.state is not None
        self._moment = moment
        self.replay_moves_shown = snapshot.moves
        self._replay_end = snapshot.at_end
        self._replay_total = snapshot.event_total
        self._replay_until = snapshot.end
        if snapshot.at_end and self._playing:
            self._playing = False
            self.notify("Replay reached the end of the record (now, on a live incident).",
                        timeout=4)
        self.state = snapshot.state
        rows = snapshot.rows
        if rows is not None and snapshot.generation == self.timeline.generation:
            self.timeline.reset(rows.row_total, rows.event_total, rows.tail,
                                up_to_id=rows.up_to_id)
        if self._chain_walk is None:
            self._verify_chain()
        self._show_replay_chain()
        self._samples = snapshot.samples
        self._comparisons = snapshot.comparisons
        self._marks = snapshot.marks
        self._render_panes()
        self._render_graphs()
        self._render_header()
        if self._held_for and snapshot.moves >= self._held_for:
            self._release_screen()
        self.call_after_refresh(self._replay_drawn)

    def _show_replay_chain(self) -> None:
        """The chain as a watcher saw it at the moment shown: verified to the moment's event
        once the background walk has passed it."""
        message, moment = self._chain_message, self._moment
        if moment is None:
            return
        if message is None or (message.verified_to < moment.event_id
                               and message.problem is None):
            self.timeline.chain = "verifying chain…"
            return
        if message.problem is not None and message.problem.event_id is not None \
                and message.problem.event_id <= moment.event_id:
            where = f"#{message.problem.event_id}"
            self.timeline.chain = f"CHAIN BROKEN at {where} — the record was edited"
            return
        shown = copy.copy(message)
        shown.verified_to, shown.at_head = moment.event_id, True
        self.timeline.chain = _chain_words(shown)

    def _replay_clock(self) -> tuple[str, str]:
        from console.replay import SPEEDS, clock_words
        moment = self._moment
        if moment is None:
            return ("replay: reading the record…", "…")
        start = self.state.declared_ts or moment.clock
        speed = SPEEDS[self._speed]
        long = clock_words(moment, start, speed, self._playing, self._replay_total or None)
        brief = f"{moment.clock:%H:%M:%S} " + (f"▶ {speed}×" if self._playing else "paused")
        return long, brief

    @property
    def _playing(self) -> bool:
        return self._play_on

    @_playing.setter
    def _playing(self, playing: bool) -> None:
        """A playing replay's clock ticks on a timer that exists only while it plays: a paused
        replay, a watcher and a commander wake for nothing (on a console that does not run
        live, tests move the clock themselves)."""
        if playing == self._play_on:
            return
        self._play_on = playing
        if playing and self.live:
            self._play_timer = self.set_interval(PLAY_TICK_S, self._play_tick)
        elif self._play_timer is not None:
            self._play_timer.stop()
            self._play_timer = None

    def _play_tick(self) -> None:
        """A playing replay's clock moves at its speed (its events land as their time comes)."""
        from console.replay import SPEEDS, Moment
        if self.mode != REPLAY or not self._playing or self._moment is None:
            return
        now = time.monotonic()
        elapsed, self._played_at = now - self._played_at, now
        clock = self._moment.clock + timedelta(seconds=elapsed * SPEEDS[self._speed])
        self._moment = Moment(self._moment.event_id, clock)  # shown at once; read below
        self._replay_move(("clock", clock))
        self._render_header()

    def action_replay(self) -> None:
        if self.mode == REPLAY:
            if not self.replay_only:
                self._leave_replay()
            return
        if self.mode == WATCHING:
            self._enter_replay(self.clock.now())

    def action_replay_play(self) -> None:
        if self._replay_end and not self._playing:
            self.notify("At the end of the record: step back or jump first.", timeout=4)
            return
        self._playing = not self._playing
        self._played_at = time.monotonic()
        self._render_header()

    def action_replay_faster(self) -> None:
        from console.replay import SPEEDS
        self._speed = min(len(SPEEDS) - 1, self._speed + 1)
        self._render_header()

    def action_replay_slower(self) -> None:
        self._speed = max(0, self._speed - 1)
        self._render_header()

    def _jump(self, what: Jump, forward: bool) -> None:
        self._playing = False
        self._replay_move(("jump", what, forward))

    def action_replay_next_event(self) -> None:
        self._jump("event", True)

    def action_replay_previous_event(self) -> None:
        self._jump("event", False)

    def action_replay_next_stage(self) -> None:
        self._jump("stage", True)

    def action_replay_previous_stage(self) -> None:
        self._jump("stage", False)

    def action_replay_next_breach(self) -> None:
        self._jump("breach", True)

    def action_replay_previous_breach(self) -> None:
        self._jump("breach", False)

    def action_replay_next_action(self) -> None:
        self._jump("action", True)

    def action_replay_previous_action(self) -> None:
        self._jump("action", False)

    def action_replay_goto(self) -> None:
        from console.replay import parse_moment
        from console.screens.forms import ReasonModal

        start = self.state.declared_ts or self._now()
        end = self._replay_until or self.clock.now()

        def chosen(text: str | None) -> None:
            if not text:
                return
            try:
                at = parse_moment(text, start, end)
            except ValueError as error:
                self.notify(f"Cannot jump to {error}", severity="warning", timeout=8,
                            markup=False)
                return
            self._playing = False
            self._replay_move(("at", at))
            self._hold_screen()

        self.push_screen(ReasonModal(
            "Jump to a moment", "HH:MM[:SS] UTC, ISO 8601, +15m after the declaration or -15m "
            "before the end:", required=False), chosen)

    # --- the commander's loop --------------------------------------------------------------------

    def _start_heartbeat(self) -> None:
        """The lease heartbeat runs on its own thread and connection: it never waits for an
        adapter call, the poll or the screen (console/heartbeat.py)."""
        from console.heartbeat import Heartbeat

        if self.lease is None or self._heartbeat is not None:
            return

        def lost() -> None:
            self.post_message(self.LeaseLost())

        def trouble(error: Exception | None) -> None:
            self.post_message(self.LeaseTrouble(error))

        self._heartbeat = Heartbeat(self.store_path, self.lease, group=self.config.store.group,
                                    password_env=self.config.store.password_env,
                                    on_lost=lost, on_trouble=trouble).start()

    def _stop_heartbeat(self) -> None:
        heartbeat, self._heartbeat = self._heartbeat, None
        if heartbeat is not None:
            heartbeat.stop()

    @on(LeaseLost)
    def _on_lease_lost(self, message: LeaseLost) -> None:
        if self.mode == COMMANDER:
            self._lose_command()

    @on(LeaseTrouble)
    def _on_lease_trouble(self, message: LeaseTrouble) -> None:
        if message.error is None:
            self.notify("The commander's heartbeat is written again.", timeout=5)
        else:
            self.notify(f"Cannot write the commander's heartbeat: {message.error}. Retrying; "
                        "if it stays unwritten for 30 s another console may take command.",
                        severity="error", timeout=30, markup=False)

    @work(thread=True, group="canary-action", exit_on_error=False)
    def _startup(self) -> None:
        engine = self.engine
        assert engine is not None
        try:
            engine.reconcile()
            # The rollback preflight runs by itself when the console opens (DESIGN.md).
            if not engine.state.rolled_back and not engine.state.closed:
                engine.preflight()
        finally:
            # Whatever happened above (it is reported), the guardrails must be watched.
            self.call_from_thread(self._poll)

    @work(thread=True, group="metrics-poll", exit_on_error=False)
    def _poll(self) -> None:
        engine = self.engine
        if engine is None:
            return
        result = engine.poll()
        readings = [r.to_payload() for r in result.readings or engine.last_stable_readings]
        self.post_message(self.PollDone(readings))

    @on(PollDone)
    def _on_poll_done(self, message: PollDone) -> None:
        if message.readings:
            self._readings = message.readings
        if self.live and self.mode == COMMANDER:
            self.set_timer(self.config.monitoring.poll_interval_s, self._poll)

    def _lose_command(self) -> None:
        self._stop_heartbeat()
        holder = self._lease_seen.user if self._lease_seen else "another commander"
        self.mode = WATCHING
        self.engine = None
        self.refresh_bindings()
        self._render_header()
        self._render_panes()
        self.notify(f"Command was taken over by {holder}: this console is now WATCHING.",
                    severity="error", timeout=30, markup=False)

    @on(Worker.StateChanged)
    def _worker_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group in ACTION_GROUPS and event.state in (
                WorkerState.SUCCESS, WorkerState.ERROR, WorkerState.CANCELLED):
            self._action_landed(event.worker)
        if event.state == WorkerState.ERROR:
            self._worker_failed(event)

    def _action_landed(self, worker: Worker[Any]) -> None:
        """A commander action finished: show what it recorded now (its events are committed),
        not at the next store read; then run the keys pressed while it was under way."""
        self._in_flight.discard(worker)
        engine = self.engine
        if engine is not None and engine.state.last_event_id > self.state.last_event_id:
            # (the action's own read, posted before it finished, usually showed it already)
            self.state = engine.state
            self._render_panes()
            self._render_header()
        form = self._note_forms.pop(worker, None)
        if form is not None and form.is_attached:
            if worker.state == WorkerState.SUCCESS:
                form.saved()
            else:
                form.failed(str(worker.error) if worker.error else "cancelled")
        if not self._in_flight:
            deferred, self._deferred = self._deferred, []
            for name in deferred:
                getattr(self, f"action_{name}")()

    def _worker_failed(self, event: Worker.StateChanged) -> None:
        from console import policy
        error = event.worker.error
        group = event.worker.group
        if group == "store-watch":
            # A one-off read failed (the loop keeps watching and says when it recovers).
            self._close_reader()
            self.notify(f"Cannot read the incident database: {error}; retrying.",
                        severity="error", timeout=10, markup=False)
            return
        if group == "chain-verify":
            # Verification could not read (a locked or vanished file): say so, start over later.
            self._chain_verifying = False
            self._chain_at_head = True
            if self._chain_walk is not None:
                with contextlib.suppress(Exception):
                    self._chain_walk.store.close()
                self._chain_walk = None
            self.timeline.chain = "chain not verified (the database could not be read)"
            return
        if isinstance(error, policy.Refused):
            self.notify(str(error), severity="warning", timeout=10, markup=False)
        else:
            self.notify(f"{group}: {type(error).__name__}: {error}",
                        severity="error", timeout=20, markup=False)
        if group == "metrics-poll" and self.live and self.mode == COMMANDER:
            self.set_timer(self.config.monitoring.poll_interval_s, self._poll)

    # --- actions ---------------------------------------------------------------------------------

    def _refuse(self, what: str, block: policy.Block) -> None:
        """A key the rules refuse right now: say why in words, do nothing."""
        self.notify(f"Cannot {what}: {block.words}", severity="warning", timeout=8,
                    markup=False)

    def action_advance(self, reasons: dict[str, str] | None = None) -> None:
        from console.screens.confirm import ConfirmModal
        from console.screens.forms import BlockToOverride, OverrideModal

        if not self._when_idle("advance"):
            return
        state = self.state
        blocks = self._blocks()
        fixed = [b for b in blocks if not b.overridable]
        if fixed:
            self._refuse("advance", fixed[0])
            return
        stage = state.next_stage
        if stage is None:
            return
        title = f"Advance canary {state.canary_percent}% → {stage.percent}%?"
        if blocks:
            modal = OverrideModal(
                f"{title} Blocked — override each block with a reason:",
                [BlockToOverride(b.code, b.words) for b in blocks], reasons=reasons)

            def overridden(typed: dict[str, str] | None) -> None:
                if self._advance_form is modal:
                    self._advance_form = None
                if typed:
                    self._run_action("advance", typed)

            self._advance_form = modal
            self.push_screen(modal, overridden)
            return
        lines = [f"Service {state.service}: {state.to_version} gets {stage.percent}% of traffic.",
                 f"Minimum hold at {stage.percent}%: {stage.hold_s:g}s."]

        def confirmed(ok: bool | None) -> None:
            if ok:
                self._run_action("advance", {})

        self.push_screen(ConfirmModal(title, lines, f"advance to {stage.percent}%"), confirmed)

    def _follow_advance_form(self) -> None:
        """An open advance form follows the state, like the canary pane beside it: a hold's
        countdown ticks in its words; a block that no longer holds leaves it (the form is made
        again, with what was typed; with no block left it is the plain y confirmation); a
        block that cannot be overridden closes it and says why. Never a stale block."""
        from console.screens.forms import BlockToOverride

        form = self._advance_form
        if form is None or not form.is_attached or self.screen is not form:
            return
        blocks = self._blocks()
        fixed = [b for b in blocks if not b.overridable]
        if fixed:
            form.dismiss(None)
            self._refuse("advance", fixed[0])
            return
        if form.show_blocks([BlockToOverride(b.code, b.words) for b in blocks]):
            return
        typed = form.typed_reasons()
        form.dismiss(None)
        if not blocks:
            self.notify("Nothing blocks the advance any more: confirm it with y.", timeout=6)
        self.action_advance(reasons=typed)

    def action_immediate(self) -> None:
        from console import policy
        from console.screens.forms import BlockToOverride, OverrideModal

        if not self._when_idle("immediate"):
            return
        state = self.state
        blocks = policy.immediate_blocks(state, self._now())
        fixed = [b for b in blocks if not b.overridable]
        if fixed:
            self._refuse("go to 100%", fixed[0])
            return
        modal = OverrideModal(
            f"⚠ 100% IMMEDIATELY — {state.to_version} to ALL traffic of {state.service} now, "
            f"skipping the remaining stages (from {state.canary_percent}%). Seed 000: only for "
            "active exfiltration or an immediate regulatory deadline.",
            [BlockToOverride(b.code, b.words) for b in blocks], loud=True,
            extra_reason="Why must this ship to 100% now?",
            confirm_words=(state.service, "100"))

        def chosen(reasons: dict[str, str] | None) -> None:
            if reasons:
                reason = reasons.pop("main", "")
                self._run_action("immediate", reasons, reason)

        self.push_screen(modal, chosen)

    def action_pause(self) -> None:
        from console import policy
        from console.screens.confirm import ConfirmModal

        if not self._when_idle("pause"):
            return
        state = self.state
        if state.paused:
            lines = [f"Canary at {state.canary_percent}%, paused by {state.paused_by}"
                     + (f": {state.pause_reason}" if state.pause_reason else "") + ".",
                     "Resuming lets advance go ahead again (under its other rules)."]
            title, words, name = f"Resume the canary of {state.service}?", "resume", "resume"
        else:
            try:
                policy.check_pause(state, pause=True)
            except policy.Refused as refused:
                self.notify(f"Cannot pause: {refused}", severity="warning", timeout=8,
                            markup=False)
                return
            lines = [f"The canary stays at {state.canary_percent}% — traffic is not changed.",
                     "Advance waits until you resume (p again). Abort (x) and rollback (R) "
                     "still work."]
            title, words, name = (f"Pause the canary of {state.service} at "
                                  f"{state.canary_percent}%?", "pause", "pause")

        def confirmed(ok: bool | None) -> None:
            if ok:
                self._run_action(name)

        self.push_screen(ConfirmModal(title, lines, words), confirmed)

    def action_abort(self) -> None:
        from console import policy
        from console.screens.confirm import ConfirmModal

        if not self._when_idle("abort"):
            return
        state = self.state
        blocks = policy.abort_blocks(state)
        if blocks:
            self._refuse("abort", blocks[0])
            return
        lines = [f"Canary weight {state.canary_percent}% → 0%: all traffic back to "
                 f"{state.from_version}.",
                 "This is not a rollback: the deploy spec stays on "
                 f"{state.to_version}. Press R for a verified rollback."]

        def confirmed(ok: bool | None) -> None:
            if ok:
                self._run_action("abort")

        self.push_screen(ConfirmModal(f"Abort the canary of {state.service}?", lines,
                                      "abort to 0%"), confirmed)

    def action_rollback(self) -> None:
        from console import policy
        from console.screens.confirm import ConfirmRollbackModal

        if not self._when_idle("rollback"):
            return
        state = self.state
        blocks = policy.rollback_blocks(state)
        if blocks:
            self._refuse("roll back", blocks[0])
            return
        modal = ConfirmRollbackModal(
            service=state.service, target=state.rollback_target,
            from_version=state.to_version, weight=state.canary_percent,
            hold_s=self.config.rollback.verification_hold_s,
            guardrails=[g.name for g in self.config.guardrails],
            deployer_kind=self.config.deploy.kind,
            harm=state.title if state.change_is_fix else "")

        def confirmed(ok: bool | None) -> None:
            if ok:
                self._run_rollback()
            else:
                self.notify("Rollback cancelled.", timeout=4)

        self.push_screen(modal, confirmed)

    def action_note(self) -> None:
        from console.screens.forms import NoteModal

        def save(text: str) -> None:
            worker = self._engine_action("note", text)
            self._in_flight.add(worker)
            self._note_forms[worker] = modal

        # The dialog closes once the note is recorded and shown (_action_landed): one frame
        # takes it away and shows the note, as a person expects of "Enter = save".
        modal = NoteModal(save)
        self.push_screen(modal)

    def action_relay_approval(self) -> None:
        self._open_relay_form()

    def _open_relay_form(self, previous: RelayRequest | None = None,
                         refusal: str | None = None) -> None:
        """The ``A`` form, for a role still waiting; after a refusal, again with the values
        typed and the refusal at its top."""
        from console import policy
        from console.screens.forms import RelayApprovalModal

        waiting = list(self.state.missing_roles)
        if not waiting:
            self.notify("Every required role has approved or was waived: nothing to relay.",
                        timeout=6)
            return
        rosters = {role: list(self.config.roster.get(role, [])) for role in waiting}

        def save(request: RelayRequest | None) -> None:
            if request is not None:
                self._run_action("relay", request)

        self.push_screen(RelayApprovalModal(waiting, rosters, policy.approval_rules(self.config),
                                            refusal=refusal, previous=previous), save)

    def _relay_refused(self, request: RelayRequest, refusal: str) -> None:
        """The rules refused a relayed approval: the approvals pane says so with every rule, and
        the form opens again with what was typed, to correct it."""
        from console import policy
        self._relay_refusal = request
        self.approvals.show_refusal(refusal, policy.approval_rules(self.config))
        self.screen_stack[0].set_class(True, "-approval-refused")
        self._open_relay_form(request, refusal)

    def _relay_recorded(self, request: RelayRequest) -> None:
        self._clear_relay_refusal()
        done = not self.state.missing_roles
        self.notify(f"Relayed approval recorded: {request.role} by {request.relayed_from.strip()}"
                    + (". Every required approval is in." if done else "."),
                    title="Approval", timeout=8, markup=False)

    def _clear_relay_refusal(self) -> None:
        if self._relay_refusal is not None:
            self._relay_refusal = None
            self.approvals.show_refusal(None, [])
            self.screen_stack[0].set_class(False, "-approval-refused")

    def action_mark_milestone(self) -> None:
        from console.screens.forms import MilestoneModal

        marked = {name: f"{mark.at:%H:%M} UTC" for name, mark in self.state.milestones.items()}

        def save(choice: tuple[str, str] | None) -> None:
            if choice is not None:
                self._run_action("mark", *choice)

        self.push_screen(MilestoneModal(marked), save)

    def action_highlight(self) -> None:
        from console.model import Kind as EventKind
        from console.screens.forms import ReasonModal

        # The event selected on the timeline (↑/↓); else the newest that is not itself a
        # highlight (what the timeline shows last).
        timeline = self.timeline
        newest = timeline.cursor_event
        row = timeline.row_count - 1
        while newest is None and row >= 0:
            shown = timeline.row_event(row)
            if shown is None:
                break  # not held here: the newest id is the best we know
            if shown.kind != EventKind.HIGHLIGHTED:
                newest = shown
            row -= 1
        event_id = newest.id if newest is not None else timeline.last_event_id
        if not event_id:
            self.notify("Nothing on the timeline to highlight yet.", timeout=4)
            return
        from widgets.timeline import safe_describe

        words = safe_describe(newest) if newest is not None and newest.id == event_id else ""
        target = event_id

        def save(reason: str | None) -> None:
            if reason is not None:
                self._run_action("highlight", target, reason)

        self.push_screen(ReasonModal(f"Highlight event #{target}",
                                     f"{words}\nWhy it matters (optional, recorded):",
                                     required=False), save)

    def action_ack_checklist(self) -> None:
        from console.screens.confirm import ConfirmModal

        if not self._when_idle("ack_checklist"):
            return
        state = self.state
        if state.checklist_acked:
            self.notify("The compatibility checklist is already acknowledged.", timeout=4)
            return
        lines = ["Before the first stage, confirm that going back is safe (seed 002):", ""]
        lines += [f"  • {item}" for item in state.compatibility_checklist]

        def confirmed(ok: bool | None) -> None:
            if ok:
                self._run_action("ack")

        self.push_screen(ConfirmModal("Rollback compatibility checklist", lines,
                                      "I confirm each item"), confirmed)

    def action_preflight(self) -> None:
        self._run_action("preflight")

    def action_close_incident(self) -> None:
        from console.screens.forms import ReasonModal

        if not self._when_idle("close_incident"):
            return
        open_items = self.state.checklist_open if self.state.checklist_active else []
        prompt = ("Why close now? Open checklist items will be recorded as waived: "
                  + "; ".join(open_items)) if open_items else "Closing note (optional):"
        if self.state.harm_back:
            prompt = ("The fix was rolled back and the harm is live again (mark mitigated or "
                      "resolved with m first, if it is not). Why close now?")

        def save(reason: str | None) -> None:
            if reason is not None:
                self._run_action("close", reason)

        self.push_screen(ReasonModal("Close the incident", prompt,
                                     required=bool(open_items) or self.state.harm_back), save)

    def action_detail(self) -> None:
        from console.guardrails import judged_by
        from console.model import GUARDRAIL_STATUS_WORDS, evidence_words
        from console.screens.info import GuardrailDetailModal
        from widgets.guardrails import figures_line

        # One road: the status as recorded and the newest figures, exactly as the panes show
        # them; the last live evaluation (the commander's) adds its queries and raw values.
        live = {str(r.get("name")): r for r in self._readings}
        figures = self._figures()
        entries: list[dict[str, Any]] = []
        for recorded in self._recorded_readings():
            name = str(recorded["name"])
            entry = {**recorded, **live.get(name, {})}
            guard = self.state.guardrails.get(name)
            status = guard.status if guard else "unknown"
            entry["status"] = GUARDRAIL_STATUS_WORDS.get(status, status)
            entry["detail"] = recorded["detail"]
            if guard is not None and guard.rule:
                entry["rule"] = guard.rule  # what decided the recorded status
            unit, scale = self._units.get(name, ("", 1.0))
            shown = figures.get(name, Figures())
            entry["figures"] = figures_line(shown, unit, scale)
            settings = next((g for g in self.config.guardrails if g.name == name), None)
            if settings is not None:
                entry["rules"] = judged_by(settings)
                if settings.evidence_query and settings.min_evidence > 0:
                    entry["evidence"] = evidence_words(shown, settings.min_evidence)
            if name in self._comparisons:
                entry["comparison"] = self._comparisons[name]
            evaluated = live.get(name)
            if evaluated is not None and evaluated.get("status") != status:
                entry["last"] = (f"{GUARDRAIL_STATUS_WORDS.get(evaluated.get('status', ''), '')}"
                                 f" — {evaluated.get('detail')} (not recorded: "
                                 + ("no canary traffic to judge)" if self.state.canary_percent == 0
                                    or self.state.rolled_back else "the status did not change)"))
            entries.append(entry)
        self.push_screen(GuardrailDetailModal(entries))

    def _recorded_readings(self) -> list[dict[str, Any]]:
        """Without live readings (a watcher, or before the first poll): what the timeline
        recorded for each guardrail, with its queries resolved from this console's config."""
        from console.guardrails import resolve_query

        known = {g.name: g for g in self.config.guardrails}
        readings: list[dict[str, Any]] = []
        for name, guardrail in self.state.guardrails.items():
            queries: dict[str, str] = {}
            settings = known.get(name)
            if guardrail.queries:  # as sent when the status was recorded
                queries = dict(guardrail.queries)
            elif settings is not None:
                for track in ("canary", "baseline"):
                    queries[track] = resolve_query(settings.query, self.state.service, track)
            readings.append({
                "name": name, "status": guardrail.status, "mode": "as last recorded",
                "detail": guardrail.detail or "not evaluated yet", "queries": queries,
                "raw": {role: list(values) for role, values in guardrail.samples.items()},
                "error": None,
                "ts": format_ts(guardrail.since) if guardrail.since else "never"})
        return readings

    def action_help(self) -> None:
        from console.screens.info import HelpScreen

        self.push_screen(HelpScreen(watching=self.mode != COMMANDER))

    def action_checklist(self) -> None:
        from console.screens.checklist import ChecklistModal

        if not self._when_idle("checklist"):
            return
        if not self.state.checklist_active:
            self.notify("The post-emergency checklist opens after 100% or a verified "
                        "rollback.", timeout=6)
            return
        self.push_screen(ChecklistModal(self.state, self._now()))

    async def action_quit(self) -> None:
        """Quit, but not silently while something is under way: say what goes on without the
        console and ask first."""
        from console.screens.confirm import ConfirmModal

        under_way = self._under_way()
        if not under_way:
            self.exit()
            return
        lines = [*under_way, "",
                 "Quitting releases command: nobody watches the guardrails or finishes the "
                 "verification until a commander opens this incident again (warroom open "
                 f"{self.state.id_text}). Nothing recorded is lost."]

        def confirmed(ok: bool | None) -> None:
            if ok:
                self.exit()

        self.push_screen(ConfirmModal("Quit while this is under way?", lines, "quit anyway",
                                      danger=True), confirmed)

    def _under_way(self) -> list[str]:
        """What would go on, or stop, without this console."""
        if self.mode != COMMANDER:
            return []
        state = self.state
        lines: list[str] = []
        if self._in_flight or state.pending_weight is not None:
            lines.append("• An action is in flight: its outcome is recorded when the console "
                         "opens again (reconciled from the deploy system).")
        if state.rollback_active:
            lines.append(f"• The rollback to {state.rollback_target} is being verified "
                         f"({state.rollback_status}): the deploy system goes on; the "
                         "verification stops until the console is back.")
        elif state.watch_status in ("watching", "reverted") and (
                state.watch_until is None or self._now() < state.watch_until):
            # After VERIFIED the poll keeps reading the live version: a GitOps tool putting the
            # bad version back is noticed only while a commander's console runs.
            from widgets.canary import hhmm

            left = f" (until {hhmm(state.watch_until)})" if state.watch_until else ""
            lines.append(f"• The live version is watched after the verified rollback{left}: "
                         f"if the bad version is put back (GitOps self-heal), nobody is told "
                         f"until the console is back.")
        elif state.canary_percent > 0 and not state.promoted and not state.rolled_back:
            lines.append(f"• The canary carries {state.canary_percent}% of traffic: the "
                         "guardrails stop being watched, and a sustained breach would not "
                         "roll it back automatically.")
        return lines

    def action_export(self) -> None:
        if self.is_web:  # never reached by a key (check_action); said if called all the same
            self.notify("The PIR is not exported from a browser: `warroom export` on the war "
                        "room's host writes it.", title="Export", markup=False)
            return
        self._export_pir()

    def action_status_page(self) -> None:
        if self.config.statuspage is None:
            self.notify("No status page is configured: add a [statuspage] section "
                        "(config.example.toml).", severity="warning", timeout=8, markup=False)
            return
        self._draft_status_page()

    @work(thread=True, group="statuspage-draft", exit_on_error=False)
    def _draft_status_page(self) -> None:
        from console.export.comms import status_page_draft
        from console.statuspage import component_status, next_post

        reader = self._open_reader()
        try:
            events = reader.require_events(self.incident_id)
        finally:
            reader.close()
        draft = status_page_draft(events, config=self.config)
        assert self.config.statuspage is not None
        state = self.state
        post = next_post(state, draft, self.config.statuspage)
        from console.statuspage import blanks

        if blanks(post.name):
            self.call_from_thread(
                self.notify, f"The status page title needs the name customers know "
                f"{state.service} by: set [export] customer_names (config.example.toml).",
                severity="warning", timeout=12, markup=False)
            return
        lines = [f"Status:     {draft.status}"
                 + (f" (the page says {state.statuspage_status} now)"
                    if state.statuspage_status else " (nothing posted yet)"),
                 f"Title:      {post.name}"]
        for component in post.components:
            lines.append(f"Component:  {component} → "
                         f"{component_status(draft.status, state.priority)}")
        if not post.components:
            lines.append(f"Component:  none ({state.service} has no [statuspage] components "
                         "entry)")
        self.call_from_thread(self._edit_status_page, post, lines)

    def _edit_status_page(self, post: Any, lines: list[str]) -> None:
        from dataclasses import replace as with_body

        from console.screens.confirm import ConfirmModal
        from console.screens.statuspage import StatusPageModal
        from console.statuspage import preview

        def edited(body: str | None) -> None:
            if body is None:
                self.notify("Nothing was posted.", timeout=4)
                return
            final = with_body(post, body=body)

            def confirmed(ok: bool | None) -> None:
                if ok:
                    self._run_action("statuspage", final)
                else:
                    self.notify("Nothing was posted.", timeout=4)

            self.push_screen(ConfirmModal(f"Post to the status page: {final.status.upper()}?",
                                          preview(final), "post it"), confirmed)

        self.push_screen(StatusPageModal(f"Status page update ({post.action})", lines,
                                         post.body), edited)

    def on_checklist_pane_item_chosen(self, message: ChecklistPane.ItemChosen) -> None:
        from console.screens.forms import ReasonModal

        if self.mode != COMMANDER:
            return
        item, result = message.item, message.result

        def save(detail: str | None) -> None:
            if detail is not None:
                self._run_action("gate", item, result, detail)

        required = result == "waived"
        self.push_screen(ReasonModal(f"{item}: {result}",
                                     "Why is it waived?" if required else
                                     "Result detail (optional: a link, a figure):",
                                     required=required), save)

    def _run_action(self, name: str, *args: Any) -> None:
        self._in_flight.add(self._engine_action(name, *args))

    @work(thread=True, group="canary-action", exit_on_error=False)
    def _engine_action(self, name: str, *args: Any) -> None:
        engine = self.engine
        if engine is None:
            return
        try:
            self._dispatch(engine, name, *args)
        finally:
            self._show_what_landed()

    def _show_what_landed(self) -> None:
        """From the action's own thread, as soon as its events committed: read what the panes
        and the timeline lack and post it (no second worker, no wait for the watch loop)."""
        timeline = self.timeline
        with contextlib.suppress(Exception):  # the watch loop reads it soon anyway
            self._read_once(self._reader_store(), timeline.last_event_id, timeline.kinds,
                            timeline.generation)

    def _dispatch(self, engine: Engine, name: str, *args: Any) -> None:
        from console import policy
        if name == "advance":
            engine.advance(args[0])
        elif name == "immediate":
            engine.immediate(args[1], args[0])
        elif name == "abort":
            engine.abort()
        elif name == "note":
            engine.note(args[0])
        elif name == "ack":
            engine.acknowledge_checklist()
        elif name == "preflight":
            engine.preflight()
        elif name == "gate":
            engine.record_gate(args[0], args[1], args[2])
        elif name == "close":
            engine.close_incident(args[0])
        elif name == "mark":
            engine.mark(args[0], args[1])
        elif name == "relay":
            request: RelayRequest = args[0]
            try:
                engine.relay_approval(request.role, request.relayed_from, request.evidence)
            except policy.Refused as refused:
                self.call_from_thread(self._relay_refused, request, str(refused))
            else:
                self.call_from_thread(self._relay_recorded, request)
        elif name == "highlight":
            engine.highlight(args[0], args[1])
        elif name == "pause":
            engine.pause()
        elif name == "resume":
            engine.resume()
        elif name == "statuspage":
            from console import events as ev
            from console.model import Kind

            event = engine.post_status_page(args[0])
            if event.kind == Kind.STATUSPAGE_FAILED:
                error = ev.read_as(event, ev.StatusPageFailed).error
                self.call_from_thread(self.notify, f"Status page post FAILED: {error}",
                                      severity="error", timeout=15, markup=False)
            else:
                posted = ev.read_as(event, ev.StatusPagePosted)
                self.call_from_thread(self.notify, f"Status page: {posted.status} posted "
                                      f"{posted.shortlink}".rstrip(), timeout=8, markup=False)

    def _run_rollback(self) -> None:
        self._in_flight.add(self._rollback_worker())

    @work(thread=True, group="rollback", exit_on_error=False)
    def _rollback_worker(self) -> None:
        engine = self.engine
        if engine is not None:
            try:
                engine.request_rollback(_rollback_reason(self.state))
            finally:
                self._show_what_landed()

    @work(thread=True, group="export", exit_on_error=False)
    def _export_pir(self) -> None:
        from console.export import render, write_private

        reader = self._open_reader()
        try:
            events = reader.require_events(self.incident_id)
            samples = {name: reader.samples(self.incident_id, name)
                       for name in reader.series_names(self.incident_id)}
        finally:
            reader.close()
        text = render("pir", events, config=self.config, samples=samples, now=self._now())
        path = _export_path(self.export_dir, self.incident_id, self._now())
        write_private(path, text, self.config.store.group)
        self._last_export = path
        self.call_from_thread(self.notify, f"PIR written to {path}", title="Exported",
                              timeout=20, markup=False)

    def _freeze_heap(self) -> None:
        """What an open console holds for its whole life (Textual, the modules, the layout, the
        first reading) is moved out of the cycle collector's sight: a full collection then walks
        only what came after. Before, one took 60-90 ms on a busy console, on whatever key was
        being answered (the tail of key_to_redrawn_p95_ms). Collected first, so that no garbage
        of the opening is kept with it; given back when the console closes (tests run many
        consoles in one process)."""
        import gc

        if self._stopping.is_set():
            return
        gc.collect()
        gc.freeze()

    def on_unmount(self) -> None:
        if self._heap_frozen:
            import gc

            gc.unfreeze()
        self._stopping.set()
        self._replay_moves.put(None)
        self._stop_heartbeat()
        self._close_reader()
        if self._chain_walk is not None:
            with contextlib.suppress(Exception):
                self._chain_walk.store.close()


def _rollback_reason(state: IncidentState) -> str:
    """What the commander saw when pressing R, as the rollback's recorded reason (not "the
    commander pressed R"): the weight and each guardrail's status."""
    from console.model import GUARDRAIL_STATUS_WORDS

    seen = ", ".join(f"{g.name} {GUARDRAIL_STATUS_WORDS.get(g.status, g.status)}"
                     for g in state.guardrails.values()) or "no guardrails"
    return f"commander's decision at {state.canary_percent}% ({seen})"


def _chain_words(checked: WarroomApp.ChainChecked) -> str:
    """The timeline's chain status: how far it is verified, and whether it is keyed (HMAC)
    and could be checked here (a keyed chain without the key: only its links)."""
    if checked.unverified:
        return (f"chain keyed (HMAC): links only to #{checked.verified_to:,}, no chain key here"
                if checked.at_head else f"chain keyed: {checked.checked:,} links ✓…")
    keyed = "keyed (HMAC) " if checked.keyed else ""
    if checked.at_head:
        return f"chain ✓ {keyed}verified to #{checked.verified_to:,}"
    return f"verifying {keyed}chain… {checked.checked:,} events ✓"


_BANDS = ("-h-tiny", "-h-small", "-h-medium", "-h-large")


def _size_classes(size: Size) -> list[str]:
    """The screen's height band and width class for ``size`` (console/app.tcss)."""
    width, height = size
    band = ("-h-tiny" if height < 24 else "-h-small" if height < 30
            else "-h-medium" if height < 40 else "-h-large")
    return [band, "-wide"] if width >= 120 else [band]


def _opening_header(mode: str) -> Static:
    """The header while the console opens: its mode, and what is happening."""
    return Static(Content.assemble((f" {mode} ", "bold $text on $primary"),
                                   ("  opening the record…", "$text-muted")),
                  id="header", classes="opening-header")


def _opening_pane(title: str, pane_id: str) -> Static:
    """A pane of the opening layout: its title, and what is happening (console/app.tcss)."""
    pane = Static("opening the record…", id=pane_id, classes="opening-pane", markup=False)
    pane.border_title = title
    return pane


def _timeline_page() -> int:
    """Rows the timeline asks for at a time (read off the UI thread, once it is drawn)."""
    from widgets.timeline import Timeline

    return Timeline.PAGE


def _css_id(name: str) -> str:
    return "".join(ch if ch.isalnum() else "-" for ch in name).lower()


def _export_path(export_dir: Path | None, incident_id: int, now: datetime) -> Path:
    """Next to the commander (the working directory) when writable, else the data dir."""
    import os

    from console import paths

    name = f"{format_incident_id(incident_id)}-PIR-{now.strftime('%Y%m%dT%H%M%SZ')}.md"
    if export_dir is not None:
        return export_dir / name
    cwd = Path.cwd()
    if os.access(cwd, os.W_OK):
        return cwd / name
    return paths.data_dir() / name


@dataclass
class ConsoleParts:
    """What a console's opening steps produce: the config, the record, the incident and, for
    a commander, the engine and the lease."""

    config: Config
    store_path: Path | str
    incident_id: int
    engine: Engine | None = None
    lease: Lease | None = None


@dataclass
class AppOptions:
    """What the launcher decided: for tests that build the app the same way."""

    live: bool = True
    export_dir: Path | None = None
    #: ``warroom replay``: the moment to open at (None: the end), and no live view at all
    replay_at: datetime | None = None
    replay_only: bool = False


def make_app(config: Config, store_path: Path | str, incident_id: int, clock: Clock, *,
             engine: Engine | None = None, lease: Lease | None = None,
             options: AppOptions | None = None) -> WarroomApp:
    """The one app factory: the CLI, the tests and the snapshot apps all build it here."""
    from console.config import register_secrets
    options = options or AppOptions()
    register_secrets(config)
    return WarroomApp(store_path=store_path, incident_id=incident_id, config=config, clock=clock,
                      engine=engine, lease=lease, live=options.live,
                      export_dir=options.export_dir, replay_at=options.replay_at,
                      replay_only=options.replay_only)


def make_opening_app(opening: Callable[[], ConsoleParts], clock: Clock) -> WarroomApp:
    """A commander's console that draws its first frame before it opens: ``opening`` (the
    config, the record, the lease, the adapters, the engine) runs in a thread once the frame is
    up. If it fails, the app exits with status 2 and ``opening_error`` says why."""
    return WarroomApp(store_path=None, incident_id=None, config=None, clock=clock,
                      opening=opening)
