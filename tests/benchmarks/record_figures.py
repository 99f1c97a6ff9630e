"""Figures of the record: exports and verification as whole processes, and one durable append
against a bare SQLite commit on the same disk."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import statistics
import subprocess
import time
from collections.abc import Sequence
from functools import partial
from pathlib import Path

from console.model import Kind, format_ts, utcnow
from console.store import Store
from tests.benchmarks.context import REPETITIONS, BenchError, Context, interleave
from tests.benchmarks.harness import Figure, Series, absolute, ratio
from tests.benchmarks.incidents import CONFIG_PATH, INCIDENT_ID
from tests.benchmarks.terminal import Capped

EXPORT_CAP_S = 30.0
VERIFY_CAP_S = 30.0
APPENDS_PER_BLOCK = 60
APPEND_BLOCKS = 9


def run_timed(ctx: Context, argv: Sequence[str], cap: float, what: str) -> float:
    """Seconds from the start of the process to its exit (status 0, else :class:`BenchError`);
    :class:`Capped` (and the process killed) past ``cap``."""
    cap = ctx.cap(cap)
    started = time.monotonic()
    process = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, env=ctx.env, cwd=ctx.run_dir)
    try:
        _, stderr = process.communicate(timeout=cap)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise Capped(what, time.monotonic() - started, []) from None
    elapsed = time.monotonic() - started
    if process.returncode != 0:
        raise BenchError(f"{' '.join(argv[:3])}… exited {process.returncode}: "
                         f"{stderr.decode(errors='replace').strip()[-300:]}")
    return elapsed


def exports(ctx: Context) -> list[Figure]:
    small_db = ctx.private_copy(1_000, "export-1k")
    large_db = ctx.private_copy(100_000, "export-100k")
    figures = []
    for fmt, name in (("pir", "pir_export_100k_s"), ("json", "json_export_100k_s")):
        small = Series(f"warroom export --format {fmt}, 1,000 events (whole process)", "s")
        large = Series(f"warroom export --format {fmt}, 100,000 events (whole process)", "s")
        _export(ctx, small_db, fmt)  # warm-up
        interleave(REPETITIONS, [(small, partial(_export, ctx, small_db, fmt)),
                                 (large, partial(_export, ctx, large_db, fmt))])
        figures.append(absolute(name, 1, large, small))
    return figures


def _export(ctx: Context, db: Path, fmt: str, _: int = 0) -> float:
    out = ctx.fresh_path(f"export/{fmt}-out")
    argv = ctx.warroom("export", str(INCIDENT_ID), "--format", fmt, "-o", out, "--db", db,
                       "--config", CONFIG_PATH)
    return run_timed(ctx, argv, EXPORT_CAP_S, f"the {fmt} export")


def verify(ctx: Context) -> list[Figure]:
    small_db = ctx.private_copy(1_000, "verify-1k")
    large_db = ctx.private_copy(100_000, "verify-100k")
    small = Series("warroom verify, 1,000 events (whole process)", "s")
    large = Series("warroom verify, 100,000 events (whole process)", "s")

    def run(db: Path) -> float:
        argv = ctx.warroom("verify", str(INCIDENT_ID), "--db", db, "--config", CONFIG_PATH)
        return run_timed(ctx, argv, VERIFY_CAP_S, "verify")

    run(small_db)  # warm-up
    interleave(REPETITIONS, [(small, lambda _: run(small_db)), (large, lambda _: run(large_db))])
    return [absolute("verify_100k_s", None, large, small,
                     note="for information: the chain walk a user waits for in `warroom verify`")]


def cli(ctx: Context) -> list[Figure]:
    db = ctx.private_copy(1_000, "cli-1k")
    python = Series("python -c pass", "s")
    listing = Series("warroom list (one incident of 1,000 events)", "s")
    run_timed(ctx, ctx.warroom("list", "--db", db), 30, "list")  # warm-up
    interleave(REPETITIONS, [
        (python, lambda _: run_timed(ctx, [ctx.python, "-c", "pass"], 30, "python")),
        (listing, lambda _: run_timed(ctx, ctx.warroom("list", "--db", db), 30, "list")),
    ])
    return [ratio("cli_list_ratio", None, listing, python,
                  note="for information: a CLI command pays no Textual start-up (DESIGN.md)")]


def durable_append(ctx: Context) -> list[Figure]:
    """``Store.append`` of a note, one durable transaction each, against a bare sqlite3 insert
    and commit of a row of the same shape (WAL, synchronous=FULL), blocks of each in turn."""
    store_db = ctx.private_copy(1_000, "append-store")
    bare_db = ctx.fresh_path("append-bare.db")
    text = "customer support reports fewer tickets since the last stage"
    appends = Series("Store.append of a note (durable), per event", "ms")
    inserts = Series("bare sqlite3 INSERT + COMMIT of the same row (WAL, synchronous=FULL)",
                     "ms")
    connection = sqlite3.connect(bare_db, isolation_level=None)
    try:
        connection.execute("PRAGMA journal_mode = WAL")
        connection.execute("PRAGMA synchronous = FULL")
        connection.execute(
            "CREATE TABLE events (id INTEGER PRIMARY KEY, incident_id INTEGER NOT NULL, "
            "ts TEXT NOT NULL, kind TEXT NOT NULL, actor TEXT NOT NULL, payload TEXT NOT NULL, "
            "prev_hash TEXT NOT NULL, hash TEXT NOT NULL)")
        payload = json.dumps({"text": text}, sort_keys=True, separators=(",", ":"))
        with Store(store_db) as store:

            def store_block(_: int) -> float:
                times = []
                for _ in range(APPENDS_PER_BLOCK):
                    started = time.perf_counter()
                    store.append(INCIDENT_ID, Kind.NOTE, "alice", {"text": text})
                    times.append(time.perf_counter() - started)
                return statistics.median(times) * 1000

            counter = [0]

            def bare_block(_: int) -> float:
                times = []
                for _ in range(APPENDS_PER_BLOCK):
                    counter[0] += 1
                    digest = hashlib.sha256(str(counter[0]).encode()).hexdigest()
                    row = (INCIDENT_ID, format_ts(utcnow()), str(Kind.NOTE), "alice", payload,
                           digest, digest)
                    started = time.perf_counter()
                    connection.execute("BEGIN IMMEDIATE")
                    connection.execute(
                        "INSERT INTO events (incident_id, ts, kind, actor, payload, prev_hash, "
                        "hash) VALUES (?, ?, ?, ?, ?, ?, ?)", row)
                    connection.execute("COMMIT")
                    times.append(time.perf_counter() - started)
                return statistics.median(times) * 1000

            store_block(0)  # warm-up
            bare_block(0)
            interleave(APPEND_BLOCKS, [(inserts, bare_block), (appends, store_block)])
    finally:
        connection.close()
    return [ratio("durable_append_vs_sqlite_ratio", 1.3, appends, inserts,
                  note=f"medians of blocks of {APPENDS_PER_BLOCK} appends, on an incident of "
                       "1,000 events; both files in the same directory")]
