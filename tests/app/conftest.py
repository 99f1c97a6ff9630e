"""Fixtures for the console's app and snapshot tests: a real incident in a real SQLite file.

Every test gets a :class:`Rig`: the demo incident declared by ``console.demo.declare_demo`` into a
``Store`` under ``tmp_path``, a ``ManualClock`` fixed at a known instant, a seeded
``SimulatedService`` wired through ``console.wiring.build_adapters``, an ``Engine``, and
``rig.app(...)`` which builds the console through ``console.app.make_app`` — the same factory the
CLI uses.

Determinism: the clock moves only when a test says so (and the store's own ``utcnow`` is pointed at
it, so the declaration is stamped with it too); the simulator's noise is seeded; apps are built with
``live=False`` so nothing ticks on its own. A test drives the screen with :func:`settle`, which
waits for the workers a key started, asks the app to read the store once (``_watch_store``), waits
for that worker and lets the posted message render. Nothing here sleeps.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from textual.app import App
from textual.pilot import Pilot

from adapters.base import ManualClock
from adapters.sim import SimulatedService
from console import store as store_module
from console.app import AppOptions, WarroomApp, make_app
from console.config import Config
from console.demo import DEMO_APPROVERS, declare_demo, demo_config
from console.engine import Engine
from console.model import Event, Kind
from console.state import IncidentState, fold
from console.store import RecordStore, open_store
from console.wiring import build_adapters

#: The instant every test starts at: a Saturday night, 22:00 UTC (seed 000's story).
START = datetime(2026, 3, 14, 22, 0, 0, tzinfo=UTC)
COMMANDER = "alice"
#: How long :func:`settle` waits for a screen to stop changing: generous, for a loaded machine.
SETTLE_DEADLINE_S = 20.0


@dataclass
class Rig:
    """One incident, its simulated world and the commander's engine, all on one ManualClock."""

    config: Config
    db: Path | str
    store: RecordStore
    incident_id: int
    clock: ManualClock
    sim: SimulatedService
    engine: Engine
    export_dir: Path
    _closers: list[Callable[[], None]] = field(default_factory=list)

    # --- the record --------------------------------------------------------------------------

    def events(self, *kinds: str) -> list[Event]:
        """The incident's events (of ``kinds``, if given), oldest first, from a fresh read."""
        events = self.store.events(self.incident_id)
        return [e for e in events if not kinds or e.kind in kinds]

    def kinds(self, after_id: int = 0) -> list[str]:
        return [str(e.kind) for e in self.store.events(self.incident_id, after_id=after_id)]

    def last_id(self) -> int:
        return self.store.last_event_id(self.incident_id)

    def state(self) -> IncidentState:
        return fold(self.store.events(self.incident_id))

    # --- moving the world --------------------------------------------------------------------

    def approve_all(self) -> None:
        """The demo's two approvers sign off from their own shells (direct approvals)."""
        for role, user in DEMO_APPROVERS.items():
            self.store.append(self.incident_id, Kind.APPROVED, user, {
                "role": role, "user": user, "kind": "direct",
                "version": self.engine.state.to_version, "note": "looks right"},
                ts=self.clock.now())
        self.engine.refresh()

    def ready(self) -> None:
        """Approvals in, preflight passed, checklist acknowledged: nothing blocks the 1% stage."""
        self.approve_all()
        self.engine.preflight()
        self.engine.acknowledge_checklist()

    def tick(self, seconds: float, *, step: float | None = None) -> None:
        """Move the clock ``seconds`` forward, running one engine poll every ``step`` seconds
        (the poll interval by default) — what the commander's poll loop does in real time."""
        step = step or self.config.monitoring.poll_interval_s
        moved = 0.0
        while moved + 1e-9 < seconds:
            delta = min(step, seconds - moved)
            self.clock.advance(delta)
            moved += delta
            self.engine.poll()

    def to_ten_percent(self) -> None:
        """Ready, 1% held, then 10% — where the bad build starts to err."""
        self.ready()
        self.engine.advance()
        self.past_hold()
        self.engine.advance()

    def past_hold(self) -> None:
        """Move past the current stage's hold (polling on the way)."""
        remaining = self.engine.state.hold_remaining_s(self.clock.now())
        self.tick(remaining + 1)

    # --- the console -------------------------------------------------------------------------

    def app(self, *, watch: bool = False, live: bool = False) -> WarroomApp:
        """The console through the one factory; a watcher has no engine."""
        return make_app(self.config, self.db, self.incident_id, self.clock,
                        engine=None if watch else self.engine,
                        options=AppOptions(live=live, export_dir=self.export_dir))

    def close(self) -> None:
        for closer in reversed(self._closers):
            closer()
        self.engine.close()
        self.store.close()


RigFactory = Callable[..., Rig]


