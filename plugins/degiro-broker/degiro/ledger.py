"""One import of a folder of DeGiro exports: every file parsed, every statement row
classified, the records the services serve, and the report that accounts for every row.

Which file says what:

- positions: ``Portfolio.csv``; without it, the sum of the trades (and stock dividends and
  product changes) per product, valued at the latest trade's price;
- trades: ``Transactions.csv``, plus any trade of ``Account.csv`` it does not hold; without
  it, the statement's trades alone, quantity and price read from their descriptions;
- cash, fees, dividends, deposits, interest: ``Account.csv`` (cash from ``Portfolio.csv``'s
  cash lines when there is one); without the statement, the fees ``Transactions.csv`` shows.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path

from stonks_plugins.sdk import (
    ImportReport,
    MissingFile,
    Money,
    RowError,
    Skip,
    decimal_sum,
    round_money,
)

from .classify import TRADE_COSTS, Counted, Verdict, classify
from .csvio import is_isin, stamp
from .exports import (
    ACCOUNT_FILE,
    PORTFOLIO_FILE,
    TRANSACTIONS_FILE,
    AccountRow,
    Export,
    PortfolioRow,
    TransactionRow,
    parse_account,
    parse_portfolio,
    parse_transactions,
)
from .wording import FEES, POSITION_CHANGES, Kind

FILES = (PORTFOLIO_FILE, TRANSACTIONS_FILE, ACCOUNT_FILE)


@dataclass(frozen=True)
class Trade:
    """A change of a position: a fill of an order, a stock dividend, a product change."""

    day: date
    time: str
    product: str
    isin: str
    quantity: Decimal  # positive for a buy
    price: Money  # per share, in the product's currency (pence already in pounds)
    total: Money  # what the trade booked, in the account currency when known
    fees: Money | None
    kind: Kind
    rate: Decimal | None  # account currency per unit of the price's currency
    file: str
    line: int

    @property
    def key(self) -> str:
        return self.isin or self.product.upper()


@dataclass(frozen=True)
class Position:
    product: str
    symbol: str
    isin: str
    quantity: Decimal
    price: Decimal
    currency: str
    value: Decimal  # in currency
    account_value: Decimal | None  # in the account currency; None without an exchange rate


@dataclass
class Ledger:
    folder: Path
    account_currency: str
    portfolio: Export[PortfolioRow] | None
    transactions: Export[TransactionRow] | None
    account: Export[AccountRow] | None
    verdicts: list[Verdict]
    trades: list[Trade]
    report: ImportReport
    notes: list[str] = field(default_factory=list)

    # -- what a service asks ----------------------------------------------------------------

    def require_account(self) -> Export[AccountRow]:
        if self.account is None:
            raise MissingFile("file not found", file=str(self.folder / ACCOUNT_FILE))
        return self.account

    def require_trades(self) -> list[Trade]:
        if self.transactions is None and self.account is None:
            raise MissingFile(
                f"neither {TRANSACTIONS_FILE} nor {ACCOUNT_FILE} found (trades come from either)",
                file=str(self.folder),
            )
        return self.trades

    def counted(self, *kinds: Kind) -> list[Verdict]:
        """The statement rows of ``kinds`` that count, with their kind (newest first)."""
        self.require_account()
        wanted = set(kinds)
        return [v for v in self.verdicts if v.understood and v.kind in wanted]

    def understood(self, *kinds: Kind) -> list[AccountRow]:
        return [v.row for v in self.counted(*kinds)]

    def balances(self) -> dict[str, Decimal]:
        """Per currency, the balance on the newest statement row (rows are newest first)."""
        found: dict[str, Decimal] = {}
        if self.account is not None:
            for row in self.account.rows:
                if row.balance is not None and row.balance_currency:
                    found.setdefault(row.balance_currency, row.balance)
        return found

    def cash(self) -> Decimal:
        """Cash in the account currency: Portfolio.csv's cash lines, else the statement's
        latest balance in that currency."""
        if self.portfolio is not None:
            return decimal_sum(r.account_value for r in self.portfolio.rows if r.is_cash)
        return self.balances().get(self.account_currency, Decimal(0))

    def positions(self, as_of: date | None = None) -> list[Position]:
        """Portfolio.csv's positions (today's), else the trades' sums up to ``as_of``."""
        if self.portfolio is not None and as_of is None:
            return _from_portfolio(self.portfolio.rows, self.trades)
        if self.transactions is None and self.account is None:
            raise NotImplementedError(
                f"{PORTFOLIO_FILE} holds only the day it was exported; the portfolio as of "
                f"{as_of} needs {TRANSACTIONS_FILE} or {ACCOUNT_FILE}"
            )
        trades = [t for t in self.trades if as_of is None or t.day <= as_of]
        return _from_trades(trades, self.account_currency, self._statement_rates())

    def _statement_rates(self) -> dict[str, Decimal]:
        """The newest exchange rate per currency the statement shows (its FX column gives
        units of the currency per unit of the account currency)."""
        rates: dict[str, Decimal] = {}
        for row in self.account.rows if self.account is not None else ():
            if row.fx_rate and row.currency and row.currency != self.account_currency:
                rates.setdefault(row.currency, 1 / row.fx_rate)
        return rates


