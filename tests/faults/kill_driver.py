"""A commander's console run without a screen, that kills itself (SIGKILL) at a chosen point.

``python -m tests.faults.kill_driver RUN_DIR KILL_AT`` does what ``warroom open`` does up to the
screen (the lease, ``console_opened``, the adapters the config names, the engine) and then what
the console's workers do: the start-up (reconcile, preflight), then a canary run to 10 % and a
rollback, polled until its verdict. ``RUN_DIR`` holds ``config.json`` and ``warroom.db`` (an
incident ready to advance, see test_kill.py).

Kill points are counted as the run goes: before and after every adapter call, and inside every
store write before its COMMIT and after it. At point number ``KILL_AT`` (0: never) the process
sends itself SIGKILL — a real one, nothing is flushed or cleaned up. What the run did reaches the
test on stdout, written unbuffered before the point that may kill it:

- ``COMMITTED <id> <hash>``: an event whose COMMIT returned (it must never be lost);
- ``SEND rollback <key>``: a rollback call about to be made (it must be made once per key);
- ``POINTS <n>``, ``DONE <rollback status>``: the run finished, after ``n`` kill points.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from adapters.base import PreflightResult, RollbackOperation, SystemClock
from console import commands
from console.config import Config
from console.engine import Engine
from console.model import Event
from console.store import Store
from console.wiring import build_adapters, simulated_service

COMMANDER = "alice"
#: Polls at most, while the rollback is verified (a stuck run fails instead of hanging).
MAX_STEPS = 400


class KillSwitch:
    """Counts kill points; SIGKILLs this process at point ``at`` (0: never)."""

    def __init__(self, at: int) -> None:
        self.at = at
        self.count = 0

    def point(self, where: str) -> None:
        self.count += 1
        if self.count == self.at:
            say(f"KILL {self.count} {where}")
            os.kill(os.getpid(), signal.SIGKILL)


def say(line: str) -> None:
    os.write(1, (line + "\n").encode())


class KillableStore(Store):
    """The real store, with kill points inside each write transaction and after its COMMIT,
    and every committed event said on stdout."""

    switch: KillSwitch

    def __init__(self, path: Path, switch: KillSwitch) -> None:
        self.switch = switch
        self._written: list[Event] = []
        super().__init__(path)

    @contextlib.contextmanager
    def _write(self, incident_id: int | None = None, *,
               appends: bool = False) -> Iterator[Any]:
        with self._lock:
            self._written = []
            with super()._write(incident_id, appends=appends) as conn:
                yield conn
                self.switch.point("store: before COMMIT")
            for event in self._written:
                say(f"COMMITTED {event.id} {event.hash}")
            self._written = []
        self.switch.point("store: after COMMIT")

    def _insert(self, conn: Any, incident_id: int, kind: str, actor: str,
                payload: dict[str, Any], ts: Any) -> Event:
        event = super()._insert(conn, incident_id, kind, actor, payload, ts)
        self._written.append(event)
        return event


class Killable:
    """An adapter whose every call has a kill point before and after it."""

    def __init__(self, inner: Any, switch: KillSwitch) -> None:
        self._inner = inner
        self._switch = switch

    def _call(self, name: str, call: Callable[[], Any]) -> Any:
        self._switch.point(f"before {name}")
        result = call()
        self._switch.point(f"after {name}")
        return result

    def set_weight(self, percent: int) -> None:
        self._call("set_weight", lambda: self._inner.set_weight(percent))

    def current_weight(self) -> int:
        return int(self._call("current_weight", self._inner.current_weight))

    def current_version(self) -> str:
        return str(self._call("current_version", self._inner.current_version))

    def preflight_rollback(self, target: str) -> PreflightResult:
        result: PreflightResult = self._call("preflight",
                                             lambda: self._inner.preflight_rollback(target))
        return result

    def rollback(self, target: str, progress: Callable[[str], None] | None = None, *,
                 idempotency_key: str | None = None) -> str:
        def call() -> str:
            say(f"SEND rollback {idempotency_key}")
            return str(self._inner.rollback(target, progress, idempotency_key=idempotency_key))

        return str(self._call("rollback", call))

    def find_rollback(self, idempotency_key: str) -> RollbackOperation | None:
        finder = getattr(self._inner, "find_rollback", None)
        if finder is None:
            return None
        operation: RollbackOperation | None = self._call(
            "find_rollback", lambda: finder(idempotency_key))
        return operation


def main(run_dir: Path, kill_at: int) -> int:
    switch = KillSwitch(kill_at)
    config = Config.model_validate(json.loads((run_dir / "config.json").read_text()))
    store = KillableStore(run_dir / "warroom.db", switch)
    incident = store.incident_ids()[-1]
    state = store.state(incident)
    clock = SystemClock()
    # what launch._command does before the screen
    lease, previous = store.acquire_lease(incident, COMMANDER, stale_after_s=30.0)
    sim = None
    if "sim" in (config.metrics.kind, config.traffic.kind, config.deploy.kind):
        sim = simulated_service(config, state, clock)
        if state.canary_percent and not state.rolled_back:
            sim.set_weight(state.canary_percent)
    adapters = build_adapters(config, state, clock, sim)
    adapters.traffic = Killable(adapters.traffic, switch)
    adapters.deployer = Killable(adapters.deployer, switch)
    commands.open_console(store, incident, user=COMMANDER, host=socket.gethostname(),
                          pid=os.getpid(), previous=previous, take_over=False, reason="")
    engine = Engine(store, incident, config, adapters, clock, COMMANDER)
    try:
        # the console's start-up worker, then its actions and its poll loop
        engine.reconcile()
        if not engine.state.rolled_back:
            engine.preflight()
        for _ in range(MAX_STEPS):
            now = engine.state
            if now.rollback_status in ("verified", "not_verified", "failed"):
                break
            if now.rolled_back:
                engine.poll()
                time.sleep(0.01)
            elif now.canary_percent < 10:
                blocks = engine.advance_blocks()
                engine.advance({b.code: "kill drill" for b in blocks if b.overridable})
            else:
                engine.request_rollback("kill drill")
        store.release_lease(lease)
        say(f"POINTS {switch.count}")
        say(f"DONE {engine.state.rollback_status}")
        return 0
    finally:
        engine.close()
        store.close()


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), int(sys.argv[2])))
