"""The moments a person types for a replay (``--at``, ``t``): every accepted form, and a refusal
in words."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from console.replay import Moment, clock_words, parse_moment

START = datetime(2026, 3, 14, 23, 50, 0, tzinfo=UTC)
END = START + timedelta(minutes=30)


@pytest.mark.parametrize(("text", "expected"), [
    ("23:55", START + timedelta(minutes=5)),
    ("23:55:07", START + timedelta(minutes=5, seconds=7)),
    ("23:55:07.250", START + timedelta(minutes=5, seconds=7, milliseconds=250)),
    ("00:10", START + timedelta(minutes=20)),  # past midnight: the next day's
    ("+90s", START + timedelta(seconds=90)),
    ("+15m", START + timedelta(minutes=15)),
    ("-1h", END - timedelta(hours=1)),
    ("2026-03-14T23:51:00Z", START + timedelta(minutes=1)),
    ("2026-03-14T23:51:00", START + timedelta(minutes=1)),  # UTC without a zone
])
def test_each_form_of_a_moment(text: str, expected: datetime) -> None:
    assert parse_moment(text, START, END) == expected


def test_a_moment_that_is_not_one_is_refused_in_words() -> None:
    with pytest.raises(ValueError, match="expected HH:MM"):
        parse_moment("yesterday", START, END)


def test_the_replay_clock_says_where_the_replay_stands() -> None:
    moment = Moment(1234, START + timedelta(minutes=4, seconds=5))
    assert clock_words(moment, START, 10, False, 5000) == \
        "23:54:05 UTC · +4m 05s · #1,234/5,000 · paused"
    assert clock_words(moment, START, 10, True).endswith("#1,234 · ▶ playing 10×")
    # past midnight, the day is said
    later = Moment(1300, START + timedelta(minutes=14, seconds=5))
    assert clock_words(later, START, 1, False).startswith("2026-03-15 00:04:05 UTC · +14m 05s")
