"""`warroom export` of a PIR from a file named by --db begins before its configuration is read:
the checking child reads it (as every command does) while the events are read here. The PIR is
the one the usual order makes, its secrets are scrubbed, and a bad config is told as before."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from console.config import Config
from console.demo import declare_demo, demo_config
from console.model import Kind
from console.store import Store
from tests.conftest import REPO, Result

Run = Callable[..., Result]

TOKEN = "tok-3f9a7c21e5b84d06"
CONFIG = """
[export]
local_timezone = "Asia/Kolkata"

[metrics]
kind = "prometheus"
url = "http://127.0.0.1:9"
bearer_token = { env = "PIR_TEST_TOKEN" }

[traffic]
kind = "sim"

[deploy]
kind = "sim"

[[guardrails]]
name = "error-rate"
query = 'sum(rate(errors{track="$track"}[1m]))'
unit = "%"
scale = 100.0
max = 0.02
"""


def a_record(db: Path) -> None:
    """A demo incident whose guardrail changes the config words in %, and a note that holds
    the token (written before the config named it)."""
    with Store(db) as store:
        incident = declare_demo(store, demo_config(Config(), "bad"), "alice")
        for number in range(30):
            store.append(incident, Kind.GUARDRAIL_CHANGED, "warroom", {
                "name": "error-rate", "status": "breach" if number % 3 else "healthy",
                "canary": 0.031 + number / 1000, "limit": 0.02, "consecutive": 3,
                "on_breach": "hold", "detail": f"poll {number}"})
        store.append(incident, Kind.NOTE, "bob", {"text": f"pasted by mistake: {TOKEN}"})


def _without_export_time(text: str) -> str:
    return re.sub(r"; exported \S+", "", text)


def test_the_pir_is_the_one_made_after_reading_the_config(run_warroom: Run,
                                                         tmp_path: Path) -> None:
    db = tmp_path / "w.db"
    a_record(db)
    (tmp_path / "warroom.toml").write_text(CONFIG)
    (tmp_path / "path.toml").write_text(CONFIG + f'\n[store]\npath = "{db}"\n')
    env = {"PIR_TEST_TOKEN": TOKEN}
    early = run_warroom("export", "1", "--db", str(db), "-o", "early.md", env=env)
    assert early.code == 0, early.err
    usual = run_warroom("export", "1", "--config", "path.toml", "-o", "usual.md", env=env)
    assert usual.code == 0, usual.err  # the file named by the config: read it first
    text = (tmp_path / "early.md").read_text()
    assert _without_export_time(text) == _without_export_time(
        (tmp_path / "usual.md").read_text())
    assert TOKEN[:8] not in text and "pasted by mistake: ***" in text  # scrubbed here
    assert "peak 6.00%" in text  # the guardrail's unit and scale, from the config
    assert "IST)" in text  # the local time zone, from the config
    assert early.out == usual.out.replace("usual.md", "early.md")  # "INC-1: pir written to …"


@pytest.mark.parametrize("incident", ["1", "9", "nine"])
def test_a_bad_config_is_told_first_as_by_every_command(run_warroom: Run, tmp_path: Path,
                                                        incident: str) -> None:
    db = tmp_path / "w.db"
    a_record(db)
    (tmp_path / "warroom.toml").write_text(CONFIG.replace("max = 0.02", "max = 0.02\nmx = 1"))
    told = run_warroom("verify", "1", "--db", str(db))
    assert told.code == 2 and "config error" in told.err and "guardrails" in told.err
    for fmt in ("pir", "json"):
        result = run_warroom("export", incident, "--format", fmt, "--db", str(db), "-o",
                             "out.md")
        assert (result.code, result.err, result.out) == (2, told.err, "")
    assert not list(tmp_path.glob("out.md")) and not list(tmp_path.glob(".warroom-export-*"))


def test_an_unknown_incident_is_told_with_its_secrets_scrubbed(run_warroom: Run,
                                                               tmp_path: Path) -> None:
    db = tmp_path / TOKEN / "w.db"
    db.parent.mkdir()
    a_record(db)
    (tmp_path / "warroom.toml").write_text(CONFIG)
    result = run_warroom("export", "9", "--db", str(db), env={"PIR_TEST_TOKEN": TOKEN})
    assert result.code == 2 and "no incident INC-9" in result.err, result.err
    assert TOKEN[:8] not in result.err  # the config was read before the error was told


def test_the_export_process_never_imports_the_config_models(tmp_path: Path) -> None:
    """What the export does not use, it does not import: the config's models (pydantic) are
    built in the checking child only."""
    db = tmp_path / "w.db"
    a_record(db)
    (tmp_path / "warroom.toml").write_text(CONFIG)
    script = ("import sys; from console.cli import main; "
              f"code = main(['export', '1', '--db', {str(db)!r}, '-o', 'out.md']); "
              "print(code, 'pydantic' in sys.modules, 'console.config' in sys.modules)")
    env = {**os.environ, "PYTHONPATH": str(REPO), "PIR_TEST_TOKEN": TOKEN}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=env, cwd=tmp_path, timeout=60)
    assert done.stdout.split()[-3:] == ["0", "False", "False"], done.stderr
    assert "pasted by mistake: ***" in (tmp_path / "out.md").read_text()
    # a JSON export reads the config here first, as before
    script = script.replace("'-o'", "'--format', 'json', '-o'")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=env, cwd=tmp_path, timeout=60)
    assert done.stdout.split()[-3:] == ["0", "True", "True"], done.stderr
