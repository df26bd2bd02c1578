"""A trade written out in an account statement description, read into numbers.

``Koop 1 @ 33,9 USD``, ``Compra 6 X@49,785 EUR (IE00B3RBWM25)``, ``Sell 4 AVIVA@496 GBX``:
the statement is all a user without ``Transactions.csv`` has, so quantity, price and currency
come from these words. Description text may group thousands (``Koop 1.000 @ 9.961,4715
EUR``) and its decimal mark follows the account's language, not the file's amounts; a number
that reads two ways (``1.000``) is settled by the other number of the same text, else by the
row's amount (quantity times price is what the row booked).

Prices in pence (``GBX``, London) become pounds: DeGiro books the money in pounds.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from itertools import product

from stonks_plugins.sdk import BadNumber, RowError, detect_decimal_mark, parse_decimal

from .wording import SELL, embedded_trade, side_of, trade_match

PENCE = {"GBX": "GBP"}
"""Currencies quoted in hundredths of another: DeGiro writes ``GBX`` for pence."""


@dataclass(frozen=True)
class TradeText:
    side: str  # "buy" | "sell"
    quantity: Decimal  # signed: positive for a buy
    product: str  # as the description names it ("" when it does not)
    price: Decimal  # in ``currency``
    currency: str
    isin: str


def in_pounds(amount: Decimal, currency: str) -> tuple[Decimal, str]:
    """``(496, "GBX")`` -> ``(4.96, "GBP")``, keeping every digit (``250.00`` pence are
    ``2.5000`` pounds); any other currency unchanged."""
    code = currency.upper()
    if code in PENCE:
        return amount.scaleb(-2), PENCE[code]
    return amount, code


def _readings(text: str) -> list[Decimal]:
    """Every value ``text`` may mean: one, or two when a single mark before three digits may
    group thousands or mark decimals (``1.000``)."""
    found: list[Decimal] = []
    for mark in (None, ".", ","):
        value = parse_decimal(text, mark)
        if value is not None and value not in found:
            found.append(value)
    return found


def _numbers(quantity: str, price: str, amount: Decimal | None) -> tuple[Decimal, Decimal]:
    mark = detect_decimal_mark([quantity, price])
    if mark is not None:
        q, p = parse_decimal(quantity, mark), parse_decimal(price, mark)
        assert q is not None and p is not None
        return q, p
    pairs = list(product(_readings(quantity), _readings(price)))
    if len(pairs) > 1 and amount:
        booked = abs(amount)
        # The amount may be in pounds where the price is in pence: compare both scales.
        scales = (Decimal(1), Decimal("0.01"))
        return min(pairs, key=lambda qp: min(abs(qp[0] * qp[1] * s - booked) for s in scales))
    return pairs[0]


def parse_trade_text(description: str, amount: Decimal | None = None) -> TradeText:
    """The trade ``description`` writes out (after a prefix such as ``STOCK DIVIDEND:``);
    raises :class:`RowError` when it is not one. ``amount`` (the row's change) settles a
    number that reads two ways."""
    match = trade_match(description)
    if match is None:
        embedded = embedded_trade(description)
        match = trade_match(embedded[1]) if embedded is not None else None
    if match is None:
        raise RowError(
            f"not a trade DeGiro writes (expected e.g. 'Koop 12 @ 24,15 EUR'): {description!r}",
            rule="bad_trade",
        )
    try:
        quantity, price = _numbers(match.group("quantity"), match.group("price"), amount)
    except BadNumber as exc:
        raise RowError(f"{exc.reason} in {description!r}", rule="bad_trade") from None
    side = side_of(match.group("verb")) or ""
    price, currency = in_pounds(price, match.group("currency"))
    return TradeText(
        side=side,
        quantity=-quantity if side == SELL else quantity,
        product=(match.group("product") or "").strip(),
        price=price,
        currency=currency,
        isin=(match.group("isin") or "").upper(),
    )
