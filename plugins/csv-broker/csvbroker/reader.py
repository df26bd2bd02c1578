"""Reading any CSV through the column mapping of the config, into :class:`Record` rows.

A file that cannot be read at all (undecodable, a mapped column missing from its header)
raises :class:`ExportFormatError` naming the file: that is a config problem to fix, not a row
to skip. A single bad row never does: it is skipped and reported as a :class:`RowIssue`
(file, line, reason).

Amounts are signed the way money moved, whatever the file does: buys, withdrawals, fees and
dividend tax are negative, sells and dividends positive. A deposit keeps the sign it was
written with (a negative deposit is a withdrawal). A trade's ``amount`` is its value without
the fee; the ``fee`` column, when mapped, is charged on top (positive here).
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import NamedTuple

from .config import CsvBrokerConfig

KINDS = ("buy", "sell", "deposit", "withdrawal", "dividend", "dividend_tax", "fee")
TRADES = ("buy", "sell")
# Words files commonly use for the kinds; the config's ``kinds`` map comes first.
SYNONYMS = {
    "purchase": "buy",
    "bought": "buy",
    "sale": "sell",
    "sold": "sell",
    "withdraw": "withdrawal",
    "dividends": "dividend",
    "distribution": "dividend",
    "tax": "dividend_tax",
    "dividend tax": "dividend_tax",
    "withholding tax": "dividend_tax",
    "fees": "fee",
    "commission": "fee",
    "cost": "fee",
    "costs": "fee",
}
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_SYMBOLS = "€$£¥\u00a0 '"


class ExportFormatError(ValueError):
    """A file that cannot be read at all; the message names the file."""


class ExportMissingError(ExportFormatError):
    """No file to read where one was expected."""


class RowError(ValueError):
    """One row cannot be used: it is skipped and reported, the import goes on."""


class RowIssue(NamedTuple):
    """A skipped row: which file, which line (1-based), and why."""

    file: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.file} line {self.line}: {self.reason}"


@dataclass(frozen=True)
class Record:
    file: str
    line: int
    day: date
    kind: str  # one of KINDS
    symbol: str
    name: str
    quantity: Decimal  # positive; 0 for money-only rows
    price: Decimal  # per unit, 0 for money-only rows
    amount: Decimal  # signed, without the fee
    fee: Decimal  # positive, charged on top of amount
    currency: str

    @property
    def key(self) -> str:
        """What identifies the product: the symbol, else the name."""
        return self.symbol or self.name

    @property
    def cash_effect(self) -> Decimal:
        return self.amount - self.fee


@dataclass(frozen=True)
class Import:
    """Every file read: the records (oldest first), the skipped rows, the file names."""

    records: list[Record]
    issues: list[RowIssue] = field(default_factory=list)
    files: list[str] = field(default_factory=list)


def parse_number(text: str, decimal_mark: str) -> Decimal | None:
    """``1234.56``, ``1,234.56``, ``"1.234,56"`` (with ``decimal_mark=","``), ``€ 12``,
    ``(12.50)`` (negative) or ``""`` (``None``)."""
    cleaned = text.strip().replace("\u2212", "-")
    for symbol in _SYMBOLS:
        cleaned = cleaned.replace(symbol, "")
    if not cleaned:
        return None
    if cleaned.startswith("(") and cleaned.endswith(")"):
        cleaned = "-" + cleaned[1:-1]
    grouping = "." if decimal_mark == "," else ","
    cleaned = cleaned.replace(grouping, "").replace(decimal_mark, ".")
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        raise RowError(f"not a number: {text.strip()!r}") from None
    if not value.is_finite():
        raise RowError(f"not a number: {text.strip()!r}")
    return value


def parse_day(text: str, date_format: str) -> date:
    cleaned = text.strip()
    if not cleaned:
        raise RowError("the date is empty")
    # A timestamp ("2025-01-06 09:31" or "2025-01-06T09:31:00") is read by its date part.
    for candidate in (cleaned, re.split(r"[ T]", cleaned, maxsplit=1)[0]):
        try:
            return datetime.strptime(candidate, date_format).date()
        except ValueError:
            continue
    raise RowError(f"not a date in the format {date_format!r}: {cleaned!r}")


def kind_of(text: str, config: CsvBrokerConfig) -> str:
    raw = " ".join(text.strip().lower().replace("_", " ").split())
    custom = {" ".join(k.strip().lower().split()): v for k, v in (config.kinds or {}).items()}
    kind = custom.get(raw) or SYNONYMS.get(raw) or raw.replace(" ", "_")
    if kind not in KINDS:
        raise RowError(
            f"unknown kind {text.strip()!r}: expected one of {', '.join(KINDS)} "
            "(map your file's words to them in settings.kinds)"
        )
    return kind


def _positions(header: list[str] | None, config: CsvBrokerConfig, file: str) -> dict[str, int]:
    """Field → column position, from the mapping; a mapped column the file lacks is an error."""
    names = {name.strip().lower(): i for i, name in enumerate(header or [])}
    found: dict[str, int] = {}
    for key, column in config.column_map().items():
        if column == "" or column is None:
            continue
        if isinstance(column, int) and not isinstance(column, bool):
            found[key] = column
        elif header is None:
            raise ExportFormatError(
                f"{file}: settings.has_header is false, so columns.{key} must be a column "
                f"position (0 is the first column), not {column!r}"
            )
        elif str(column).strip().lower() in names:
            found[key] = names[str(column).strip().lower()]
        else:
            raise ExportFormatError(
                f"{file} line 1: columns.{key} names the column {column!r}, which the header "
                f"does not have (it has {', '.join(repr(n) for n in header if n)}); fix "
                f'settings.columns.{key}, or set it to "" if the file has no such column'
            )
    for key in ("date", "kind"):
        if key not in found:
            raise ExportFormatError(f"{file}: settings.columns.{key} is required")
    return found


def _record(
    cells: list[str], where: dict[str, int], config: CsvBrokerConfig, file: str, line: int
) -> Record:
    def cell(key: str) -> str:
        i = where.get(key)
        return cells[i].strip() if i is not None and i < len(cells) else ""

    widest = max(where.values())
    if len(cells) <= widest:
        raise RowError(f"only {len(cells)} columns, the mapping reads column {widest + 1}")
    mark = config.decimal_mark
    day = parse_day(cell("date"), config.date_format)
    kind = kind_of(cell("kind"), config)
    currency = (cell("currency") or config.currency).upper()
    if not _CURRENCY.match(currency):
        raise RowError(f"not a currency code: {currency!r}")
    symbol, name = cell("symbol"), cell("name")
    quantity = abs(parse_number(cell("quantity"), mark) or Decimal(0))
    price = abs(parse_number(cell("price"), mark) or Decimal(0))
    written = parse_number(cell("amount"), mark)
    fee = abs(parse_number(cell("fee"), mark) or Decimal(0))
    if kind in TRADES:
        if not (symbol or name):
            raise RowError(f"a {kind} without a symbol or name")
        if not quantity:
            raise RowError(f"a {kind} without a quantity")
        if written is None and not price:
            raise RowError(f"a {kind} without a price or an amount")
        gross = abs(written) if written is not None else quantity * price
        price = price or gross / quantity
        amount = -gross if kind == "buy" else gross
    else:
        if written is None:
            raise RowError(f"a {kind} without an amount")
        if kind == "deposit":
            amount = written  # trust the sign: a negative deposit is a withdrawal
        elif kind == "dividend":
            amount = abs(written)
        else:  # withdrawal, dividend_tax, fee: money out
            amount = -abs(written)
    return Record(file, line, day, kind, symbol, name, quantity, price, amount, fee, currency)


def read_file(path: Path, config: CsvBrokerConfig) -> tuple[list[Record], list[RowIssue]]:
    try:
        text = path.read_bytes().decode(config.encoding or "utf-8-sig")
    except FileNotFoundError:
        raise ExportMissingError(f"{path}: file not found") from None
    except (UnicodeDecodeError, LookupError) as exc:
        raise ExportFormatError(
            f"{path.name}: cannot decode it as {config.encoding!r} ({exc}); set "
            "settings.encoding (e.g. 'latin-1')"
        ) from None
    text = text.lstrip("\ufeff")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=config.delimiter or ",")
    header: list[str] | None = None
    where: dict[str, int] | None = None
    records: list[Record] = []
    issues: list[RowIssue] = []
    start = 1
    try:
        for cells in reader:
            line, start = start, reader.line_num + 1
            if not any(cell.strip() for cell in cells):
                continue
            if where is None:
                if config.has_header:
                    header = [cell.strip() for cell in cells]
                    where = _positions(header, config, path.name)
                    continue
                where = _positions(None, config, path.name)
            try:
                records.append(_record(cells, where, config, path.name, line))
            except RowError as exc:
                issues.append(RowIssue(path.name, line, str(exc)))
    except csv.Error as exc:
        raise ExportFormatError(f"{path.name} line {reader.line_num}: {exc}") from exc
    return records, issues


_cache: dict[str, tuple[str, Import]] = {}


def read_folder(folder: Path, config: CsvBrokerConfig) -> Import:
    """Every file matching ``file_pattern`` in the folder, records oldest first (a day's rows
    in file order). Reused while no file and no reading setting changed."""
    if not folder.is_dir():
        raise ExportMissingError(f"{folder}: the import folder does not exist")
    files = sorted(p for p in folder.glob(config.file_pattern or "*.csv") if p.is_file())
    if not files:
        raise ExportMissingError(f"{folder}: no file matches {config.file_pattern!r}")
    stamp = json.dumps(
        [
            [(p.name, (s := os.stat(p)).st_mtime_ns, s.st_size) for p in files],
            config.to_dict(),
        ],
        sort_keys=True,
        default=str,
    )
    hit = _cache.get(str(folder))
    if hit is not None and hit[0] == stamp:
        return hit[1]
    records: list[Record] = []
    issues: list[RowIssue] = []
    for path in files:
        file_records, file_issues = read_file(path, config)
        records += file_records
        issues += file_issues
    records.sort(key=lambda r: r.day)  # stable: a day's rows stay in file order
    result = Import(records, issues, [p.name for p in files])
    _cache[str(folder)] = (stamp, result)
    return result
