"""Reading DeGiro's CSV files: bytes to rows, numbers, dates, header languages, bad rows.

A file that cannot be read at all (missing, empty, an unknown layout) raises
:class:`ExportFormatError`. A single bad row never does: it is skipped and reported as a
:class:`RowIssue` (file, line, reason), so one odd line in years of history does not hide
the rest of it.
"""

from __future__ import annotations

import csv
import io
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Generic, NamedTuple, TypeVar

T = TypeVar("T")

_ISIN = re.compile(r"^[A-Z]{2}[A-Z0-9]{9}[0-9]$")
_TRAILING_CURRENCY = re.compile(r"\b([A-Z]{3})\s*$")
_LEADING_CURRENCY = re.compile(r"^([A-Z]{3})\s+(\S+)$")


class ExportFormatError(ValueError):
    """An export file that cannot be read; the message names the file and the line."""


class ExportMissingError(ExportFormatError):
    """The export file does not exist (callers may treat some files as optional)."""


class RowError(ValueError):
    """One row cannot be used: it is skipped and reported, the import goes on."""


class RowIssue(NamedTuple):
    """A skipped row: which file, which line (1-based, as an editor shows it), and why."""

    file: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.file} line {self.line}: {self.reason}"


@dataclass(frozen=True)
class Row:
    """One non-blank CSV record and the line it starts on."""

    line: int
    cells: list[str]

    def get(self, index: int) -> str:
        return self.cells[index].strip() if index < len(self.cells) else ""


@dataclass(frozen=True)
class Table:
    path: Path
    header: list[str]
    rows: list[Row]
    language: str

    @property
    def file(self) -> str:
        return self.path.name


@dataclass(frozen=True)
class Parsed(Generic[T]):
    """The usable rows of one file and the rows that were skipped."""

    file: str
    rows: list[T]
    issues: list[RowIssue] = field(default_factory=list)
    language: str = ""
    layout: str = ""


def parse_rows(table: Table, parse: Callable[[Row], T | None]) -> tuple[list[T], list[RowIssue]]:
    """Apply ``parse`` to every row; a :class:`RowError` becomes an issue, ``None`` a skip."""
    rows: list[T] = []
    issues: list[RowIssue] = []
    for row in table.rows:
        try:
            parsed = parse(row)
        except RowError as exc:
            issues.append(RowIssue(table.file, row.line, str(exc)))
            continue
        if parsed is not None:
            rows.append(parsed)
    return rows, issues


# --- languages --------------------------------------------------------------------------------

# The first two header cells of Transactions.csv and Account.csv (date, time) tell DeGiro's
# languages apart; Portfolio.csv starts with the product and its quantity column instead.
_DATE_TIME: dict[tuple[str, str], str] = {
    ("date", "time"): "en",
    ("datum", "tijd"): "nl",
    ("datum", "uhrzeit"): "de",
    ("datum", "zeit"): "de",
    ("date", "heure"): "fr",
    ("fecha", "hora"): "es",
    ("data", "ora"): "it",
    ("data", "hora"): "pt",
    ("datum", "čas"): "cs",
}
_PORTFOLIO_WORDS: dict[str, str] = {
    "amount": "en",
    "quantity": "en",
    "aantal": "nl",
    "anzahl": "de",
    "quantité": "fr",
    "cantidad": "es",
    "quantità": "it",
    "quantidade": "pt",
    "množství": "cs",
    "počet": "cs",
}


def detect_language(header: list[str]) -> str:
    """``en``, ``nl``, ``de``, ``fr``, ``es``, ``it``, ``pt``, ``cs`` or ``""`` (unknown).

    Only informative: columns are always mapped by position, so an unknown language (or a
    truncated header) still imports.
    """
    words = [cell.strip().lower() for cell in header]
    if len(words) >= 2 and (words[0], words[1]) in _DATE_TIME:
        return _DATE_TIME[(words[0], words[1])]
    if len(words) >= 3 and words[2] in _PORTFOLIO_WORDS:
        return _PORTFOLIO_WORDS[words[2]]
    return ""


# --- files ------------------------------------------------------------------------------------