# --- building one ------------------------------------------------------------------------------


def load(folder: Path) -> Ledger:
    """The ledger of ``folder``, reused while none of its exports changed. A file that exists
    but cannot be read at all raises :class:`~stonks_plugins.sdk.ExportError`."""
    if not folder.is_dir():
        raise MissingFile("the import folder does not exist", file=str(folder))
    stamps = tuple(stamp(folder / name) for name in FILES)
    key = str(folder)
    hit = _ledgers.get(key)
    if hit is not None and hit[0] == stamps:
        return hit[1]
    ledger = build(folder)
    _ledgers[key] = (stamps, ledger)
    return ledger


_ledgers: dict[str, tuple[tuple[tuple[int, int] | None, ...], Ledger]] = {}


def build(folder: Path) -> Ledger:
    found = {name: (folder / name).is_file() for name in FILES}
    if not any(found.values()):
        raise MissingFile(f"none of {', '.join(FILES)} found", file=str(folder))
    portfolio = parse_portfolio(folder / PORTFOLIO_FILE) if found[PORTFOLIO_FILE] else None
    transactions = (
        parse_transactions(folder / TRANSACTIONS_FILE) if found[TRANSACTIONS_FILE] else None
    )
    account = parse_account(folder / ACCOUNT_FILE) if found[ACCOUNT_FILE] else None

    report = ImportReport.merged(e.report for e in (portfolio, transactions, account) if e)
    counted = Counted.of(transactions.rows) if transactions is not None else None
    verdicts = classify(account.rows, counted) if account is not None else []
    for verdict in verdicts:
        _record(report, verdict)
    currency = _account_currency(portfolio, transactions, verdicts)
    trades = [_from_transaction(row) for row in transactions.rows] if transactions else []
    statement_trades = _statement_trades(verdicts, currency)
    trades.extend(statement_trades)
    trades.sort(key=lambda t: (t.day, t.time), reverse=True)

    notes: list[str] = []
    if transactions is None and account is not None:
        notes.append(
            f"no {TRANSACTIONS_FILE}: {len(statement_trades)} trade(s) read from the "
            f"descriptions of {ACCOUNT_FILE}"
        )
    elif statement_trades:
        notes.append(
            f"{len(statement_trades)} trade(s) of {ACCOUNT_FILE} are not in "
            f"{TRANSACTIONS_FILE}: read from their descriptions"
        )
    notes.extend(report.problems())
    ledger = Ledger(
        folder, currency, portfolio, transactions, account, verdicts, trades, report, notes
    )
    if portfolio is None:
        notes.extend(
            f"{p.product}: the files show no {p.currency} to {currency} exchange rate, so its "
            "value is left out of the portfolio total"
            for p in ledger.positions()
            if p.account_value is None
        )
    return ledger


def _record(report: ImportReport, verdict: Verdict) -> None:
    row, outcome = verdict.row, verdict.outcome
    if isinstance(outcome, Skip):
        report.skipped(ACCOUNT_FILE, row.line, outcome.rule, outcome.reason, row.text)
    elif isinstance(outcome, RowError):
        report.reported(ACCOUNT_FILE, row.line, outcome.rule, outcome.reason, row.text)
    else:
        report.understood(ACCOUNT_FILE, row.line, row.text)


def _account_currency(
    portfolio: Export[PortfolioRow] | None,
    transactions: Export[TransactionRow] | None,
    verdicts: Sequence[Verdict],
) -> str:
    """Named in Portfolio.csv's or Transactions.csv's header; the statement only shows it
    as the side of its conversions without a rate, or the currency its fees are paid in."""
    for export in (portfolio, transactions):
        if export is not None and export.account_currency:
            return export.account_currency
    sides = Counter(
        v.row.currency
        for v in verdicts
        if v.kind is Kind.FX and v.row.fx_rate is None and v.row.currency
    )
    if not sides:
        sides = Counter(v.row.currency for v in verdicts if v.kind in FEES and v.row.currency)
    return sides.most_common(1)[0][0] if sides else "EUR"


def _from_transaction(row: TransactionRow) -> Trade:
    rate = abs(row.account_value / row.local_value) if row.local_value else None
    if rate is None and row.price_currency == row.account_currency:
        rate = Decimal(1)
    return Trade(
        day=row.day,
        time=row.time,
        product=row.product,
        isin=row.isin,
        quantity=row.quantity,
        price=Money(row.price, row.price_currency),
        total=Money(row.total, row.account_currency),
        fees=Money(row.fees, row.account_currency),
        kind=Kind.TRADE,
        rate=rate,
        file=TRANSACTIONS_FILE,
        line=row.line,
    )


