"""Starts the console for `warroom demo`, `warroom open` and `warroom watch`.

Everything that can fail before the screen appears (config, database, lease, adapters) fails
here with one line and exit 2, before Textual takes the terminal.
"""

from __future__ import annotations

import argparse
import os
import socket
import threading
from pathlib import Path

from adapters.base import SystemClock
from console import paths
from console.config import Config
from console.model import Kind, format_incident_id, parse_incident_id
from console.state import fold
from console.store import Store, StoreError

#: A commander whose heartbeat is older than this is gone, even on another host.
LEASE_STALE_S = 30.0


def _os_user() -> str:
    from console.cli import os_user

    return os_user()


def run_console(args: argparse.Namespace, config: Config, db_path: Path | None) -> int:
    from console.cli import UsageError

    if args.command == "watch":
        return _watch(args, config, db_path)
    if args.command == "demo":
        from console.demo import demo_config

        config = demo_config(config, args.scenario, fast=getattr(args, "fast", False),
                             prometheus_url=getattr(args, "prometheus", None))
        db_path = db_path or paths.demo_db_path()
        return _command(args, config, db_path, demo=True)
    try:
        parse_incident_id(args.id)
    except ValueError as error:
        raise UsageError(str(error)) from None
    assert db_path is not None
    return _command(args, config, db_path, demo=False)


def _watch(args: argparse.Namespace, config: Config, db_path: Path | None) -> int:
    from console.app import make_app
    from console.cli import UsageError

    assert db_path is not None
    try:
        incident_id = parse_incident_id(args.id)
    except ValueError as error:
        raise UsageError(str(error)) from None
    if not db_path.exists():
        raise StoreError(f"no incident database at {db_path}")
    with Store(db_path, readonly=True) as store:
        store.require_events(incident_id)
    app = make_app(config, db_path, incident_id, SystemClock())
    app.run()
    return 0


def _command(args: argparse.Namespace, config: Config, db_path: Path, *, demo: bool) -> int:
    from console.app import make_app
    from console.engine import Engine
    from console.wiring import build_adapters, simulated_service

    user = _os_user()
    store = Store(db_path, group=config.store.group)
    stop_approvers = threading.Event()
    engine: Engine | None = None
    try:
        if demo:
            from console.demo import declare_demo, find_open_demo, start_simulated_approvers

            incident_id = find_open_demo(store) or declare_demo(store, config, user)
        else:
            incident_id = parse_incident_id(args.id)
        state = fold(store.require_events(incident_id))
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
                sim_service = simulated_service(config, state, clock)
                if state.canary_percent and not state.rolled_back:
                    sim_service.set_weight(state.canary_percent)  # resume where the demo was
            adapters = build_adapters(config, state, clock, sim_service,
                                      serve_port=getattr(args, "serve_metrics", None))
        except BaseException:
            store.release_lease(lease)  # nothing was opened: the timeline says nothing either
            raise
        if previous is not None and (previous.user, previous.pid) != (user, os.getpid()):
            store.append(incident_id, Kind.HANDOVER, user, {
                "previous_user": previous.user, "previous_host": previous.host,
                "previous_pid": previous.pid, "user": user, "host": socket.gethostname(),
                "pid": os.getpid(),
                "reason": getattr(args, "reason", "") or ("--take-over" if take_over else
                                                          "previous commander gone"),
            })
        store.append(incident_id, Kind.CONSOLE_OPENED, user, {
            "user": user, "host": socket.gethostname(), "pid": os.getpid(), "mode": "commander"})
        engine = Engine(store, incident_id, config, adapters, clock, user)
        if demo:
            start_simulated_approvers(store, incident_id, engine.state, stop_approvers)
        app = make_app(config, db_path, incident_id, clock, engine=engine, lease=lease)
        app.run()
        if app.lease is not None and app.mode == "COMMANDER":
            store.release_lease(app.lease)
        return 0
    finally:
        stop_approvers.set()
        if engine is not None:
            engine.close()
        store.close()
