"""Benchmarks of the core, measured against baselines from the same run (no pass or fail).

- start-up: `warroom --version` and `warroom list` against a bare `python -c pass`;
- the fold: 100,000 events folded from scratch against 1,000 (should scale linearly);
- the store: appending 1,000 events (each its own durable transaction, synchronous=FULL) and
  reading 100,000 back, against reading 1,000;
- chain verification of 100,000 events against 1,000.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from console.model import Event, Kind  # noqa: E402
from console.state import fold  # noqa: E402
from console.store import Store  # noqa: E402

T0 = datetime(2026, 11, 22, 22, 0, tzinfo=UTC)


def median_s(action: Callable[[], object], repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def events(count: int) -> list[Event]:
    declared = Event(1, 1, T0, Kind.DECLARED, "alice", {
        "title": "t", "priority": "P0", "category": "security", "service": "svc",
        "from_version": "v1", "to_version": "v2", "required_roles": ["security-lead"],
        "plan": [{"percent": 1, "hold_s": 60}, {"percent": 100, "hold_s": 0}],
        "guardrails": [{"name": "error-ratio", "consecutive": 3}]})
    out = [declared]
    for n in range(2, count + 1):
        ts = T0 + timedelta(milliseconds=100 * n)
        if n % 3 == 0:
            out.append(Event(n, 1, ts, Kind.GUARDRAIL_CHANGED, "warroom",
                             {"name": "error-ratio", "status": "healthy", "breaches": 0}))
        else:
            out.append(Event(n, 1, ts, Kind.NOTE, "bob", {"text": f"note {n}"}))
    return out


def filled_store(path: Path, count: int) -> Store:
    store = Store(path)
    store.create_incident("alice", {"title": "bench"})
    batch = [(Kind.NOTE.value, "bob", {"text": f"note {n}"}) for n in range(999)]
    for _ in range(max(0, (count - 1) // 999)):
        store.append_many(1, batch)
    return store


def command(*args: str) -> Callable[[], object]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return lambda: subprocess.run([sys.executable, *args], env=env, check=True,
                                  capture_output=True, cwd=tempfile.gettempdir())


def main() -> None:
    rows: list[tuple[str, float, str, float]] = []

    def row(name: str, seconds: float, baseline_name: str, baseline: float) -> None:
        rows.append((name, seconds, baseline_name, baseline))

    bare = median_s(command("-c", "pass"), 5)
    row("warroom --version", median_s(command("-m", "console.cli", "--version"), 5),
        "python -c pass", bare)
    with tempfile.TemporaryDirectory() as tmp:
        db = str(Path(tmp) / "w.db")
        row("warroom list (empty db)", median_s(command("-m", "console.cli", "list", "--db", db),
                                                5), "python -c pass", bare)
        small, large = events(1_000), events(100_000)
        fold_small = median_s(lambda: fold(small), 5)
        row("fold 100,000 events", median_s(lambda: fold(large), 3), "fold 1,000", fold_small)

        store_small = filled_store(Path(tmp) / "small.db", 1_000)
        store_large = filled_store(Path(tmp) / "large.db", 100_000)
        read_small = median_s(lambda: store_small.events(1), 5)
        row("read 100,000 events", median_s(lambda: store_large.events(1), 3),
            "read 1,000", read_small)
        verify_small = median_s(lambda: store_small.verify(1), 5)
        row("verify 100,000 events", median_s(lambda: store_large.verify(1), 3),
            "verify 1,000", verify_small)
        append = median_s(lambda: store_small.append(1, Kind.NOTE, "bob", {"text": "x"}), 50)
        row("append 1 event (durable)", append, "read 1,000", read_small)
        store_small.close()
        store_large.close()

    print(f"{'benchmark':<28} {'median':>10}   {'baseline':<18} {'median':>10} {'ratio':>8}")
    for name, seconds, baseline_name, baseline in rows:
        print(f"{name:<28} {seconds * 1000:>8.2f}ms   {baseline_name:<18} "
              f"{baseline * 1000:>8.2f}ms {seconds / baseline:>7.2f}x")


if __name__ == "__main__":
    main()
