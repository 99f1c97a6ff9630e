"""What every measurement needs: the commands, the environment, a run directory, the test
incidents, and the clock the caps are read from."""

from __future__ import annotations

import os
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tests.benchmarks import incidents
from tests.benchmarks.harness import Series
from tests.benchmarks.terminal import Capped, ScreenTest, Terminal

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
#: The terminal every console is measured in: tmux's default, and the size the README shows.
COLS, ROWS = 80, 24
#: Repetitions of every interleaved measurement.
REPETITIONS = 5


class BenchError(Exception):
    """The benchmark itself could not measure (a command failed, a screen never came)."""


def _warroom_bin() -> str:
    candidate = Path(sys.executable).parent / "warroom"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("warroom")
    if found is None:
        raise BenchError("no `warroom` command beside this Python or on PATH: run make bootstrap")
    return found


@dataclass
class Context:
    """One run of the benchmarks."""

    run_dir: Path
    deadline: float  # time.monotonic() at which the whole run must be over
    python: str = sys.executable
    warroom_bin: str = field(default_factory=_warroom_bin)
    cache: Path = field(default_factory=incidents.cache_dir)
    group_deadline: float = 0.0
    log_lines: list[str] = field(default_factory=list)

    @classmethod
    def create(cls, budget_s: float) -> Context:
        cache = incidents.cache_dir()
        runs = cache / "runs"
        runs.mkdir(parents=True, exist_ok=True)
        _remove_abandoned_runs(runs)
        run_dir = Path(tempfile.mkdtemp(prefix=f"run-{os.getpid()}-", dir=runs))
        return cls(run_dir=run_dir, deadline=time.monotonic() + budget_s, cache=cache)

    def close(self) -> None:
        shutil.rmtree(self.run_dir, ignore_errors=True)

    # --- environment and commands ----------------------------------------------------------------

    @property
    def env(self) -> dict[str, str]:
        """The environment of every measured process: no user config or data, a 256-colour
        UTF-8 terminal, bytecode written (as under `make`)."""
        env = {key: value for key, value in os.environ.items()
               if not key.startswith(("WARROOM_", "TEXTUAL", "PYTHONDONTWRITEBYTECODE"))}
        home = self.run_dir / "home"
        env.update({
            "XDG_DATA_HOME": str(home / "data"), "XDG_CONFIG_HOME": str(home / "config"),
            "XDG_STATE_HOME": str(home / "state"), "XDG_CACHE_HOME": str(home / "cache"),
            "TERM": "xterm-256color", "COLORTERM": "truecolor", "LANG": "C.UTF-8",
            "PYTHONPATH": str(REPO),
        })
        return env

    def warroom(self, *args: str | os.PathLike[str]) -> list[str]:
        return [self.warroom_bin, *map(str, args)]

    def console(self, verb: str, db: Path, *args: str) -> list[str]:
        """``warroom open|watch 1`` (or another verb) on ``db`` with the benchmarks' config."""
        return self.warroom(verb, *args, "--db", db, "--config", incidents.CONFIG_PATH)

    def app(self, name: str, *args: str | os.PathLike[str]) -> list[str]:
        """One of the small Textual apps in tests/benchmarks/apps, with this Python."""
        return [self.python, str(HERE / "apps" / f"{name}.py"), *map(str, args)]

    def terminal(self, argv: Sequence[str], cwd: Path | None = None) -> Terminal:
        return Terminal(argv, cols=COLS, rows=ROWS, env=self.env, cwd=cwd or self.run_dir)

    # --- files -----------------------------------------------------------------------------------

    def incident(self, count: int) -> Path:
        """The cached incident of ``count`` events (built on first use). Read it only."""
        return incidents.incident_db(count)

    @staticmethod
    @contextmanager
    def held_open(*paths: Path) -> Iterator[None]:
        """Each database held open by a reading connection of this process, as a commander's
        console holds its incident: its -wal and -shm exist, which `warroom watch` needs (a
        watcher never creates them, issue 12). Nothing is written."""
        connections: list[sqlite3.Connection] = []
        try:
            for path in paths:
                connection = sqlite3.connect(path)
                connection.execute("SELECT count(*) FROM sqlite_master").fetchone()
                connections.append(connection)
            yield
        finally:
            for connection in connections:
                connection.close()

    def private_copy(self, count: int, name: str) -> Path:
        """A copy of the cached incident in this run's directory, for a process that writes."""
        return incidents.copy_db(self.incident(count), self.run_dir / f"{name}.db")

    def fresh_path(self, name: str) -> Path:
        path = self.run_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    # --- time ------------------------------------------------------------------------------------

    def left(self) -> float:
        return min(self.deadline, self.group_deadline) - time.monotonic()

    def cap(self, seconds: float) -> float:
        """``seconds``, or less when the group's or the run's time is nearly spent."""
        return max(0.5, min(seconds, self.left()))

    def log(self, text: str) -> None:
        print(f"  {text}", flush=True)

    # --- the usual measurement -------------------------------------------------------------------

    def time_to_screen(self, argv: Sequence[str], test: ScreenTest, cap: float, what: str,
                       inspect: Callable[[Terminal], None] | None = None) -> float:
        """Seconds from the process's start to the first screen where ``test`` holds.
        :class:`Capped` past ``cap``; :class:`BenchError` if the program exits first.
        ``inspect`` sees the terminal before the program is stopped (seen or capped)."""
        with self.terminal(argv) as term:
            try:
                return term.wait_for(test, self.cap(cap), what) - term.started_at
            except Capped:
                raise
            except Exception as error:
                raise BenchError(str(error)) from None
            finally:
                if inspect is not None and term.alive():
                    inspect(term)

    @contextmanager
    def running(self, argv: Sequence[str], ready: ScreenTest, cap: float, what: str
                ) -> Iterator[Terminal]:
        """A program started and shown ``ready`` (else :class:`BenchError`), stopped after."""
        term = self.terminal(argv).start()
        try:
            try:
                term.wait_for(ready, self.cap(cap), what)
            except Capped as capped:
                raise BenchError(f"{what}: not on screen after {capped.elapsed_s:.0f} s; "
                                 "the screen shows:\n" + "\n".join(capped.screen)) from None
            except Exception as error:
                raise BenchError(str(error)) from None
            yield term
        finally:
            term.stop()


def _remove_abandoned_runs(runs: Path) -> None:
    """Run directories (copies of 100k incidents among them) left by runs that were killed."""
    for path in runs.glob("run-*-*"):
        try:
            pid = int(path.name.split("-")[1])
            os.kill(pid, 0)
        except ValueError:
            continue
        except ProcessLookupError:
            shutil.rmtree(path, ignore_errors=True)
        except PermissionError:
            continue  # another user's live run


def interleave(repetitions: int, measures: Sequence[tuple[Series, Callable[[int], float]]]
               ) -> None:
    """Measure each series once per repetition, alternating the order (ABBA...) so that a drift
    of the machine's load falls on both alike. A series that reaches its cap keeps that sample
    (a lower bound) and is not measured again."""
    for repetition in range(repetitions):
        order = list(measures) if repetition % 2 == 0 else list(reversed(measures))
        for series, measure in order:
            if series.capped:
                continue
            try:
                series.add(measure(repetition))
            except Capped as capped:
                scale = 1000 if series.unit == "ms" else 1
                series.add_capped(capped.elapsed_s * scale,
                                  f"{capped.what} not seen within {capped.elapsed_s:.1f} s "
                                  "(capped; later repetitions skipped)")
