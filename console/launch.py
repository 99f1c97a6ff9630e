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
import threading
from pathlib import Path
from typing import Any

from adapters.base import SystemClock
from console import commands, paths
from console.config import Config
from console.errors import UsageError, os_user
from console.model import SYSTEM_ACTOR, format_incident_id, parse_incident_id
from console.store import (
    StoreError,
    UnknownIncident,
    forbid_write_handles,
    incident_in_file,
    open_store,
)

#: A commander whose heartbeat is older than this is gone, even on another host.
LEASE_STALE_S = 30.0


def run_console(args: argparse.Namespace, config: Config, db_path: Path | str | None) -> int:
    """Open the console the command asks for; returns the exit status."""
    demo = args.command == "demo"
    stub = None
    if demo:
        from console.demo import demo_config

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
    assert db_path is not None
    try:
        if args.command == "watch":
            return _watch(_incident_id(args.id), config, db_path)
        if args.command == "replay":
            return _replay(_incident_id(args.id), config, db_path, getattr(args, "at", None))
        if args.command == "open" and getattr(args, "take_over", False) \
                and not (getattr(args, "reason", "") or "").strip():
            raise UsageError("--take-over needs --reason: say why command changes hands")
        incident_id = None if demo else _incident_id(args.id)
        return _command(args, config, db_path, incident_id)
    finally:
        if stub is not None:
            stub.stop()


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


def _command(args: argparse.Namespace, config: Config, db_path: Path | str,
             incident_id: int | None) -> int:
    """A commander console: for the incident given, or the demo's (found or declared)."""
    from console.app import make_app
    from console.demo import demo_simulation
    from console.engine import Engine
    from console.wiring import build_adapters, simulated_service

    user = os_user()
    if incident_id is not None and isinstance(db_path, Path) and not db_path.exists():
        raise StoreError(f"no incident database at {db_path} (declare an incident first, or "
                         "pass --db)")
    store = open_store(db_path, group=config.store.group,
                       password_env=config.store.password_env)
    user = store.person(user)  # on PostgreSQL, the database role that authenticated
    stop_approvers = threading.Event()
    engine: Engine | None = None
    integrations = ""
    try:
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
        clock = SystemClock()
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
        commands.open_console(store, incident_id, user=user, host=socket.gethostname(),
                              pid=os.getpid(), previous=previous, take_over=take_over,
                              reason=getattr(args, "reason", "") or "")
        if integrations:
            commands.note(store, incident_id, actor=SYSTEM_ACTOR, text=integrations)
        engine = Engine(store, incident_id, config, adapters, clock, user)
        if demo:
            from console.demo import start_simulated_approvers

            start_simulated_approvers(store, config, incident_id, engine.state, stop_approvers)
        app = make_app(config, db_path, incident_id, clock, engine=engine, lease=lease)
        app.run()
        # The close is a fact of the record: the PIR leaves the time without a console out of
        # the durations it would distort. A console that lost its lease says so.
        how = "quit" if app.mode == "COMMANDER" else "lease-lost"
        with contextlib.suppress(Exception):  # never turn a clean quit into an error
            commands.console_closed(store, incident_id, user=user, host=socket.gethostname(),
                                    pid=os.getpid(), how=how)
        if app.lease is not None and app.mode == "COMMANDER":
            store.release_lease(app.lease)
        return 0
    finally:
        stop_approvers.set()
        if engine is not None:
            engine.close()
        store.close()
