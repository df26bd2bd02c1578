"""Reader for Bitvavo's transaction history export (CSV), on the SDK's export toolkit.

Two layouts exist: the current one (15 columns, since mid-2024) names the quote currency in a
column; the older one (13 columns) is always in EUR (``Price (EUR)``, ``EUR received / paid``).
Headers are English in both, so columns are mapped by name. Numbers are unquoted dot decimals,
sometimes long floats such as ``0.010713949999999999``; they are kept as
:class:`~decimal.Decimal` so sums do not drift.

Every row of every file gets exactly one outcome in the :class:`ImportReport`: understood,
skipped by a named rule (``pending_order``, ``not_executed``, ``duplicate``, ``no_money``,
``header``, ``blank``) or reported. A ``Type`` this plugin does not know is reported and
*not applied* when it moves money: guessing would change holdings, cash and fees in a way the
user cannot see. A file that cannot be read at all raises an ``ExportError``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

from stonks_plugins.sdk import (
    Aliases,
    HeaderMap,
    ImportReport,
    MissingFile,
    MissingValue,
    Row,
    RowError,
    ShortRow,
    Skip,
    map_by_name,
    parse_decimal,
    parse_rows,
    parse_timestamp,
    read_csv,
)

KNOWN_TYPES = frozenset(
    {
        "buy",
        "sell",
        "deposit",
        "withdrawal",
        "staking",
        "fixed_staking",
        "rebate",
        "affiliate",
        "campaign_new_user_incentive",
    }
)
"""What each does to the balances is in services.py; any other Type is reported."""

DONE_STATUSES = frozenset({"completed", "distributed"})
# Rows in these states never moved money: a pending order may still be cancelled.
PENDING_STATUSES = frozenset({"pending", "awaiting", "processing"})
NOT_EXECUTED_STATUSES = frozenset({"canceled", "cancelled", "failed", "rejected", "expired"})

COLUMNS = Aliases(
    {
        "timezone": {"en": ["Timezone", "Time zone"]},
        "date": {"en": ["Date"]},
        "time": {"en": ["Time"]},
        "type": {"en": ["Type"]},
        "currency": {"en": ["Currency"]},
        "amount": {"en": ["Amount"]},
        "quote_currency": {"en": ["Quote Currency"]},
        "quote_price": {"en": ["Quote Price", "Price (EUR)"]},
        "paid_currency": {"en": ["Received / Paid Currency"]},
        "paid_amount": {"en": ["Received / Paid Amount", "EUR received / paid"]},
        "fee_currency": {"en": ["Fee currency"]},
        "fee_amount": {"en": ["Fee amount"]},
        "status": {"en": ["Status"]},
        "transaction_id": {"en": ["Transaction ID"]},
        "address": {"en": ["Address"]},
    }
)
REQUIRED = ("date", "time", "type", "currency", "amount", "status")


@dataclass(frozen=True)
class HistoryRow:
    timestamp: datetime
    kind: str  # one of KNOWN_TYPES
    currency: str
    amount: Decimal  # signed: positive when the currency came in
    quote_currency: str
    quote_price: Decimal | None
    paid_currency: str
    paid_amount: Decimal | None  # negative for a buy, fee included
    fee_currency: str
    fee_amount: Decimal | None  # positive
    status: str
    transaction_id: str
    address: str
    file: str = ""
    line: int = 0

    @property
    def day(self) -> date:
        return self.timestamp.date()


@dataclass(frozen=True)
class History:
    """Every export in a folder: the rows that count (oldest first), what became of each row
    of each file, and each file's layout (``current`` or ``older``)."""

    rows: list[HistoryRow]
    report: ImportReport = field(default_factory=ImportReport)
    layouts: dict[str, str] = field(default_factory=dict)


