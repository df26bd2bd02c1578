"""Dates and times as DeGiro and Bitvavo write them, and what a bad one says."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest

from stonks_plugins.exports import BadDate, MissingValue, parse_date, parse_time, parse_timestamp


@pytest.mark.parametrize(
    "text",
    [
        "12-03-2025",
        "2025-03-12",
        "12/03/2025",
        "12.03.2025",
        "2025-03-12 09:31",
        " 2025-03-12T09:31:00 ",
    ],
)
def test_dates(text: str) -> None:
    assert parse_date(text) == date(2025, 3, 12)


def test_a_named_format_and_bad_dates() -> None:
    assert parse_date("03/12/2025", ("%m/%d/%Y",)) == date(2025, 3, 12)
    with pytest.raises(BadDate, match=r"not a date \(expected DD\.MM\.YYYY\): '31\.13\.2025'"):
        parse_date("31.13.2025", ("%d.%m.%Y",))
    with pytest.raises(BadDate, match="expected DD-MM-YYYY or YYYY-MM-DD"):
        parse_date("yesterday")
    with pytest.raises(MissingValue, match="the date is empty"):
        parse_date("")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("15:42", time(15, 42)),
        ("09:15:07", time(9, 15, 7)),
        ("09:15:07.381", time(9, 15, 7, 381000)),
        ("9:05:00,5", time(9, 5, 0, 500000)),
    ],
)
def test_times(text: str, expected: time) -> None:
    assert parse_time(text) == expected


def test_bad_times() -> None:
    for bad in ("noon", "25:00", "12:60", "12"):
        with pytest.raises(BadDate):
            parse_time(bad)


def test_timestamps_in_a_time_zone() -> None:
    summer = parse_timestamp("2025-04-02", "09:15:07.381", "Europe/Amsterdam")
    assert summer.utcoffset() == timedelta(hours=2)
    assert summer.astimezone(UTC) == datetime(2025, 4, 2, 7, 15, 7, 381000, tzinfo=UTC)
    winter = parse_timestamp("2025-01-08", "10:15", "Europe/Amsterdam")
    assert winter.utcoffset() == timedelta(hours=1)
    assert parse_timestamp("2025-01-08").tzinfo is UTC  # no zone, no time: midnight UTC
    with pytest.raises(BadDate, match="unknown time zone 'Mars/Olympus'") as error:
        parse_timestamp("2025-01-08", "10:15", "Mars/Olympus")
    assert error.value.rule == "bad_timezone"
