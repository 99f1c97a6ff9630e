"""The fault suite: fakes that misbehave on purpose, the short/long switch, and the tally.

``make test`` runs the short version of each fault test (small deadlines, a sample of the hostile
strings, a few racing runs); ``make faults`` sets ``WARROOM_FAULTS=long`` for the long version
(every fault on every call, every hostile string through the real command, 30 races) and prints
the tally: what was injected, and the counts that must be zero.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator

import pytest

from tests.faults.fakes import FakeDeployApi, FakePrometheus

#: The long version of every fault test (``make faults``).
LONG = os.environ.get("WARROOM_FAULTS") == "long"


class Tally:
    """Counts for the end-of-run summary; ``bad`` counts are the ones that must stay 0."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.bad: Counter[str] = Counter()

    def add(self, name: str, n: int = 1) -> None:
        self.counts[name] += n

    def bad_outcome(self, name: str, n: int = 0) -> None:
        """Record ``n`` occurrences of something that must never happen (0 is recorded too)."""
        self.bad[name] += n


TALLY = Tally()


@pytest.fixture
def tally() -> Tally:
    return TALLY


@pytest.fixture
def deploy_api() -> Iterator[FakeDeployApi]:
    with FakeDeployApi() as api:
        yield api


@pytest.fixture
def prometheus() -> Iterator[FakePrometheus]:
    with FakePrometheus() as server:
        yield server


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not TALLY.counts and not TALLY.bad:
        return
    write = terminalreporter.write_line
    terminalreporter.section(f"fault suite ({'long' if LONG else 'short'} version)")
    for name, count in sorted(TALLY.counts.items()):
        write(f"  {name:<60} {count:>6}")
    write("  must be 0:")
    for name, count in sorted(TALLY.bad.items()):
        write(f"  {name:<60} {count:>6}{'' if count == 0 else '   <-- NOT ZERO'}")
