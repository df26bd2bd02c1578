"""The CSV broker's services: everything is computed from the rows of the mapped CSV files.

Positions are rebuilt from buys and sells (shares bought minus shares sold, per symbol) and
valued at the latest trade price, since a CSV of transactions carries no market prices.
Totals are in the configured ``currency``; amounts in another currency count only when
``fx_rates`` gives its rate (the health check names those that do not). Money leaving the
account is negative. Lists are newest first.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from stonks_plugins.sdk import (
    AccountOverview,
    AccountServiceInterface,
    BrokerServiceInterface,
    Deposit,
    DepositServiceInterface,
    Dividend,
    DividendServiceInterface,
    Fee,
    FeeServiceInterface,
    ImportReport,
    PortfolioEntry,
    PortfolioServiceInterface,
    TotalPortfolio,
    Transaction,
    TransactionServiceInterface,
    decimal_sum,
    round_money,
)

from .config import CsvBrokerConfig
from .reader import TRADES, Import, Record, read_folder

SAMPLE_DATA_FOLDER = Path(__file__).parent / "data"


def settings_of(config: object | None) -> CsvBrokerConfig:
    """The plugin's settings whatever the caller passed: the config object, a dict, None."""
    if isinstance(config, CsvBrokerConfig):
        return config
    if isinstance(config, dict):
        return CsvBrokerConfig.from_dict(config)
    if config is not None and hasattr(config, "to_dict"):
        return CsvBrokerConfig.from_dict(config.to_dict())
    return CsvBrokerConfig.default()


def data_folder(config: object | None) -> Path:
    """``import_folder``, else the sample shipped with the plugin."""
    folder = settings_of(config).import_folder
    return Path(folder).expanduser() if folder else SAMPLE_DATA_FOLDER


def load(config: object | None) -> Import:
    return read_folder(data_folder(config), settings_of(config))


@dataclass(frozen=True)
class Position:
    key: str
    symbol: str
    name: str
    shares: Decimal
    price: Decimal  # the latest trade's price
    currency: str

    @property
    def value(self) -> Decimal:
        return round_money(self.shares * self.price)


def positions(records: Iterable[Record]) -> list[Position]:
    """Open positions, sorted by symbol; records come oldest first, so the last trade seen
    sets the price."""
    shares: dict[str, Decimal] = {}
    last: dict[str, Record] = {}
    for record in records:
        if record.kind not in TRADES:
            continue
        sign = 1 if record.kind == "buy" else -1
        shares[record.key] = shares.get(record.key, Decimal(0)) + sign * record.quantity
        last[record.key] = record
    return [
        Position(
            key,
            last[key].symbol,
            last[key].name or key,
            amount,
            last[key].price,
            last[key].currency,
        )
        for key, amount in sorted(shares.items())
        if amount > 0
    ]


class Converter:
    """Amounts into the base currency; a currency without a rate is remembered, not guessed."""

    def __init__(self, settings: CsvBrokerConfig) -> None:
        self.base = settings.currency
        self.rates = {k.upper(): Decimal(str(v)) for k, v in (settings.fx_rates or {}).items()}
        self.unconverted: set[str] = set()

    def __call__(self, amount: Decimal, currency: str) -> Decimal:
        if currency == self.base:
            return amount
        rate = self.rates.get(currency)
        if rate is None:
            self.unconverted.add(currency)
            return Decimal(0)
        return amount * rate


def cash_by_currency(records: Iterable[Record]) -> dict[str, Decimal]:
    cash: dict[str, Decimal] = {}
    for record in records:
        cash[record.currency] = cash.get(record.currency, Decimal(0)) + record.cash_effect
    return cash


@dataclass(frozen=True)
class Totals:
    value: Decimal
    cash: Decimal
    deposits: Decimal
    unconverted: tuple[str, ...]


def totals(data: Import, settings: CsvBrokerConfig) -> Totals:
    convert = Converter(settings)
    value = decimal_sum(convert(p.value, p.currency) for p in positions(data.records))
    cash = decimal_sum(convert(v, c) for c, v in cash_by_currency(data.records).items())
    deposits = decimal_sum(
        convert(r.amount, r.currency) for r in data.records if r.kind in ("deposit", "withdrawal")
    )
    return Totals(
        round_money(value),
        round_money(cash),
        round_money(deposits),
        tuple(sorted(convert.unconverted)),
    )


def _newest_first(records: Iterable[Record]) -> list[Record]:
    return sorted(records, key=lambda r: (r.day, r.file, r.line), reverse=True)


class _CsvService(BrokerServiceInterface):
    """Reads the files; keeps the import report of the last call in ``import_report``: the
    outcome of every row of every file (``import_report.as_dict()`` is what the host shows)."""

    def __init__(self, config: Any = None, **kwargs: Any) -> None:
        super().__init__(config=config, **kwargs)
        self.import_report = ImportReport()

    @property
    def settings(self) -> CsvBrokerConfig:
        return settings_of(getattr(self, "config", None))

    def _load(self) -> Import:
        data = load(getattr(self, "config", None))
        self.import_report = data.report
        return data