class _Reader:
    """Reads the files of one folder in order, remembering Transaction IDs across them."""

    def __init__(self) -> None:
        self.report = ImportReport()
        self.seen: dict[str, str] = {}  # Transaction ID -> "file line N" where it counted

    def read(self, path: Path) -> tuple[list[HistoryRow], str]:
        table = read_csv(path, delimiter=",")
        columns = map_by_name(
            table.header,
            COLUMNS,
            required=REQUIRED,
            file=table.name,
            line=table.header_line,
            what="Bitvavo transaction history",
        )
        legacy_eur = not columns.has("quote_currency")
        parsed = parse_rows(
            table, lambda row: self._parse(row, columns, legacy_eur, table.name), self.report
        )
        return [p.value for p in parsed], "older" if legacy_eur else "current"

    def _parse(
        self, row: Row, columns: HeaderMap, legacy_eur: bool, file: str
    ) -> HistoryRow | Skip:
        def cell(key: str) -> str:
            return columns.cell(row.cells, key)

        if len(row) <= max(columns.positions[key] for key in REQUIRED):
            raise ShortRow(f"only {len(row)} columns; the header has {len(columns.header)}")
        status = cell("status").lower()
        kind = cell("type").lower()
        if status in PENDING_STATUSES:
            return Skip("pending_order", f"{kind or 'a'} order still {status}: it may be cancelled")
        if status in NOT_EXECUTED_STATUSES:
            return Skip("not_executed", f"{kind or 'an'} order {status}: no money moved")
        if status not in DONE_STATUSES:
            raise RowError(
                f"unknown Status {cell('status')!r}: not applied (known: Completed, "
                "Distributed, Pending, Canceled)",
                rule="unknown_status",
            )
        if not kind:
            raise MissingValue("the Type is empty")
        currency = cell("currency").upper()
        if not currency:
            raise MissingValue("the Currency is empty")
        amount = parse_decimal(cell("amount"), ".")
        if amount is None:
            raise MissingValue("the Amount is empty")
        quote_price = parse_decimal(cell("quote_price"), ".")
        paid_amount = parse_decimal(cell("paid_amount"), ".")
        fee_amount = parse_decimal(cell("fee_amount"), ".")
        if kind not in KNOWN_TYPES:
            if amount or paid_amount or fee_amount:
                raise RowError(
                    f"unknown Type {cell('type')!r} ({amount} {currency}): not applied, so "
                    "holdings, cash and fees leave it out; please report this Type to the "
                    "bitvavo-broker maintainers",
                    rule="unknown_type",
                )
            return Skip("no_money", f"Type {cell('type')!r} moved no money")
        if kind in ("buy", "sell") and paid_amount is None:
            raise MissingValue(f"a {kind} without the amount received / paid")
        timestamp = parse_timestamp(cell("date"), cell("time"), cell("timezone"))
        transaction_id = cell("transaction_id")
        if transaction_id:
            if transaction_id in self.seen:
                return Skip("duplicate", f"already counted from {self.seen[transaction_id]}")
            self.seen[transaction_id] = f"{file} line {row.line}"
        legacy = "EUR" if legacy_eur else ""
        return HistoryRow(
            timestamp=timestamp,
            kind=kind,
            currency=currency,
            amount=amount,
            quote_currency=cell("quote_currency") or (legacy if quote_price is not None else ""),
            quote_price=quote_price,
            paid_currency=cell("paid_currency") or (legacy if paid_amount is not None else ""),
            paid_amount=paid_amount,
            fee_currency=cell("fee_currency") or (legacy if fee_amount else ""),
            fee_amount=abs(fee_amount) if fee_amount is not None else None,
            status=cell("status"),
            transaction_id=transaction_id,
            address=cell("address"),
            file=file,
            line=row.line,
        )


def read_history_file(path: Path) -> History:
    """One export on its own (duplicates only within it)."""
    reader = _Reader()
    rows, layout = reader.read(path)
    return History(sorted(rows, key=lambda row: row.timestamp), reader.report, {path.name: layout})


_cache: dict[str, tuple[tuple[tuple[str, int, int], ...], History]] = {}


def read_history(folder: Path) -> History:
    """Every ``*.csv`` in the folder (one export per year is common), oldest row first.

    Overlapping exports are fine: a row counts once per Transaction ID, the later copies are
    skipped as ``duplicate``. The result is reused while no file in the folder changed.
    """
    files = sorted(folder.glob("*.csv")) if folder.is_dir() else []
    if not files:
        raise MissingFile("no Bitvavo transaction history (*.csv) found", file=str(folder))
    stamp = tuple((path.name, (info := os.stat(path)).st_mtime_ns, info.st_size) for path in files)
    hit = _cache.get(str(folder))
    if hit is not None and hit[0] == stamp:
        return hit[1]
    reader = _Reader()
    rows: list[HistoryRow] = []
    layouts: dict[str, str] = {}
    for path in files:
        file_rows, layouts[path.name] = reader.read(path)
        rows += file_rows
    history = History(sorted(rows, key=lambda row: row.timestamp), reader.report, layouts)
    _cache[str(folder)] = (stamp, history)
    return history
