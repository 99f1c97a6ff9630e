"""Starts the console for `warroom demo`, `warroom open` and `warroom watch`, in one pipeline.

config → store → incident (declared, resumed or found) → adapters → engine → app: each step once,
in that order. Everything that can fail before the screen appears (config, database, lease,
adapters) fails here with one line and exit 2, before Textual takes the terminal.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from adapters.base import SystemClock
from console import paths
from console.errors import UsageError, os_user
from console.model import SYSTEM_ACTOR, format_incident_id, parse_incident_id

if TYPE_CHECKING:
    # Imported where used: a commander's console on a terminal draws its first frame before
    # any of them is loaded (they cost more than Textual).
    from console.app import WarroomApp
    from console.config import Config
    from console.engine import Engine
    from console.store import Lease, RecordStore

#: A commander whose heartbeat is older than this is gone, even on another host.
LEASE_STALE_S = 30.0


def run_console(args: argparse.Namespace, config: Config, db_path: Path | str | None) -> int:
    """Open the console the command asks for; returns the exit status."""
    stub = None
    if args.command == "demo":
        config, db_path, stub = _demo_setup(args, config, db_path)
    assert db_path is not None
    try:
        if args.command == "watch":
            return _watch(_incident_id(args.id), config, db_path)
        if args.command == "replay":
            return _replay(_incident_id(args.id), config, db_path, getattr(args, "at", None))
        incident_id = _commander_incident(args)
        return _command(args, config, db_path, incident_id)
    finally:
        if stub is not None:
            stub.stop()


def opens_behind_first_frame(args: argparse.Namespace) -> bool:
    """A commander's console on a terminal draws its layout first and opens behind it (the
    config, the record, the adapters), so the screen is up in about the time Textual itself
    takes. Without a terminal (Textual would write its screen into the same stderr as the
    one-line refusal), every step runs before the app, as for watchers and replays."""
    stream = sys.__stderr__  # where Textual draws
    return args.command in ("demo", "open") and stream is not None and stream.isatty()


def run_console_opening(args: argparse.Namespace,
                        load: Callable[[], tuple[Config, Path | str | None]]) -> int:
    """``demo`` / ``open`` on a terminal: the first frame, then :func:`load` (the config and
    the record's location) and every commander step in a thread. A step that fails closes the
    app, which gives the terminal back, and is raised here: the CLI says it in the same one
    line, with the same status, as when it fails before the screen."""
    from console.app import ConsoleParts, make_opening_app

    incident_id = _commander_incident(args)  # bad input: refused before the screen
    clock = SystemClock()
    stubs: list[Any] = []

    def opening() -> ConsoleParts:
        config, db_path = load()
        if args.command == "demo":
            config, db_path, stub = _demo_setup(args, config, db_path)
            if stub is not None:
                stubs.append(stub)
        assert db_path is not None
        session = _open_command(args, config, db_path, incident_id, clock)
        sessions.append(session)
        return ConsoleParts(config, db_path, session.incident_id, session.engine, session.lease)

    sessions: list[CommanderSession] = []
    app = make_opening_app(opening, clock)
    try:
        app.run()
        thread = app.opening_thread
        if thread is not None:
            thread.join()  # quit while opening: what it opened is closed below
        if app.opening_error is not None:
            raise app.opening_error
        return 0
    finally:
        try:
            for session in sessions:
                session.close(app)
        finally:
            for stub in stubs:
                stub.stop()


def _commander_incident(args: argparse.Namespace) -> int | None:
    """The incident a commander's console opens (None: the demo's), or a one-line refusal."""
    if args.command == "open" and getattr(args, "take_over", False) \
            and not (getattr(args, "reason", "") or "").strip():
        raise UsageError("--take-over needs --reason: say why command changes hands")
    return None if args.command == "demo" else _incident_id(args.id)


def _demo_setup(args: argparse.Namespace, config: Config, db_path: Path | str | None
                ) -> tuple[Config, Path | str, Any]:
    """The demo's config (its scenario, --fast, --prometheus), its integrations and its own
    record; the Statuspage stand-in to stop afterwards (or None)."""
    from console.demo import demo_config

    stub = None
    config = demo_config(config, args.scenario, fast=getattr(args, "fast", False),
                         prometheus_url=getattr(args, "prometheus", None))
    flagger = bool(getattr(args, "flagger", False))
    status_page = bool(getattr(args, "status_page", False))
    if flagger or status_page:
        # Flagger's gate served from the record (a simulated Flagger calls it), and a
        # Statuspage stand-in on 127.0.0.1 that `s` posts to: the whole story, offline.
        from console.demo import start_status_page, with_integrations

        section = None
        if status_page:
            stub, section = start_status_page()
        config = with_integrations(config, flagger=flagger, statuspage=section)
        db_path = db_path or paths.demo_integrations_db_path()
    db_path = db_path or (paths.demo_prometheus_db_path() if getattr(args, "prometheus", None)
                          else paths.demo_db_path())
    return config, db_path, stub


def _start_demo_flagger(args: argparse.Namespace, config: Config, db_path: Path | str,
                        incident_id: int, adapters: Any) -> str:
    """The demo's `warroom gate` and its simulated Flagger (stopped with the adapters); what the
    timeline is told about them."""
    from console.demo import start_flagger

    stop, url = start_flagger(db_path, config, incident_id, adapters,
                              fast=bool(getattr(args, "fast", False)))
    previous = adapters.on_close

    def close() -> None:
        stop()
        if previous is not None:
            previous()

    adapters.on_close = close
    said = (f"Demo: a simulated Flagger asks `warroom gate` ({url}/gate/...) at every analysis "
            "interval; a advances it through its gates, x and R open its rollback gate.")
    if config.statuspage is not None:
        said += f" s posts to a Statuspage stand-in ({config.statuspage.api_url})."
    return said


def _incident_id(text: str) -> int:
    try:
        return parse_incident_id(text)
    except ValueError as error:
        raise UsageError(str(error)) from None


def _watch(incident_id: int, config: Config, db_path: Path | str) -> int:
    from console.app import make_app

    check_watchable(incident_id, config, db_path)
    app = make_app(config, db_path, incident_id, SystemClock())
    app.run()
    return 0


def check_watchable(incident_id: int, config: Config, db_path: Path | str) -> None:
    """Refuse, with one line, what `warroom watch` would refuse: no database, a record this
    process cannot open read-only (with no write handle), no such incident. From here on this
    process holds no write handle on the record (`watch`, `serve`)."""
    from console.store import (
        StoreError,
        UnknownIncident,
        forbid_write_handles,
        incident_in_file,
        open_store,
    )

    if isinstance(db_path, Path) and not db_path.exists():
        raise StoreError(f"no incident database at {db_path}")
    forbid_write_handles()  # a watcher holds no write handle on the record, ever
    try:
        store = open_store(db_path, readonly=True, password_env=config.store.password_env)
    except StoreError:
        # the plainer answer comes first: an incident the file does not hold
        if isinstance(db_path, Path) and not incident_in_file(db_path, incident_id):
            raise UnknownIncident(
                f"no incident {format_incident_id(incident_id)} in {db_path}") from None
        raise
    with store:
        if not store.has_incident(incident_id):
            raise UnknownIncident(f"no incident {format_incident_id(incident_id)} in {db_path}")


def _replay(incident_id: int, config: Config, db_path: Path | str, at: str | None) -> int:
    """``warroom replay``: the record alone, read-only — no adapter, no lease, no engine."""
    from console.app import AppOptions, make_app
    from console.replay import parse_moment
    from console.store import StoreError, open_store

    if isinstance(db_path, Path) and not db_path.exists():
        raise StoreError(f"no incident database at {db_path}")
    moment = None
    with open_store(db_path, readonly=True, password_env=config.store.password_env) as store:
        state = store.state(incident_id)  # UnknownIncident, in the usual words
        if at is not None:
            start = state.declared_ts or state.last_ts
            assert start is not None
            end = state.closed_ts if state.closed and state.closed_ts else SystemClock().now()
            try:
                moment = parse_moment(at, start, max(end, state.last_ts or end))
            except ValueError as error:
                raise UsageError(f"--at {error}") from None
    app = make_app(config, db_path, incident_id, SystemClock(),
                   options=AppOptions(replay_at=moment, replay_only=True))
    app.run()
    return 0


@dataclass
class CommanderSession:
    """What a commander's console opened: the store, the lease, the engine and the demo's
    simulated approvers; :meth:`close` ends them (recording the close when a console ran)."""

    store: RecordStore
    incident_id: int
    user: str
    lease: Lease
    engine: Engine
    stop_approvers: threading.Event

    def close(self, app: WarroomApp | None) -> None:
        from console import commands

        try:
            if app is not None:
                # The close is a fact of the record: the PIR leaves the time without a console
                # out of the durations it would distort. A console that lost its lease says so.
                how = "quit" if app.mode == "COMMANDER" else "lease-lost"
                with contextlib.suppress(Exception):  # never turn a clean quit into an error
                    commands.console_closed(self.store, self.incident_id, user=self.user,
                                            host=socket.gethostname(), pid=os.getpid(), how=how)
                lease = app.lease or self.lease
                if app.mode == "COMMANDER":
                    self.store.release_lease(lease)
        finally:
            self.stop_approvers.set()
            self.engine.close()
            self.store.close()


def _command(args: argparse.Namespace, config: Config, db_path: Path | str,
             incident_id: int | None) -> int:
    """A commander console: for the incident given, or the demo's (found or declared)."""
    from console.app import make_app

    clock = SystemClock()
    session = _open_command(args, config, db_path, incident_id, clock)
    app = None
    try:
        app = make_app(config, db_path, session.incident_id, clock, engine=session.engine,
                       lease=session.lease)
        app.run()
        return 0
    finally:
        session.close(app)


