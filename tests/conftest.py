"""Shared fixtures: temp databases and configs, and the real `warroom` command."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
WARROOM = [sys.executable, "-m", "console.cli"]


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
                   ) -> None:
    """No test reads or writes the real user dirs or picks up a stray ./warroom.toml."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    monkeypatch.delenv("WARROOM_DB", raising=False)
    monkeypatch.delenv("WARROOM_CONFIG", raising=False)


@dataclass
class Result:
    code: int
    out: str
    err: str


@pytest.fixture
def run_warroom(tmp_path: Path) -> Callable[..., Result]:
    """Run the real `warroom` command in a subprocess, in tmp_path, with a 60 s bound."""

    def run(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> Result:
        full_env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
        proc = subprocess.run(
            [*WARROOM, *args], capture_output=True, text=True, timeout=60,
            cwd=cwd or tmp_path, env=full_env,
        )
        return Result(proc.returncode, proc.stdout, proc.stderr)

    return run
