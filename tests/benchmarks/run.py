"""`make bench`: every performance goal of the project, measured on the real program, side by
side with a baseline from the same run; a table on stdout and ``bench-results.json`` at the
repository root. See tests/benchmarks/README.md for how each figure is measured.

    python -m tests.benchmarks.run [--only NAME,NAME] [--output FILE] [--list]

``--only`` (``make bench ONLY=...``) takes figure or group names. Exit status 0 when every
selected figure was measured, whether or not it met its target (a MISS is information); 1 when
the benchmark itself broke somewhere (that figure says ERROR); 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tests.benchmarks import console_figures, guardrail_figures, postgres_figures, record_figures
from tests.benchmarks.context import COLS, REPO, ROWS, Context
from tests.benchmarks.harness import Figure, load_1m, table, write_results

#: The whole run must end within this (the issue's 10 minutes, with a margin for start and end).
BUDGET_S = 570.0


@dataclass(frozen=True)
class Group:
    """Measurements that run together and the figures they give; ``cap_s`` bounds its time."""

    name: str
    figures: tuple[str, ...]
    targets: tuple[float | None, ...]
    cap_s: float
    measure: Callable[[Context], list[Figure]]


GROUPS = (
    Group("startup", ("startup_ratio",), (1.3,), 60, console_figures.startup),
    Group("keys", ("key_to_redrawn_p95_ms",), (50,), 150, console_figures.key_to_redrawn),
    Group("watch_latency", ("watch_latency_p95_ms",), (150,), 60, console_figures.watch_latency),
    Group("watch_open", ("watch_open_1m_vs_1k_ratio",), (2,), 120, console_figures.watch_open),
    Group("replay", ("replay_seek_1m_ms",), (200,), 120, console_figures.replay_seek),
    Group("memory", ("rss_100k_mb",), (150,), 110, console_figures.memory),
    Group("guardrails", ("guardrail_cycle_vs_slowest_ratio",), (1.5,), 90,
          guardrail_figures.guardrail_cycle),
    Group("exports", ("pir_export_100k_s", "json_export_100k_s"), (1, 1), 150,
          record_figures.exports),
    Group("append", ("durable_append_vs_sqlite_ratio",), (1.3,), 40, record_figures.durable_append),
    Group("pg_watch_latency", ("watch_latency_pg_p95_ms",), (100,), 90,
          postgres_figures.watch_latency),
    Group("pg_append", ("durable_append_pg_vs_insert_ratio",), (1.3,), 60,
          postgres_figures.durable_append),
    Group("idle", ("idle_cpu_watch_percent", "idle_cpu_commander_percent"), (0.5, 2), 100,
          console_figures.idle_cpu),
    Group("verify", ("verify_100k_s",), (None,), 60, record_figures.verify),
    Group("cli", ("cli_list_ratio",), (None,), 20, record_figures.cli),
    Group("peers", ("startup_ratio_toolong", "startup_ratio_frogmouth", "startup_ratio_harlequin"),
          (None, None, None), 200, console_figures.peer_startups),
)
#: Incidents built (or found in the cache) before any timing starts, by the groups that use them.
INCIDENTS = {"watch_open": (1_000, 1_000_000), "replay": (1_000, 1_000_000),
             "memory": (100_000,), "exports": (1_000, 100_000), "idle": (1_000,),
             "append": (1_000,), "verify": (1_000, 100_000), "cli": (1_000,)}


def select(only: str) -> list[Group]:
    if not only:
        return list(GROUPS)
    wanted = {name.strip() for name in only.split(",") if name.strip()}
    known = {g.name for g in GROUPS} | {f for g in GROUPS for f in g.figures}
    unknown = wanted - known
    if unknown:
        raise SystemExit(f"bench: unknown figure or group: {', '.join(sorted(unknown))} "
                         "(see --list)")
    return [g for g in GROUPS if g.name in wanted or wanted & set(g.figures)]


def machine() -> str:
    model = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"{os.cpu_count()} cores ({model}), Python {platform.python_version()}, "
            f"load {load_1m():.2f}, terminal {COLS}×{ROWS}")


def unit_of(name: str) -> str:
    """A figure's unit from its name, for figures that were never measured."""
    for suffix, unit in (("_ms", "ms"), ("_mb", "MB"), ("_percent", "%"), ("_s", "s")):
        if name.endswith(suffix):
            return unit
    return "×"


def run_group(ctx: Context, group: Group) -> list[Figure]:
    left = ctx.deadline - time.monotonic()
    if left < min(group.cap_s, 30):
        return [Figure(name, unit_of(name), target,
                       note="not run: the run's 10-minute budget was spent")
                for name, target in zip(group.figures, group.targets, strict=True)]
    print(f"{group.name}: {', '.join(group.figures)} (at most {group.cap_s:.0f} s)", flush=True)
    ctx.group_deadline = time.monotonic() + group.cap_s
    load_before = load_1m()
    started = time.monotonic()
    try:
        figures = group.measure(ctx)
    except Exception as error:  # the benchmark broke: say where, measure the rest
        detail = "".join(traceback.format_exception_only(error)).strip()
        print(f"  ERROR: {detail}", flush=True)
        if os.environ.get("BENCH_DEBUG"):
            traceback.print_exc()
        first_line = detail.splitlines()[0] if detail else type(error).__name__
        figures = [Figure(name, unit_of(name), target,
                          error=f"benchmark failed: {first_line[:300]}")
                   for name, target in zip(group.figures, group.targets, strict=True)]
    elapsed = time.monotonic() - started
    load = load_1m()
    for figure in figures:
        figure.load = load if figure.load is None else figure.load
        figure.load_before = load_before
    print(f"  done in {elapsed:.0f} s", flush=True)
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make bench", description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=os.environ.get("ONLY", ""),
                        help="comma-separated figure or group names (default: all)")
    parser.add_argument("--output", type=Path, default=REPO / "bench-results.json")
    parser.add_argument("--list", action="store_true", help="list groups and figures, and exit")
    args = parser.parse_args(argv)
    if args.list:
        for group in GROUPS:
            print(f"{group.name:<14} {', '.join(group.figures)}")
        return 0
    groups = select(args.only)
    started = time.monotonic()
    ctx = Context.create(BUDGET_S)
    print(f"warroom benchmarks on {machine()}", flush=True)
    print(f"cache {ctx.cache}; run directory {ctx.run_dir}", flush=True)
    figures: list[Figure] = []
    try:
        counts = sorted({n for g in groups for n in INCIDENTS.get(g.name, ())})
        if counts:
            print(f"test incidents: {', '.join(f'{n:,}' for n in counts)} events", flush=True)
            for count in counts:
                built = time.monotonic()
                path = ctx.incident(count)
                print(f"  {count:,} events: {path.name} "
                      f"({time.monotonic() - built:.1f} s)", flush=True)
        for group in groups:
            figures += run_group(ctx, group)
    finally:
        ctx.close()
    write_results(args.output, figures)
    print()
    print(table(figures))
    print()
    print(f"{len(figures)} figures, {sum(f.status == 'MISS' for f in figures)} MISS, "
          f"{sum(f.status == 'ERROR' for f in figures)} ERROR, "
          f"{sum(f.status == 'skipped' for f in figures)} not measured; machine: {machine()}; "
          f"total {time.monotonic() - started:.0f} s; written to {args.output}")
    return 1 if any(f.error for f in figures) else 0


if __name__ == "__main__":
    sys.exit(main())
