"""Test incidents of 1,000 to 1,000,000 events, built with the store's own API and cached.

An incident is what a long emergency leaves behind: the declaration (through ``policy``, as
``warroom declare`` and the demo make it), the console opening, the rollback preflight, two
approvals, the compatibility checklist, stage moves (advances and aborts, ending live at 10 %),
guardrail status changes flapping between healthy and breach, notes, the odd console restart, and
one metric sample per event in the samples table. Everything goes through ``Store.create_incident``,
``Store.append_many`` (batches of :data:`BATCH` events sharing one timestamp) and
``Store.add_samples``: never SQL into the events table, so whatever the store derives on append
(checkpoints, indexes) is there as it would be in a real record.

Built incidents are cached in ``$WARROOM_BENCH_CACHE`` (default ``$XDG_CACHE_HOME/warroom-bench``,
else ``~/.cache/warroom-bench``) under a key made of ``console.store.SCHEMA_VERSION``,
:data:`GENERATOR_VERSION` and a digest of the store's and the fold's source files, so a schema,
store or fold change rebuilds them. Builds take a file lock (several worktrees may run
``make bench`` at once) and appear under their final name only when complete.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import random
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from console import policy
from console.config import Config, load_config
from console.model import Kind
from console.store import SCHEMA_VERSION, Store

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
CONFIG_PATH = HERE / "warroom-bench.toml"
#: Bump when the generated content changes: cached incidents are then rebuilt.
GENERATOR_VERSION = 1
#: Events per ``append_many`` transaction (they share one timestamp).
BATCH = 5_000
#: Seconds of incident time per event: a 1,000-event incident lasts about 8 minutes.
SECONDS_PER_EVENT = 0.5
INCIDENT_ID = 1
SERVICE = "redaction-api"
COMMANDER = "alice"
END_MARKER = "bench record ends here"

NOTES = [
    "p99 latency back to normal on eu-west, still watching the queue depth",
    "customer support reports fewer tickets since the last stage",
    "paging the database on-call: replication lag at {n} s on the replica",
    "error budget burn {n}% of the hourly budget, inside what we agreed",
    "status page updated: investigating, next update in 30 minutes",
    "security confirms the redaction covers the agent response field #{n}",
    "dashboards show {n} req/s on the canary, baseline unchanged",
    "bridge call: holding here until the next hourly review",
]
GUARDRAILS: dict[str, dict[str, Any]] = {
    "error-ratio": {"unit": "%", "scale": 100.0, "max": 0.02, "consecutive": 8,
                    "on_breach": "rollback"},
    "p99-latency": {"unit": "s", "scale": 1.0, "max": 1.0, "consecutive": 5,
                    "on_breach": "hold"},
}


def bench_config() -> Config:
    config, _ = load_config(CONFIG_PATH)
    return config


def cache_dir() -> Path:
    explicit = os.environ.get("WARROOM_BENCH_CACHE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "warroom-bench"


def store_fingerprint() -> str:
    """A digest of the store's source (and of any checkpoint or typed-event module beside it)
    and of the fold (its checkpoints are stored in the incidents: one made by another fold is
    ignored, and every reader would then fold the whole history, in every figure)."""
    digest = hashlib.sha256()
    for name in ("store.py", "checkpoint.py", "events.py", "state.py", "model.py",
                 "identity.py"):
        path = REPO / "console" / name
        if path.exists():
            digest.update(name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def cache_key() -> str:
    return f"schema{SCHEMA_VERSION}-gen{GENERATOR_VERSION}-store{store_fingerprint()}"


def incident_db(count: int, *, directory: Path | None = None) -> Path:
    """The path of a cached database holding incident :data:`INCIDENT_ID` with ``count``
    events, built first if it is not there yet."""
    folder = (directory or cache_dir() / "incidents") / cache_key()
    path = folder / f"incident-{count}.db"
    if path.exists():
        return path
    folder.mkdir(parents=True, exist_ok=True)
    with _locked(folder / ".lock"):
        if path.exists():  # another run built it while we waited
            return path
        partial = folder / f".incident-{count}.{os.getpid()}.building"
        _remove_db(partial)
        try:
            build_incident(partial, count)
            os.replace(partial, path)
        finally:
            _remove_db(partial)
    return path


def copy_db(source: Path, target: Path) -> Path:
    """A private copy of a (closed, checkpointed) database, for a run that writes to it."""
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    return target


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _remove_db(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def build_incident(path: Path, count: int, *, end: datetime | None = None, seed: int = 7) -> None:
    """Write incident :data:`INCIDENT_ID` with exactly ``count`` events (≥ 20) into ``path``."""
    if count < 20:
        raise ValueError("an incident needs at least 20 events for its opening and its end")
    config = bench_config()
    rng = random.Random(seed)
    end = end or datetime.now(UTC)
    start = end - timedelta(seconds=count * SECONDS_PER_EVENT)
    declaration = policy.declaration(
        config, title="Internal API exposes PII in agent responses", priority="P0",
        category="security", service=SERVICE, from_version="v1.4.2", to_version="v1.4.3",
        bypass_specs=["canary=PII exposure is ongoing; a multi-day canary cannot match",
                      "change-window=22:00 local, outside the change window; the harm is "
                      "ongoing"],
        affects=["agent-responses"], commander=COMMANDER)
    with Store(path) as store:
        incident = store.create_incident(COMMANDER, declaration, ts=start)[0].incident_id
        assert incident == INCIDENT_ID
        opening = _opening(config)
        store.append_many(incident, opening, ts=start + timedelta(seconds=5))
        body = count - 1 - len(opening) - 1
        written = 0
        moves = _stage_moves(body)
        while written < body:
            size = min(BATCH, body - written)
            batch = [_body_event(rng, written + i, moves) for i in range(size)]
            ts = start + timedelta(seconds=(1 + len(opening) + written) * SECONDS_PER_EVENT)
            store.append_many(incident, batch, ts=ts)
            written += size
        store.append(incident, Kind.NOTE, COMMANDER, {"text": f"{END_MARKER} ({count} events)"},
                     ts=end)
        _write_samples(store, incident, rng, start, end, count)
        assert store.last_event_id(incident) == count


def _opening(config: Config) -> list[tuple[str, str, dict[str, Any]]]:
    checks = [{"name": "target version v1.4.2 is known", "ok": True,
               "detail": "v1.4.2 is the stable version of redaction-api"},
              {"name": "target image is present", "ok": True,
               "detail": "registry.sim/redaction-api:v1.4.2 found"}]
    return [
        (Kind.CONSOLE_OPENED, COMMANDER, {"user": COMMANDER, "host": "bastion-1", "pid": 4242,
                                          "mode": "commander"}),
        (Kind.PREFLIGHT_REQUESTED, "warroom", {"target": "v1.4.2"}),
        (Kind.PREFLIGHT_PASSED, "warroom", {"target": "v1.4.2", "checks": checks,
                                            "detail": "rollback of redaction-api to v1.4.2 can "
                                                      "run"}),
        (Kind.APPROVED, "priya", {"role": "security-lead", "user": "priya", "kind": "direct",
                                  "version": "v1.4.3", "note": "redaction diff reviewed"}),
        (Kind.APPROVED, COMMANDER, {"role": "platform-lead", "user": "marco", "kind": "relayed",
                                    "version": "v1.4.3", "relayed_from": "marco",
                                    "evidence": "bridge 22:14, said go", "note": ""}),
        (Kind.CHECKLIST_ACKED, COMMANDER, {"items": list(config.rollback.compatibility_checklist)}),
        (Kind.WEIGHT_REQUESTED, COMMANDER, {"from_percent": 0, "to_percent": 1, "stage_index": 0,
                                            "action": "advance", "overrides": []}),
        (Kind.WEIGHT_SET, "warroom", {"percent": 1, "stage_index": 0, "action": "advance",
                                      "reported": 1, "request_id": 8}),
    ]


#: The stage moves of a body, in order (from %, to %, stage index, action); the last leaves the
#: canary live at 10 %.
MOVES = [(1, 10, 1, "advance"), (10, 50, 2, "advance"), (50, 0, -1, "abort"),
         (0, 1, 0, "advance"), (1, 10, 1, "advance")]


def _stage_moves(body: int) -> dict[int, tuple[int, int, int, str]]:
    """Body positions where a stage move starts (a request, then its result: two events).
    Whole rounds of :data:`MOVES`, up to twenty moves whatever the incident's length, evenly
    spread; none in an incident too short for a round."""
    count = min(20, body // 50) // len(MOVES) * len(MOVES)
    if count == 0:
        return {}
    step = body // (count + 1)
    return {step * (i + 1): move for i, move in enumerate((MOVES * 4)[:count])}


def _body_event(rng: random.Random, position: int,
                moves: dict[int, tuple[int, int, int, str]]) -> tuple[str, str, dict[str, Any]]:
    move = moves.get(position)
    if move is not None:
        start, to, index, action = move
        return (Kind.WEIGHT_REQUESTED, COMMANDER,
                {"from_percent": start, "to_percent": to, "stage_index": index,
                 "action": action, "overrides": [], **({"reason": "hold the line"}
                                                      if action == "abort" else {})})
    previous = moves.get(position - 1)
    if previous is not None:
        _, to, index, action = previous
        return (Kind.WEIGHT_SET, "warroom", {"percent": to, "stage_index": index,
                                             "action": action, "reported": to})
    roll = rng.random()
    if roll < 0.62:
        return _guardrail_change(rng, position)
    if roll < 0.995:
        text = rng.choice(NOTES).format(n=rng.randint(2, 97))
        return (Kind.NOTE, rng.choice([COMMANDER, "priya", "marco", "tomas"]), {"text": text})
    return (Kind.CONSOLE_OPENED, COMMANDER, {"user": COMMANDER, "host": "bastion-1",
                                             "pid": 4000 + position % 1000, "mode": "commander"})


def _guardrail_change(rng: random.Random, position: int) -> tuple[str, str, dict[str, Any]]:
    name = "error-ratio" if position % 2 else "p99-latency"
    spec = GUARDRAILS[name]
    breach = rng.random() < 0.5
    baseline = 0.003 if name == "error-ratio" else 0.12
    limit = float(spec["max"])
    canary = limit * (1.1 + rng.random()) if breach else baseline * (0.8 + rng.random() / 2)
    unit, scale = str(spec["unit"]), float(spec["scale"])
    shown = f"{canary * scale:.2f}{unit if unit == '%' else ' ' + unit}"
    shown_limit = f"{limit * scale:.2f}{unit if unit == '%' else ' ' + unit}"
    detail = (f"canary {shown} > limit {shown_limit} (max)" if breach
              else f"canary {shown} within limit {shown_limit}")
    breaches = rng.randint(1, int(spec["consecutive"]) - 1) if breach else 0
    return (Kind.GUARDRAIL_CHANGED, "warroom", {
        "name": name, "status": "breach" if breach else "healthy",
        "previous": "healthy" if breach else "breach", "canary": canary, "baseline": baseline,
        "limit": limit, "evidence": float(rng.randint(40, 400)), "detail": detail,
        "breaches": breaches, "consecutive": spec["consecutive"], "sustained": False,
        "on_breach": spec["on_breach"]})


def _write_samples(store: Store, incident: int, rng: random.Random, start: datetime,
                   end: datetime, count: int) -> None:
    """One sample per event, spread over the incident: each guardrail's canary, baseline and
    limit series, as the commander's poller records them."""
    series = [(f"{name}/{track}", spec) for name, spec in GUARDRAILS.items()
              for track in ("canary", "baseline", "limit")]
    first, span = start.timestamp(), (end - start).total_seconds()
    polls = max(1, count // len(series))
    rows: list[tuple[str, float, float | None]] = []
    for poll in range(polls):
        ts = first + span * poll / polls
        for name, spec in series:
            limit = float(spec["max"])
            value = (limit if name.endswith("/limit") else
                     limit * rng.uniform(0.1, 1.3) if name.endswith("/canary") else
                     limit * rng.uniform(0.1, 0.3))
            rows.append((name, ts, value))
        if len(rows) >= 30_000:
            store.add_samples(incident, rows)
            rows = []
    if rows:
        store.add_samples(incident, rows)