def _decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        # Some exports (and spreadsheets users re-save them with) are Latin-1.
        return raw.decode("iso-8859-1").lstrip("\ufeff")


def read_table(path: Path) -> Table:
    """Read a CSV export: strip a BOM, skip blank rows, keep the header apart.

    Each row remembers the line it starts on, which is what a user finds in an editor even
    when a quoted cell spans lines.
    """
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ExportMissingError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise ExportFormatError(f"{path}: is a folder, not a CSV file") from None
    reader = csv.reader(io.StringIO(_decode(raw), newline=""))
    records: list[Row] = []
    start = 1
    try:
        for cells in reader:
            if any(cell.strip() for cell in cells):
                records.append(Row(start, cells))
            start = reader.line_num + 1
    except csv.Error as exc:
        raise ExportFormatError(f"{path.name} line {reader.line_num}: {exc}") from exc
    if not records:
        raise ExportFormatError(f"{path.name}: the file is empty")
    header = [cell.strip() for cell in records[0].cells]
    return Table(path, header, records[1:], detect_language(header))


_cache: dict[tuple[str, str], tuple[tuple[int, int], object]] = {}


def cached(kind: str, path: Path, parse: Callable[[Path], T]) -> T:
    """``parse(path)``, reused while the file keeps its size and modification time.

    Services read the files on every call (a user dropping in a fresh export sees it at
    once); parsing years of history for each page would be wasteful.
    """
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise ExportMissingError(f"{path}: file not found") from None
    key = (kind, str(path))
    stamp = (info.st_mtime_ns, info.st_size)
    hit = _cache.get(key)
    if hit is not None and hit[0] == stamp:
        return hit[1]  # type: ignore[return-value]
    value = parse(path)
    _cache[key] = (stamp, value)
    return value


# --- values -----------------------------------------------------------------------------------


def parse_number(text: str) -> Decimal | None:
    """``"24,1500"``, ``104.2000``, ``"9.961,4715"``, ``-1,73`` or ``""`` (``None``)."""
    cleaned = text.strip().replace("\u00a0", "").replace(" ", "").replace("\u2212", "-")
    if not cleaned:
        return None
    if "," in cleaned and "." in cleaned:
        # Both marks: the rightmost one is the decimal mark, the other groups thousands.
        if cleaned.rfind(",") > cleaned.rfind("."):
            cleaned = cleaned.replace(".", "").replace(",", ".")
        else:
            cleaned = cleaned.replace(",", "")
    elif "," in cleaned:
        # Amount columns carry no thousands separator, so a lone comma is the decimal mark.
        cleaned = cleaned.replace(",", ".")
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        raise RowError(f"not a number: {text.strip()!r}") from None
    if not value.is_finite():
        raise RowError(f"not a number: {text.strip()!r}")
    return value


def require_number(text: str, what: str) -> Decimal:
    value = parse_number(text)
    if value is None:
        raise RowError(f"the {what} is missing")
    return value


def parse_date(text: str) -> date:
    """DeGiro writes ``DD-MM-YYYY``; ISO and ``DD/MM/YYYY`` come from re-saved files."""
    cleaned = text.strip()
    for fmt in ("%d-%m-%Y", "%Y-%m-%d", "%d/%m/%Y", "%d.%m.%Y"):
        try:
            return datetime.strptime(cleaned, fmt).date()
        except ValueError:
            continue
    raise RowError(f"not a date (expected DD-MM-YYYY): {cleaned!r}")


def is_isin(text: str) -> bool:
    return bool(_ISIN.match(text.strip()))


def currency_in_header(name: str, default: str = "EUR") -> str:
    """The account currency is only in header names such as ``Value in EUR``."""
    match = _TRAILING_CURRENCY.search(name.strip())
    return match.group(1) if match else default


def split_currency(text: str) -> tuple[str, str]:
    """``"EUR 1440.10"`` (older Portfolio.csv) → ``("EUR", "1440.10")``; else ``("", text)``."""
    match = _LEADING_CURRENCY.match(text.strip())
    return (match.group(1), match.group(2)) if match else ("", text)
