"""Every broken configuration file exits 2 with one line naming the file and the key.

``tests/faults/configs/*.toml`` (written by :mod:`tests.faults.config_fixtures`; the first line of
each is ``# key: KEY``) go through ``warroom check-config FILE`` and ``warroom list --config
FILE``: each must exit 2 with exactly one line on stderr that names the file and the key, and
nothing on stdout. ``configs/host/`` are files that load but name what this host lacks (an unset
secret variable, a missing CA file, an unknown group): ``check-config`` refuses them, and so does
``open`` before it takes the terminal, while ``list`` (which needs none of it) works.

``make test`` runs the commands in this process (``console.cli.main``); ``make faults`` runs each
through the real ``warroom`` command as well.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest

from console.cli import main
from tests.conftest import REPO
from tests.faults.conftest import LONG, Tally

CONFIGS = Path(__file__).parent / "configs"
BROKEN = sorted(CONFIGS.glob("*.toml"))
HOST = sorted((CONFIGS / "host").glob("*.toml"))


def expected_key(path: Path) -> str:
    first = path.read_bytes().split(b"\n", 1)[0].decode()
    assert first.startswith("# key: "), f"{path.name} lacks its '# key: KEY' line"
    return first.removeprefix("# key: ")


def in_process(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def real(*argv: str, cwd: Path) -> tuple[int, str, str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("WARROOM_FAULTS_UNSET_TOKEN", None)
    proc = subprocess.run([sys.executable, "-m", "console.cli", *argv], capture_output=True,
                          text=True, timeout=60, cwd=cwd, env=env, check=False)
    return proc.returncode, proc.stdout, proc.stderr


def _judge(result: tuple[int, str, str], path: Path, tally: Tally, *, stdout_empty: bool = True
           ) -> None:
    code, out, err = result
    key = expected_key(path)
    lines = err.strip().splitlines()
    named = len(lines) == 1 and f"{path}: {key}: " in lines[0]
    tally.add("broken-config invocations")
    tally.bad_outcome("broken-config calls not exit 2 with a line naming file+key",
                      int(code != 2 or not named))
    assert code == 2, (code, err)
    assert named, f"expected one line naming {path} and {key!r}, got {err!r}"
    assert lines[0].startswith("warroom: config error: ")
    assert "Traceback" not in err and "internal error" not in err
    if stdout_empty:
        assert out == ""


def test_there_are_more_than_60_broken_configs() -> None:
    assert len(BROKEN) >= 60, len(BROKEN)


@pytest.mark.parametrize("path", BROKEN, ids=lambda p: p.stem)
def test_check_config_and_list_refuse_it_naming_the_file_and_key(
    path: Path, tmp_path: Path, tally: Tally, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    _judge(in_process("check-config", str(path)), path, tally)
    _judge(in_process("list", "--config", str(path), "--db", str(tmp_path / "w.db")), path, tally)
    if LONG:
        _judge(real("check-config", str(path), cwd=tmp_path), path, tally)
        _judge(real("list", "--config", str(path), "--db", "w.db", cwd=tmp_path), path, tally)


@pytest.mark.parametrize("path", HOST, ids=lambda p: p.stem)
def test_what_the_host_lacks_is_refused_by_check_config_and_open(
    path: Path, tmp_path: Path, tally: Tally, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("WARROOM_FAULTS_UNSET_TOKEN", raising=False)
    monkeypatch.delenv("WARROOM_FAULTS_UNSET_WEBHOOK", raising=False)
    _judge(in_process("check-config", str(path)), path, tally)
    # the file itself is fine: commands that need nothing from the host work
    code, _, err = in_process("list", "--config", str(path), "--db", str(tmp_path / "w.db"))
    assert code == 0, err
    if path.stem == "unknown_store_group":
        return  # the group matters when a database is created, not when one is opened
    # open refuses before the screen appears (a real process: a console must never start here)
    code, _, err = real("declare", "--db", "w.db", "--title", "t", "--priority", "P1",
                        "--category", "incident", "--service", "svc", "--from-version", "v1",
                        "--to-version", "v2", cwd=tmp_path)
    assert code == 0, err
    _judge(real("open", "1", "--db", "w.db", "--config", str(path), cwd=tmp_path), path, tally,
           stdout_empty=False)


def test_a_config_that_is_a_directory_or_missing_is_one_line(tmp_path: Path) -> None:
    for path, words in ((tmp_path, "is a directory, not a config file"),
                        (tmp_path / "nope.toml", "no such file")):
        code, _, err = in_process("check-config", str(path))
        assert code == 2 and err.strip() == f"warroom: config error: {path}: {words}"


def test_a_closed_pipe_is_not_an_error(tmp_path: Path) -> None:
    """`warroom check-config | head -1` ended in an internal BrokenPipeError."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        f"{sys.executable} -m console.cli check-config | head -1; exit ${{PIPESTATUS[0]}}",
        shell=True, executable="/bin/bash", capture_output=True, text=True, timeout=60,
        cwd=tmp_path, env=env, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("Config: ") and proc.stderr == ""