def _open_command(args: argparse.Namespace, config: Config, db_path: Path | str,
                  incident_id: int | None, clock: SystemClock) -> CommanderSession:
    """Every step of a commander's console before its screen can act: the store, the incident
    (the demo's found or declared), the lease, the adapters, the engine. Whatever fails is
    undone and raised (one line, exit 2, from the CLI)."""
    from console import commands
    from console.demo import demo_simulation
    from console.engine import Engine
    from console.store import StoreError, open_store
    from console.wiring import build_adapters, simulated_service

    user = os_user()
    if incident_id is not None and isinstance(db_path, Path) and not db_path.exists():
        raise StoreError(f"no incident database at {db_path} (declare an incident first, or "
                         "pass --db)")
    store = open_store(db_path, group=config.store.group,
                       password_env=config.store.password_env)
    try:
        user = store.person(user)  # on PostgreSQL, the database role that authenticated
        demo = incident_id is None
        if incident_id is None:
            from console.demo import declare_demo, find_open_demo

            incident_id = (find_open_demo(store, args.scenario)
                           or declare_demo(store, config, user, scenario=args.scenario))
        state = store.state(incident_id)
        if state.closed:
            raise StoreError(f"{format_incident_id(incident_id)} is closed; `warroom watch` "
                             "shows it read-only")
        take_over = bool(getattr(args, "take_over", False))
        lease, previous = store.acquire_lease(incident_id, user, take_over=take_over,
                                              stale_after_s=LEASE_STALE_S)
        integrations = ""
        try:
            sim_service = None
            if "sim" in (config.metrics.kind, config.traffic.kind, config.deploy.kind):
                # A demo's service behaves as its scenario says even when a real Prometheus,
                # not the simulator, answers the guardrails' queries (demo-prometheus).
                overrides = demo_simulation(state.scenario or args.scenario) if demo else {}
                sim_service = simulated_service(config, state, clock, **overrides)
                if state.canary_percent and not state.rolled_back:
                    sim_service.set_weight(state.canary_percent)  # resume where the demo was
            adapters = build_adapters(config, state, clock, sim_service,
                                      serve_port=getattr(args, "serve_metrics", None))
            if demo and config.gate is not None:
                integrations = _start_demo_flagger(args, config, db_path, incident_id, adapters)
        except BaseException:
            store.release_lease(lease)  # nothing was opened: the timeline says nothing either
            raise
        stop_approvers = threading.Event()
        commands.open_console(store, incident_id, user=user, host=socket.gethostname(),
                              pid=os.getpid(), previous=previous, take_over=take_over,
                              reason=getattr(args, "reason", "") or "")
        if integrations:
            commands.note(store, incident_id, actor=SYSTEM_ACTOR, text=integrations)
        engine = Engine(store, incident_id, config, adapters, clock, user)
        if demo:
            from console.demo import start_simulated_approvers

            start_simulated_approvers(store, config, incident_id, engine.state, stop_approvers)
        return CommanderSession(store, incident_id, user, lease, engine, stop_approvers)
    except BaseException:
        store.close()
        raise