def _statement_trades(verdicts: Sequence[Verdict], currency: str) -> list[Trade]:
    """The position changes the statement alone tells of. Rows sharing an Order Id are one
    order: its fees and currency legs go to the fill booked at the same time (the oldest
    fill when no fill has their time). Without an Order Id, the rows booked at the very
    moment of a fill, for its product or none, are its own."""
    orders: dict[str, list[Verdict]] = defaultdict(list)
    moments: dict[tuple[date, str], list[Verdict]] = defaultdict(list)
    for verdict in verdicts:
        if verdict.row.order_id:
            orders[verdict.row.order_id].append(verdict)
        else:
            moments[(verdict.row.day, verdict.row.time)].append(verdict)
    trades = []
    for verdict in verdicts:
        if not (verdict.understood and verdict.kind in POSITION_CHANGES):
            continue
        row = verdict.row
        if row.order_id:
            group = orders[row.order_id]
        else:
            group = [v for v in moments[(row.day, row.time)] if v.row.product in ("", row.product)]
        trades.append(_statement_trade(verdict, _booked_with(verdict, group), currency))
    return trades


def _booked_with(fill: Verdict, order: Sequence[Verdict]) -> list[Verdict]:
    """The rows of ``fill``'s order that belong to it: all of them for a single fill, else
    those at its time (the rows of no fill's time go to the oldest fill)."""
    fills = [v for v in order if v.understood and v.kind in POSITION_CHANGES]
    if len(fills) <= 1:
        return [v for v in order if v is not fill]
    times = {v.row.time for v in fills}
    oldest = fills[-1]  # rows are newest first
    return [
        v
        for v in order
        if v not in fills
        and (v.row.time == fill.row.time or (v.row.time not in times and fill is oldest))
    ]


def _statement_trade(fill: Verdict, booked: Sequence[Verdict], currency: str) -> Trade:
    row, text = fill.row, fill.trade
    assert text is not None
    change = row.change or Decimal(0)
    change_currency = row.currency or text.currency
    costs = [v.row for v in booked if v.understood and v.kind in TRADE_COSTS]
    legs = [v.row for v in booked if v.kind is Kind.FX and v.row.change is not None]
    fee_total = decimal_sum(c.change or Decimal(0) for c in costs if c.currency == currency)
    fees = Money(fee_total, currency) if costs else None
    rate: Decimal | None = Decimal(1) if text.currency == currency else None
    rated = next((leg.fx_rate for leg in legs if leg.fx_rate), None)
    if rated:
        rate = 1 / rated
    if change_currency == currency:
        total = Money(change + fee_total, currency)
        local = text.quantity * text.price
        if rate is None and change and local:
            # Booked in the account currency although priced in another (AutoFX).
            rate = abs(change / local)
    else:
        account_legs = [leg for leg in legs if leg.currency == currency]
        if account_legs:
            paid = decimal_sum(leg.change or Decimal(0) for leg in account_legs)
            total = Money(paid + fee_total, currency)
            if rate is None and change:
                rate = abs(paid / change)
        else:
            total = Money(change, change_currency)
    return Trade(
        day=row.day,
        time=row.time,
        product=row.product or text.product,
        isin=row.isin or text.isin,
        quantity=text.quantity,
        price=Money(text.price, text.currency),
        total=total,
        fees=fees,
        kind=fill.kind,
        rate=rate,
        file=ACCOUNT_FILE,
        line=row.line,
    )


# --- positions ---------------------------------------------------------------------------------


def _from_portfolio(rows: Iterable[PortfolioRow], trades: Sequence[Trade]) -> list[Position]:
    isins = {t.product: t.isin for t in trades if t.isin}
    positions = []
    for row in rows:
        if row.is_cash:
            continue
        symbol = row.symbol_or_isin
        isin = symbol if is_isin(symbol) else isins.get(row.product, "")
        positions.append(
            Position(
                product=row.product,
                symbol=symbol or isin,
                isin=isin,
                quantity=row.quantity,
                price=row.closing_price,
                currency=row.currency,
                value=row.local_value,
                account_value=row.account_value,
            )
        )
    return positions


def _from_trades(
    trades: Sequence[Trade], currency: str, rates: dict[str, Decimal]
) -> list[Position]:
    """Quantities summed per product, valued at the latest trade with a price (stock
    dividends and product changes come at zero), in the account currency at that trade's
    rate, else the statement's newest rate for the currency."""
    quantities: dict[str, Decimal] = defaultdict(Decimal)
    named: dict[str, Trade] = {}
    priced: dict[str, Trade] = {}
    for trade in trades:  # newest first: the first one seen is the latest
        quantities[trade.key] += trade.quantity
        named.setdefault(trade.key, trade)
        if trade.price.amount:
            priced.setdefault(trade.key, trade)
    positions = []
    for key, quantity in sorted(quantities.items()):
        if quantity == 0:
            continue
        last = priced.get(key, named[key])
        price = last.price.amount
        value = quantity * price
        rate = last.rate or rates.get(last.price.currency)
        if last.price.currency == currency:
            rate = Decimal(1)
        positions.append(
            Position(
                product=named[key].product or last.product,
                symbol=last.isin or last.product,
                isin=last.isin,
                quantity=quantity,
                price=price,
                currency=last.price.currency,
                value=value,
                account_value=round_money(value * rate) if rate is not None else None,
            )
        )
    return positions
