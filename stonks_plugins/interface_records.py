"""Record conversions between API v1 (``stonks_overwatch.core.data``: floats beside one
currency string) and API v2 (:mod:`stonks_plugins.interfaces_v2`: ``Money``, ``Decimal``).

One pair of pure functions per record, used by the service adapters of
:mod:`stonks_plugins.interface_adapters`, whose module docstring lists what is lost on the way.
Two rules hold for every pair:

* v1 -> v2: a float becomes ``Decimal(repr(f))`` (what v1 printed, not its binary
  expansion); every amount of the record gets the record's one currency;
* v2 -> v1: a ``Decimal`` becomes the nearest float; the record's currency is that of its
  main amount (the value, total, amount or cash); a missing optional amount is ``0.0``.
"""

from __future__ import annotations

from stonks_overwatch.core.data import (
    AccountOverview,
    Deposit,
    Dividend,
    Fee,
    PortfolioEntry,
    TotalPortfolio,
    Transaction,
)

from .interfaces_v2 import (
    AccountOverviewV2,
    DepositV2,
    DividendV2,
    FeeV2,
    Money,
    PortfolioEntryV2,
    TotalPortfolioV2,
    TransactionV2,
    to_decimal,
)


def money(amount: float, currency: str) -> Money:
    """v1's float amount with its record's currency, as v2 money."""
    return Money(to_decimal(amount), currency)


def amount_or_zero(m: Money | None) -> float:
    """A v2 optional amount as v1's float, where "none" was always ``0.0``."""
    return float(m.amount) if m is not None else 0.0


# -- portfolio ------------------------------------------------------------------------------
def entry_v1_to_v2(e: PortfolioEntry) -> PortfolioEntryV2:
    return PortfolioEntryV2(
        name=e.name,
        symbol=e.symbol,
        shares=to_decimal(e.shares),
        price=money(e.price, e.currency),
        value=money(e.value, e.currency),
        isin=e.isin,
        product_type=e.product_type,
        broker=e.broker,
    )


def entry_v2_to_v1(e: PortfolioEntryV2) -> PortfolioEntry:
    return PortfolioEntry(
        name=e.name,
        symbol=e.symbol,
        shares=float(e.shares),
        price=float(e.price.amount),
        value=float(e.value.amount),
        currency=e.value.currency,
        isin=e.isin,
        product_type=e.product_type,
        broker=e.broker,
    )


def total_v1_to_v2(t: TotalPortfolio) -> TotalPortfolioV2:
    c = t.currency
    return TotalPortfolioV2(
        total_value=money(t.total_value, c),
        total_cash=money(t.total_cash, c),
        total_deposits=money(t.total_deposits, c),
        brokers=tuple(t.brokers),
    )


def total_v2_to_v1(t: TotalPortfolioV2) -> TotalPortfolio:
    return TotalPortfolio(
        total_value=float(t.total_value.amount),
        total_cash=amount_or_zero(t.total_cash),
        total_deposits=amount_or_zero(t.total_deposits),
        currency=t.total_value.currency,
        brokers=tuple(t.brokers),
    )


# -- transaction ----------------------------------------------------------------------------
def transaction_v1_to_v2(t: Transaction) -> TransactionV2:
    c = t.currency
    return TransactionV2(
        date=t.date,
        name=t.name,
        symbol=t.symbol,
        kind=t.kind,
        quantity=to_decimal(t.quantity),
        price=money(t.price, c),
        total=money(t.total, c),
        fees=money(t.fees, c),
        broker=t.broker,
    )


def transaction_v2_to_v1(t: TransactionV2) -> Transaction:
    return Transaction(
        date=t.date,
        name=t.name,
        symbol=t.symbol,
        kind=t.kind,
        quantity=float(t.quantity),
        price=float(t.price.amount),
        total=float(t.total.amount),
        fees=amount_or_zero(t.fees),
        currency=t.total.currency,
        broker=t.broker,
    )


# -- deposit --------------------------------------------------------------------------------
def deposit_v1_to_v2(d: Deposit) -> DepositV2:
    return DepositV2(
        date=d.date,
        amount=money(d.amount, d.currency),
        description=d.description,
        broker=d.broker,
    )


def deposit_v2_to_v1(d: DepositV2) -> Deposit:
    return Deposit(
        date=d.date,
        amount=float(d.amount.amount),
        currency=d.amount.currency,
        description=d.description,
        broker=d.broker,
    )


# -- dividend -------------------------------------------------------------------------------
def dividend_v1_to_v2(d: Dividend) -> DividendV2:
    return DividendV2(
        date=d.date,
        name=d.name,
        symbol=d.symbol,
        amount=money(d.amount, d.currency),
        taxes=money(d.taxes, d.currency),
        broker=d.broker,
    )


def dividend_v2_to_v1(d: DividendV2) -> Dividend:
    # DividendV2 guarantees taxes share the amount's currency, so none is lost here.
    return Dividend(
        date=d.date,
        name=d.name,
        symbol=d.symbol,
        amount=float(d.amount.amount),
        taxes=amount_or_zero(d.taxes),
        currency=d.amount.currency,
        broker=d.broker,
    )


# -- fee ------------------------------------------------------------------------------------
def fee_v1_to_v2(f: Fee) -> FeeV2:
    return FeeV2(
        date=f.date,
        description=f.description,
        amount=money(f.amount, f.currency),
        broker=f.broker,
    )


def fee_v2_to_v1(f: FeeV2) -> Fee:
    return Fee(
        date=f.date,
        description=f.description,
        amount=float(f.amount.amount),
        currency=f.amount.currency,
        broker=f.broker,
    )


# -- account --------------------------------------------------------------------------------
def account_v1_to_v2(a: AccountOverview) -> AccountOverviewV2:
    return AccountOverviewV2(
        broker=a.broker,
        account_id=a.account_id,
        cash=money(a.cash, a.currency),
        extra=dict(a.extra),
    )


def account_v2_to_v1(a: AccountOverviewV2) -> AccountOverview:
    return AccountOverview(
        broker=a.broker,
        account_id=a.account_id,
        cash=float(a.cash.amount),
        currency=a.cash.currency,
        extra=dict(a.extra),
    )
