"""The JSON export checks each stored row as it makes its line (one loop for both): the lines
and the verdict are exactly those of making every line with ``event_line`` and checking every
row with ``ChainChecker.check`` — for an intact chain, an edited one, a broken link, a keyed
chain with and without its key — and an intact chain is checked without going row by row
through ``check``."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from console.export.jsonexport import event_line, verified_lines
from console.model import Kind
from console.store import ChainChecker, Store, use_chain_key

T0 = datetime(2026, 11, 22, 22, 0, tzinfo=UTC)
KEY = b"k" * 32
# What quoting must get right in the line and in the hash: quotes, backslashes, control
# characters, non-ASCII, a line separator.
ODD = 'say "hi" \\ \x1b[31m\t\u2028 café ≤ 🚨'


@pytest.fixture(autouse=True)
def _no_process_chain_key() -> Iterator[None]:
    use_chain_key(None)
    yield
    use_chain_key(None)


def a_record(path: Path, *, keyed: bool = False) -> list[tuple[Any, ...]]:
    """A declaration and notes (one with odd text, one by an odd actor) beside a second
    incident; returns incident 1's stored rows."""
    if keyed:
        use_chain_key(KEY)
    declared: dict[str, Any] = {"title": ODD}
    if keyed:
        declared["chain"] = "keyed"
    with Store(path) as store:
        store.create_incident("alice", declared, ts=T0)
        for n in range(12):
            store.append(1, Kind.NOTE, ODD if n == 3 else "bob",
                         {"text": ODD if n % 4 == 0 else f"note {n}", "n": n / 3},
                         ts=T0 + timedelta(seconds=n))
            if n == 5:
                store.create_incident("carol", {"title": "two"}, ts=T0)
        return list(store.iter_rows(1))


def tamper(path: Path, statement: str) -> None:
    conn = sqlite3.connect(path)
    conn.execute("DROP TRIGGER events_are_append_only_update")
    conn.execute("DROP TRIGGER events_are_append_only_delete")
    conn.execute(statement)
    conn.commit()
    conn.close()


def rows_of(path: Path) -> list[tuple[Any, ...]]:
    with Store(path, readonly=True) as store:
        return list(store.iter_rows(1))


def one_by_one(rows: list[tuple[Any, ...]], key: bytes | None) -> tuple[list[str], Any]:
    checker = ChainChecker(key)
    for row in rows:
        checker.check(row)
    return [event_line(row) for row in rows], _verdict(checker)


def fused(rows: list[tuple[Any, ...]], key: bytes | None,
          chunk: int) -> tuple[list[str], Any]:
    checker = ChainChecker(key)
    lines: list[str] = []
    for start in range(0, len(rows), chunk):
        lines += verified_lines(rows[start:start + chunk], checker)
    return lines, _verdict(checker)


def _verdict(checker: ChainChecker) -> tuple[Any, ...]:
    return (checker.checked, checker.last_id, checker.last_hash, checker.problem,
            checker.keyed, checker.unverified)


CASES = {
    "intact": None,
    "edited": "UPDATE events SET payload = '{\"n\":1,\"text\":\"rewritten\"}' WHERE id = 5",
    "removed": "DELETE FROM events WHERE id = 4",
    "relinked": "UPDATE events SET prev_hash = hash WHERE id = 9",
    "odd hash": "UPDATE events SET hash = 'not \"hex\"' WHERE id = 6",
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("chunk", [1, 4, 100])
def test_the_lines_and_the_verdict_are_those_of_one_row_at_a_time(tmp_path: Path, case: str,
                                                                  chunk: int) -> None:
    path = tmp_path / "w.db"
    a_record(path)
    if CASES[case] is not None:
        tamper(path, CASES[case])  # type: ignore[arg-type]
    rows = rows_of(path)
    expected_lines, expected_verdict = one_by_one(rows, None)
    assert (case == "intact") == (expected_verdict[3] is None)
    assert fused(rows, None, chunk) == (expected_lines, expected_verdict)


@pytest.mark.parametrize("key", [KEY, None], ids=["with the key", "without the key"])
@pytest.mark.parametrize("case", ["intact", "edited"])
def test_a_keyed_chain_is_checked_as_one_row_at_a_time_checks_it(tmp_path: Path,
                                                                 key: bytes | None,
                                                                 case: str) -> None:
    path = tmp_path / "w.db"
    a_record(path, keyed=True)
    use_chain_key(None)
    if CASES[case] is not None:
        tamper(path, CASES[case])  # type: ignore[arg-type]
    rows = rows_of(path)
    expected = one_by_one(rows, key)
    assert expected[1][4] is True  # keyed
    assert (expected[1][3] is None) == (case == "intact" or key is None)
    assert fused(rows, key, 5) == expected


class CountingChecker(ChainChecker):
    """A real checker that counts the rows it was asked about one by one."""

    def __init__(self, key: bytes | None = None) -> None:
        super().__init__(key)
        self.asked = 0

    def check(self, row: tuple[Any, ...]) -> bool:
        self.asked += 1
        return super().check(row)


def test_an_intact_chain_is_checked_in_the_loop_not_row_by_row(tmp_path: Path) -> None:
    path = tmp_path / "w.db"
    rows = a_record(path)
    checker = CountingChecker()
    verified_lines(rows[:5], checker)
    verified_lines(rows[5:], checker)
    assert checker.asked == 1  # the declaration: it says whether the chain is keyed
    assert checker.checked == len(rows) and checker.problem is None