@pytest.fixture
def make_rig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[RigFactory]:
    """Build a :class:`Rig`: ``make_rig("bad", fail_rollback=True, name="x")``."""
    rigs: list[Rig] = []

    def build(scenario: str = "bad", *, fail_rollback: bool = False, name: str = "incident",
              location: str | None = None, **config_changes: Any) -> Rig:
        clock = ManualClock(START)
        # The store stamps what it is not given a time for (the declaration) with utcnow():
        # point it at the test's clock so every timestamp on screen is fixed.
        monkeypatch.setattr(store_module, "utcnow", clock.now)
        config = demo_config(Config(), scenario)
        if config_changes:
            raw = config.model_dump(mode="json", exclude_none=True)
            for key, value in config_changes.items():
                section, _, item = key.partition("__")
                if item:
                    raw[section][item] = value
                else:
                    raw[section] = value
            config = Config.model_validate(raw)
        directory = tmp_path / name
        directory.mkdir()
        # An SQLite file, unless the test gives a PostgreSQL URL (tests/app/test_postgres.py).
        db: Path | str = location or directory / "warroom.db"
        store = open_store(db)
        incident_id = declare_demo(store, config, COMMANDER, ts=clock.now())
        state = fold(store.events(incident_id))
        sim = SimulatedService.from_settings(
            config.metrics, config.deploy, clock,  # type: ignore[arg-type]
            service=state.service, stable_version=state.from_version,
            canary_version=state.to_version, fail_rollback=fail_rollback)
        adapters = build_adapters(config, state, clock, sim)
        engine = Engine(store, incident_id, config, adapters, clock, COMMANDER)
        export_dir = directory / "exports"
        export_dir.mkdir()
        rig = Rig(config, db, store, incident_id, clock, sim, engine, export_dir)
        rigs.append(rig)
        return rig

    yield build
    for rig in rigs:
        rig.close()


@pytest.fixture
def rig(make_rig: RigFactory) -> Rig:
    """The bad build (the demo's default scenario), nothing approved yet."""
    return make_rig("bad")


# --- driving and reading the screen --------------------------------------------------------------


async def settle(pilot: Pilot[Any], *, deadline_s: float = SETTLE_DEADLINE_S) -> None:
    """Let a key's consequences land on screen, without sleeping.

    Waits for the workers already started (an action's engine call), asks the app to read the
    store once — the store-watch cycle a live console runs every 0.25 s — waits for that worker
    and lets its message render, then waits until the screen stops changing (:func:`still`).
    """
    app = pilot.app
    await pilot.pause()
    await finished(app)
    assert isinstance(app, WarroomApp)
    app._watch_store()
    await finished(app)
    await pilot.pause()
    app._tick()  # the clock may have moved: timers and countdowns
    await still(pilot, deadline_s=deadline_s)


async def still(pilot: Pilot[Any], *, deadline_s: float = SETTLE_DEADLINE_S) -> None:
    """Wait until the screen is settled: no worker running, no animation, and the same frame
    (text and styles) after one more round of messages and a refresh, twice in a row.

    On a loaded machine a refresh, a layout or a scroll can land a few frames later than on an
    idle one; a screenshot taken before it is a race, not a test. Fails after ``deadline_s``
    with the last two frames' difference rather than hanging.
    """
    app = pilot.app
    deadline = time.monotonic() + deadline_s
    previous = ""
    same = 0
    while True:
        await finished(app)
        await app.animator.wait_until_complete()
        await pilot.pause()
        frame = _frame(app)
        busy = any(worker.is_running for worker in _finite(app))
        same = same + 1 if frame == previous and not busy else 0
        if same >= 2:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"the screen did not settle within {deadline_s:g}s")
        previous = frame


#: Worker groups that run as long as the console: nothing waits for them to finish.
LOOPS = frozenset({"store-watch-loop", "replay"})


def _finite(app: App[Any]) -> list[Any]:
    return [worker for worker in app.workers if worker.group not in LOOPS]


async def finished(app: App[Any]) -> None:
    """Wait for the workers already started, but the console's endless loops."""
    workers = _finite(app)
    if workers:  # (given none, Textual waits for every worker, the loops included)
        await app.workers.wait_for_complete(workers)


def _frame(app: App[Any]) -> str:
    """The whole screen with its styles, as the terminal would receive it."""
    width, height = app.size
    console = Console(width=width, height=height, file=io.StringIO(), force_terminal=True,
                      color_system="truecolor", legacy_windows=False, safe_box=False)
    update = app.screen._compositor.render_update(full=True, screen_stack=app._background_screens)
    with console.capture() as capture:
        console.print(update)
    return capture.get()


def screen_text(app: App[Any]) -> str:
    """What a person sees: the whole screen (modals and toasts included) as plain text."""
    width, height = app.size
    console = Console(width=width, height=height, file=io.StringIO(), force_terminal=True,
                      color_system="truecolor", record=True, legacy_windows=False,
                      safe_box=False)
    update = app.screen._compositor.render_update(full=True, screen_stack=app._background_screens)
    console.print(update)
    return console.export_text(styles=False)


def exits_of(app: App[Any]) -> list[tuple[Any, ...]]:
    """Keep the app running when it asks to exit, and list each time it asked (a quit test
    checks whether, and when, the app would have exited)."""
    exits: list[tuple[Any, ...]] = []
    app.exit = lambda *args, **kwargs: exits.append(args)  # type: ignore[method-assign]
    return exits


def squash(text: str) -> str:
    """Whitespace (line breaks from wrapping, borders' padding) folded to single spaces."""
    return " ".join(text.split())


def region_text(app: App[Any], widget: Any, *, border: bool = False) -> str:
    """What the screen shows inside a widget (a pane, a toast), as plain text; with ``border``,
    its border and border titles too."""
    region = widget.region if border else widget.content_region
    lines = screen_text(app).splitlines()
    return "\n".join(line[region.x:region.x + region.width]
                     for line in lines[region.y:region.y + region.height])


def toasts_text(app: App[Any]) -> str:
    """Every notification on screen, as a person reads it (wrapped lines joined)."""
    from textual.widgets._toast import Toast

    return " ".join(squash(region_text(app, toast)) for toast in app.screen.query(Toast))
