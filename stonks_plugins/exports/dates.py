"""Dates, times and time zones as brokers write them.

DeGiro writes ``DD-MM-YYYY`` and ``HH:MM``; Bitvavo ``YYYY-MM-DD``, ``HH:MM:SS`` (sometimes
with milliseconds) and an IANA zone name per row; re-saved spreadsheets turn dates into
``DD/MM/YYYY`` or ``DD.MM.YYYY``. Every failure is a :class:`BadDate` row error naming the
text and the format expected.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .errors import BadDate, MissingValue

DATE_FORMATS = ("%d-%m-%Y", "%Y-%m-%d", "%d/%m/%Y", "%d.%m.%Y", "%Y/%m/%d")
"""Tried in this order when the caller names none. ``%d-%m-%Y`` first: with day and year
apart by their width, no two of these read one text two ways."""

_TIME = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,6}))?)?$")
_TIME_SUFFIX = re.compile(r"[ T]\d{1,2}:\d{2}.*$")


def parse_date(text: str, formats: Sequence[str] = DATE_FORMATS) -> date:
    """``text`` in one of ``formats`` (``strftime`` codes). A timestamp (``2025-01-06
    09:31``, ``2025-01-06T09:31:00``) is read by its date part."""
    cleaned = text.strip()
    if not cleaned:
        raise MissingValue("the date is empty")
    candidates = [cleaned]
    bare = _TIME_SUFFIX.sub("", cleaned)
    if bare != cleaned:
        candidates.append(bare)
    for candidate in candidates:
        for fmt in formats:
            try:
                return datetime.strptime(candidate, fmt).date()
            except ValueError:
                continue
    expected = " or ".join(_human(fmt) for fmt in formats[:2])
    raise BadDate(f"not a date (expected {expected}): {cleaned!r}")


def _human(fmt: str) -> str:
    return fmt.replace("%d", "DD").replace("%m", "MM").replace("%Y", "YYYY").replace("%y", "YY")


def parse_time(text: str) -> time:
    """``09:15``, ``09:15:07`` or ``09:15:07.381`` (milliseconds or microseconds)."""
    cleaned = text.strip()
    match = _TIME.match(cleaned)
    if match is None:
        raise BadDate(f"not a time (expected HH:MM or HH:MM:SS): {cleaned!r}")
    hour, minute, second, fraction = match.groups()
    try:
        return time(int(hour), int(minute), int(second or 0), int((fraction or "0").ljust(6, "0")))
    except ValueError:
        raise BadDate(f"not a time of day: {cleaned!r}") from None


def time_zone(name: str) -> tzinfo:
    """The IANA zone ``name`` (``Europe/Amsterdam``); ``UTC`` for an empty name."""
    cleaned = name.strip()
    if not cleaned:
        return UTC
    try:
        return ZoneInfo(cleaned)
    except (ZoneInfoNotFoundError, ValueError):
        raise BadDate(f"unknown time zone {cleaned!r}", rule="bad_timezone") from None


def parse_timestamp(
    day: str,
    clock: str = "",
    zone: str | tzinfo = "",
    formats: Sequence[str] = DATE_FORMATS,
) -> datetime:
    """A timezone-aware moment from a date cell, a time cell (empty: midnight) and a zone
    (a name, a ``tzinfo``, or empty for UTC), so rows of every file sort together."""
    moment = datetime.combine(
        parse_date(day, formats), parse_time(clock) if clock.strip() else time()
    )
    return moment.replace(tzinfo=zone if isinstance(zone, tzinfo) else time_zone(zone))
