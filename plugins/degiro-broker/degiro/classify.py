"""What each account statement row is, and whether it counts: by the file's structure where
it can tell, by the wording (:mod:`.wording`) otherwise.

Structure first: rows sharing an Order Id are one trade with its fee and currency legs (a
row without an Order Id booked at the very moment of a trade belongs to it too); a row with
no amount is a balance line; an amount of zero moves nothing. Then the words. Every row gets
exactly one :class:`Verdict`: *understood* (it becomes records), *skipped* by a named rule,
or *reported* with a reason. An amount under words DeGiro is not known to write is reported,
never applied: a fee guessed as a deposit is worse than a fee the user is told about.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from stonks_plugins.sdk import RowError, Skip

from .exports import AccountRow, TransactionRow
from .tradetext import TradeText, parse_trade_text
from .wording import FEES, POSITION_CHANGES, Kind, kind_of, mentions_degiro

TRADE_COSTS = FEES - {Kind.CONNECTION_FEE}
"""Fees that belong to the trade booked with them (a connection fee is yearly)."""

_SKIP_REASONS: dict[Kind, Skip] = {
    Kind.MONEY_MARKET: Skip(
        "money_market", "a money-market fund conversion: the money stays in the account"
    ),
    Kind.RESERVATION: Skip(
        "reservation",
        "an iDEAL/Sofort reservation pair: the deposit is booked again on its own row",
    ),
    Kind.CASH_SWEEP: Skip(
        "cash_sweep", "cash moved to or from the flatexDEGIRO Bank account, not in or out"
    ),
}


@dataclass(frozen=True)
class Verdict:
    """What became of one statement row. ``outcome`` is ``None`` for an understood row, a
    :class:`Skip` or a :class:`RowError` otherwise; ``trade`` is the written-out trade of a
    position change."""

    row: AccountRow
    kind: Kind
    outcome: Skip | RowError | None = None
    trade: TradeText | None = None

    @property
    def understood(self) -> bool:
        return self.outcome is None


def trade_key(day: date, isin: str, product: str, quantity: Decimal) -> tuple[date, str, Decimal]:
    """What identifies a fill in both files when there is no Order Id."""
    return (day, isin or product.upper(), quantity)


@dataclass(frozen=True)
class Counted:
    """The trades Transactions.csv holds, so the statement's copies are not counted twice."""

    orders: frozenset[str] = frozenset()
    keys: frozenset[tuple[date, str, Decimal]] = frozenset()

    @classmethod
    def of(cls, rows: Iterable[TransactionRow]) -> Counted:
        listed = list(rows)
        return cls(
            frozenset(r.order_id for r in listed if r.order_id),
            frozenset(trade_key(r.day, r.isin, r.product, r.quantity) for r in listed),
        )

    def has(self, row: AccountRow, trade: TradeText) -> bool:
        if row.order_id and row.order_id in self.orders:
            return True
        return trade_key(row.day, row.isin or trade.isin, row.product, trade.quantity) in self.keys


def _money(row: AccountRow) -> str:
    return f"{row.change} {row.currency}".strip()


class _Structure:
    """The order groups and trade moments of one statement."""

    def __init__(self, rows: Sequence[AccountRow], kinds: Sequence[Kind]) -> None:
        self.groups: dict[str, list[tuple[AccountRow, Kind]]] = defaultdict(list)
        self.trade_orders: set[str] = set()
        self.trade_moments: set[tuple[date, str]] = set()
        for row, kind in zip(rows, kinds, strict=True):
            if row.order_id:
                self.groups[row.order_id].append((row, kind))
            if kind is Kind.TRADE:
                self.trade_moments.add((row.day, row.time))
                if row.order_id:
                    self.trade_orders.add(row.order_id)

    def of_a_trade(self, row: AccountRow) -> bool:
        if row.order_id:
            return row.order_id in self.trade_orders
        return (row.day, row.time) in self.trade_moments

    def is_fx_leg(self, row: AccountRow) -> bool:
        """An unrecognised row of a trade's order that is one side of a conversion: it has
        the FX rate, or the opposite amount in another currency with the rate sits in the
        same order."""
        if row.fx_rate is not None:
            return True
        if not row.order_id or row.change is None:
            return False
        return any(
            other is not row
            and kind in (Kind.OTHER, Kind.FX)
            and other.fx_rate is not None
            and other.change is not None
            and other.currency != row.currency
            and (other.change > 0) != (row.change > 0)
            for other, kind in self.groups[row.order_id]
        )


