"""`make bench`: every benchmark, each printing ratios against a baseline from the same run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

if __name__ == "__main__":
    status = 0
    for script in ("bench_core.py", "bench_timeline.py"):
        print(f"\n== {script}")
        status |= subprocess.run([sys.executable, str(HERE / script)]).returncode
    sys.exit(status)
