"""Reading any CSV through the column mapping of the config, into :class:`Record` rows, on
the SDK's export toolkit.

A file that cannot be read at all (undecodable, a mapped column missing from its header)
raises an ``ExportError`` naming the file: that is a config problem to fix, not a row to
skip. Every row of every file gets exactly one outcome in the :class:`ImportReport`:
understood, skipped by a named rule (``header``, ``blank``, ``no_money``) or reported with
the reason (a date not in ``date_format``, an unknown kind, a trade without a quantity...).
A row of an unknown kind that carries money is reported and counts nowhere.

Amounts are signed the way money moved, whatever the file does: buys, withdrawals, fees and
dividend tax are negative, sells and dividends positive. A deposit keeps the sign it was
written with (a negative deposit is a withdrawal). A trade's ``amount`` is its value without
the fee; the ``fee`` column, when mapped, is charged on top (positive here).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path

from stonks_plugins.sdk import (
    BadEncoding,
    BadHeader,
    ImportReport,
    MissingFile,
    MissingValue,
    Row,
    RowError,
    ShortRow,
    Skip,
    parse_date,
    parse_decimal,
    parse_rows,
    read_csv,
)

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
AUTO_ENCODINGS = frozenset({"", "utf-8-sig"})
"""The default encoding setting reads UTF-8 and falls back to ISO-8859-1 (Latin-1), which
is what spreadsheets re-save exports as; any other setting is used strictly."""
_CURRENCY = re.compile(r"^[A-Z]{3}$")


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
    """Every file read: the records (oldest first), what became of each row, the file names."""

    records: list[Record]
    report: ImportReport = field(default_factory=ImportReport)
    files: list[str] = field(default_factory=list)


def kind_of(text: str, config: CsvBrokerConfig) -> str | None:
    """The kind a file's word means, ``None`` when neither the config nor the usual words
    know it."""
    raw = " ".join(text.strip().lower().replace("_", " ").split())
    custom = {" ".join(k.strip().lower().split()): v for k, v in (config.kinds or {}).items()}
    kind = custom.get(raw) or SYNONYMS.get(raw) or raw.replace(" ", "_")
    return kind if kind in KINDS else None


def _positions(
    header: tuple[str, ...] | None, config: CsvBrokerConfig, file: str
) -> dict[str, int]:
    """Field → column position, from the mapping; a mapped column the file lacks is an error."""
    names = {name.strip().lower(): i for i, name in enumerate(header or ())}
    found: dict[str, int] = {}
    for key, column in config.column_map().items():
        if column == "" or column is None:
            continue
        if isinstance(column, int) and not isinstance(column, bool):
            found[key] = column
        elif header is None:
            raise BadHeader(
                f"settings.has_header is false, so columns.{key} must be a column "
                f"position (0 is the first column), not {column!r}",
                file=file,
            )
        elif str(column).strip().lower() in names:
            found[key] = names[str(column).strip().lower()]
        else:
            raise BadHeader(
                f"columns.{key} names the column {column!r}, which the header does not have "
                f"(it has {', '.join(repr(n) for n in header if n)}); fix "
                f'settings.columns.{key}, or set it to "" if the file has no such column',
                file=file,
                line=1,
            )
    for key in ("date", "kind"):
        if key not in found:
            raise BadHeader(f"settings.columns.{key} is required", file=file)
    return found


def _record(row: Row, where: dict[str, int], config: CsvBrokerConfig, file: str) -> Record | Skip:
    def cell(key: str) -> str:
        i = where.get(key)
        return row.get(i) if i is not None else ""

    widest = max(where.values())
    if len(row) <= widest:
        raise ShortRow(f"only {len(row)} columns, the mapping reads column {widest + 1}")
    mark = config.decimal_mark
    day = parse_date(cell("date"), (config.date_format,))
    symbol, name = cell("symbol"), cell("name")
    quantity = abs(parse_decimal(cell("quantity"), mark) or Decimal(0))
    price = abs(parse_decimal(cell("price"), mark) or Decimal(0))
    written = parse_decimal(cell("amount"), mark)
    fee = abs(parse_decimal(cell("fee"), mark) or Decimal(0))
    kind = kind_of(cell("kind"), config)
    if kind is None:
        if not (written or quantity or fee):
            return Skip("no_money", f"kind {cell('kind')!r} moved no money")
        raise RowError(
            f"unknown kind {cell('kind')!r}: expected one of {', '.join(KINDS)} "
            "(map your file's words to them in settings.kinds); not applied",
            rule="unknown_kind",
        )
    currency = (cell("currency") or config.currency).upper()
    if not _CURRENCY.match(currency):
        raise RowError(f"not a currency code: {currency!r}", rule="bad_currency")
    if kind in TRADES:
        if not (symbol or name):
            raise MissingValue(f"a {kind} without a symbol or name")
        if not quantity:
            raise MissingValue(f"a {kind} without a quantity")
        if written is None and not price:
            raise MissingValue(f"a {kind} without a price or an amount")
        gross = abs(written) if written is not None else quantity * price
        price = price or gross / quantity
        amount = -gross if kind == "buy" else gross
    else:
        if written is None:
            raise MissingValue(f"a {kind} without an amount")
        if kind == "deposit":
            amount = written  # trust the sign: a negative deposit is a withdrawal
        elif kind == "dividend":
            amount = abs(written)
        else:  # withdrawal, dividend_tax, fee: money out
            amount = -abs(written)
    return Record(file, row.line, day, kind, symbol, name, quantity, price, amount, fee, currency)


def read_file(path: Path, config: CsvBrokerConfig, report: ImportReport) -> list[Record]:
    """The records of one file; the outcome of each of its rows goes into ``report``."""
    encoding = None if (config.encoding or "") in AUTO_ENCODINGS else config.encoding
    try:
        table = read_csv(
            path,
            encoding=encoding,
            delimiter=config.delimiter or ",",
            has_header=config.has_header,
        )
    except BadEncoding as exc:
        raise BadEncoding(f"{exc.message}; set settings.encoding", file=exc.file) from None
    where = _positions(table.header if config.has_header else None, config, table.name)
    parsed = parse_rows(table, lambda row: _record(row, where, config, table.name), report)
    return [p.value for p in parsed]


_cache: dict[str, tuple[str, Import]] = {}


def read_folder(folder: Path, config: CsvBrokerConfig) -> Import:
    """Every file matching ``file_pattern`` in the folder, records oldest first (a day's rows
    in file order). Reused while no file and no reading setting changed."""
    if not folder.is_dir():
        raise MissingFile("the import folder does not exist", file=str(folder))
    files = sorted(p for p in folder.glob(config.file_pattern or "*.csv") if p.is_file())
    if not files:
        raise MissingFile(f"no file matches {config.file_pattern!r}", file=str(folder))
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
    report = ImportReport()
    records: list[Record] = []
    for path in files:
        records += read_file(path, config, report)
    records.sort(key=lambda r: r.day)  # stable: a day's rows stay in file order
    result = Import(records, report, [p.name for p in files])
    _cache[str(folder)] = (stamp, result)
    return result