class PortfolioService(_CsvService, PortfolioServiceInterface):
    """Open positions from buys and sells, valued at the latest trade price."""

    def get_portfolio(self) -> list[PortfolioEntry]:
        broker = self.settings.broker_name
        return [
            PortfolioEntry(
                name=p.name,
                symbol=p.symbol or p.key,
                shares=float(p.shares),
                price=float(p.price),
                value=float(p.value),
                currency=p.currency,
                broker=broker,
            )
            for p in positions(self._load().records)
        ]

    def get_portfolio_total(self) -> TotalPortfolio:
        settings = self.settings
        result = totals(self._load(), settings)
        return TotalPortfolio(
            total_value=float(result.value),
            total_cash=float(result.cash),
            total_deposits=float(result.deposits),
            currency=settings.currency,
            brokers=(settings.broker_name,),
        )


class TransactionService(_CsvService, TransactionServiceInterface):
    """Buys and sells; ``total`` is the money that moved, fee included."""

    def get_transactions(self) -> list[Transaction]:
        broker = self.settings.broker_name
        return [
            Transaction(
                date=r.day,
                name=r.name or r.symbol,
                symbol=r.symbol or r.name,
                kind=r.kind,
                quantity=float(r.quantity),
                price=float(r.price),
                total=float(r.cash_effect),
                fees=float(-r.fee),
                currency=r.currency,
                broker=broker,
            )
            for r in _newest_first(self._load().records)
            if r.kind in TRADES
        ]


class DepositService(_CsvService, DepositServiceInterface):
    """Deposits (positive) and withdrawals (negative)."""

    def get_cash_deposits(self) -> list[Deposit]:
        broker = self.settings.broker_name
        return [
            Deposit(
                date=r.day,
                amount=float(r.amount),
                currency=r.currency,
                description=r.name or ("Deposit" if r.amount >= 0 else "Withdrawal"),
                broker=broker,
            )
            for r in _newest_first(self._load().records)
            if r.kind in ("deposit", "withdrawal")
        ]


class DividendService(_CsvService, DividendServiceInterface):
    """Dividends with the tax withheld on the same day for the same product in ``taxes``."""

    def get_dividends(self) -> list[Dividend]:
        gross: dict[tuple[date, str, str], Decimal] = {}
        taxes: dict[tuple[date, str, str], Decimal] = {}
        names: dict[tuple[date, str, str], Record] = {}
        for r in self._load().records:
            if r.kind not in ("dividend", "dividend_tax"):
                continue
            key = (r.day, r.key, r.currency)
            names.setdefault(key, r)
            target = gross if r.kind == "dividend" else taxes
            target[key] = target.get(key, Decimal(0)) + r.amount
        broker = self.settings.broker_name
        dividends = [
            Dividend(
                date=key[0],
                name=first.name or first.symbol,
                symbol=first.symbol or first.name,
                amount=float(gross.get(key, Decimal(0))),
                taxes=float(taxes.get(key, Decimal(0))),
                currency=key[2],
                broker=broker,
            )
            for key, first in names.items()
        ]
        return sorted(dividends, key=lambda d: d.date, reverse=True)


class FeeService(_CsvService, FeeServiceInterface):
    """Fee rows, and the fee column of any other row (a trade's commission)."""

    def get_fees(self) -> list[Fee]:
        broker = self.settings.broker_name
        fees: list[Fee] = []
        for r in _newest_first(self._load().records):
            if r.kind == "fee":
                fees.append(
                    Fee(r.day, r.name or r.symbol or "Fee", float(r.amount), r.currency, broker)
                )
            if r.fee:
                label = f"{r.kind.replace('_', ' ').capitalize()} fee"
                what = f" ({r.symbol or r.name})" if (r.symbol or r.name) else ""
                fees.append(Fee(r.day, f"{label}{what}", float(-r.fee), r.currency, broker))
        return fees


class AccountService(_CsvService, AccountServiceInterface):
    """Cash in the base currency, and per currency in ``extra``."""

    def get_account_overview(self) -> AccountOverview:
        settings = self.settings
        data = self._load()
        result = totals(data, settings)
        extra = {
            "source": "sample" if data_folder(self.config) == SAMPLE_DATA_FOLDER else "import",
            "files": ", ".join(data.files),
            "rows": str(len(data.records)),
            "reported_rows": str(len(data.report)),
            "positions": str(len(positions(data.records))),
        }
        for currency, amount in sorted(cash_by_currency(data.records).items()):
            extra[f"cash_{currency}"] = f"{round_money(amount):.2f}"
        if result.unconverted:
            extra["unconverted_currencies"] = ", ".join(result.unconverted)
        return AccountOverview(
            broker=settings.broker_name,
            account_id="",
            cash=float(result.cash),
            currency=settings.currency,
            extra=extra,
        )
