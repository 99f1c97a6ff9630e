"""Figures of the PostgreSQL store (issue 15): a watcher's latency over LISTEN/NOTIFY, and one
durable append against a bare INSERT and COMMIT on the same server.

Both run on a throwaway cluster of their own (tests/support/postgres_server.py) with ``fsync``
on, as a real server would run; skipped with a note when PostgreSQL is not installed
(``scripts/ensure-postgresql`` installs it when run as root).
"""

from __future__ import annotations

import getpass
import hashlib
import os
import random
import secrets
import statistics
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from console.model import Kind, format_ts, utcnow
from console.store import canonical_json, open_store
from tests.benchmarks.console_figures import NOTE_CAP_S, WARROOM_PANES, WATCH_NOTES
from tests.benchmarks.context import Context, interleave
from tests.benchmarks.harness import Figure, Series, absolute, ratio
from tests.benchmarks.incidents import CONFIG_PATH
from tests.benchmarks.terminal import Capped, in_pane, titled
from tests.support.postgres_server import PostgresServer, find_bindir

APPENDS_PER_BLOCK = 60
APPEND_BLOCKS = 9


MISSING = "skipped: PostgreSQL is not installed (scripts/ensure-postgresql installs it as root)"


@contextmanager
def _server() -> Iterator[PostgresServer]:
    server = PostgresServer(bindir=find_bindir(), fsync=True).start()
    saved = os.environ.get("PGPASSWORD")
    os.environ["PGPASSWORD"] = server.password  # the measured processes inherit it (ctx.env)
    try:
        yield server
    finally:
        if saved is None:
            os.environ.pop("PGPASSWORD", None)
        else:
            os.environ["PGPASSWORD"] = saved
        server.stop()


def watch_latency(ctx: Context) -> list[Figure]:
    """`warroom watch 1` on a PostgreSQL record while `warroom demo` commands it; the benchmark
    commits notes at random moments; each timed from the commit's return to the note in the
    watcher's Timeline pane. Baseline: the same commit's NOTIFY reaching a bare LISTEN
    connection in the benchmark's process (what no watcher can beat)."""
    watch = Series("another process commits a note → shown by `warroom watch` (PostgreSQL)",
                   "ms")
    floor = Series("the same commit → its NOTIFY at a bare LISTEN connection", "ms")
    user = getpass.getuser()
    rng = random.Random(11)
    tag = secrets.token_hex(2)
    if find_bindir() is None:
        return [Figure("watch_latency_pg_p95_ms", "ms", 100, note=MISSING)]
    with _server() as server:
        url = server.create_database("watch")
        demo = ctx.warroom("demo", "--scenario", "good", "--db", url)
        notified = threading.Event()
        listener = server.admin("watch")
        listener.execute("LISTEN warroom")
        with ctx.running(demo, titled(*WARROOM_PANES), 60, "the demo console (PostgreSQL)"), \
                ctx.running(ctx.warroom("watch", "1", "--db", url, "--config", CONFIG_PATH),
                            titled(*WARROOM_PANES), 60, "the watching console") as watcher, \
                open_store(url) as store:
            for i in range(WATCH_NOTES):
                text = f"commit {i:02d} {tag}"
                for _ in listener.notifies(timeout=0):
                    pass  # the demo's own commits
                notified.clear()
                seen = watcher.watch(in_pane("Timeline", text))
                store.append(1, Kind.NOTE, user, {"text": text})
                committed = time.monotonic()
                for notify in listener.notifies(timeout=NOTE_CAP_S):
                    if notify.payload == "1":
                        floor.add((time.monotonic() - committed) * 1000)
                        break
                if not watch.capped:
                    try:
                        watch.add((watcher.wait(seen, committed + NOTE_CAP_S, text) - committed)
                                  * 1000)
                    except Capped:
                        watch.add_capped((time.monotonic() - committed) * 1000,
                                         f"a committed note was not shown within "
                                         f"{NOTE_CAP_S:g} s")
                time.sleep(rng.uniform(0.05, 0.4))  # not in step with anything
        listener.close()
    return [absolute("watch_latency_pg_p95_ms", 100, watch, floor, statistic="p95",
                     note="PostgreSQL 'fsync=on' cluster on 127.0.0.1; the demo's commander runs "
                          "meanwhile; commits by the benchmark's own store, timed from their "
                          "return")]


def durable_append(ctx: Context) -> list[Figure]:
    """``PostgresStore.append`` of a note (its short road: one statement, its own transaction,
    that numbers and hashes the event, moves the chain head if it is still the one the store
    knows and inserts the event with its NOTIFY trigger; then the commit) against a bare psycopg
    INSERT and COMMIT of a row of the same shape into a plain table of the same database; blocks
    of each in turn."""
    del ctx
    text = "customer support reports fewer tickets since the last stage"
    appends = Series("PostgresStore.append of a note (durable), per event", "ms")
    inserts = Series("bare psycopg INSERT + COMMIT of the same row, same server", "ms")
    if find_bindir() is None:
        return [Figure("durable_append_pg_vs_insert_ratio", "×", 1.3, note=MISSING)]
    with _server() as server:
        url = server.create_database("append")
        with open_store(url) as store, server.admin("append") as bare:
            incident = store.create_incident("alice", {"title": "bench"})[0].incident_id
            store.append_many(incident, [(Kind.NOTE, "alice", {"text": f"n{n}"})
                                         for n in range(999)])
            bare.execute(
                "CREATE TABLE bare_events (id bigserial PRIMARY KEY, incident_id bigint NOT NULL, "
                "ts text NOT NULL, kind text NOT NULL, actor text NOT NULL, payload text NOT NULL, "
                "prev_hash text NOT NULL, hash text NOT NULL)")
            payload = canonical_json({"text": text})
            counter = [0]

            def store_block(_: int) -> float:
                times = []
                for _ in range(APPENDS_PER_BLOCK):
                    started = time.perf_counter()
                    store.append(incident, Kind.NOTE, "alice", {"text": text})
                    times.append(time.perf_counter() - started)
                return statistics.median(times) * 1000

            def bare_block(_: int) -> float:
                times = []
                for _ in range(APPENDS_PER_BLOCK):
                    counter[0] += 1
                    digest = hashlib.sha256(str(counter[0]).encode()).hexdigest()
                    row: tuple[Any, ...] = (incident, format_ts(utcnow()), str(Kind.NOTE),
                                            "alice", payload, digest, digest)
                    started = time.perf_counter()
                    with bare.transaction():
                        bare.execute(
                            "INSERT INTO bare_events (incident_id, ts, kind, actor, payload, "
                            "prev_hash, hash) VALUES (%s, %s, %s, %s, %s, %s, %s)", row)
                    times.append(time.perf_counter() - started)
                return statistics.median(times) * 1000

            store_block(0)  # warm-up (prepared statements, caches)
            bare_block(0)
            interleave(APPEND_BLOCKS, [(inserts, bare_block), (appends, store_block)])
    return [ratio("durable_append_pg_vs_insert_ratio", 1.3, appends, inserts,
                  note=f"medians of blocks of {APPENDS_PER_BLOCK} appends on an incident of "
                       "1,000 events; PostgreSQL with fsync on, on 127.0.0.1")]
