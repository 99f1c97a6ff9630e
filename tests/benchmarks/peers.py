"""Textual apps users know, for information: their start-up beside a bare Textual app.

Each is installed from the package registry into its own venv under the benchmarks' cache
(``peers/NAME-VERSION``), once; one that cannot be installed (no registry, a failed build) is
skipped with a note saying why. Each is measured as warroom is: process start → the first frame
that shows what its user opened it for.
"""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tests.benchmarks.terminal import ScreenTest, shows, titled

INSTALL_TIMEOUT_S = 150.0

LOG_TEXT = "".join(
    f"2026-11-22 22:{minute:02d}:{second:02d} {level} {message}\n"
    for minute in range(0, 3) for second in range(0, 60, 7)
    for level, message in (("INFO", "request served in 12 ms"),
                           ("WARN", "queue depth 40 above 32"))
) + "2026-11-22 22:03:00 ERROR upstream timeout after 5 s\n"
MARKDOWN_TEXT = """# Rollback runbook

Roll back with `warroom`, then verify.

## Steps

1. Declare the incident
2. Get the approvals
3. Watch the guardrails
"""


@dataclass(frozen=True)
class Peer:
    name: str
    package: str
    version: str
    command: str
    arguments: tuple[str, ...]  # file names in the run directory
    ready: ScreenTest
    ready_words: str


PEERS = (
    Peer("toolong", "toolong", "1.5.0", "tl", ("service.log",),
         shows("ERROR upstream timeout"), "the log's last line"),
    Peer("frogmouth", "frogmouth", "0.9.2", "frogmouth", ("runbook.md",),
         shows("3. Watch the guardrails"), "the document's last line"),
    Peer("harlequin", "harlequin", "2.17.0", "harlequin", (),
         titled("Data Catalog", "Query Editor", "Query Results"), "its three panes titled"),
)


def write_inputs(directory: Path) -> None:
    (directory / "service.log").write_text(LOG_TEXT)
    (directory / "runbook.md").write_text(MARKDOWN_TEXT)


def install(peer: Peer, cache: Path, timeout_s: float) -> tuple[Path | None, str]:
    """(the peer's command, "") once installed, else (None, why not). A failure is remembered
    for an hour, so a machine without the registry does not try on every run."""
    venv = cache / "peers" / f"{peer.name}-{peer.version}"
    command = venv / "bin" / peer.command
    done = venv / ".installed"
    failed = venv.with_name(venv.name + ".failed")
    if done.exists() and command.exists():
        return command, ""
    if failed.exists() and time.time() - failed.stat().st_mtime < 3600:
        return None, f"not installable here: {failed.read_text().strip()[:200]}"
    venv.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    try:
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True,
                       capture_output=True, timeout=60)
        left = max(10.0, timeout_s - (time.monotonic() - started))
        result = subprocess.run(
            [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet",
             "--disable-pip-version-check", f"{peer.package}=={peer.version}"],
            capture_output=True, text=True, timeout=left)
    except subprocess.TimeoutExpired:
        reason = f"pip install {peer.package}=={peer.version} took over {timeout_s:.0f} s"
    except subprocess.CalledProcessError as error:
        reason = f"python -m venv failed: {error.stderr!r}"
    else:
        if result.returncode == 0 and command.exists():
            done.write_text(f"{peer.package}=={peer.version}\n")
            failed.unlink(missing_ok=True)
            return command, ""
        lines = [line for line in result.stderr.splitlines() if line.startswith("ERROR")]
        reason = (lines[-1] if lines else result.stderr.strip()[-200:]) or "pip failed"
    failed.write_text(reason + "\n")
    return None, f"not installable here: {reason}"


def textual_version(command: Path) -> str:
    python = command.parent / "python"
    result = subprocess.run([str(python), "-c", "import importlib.metadata as m; "
                             "print(m.version('textual'))"], capture_output=True, text=True,
                            timeout=30)
    return result.stdout.strip() or "?"