def classify(rows: Sequence[AccountRow], counted: Counted | None = None) -> list[Verdict]:
    """One verdict per row, in the rows' order. ``counted``: the trades Transactions.csv
    already holds (``None`` without that file)."""
    kinds = [kind_of(row.description) if row.description else Kind.OTHER for row in rows]
    structure = _Structure(rows, kinds)
    return [_verdict(row, kind, structure, counted) for row, kind in zip(rows, kinds, strict=True)]


def _verdict(
    row: AccountRow, kind: Kind, structure: _Structure, counted: Counted | None
) -> Verdict:
    if not row.description:
        return _without_words(row)
    if kind in POSITION_CHANGES:
        return _position_change(row, kind, counted)
    if kind in _SKIP_REASONS:
        return Verdict(row, kind, _SKIP_REASONS[kind])
    if row.change is None:
        return Verdict(
            row, Kind.BALANCE_ONLY, Skip("balance_only", "a balance line without an amount")
        )
    if kind is Kind.FX:
        if structure.of_a_trade(row):
            return Verdict(row, kind, Skip("fx_leg", "a currency leg of a trade counted as such"))
        return Verdict(
            row,
            kind,
            Skip("fx_conversion", "a currency conversion inside the account (e.g. a dividend)"),
        )
    if kind is Kind.OTHER:
        return _unknown(row, structure)
    if row.change == 0:
        return Verdict(row, kind, Skip("zero_amount", f"{kind.value.replace('_', ' ')} of zero"))
    return Verdict(row, kind)


def _without_words(row: AccountRow) -> Verdict:
    if row.change is None:
        return Verdict(
            row, Kind.BALANCE_ONLY, Skip("balance_only", "a balance line without an amount")
        )
    if row.change == 0:
        return Verdict(row, Kind.OTHER, Skip("zero_amount", "no description and no amount"))
    return Verdict(
        row,
        Kind.OTHER,
        RowError(
            f"an amount of {_money(row)} with an empty description: DeGiro did not say what "
            "it is, so it was not applied; check this row in DeGiro's statement",
            rule="empty_description",
        ),
    )


def _position_change(row: AccountRow, kind: Kind, counted: Counted | None) -> Verdict:
    try:
        trade = parse_trade_text(row.description, row.change)
    except RowError as exc:
        return Verdict(row, kind, exc)
    buying = trade.quantity > 0
    if row.change and (row.change > 0) == buying:
        return Verdict(
            row,
            kind,
            RowError(
                f"{'a buy' if buying else 'a sale'} that {'received' if buying else 'paid'} "
                f"{_money(row)}: the amount's sign contradicts the description, so it was "
                "not applied",
                rule="sign_mismatch",
            ),
        )
    if counted is not None and counted.has(row, trade):
        return Verdict(row, kind, Skip("in_transactions", "counted from Transactions.csv"), trade)
    return Verdict(row, kind, trade=trade)


def _unknown(row: AccountRow, structure: _Structure) -> Verdict:
    assert row.change is not None
    if structure.of_a_trade(row):
        if row.change < 0 and row.fx_rate is None and mentions_degiro(row.description):
            # DeGiro's own charges name it in every language; on a trade's order, a DEGIRO
            # debit is that trade's fee whatever the words around it.
            return Verdict(row, Kind.FEE)
        if structure.is_fx_leg(row):
            return Verdict(
                row, Kind.FX, Skip("fx_leg", "a currency leg of a trade (by its order and amounts)")
            )
    if row.change == 0:
        return Verdict(row, Kind.OTHER, Skip("zero_amount", "an unknown description of zero"))
    return Verdict(
        row,
        Kind.OTHER,
        RowError(
            f"unknown description {row.description!r} with an amount of {_money(row)}: not "
            "applied (it may be a fee, a deposit or a dividend DeGiro words differently)",
            rule="unknown_description",
        ),
    )
