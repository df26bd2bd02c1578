"""Numbers as brokers write them, read into exact :class:`~decimal.Decimal` values.

Exports differ in the decimal mark, per broker, per language and sometimes per row of one
file (a DeGiro statement may hold ``"24,1500"`` and ``104.2000`` side by side). So a value is
read on its own unless the caller knows the file's mark:

- both marks in one value (``1.234,56``, ``1,234.56``): the rightmost one is the decimal mark;
- one mark repeated (``1.234.567``): it groups thousands;
- one mark once (``24,1500``, ``104.2000``, ``1,234``): the decimal mark, unless the caller
  passed the *other* mark as the file's decimal mark, then it groups thousands.

Values are never passed through ``float``: ``0.010713949999999999`` stays exactly that.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from .errors import BadNumber, MissingValue

MARKS = (".", ",")
CENT = Decimal("0.01")

# Spaces of every kind and the apostrophe group thousands (``1 234,56``, ``1'234.56``); the
# currency signs are decoration some spreadsheets add.
_NOISE = re.compile("[\\s\u00a0\u202f'\u2019€$£¥]")
_SHAPE = re.compile(r"^[+-]?(\d+([.,]\d+)*[.,]?|[.,]\d+)([eE][+-]?\d+)?$")
_LEADING_CURRENCY = re.compile(r"^([A-Z]{3})\s+(\S+)$")
_TRAILING_CURRENCY = re.compile(r"^(\S+)\s+([A-Z]{3})$")


def _clean(text: str) -> tuple[str, bool]:
    """The digits and marks of ``text`` and whether it is negative by its parentheses."""
    cleaned = _NOISE.sub("", text.strip()).replace("\u2212", "-")
    negative = cleaned.startswith("(") and cleaned.endswith(")")
    if negative:
        cleaned = cleaned[1:-1]
    return cleaned, negative


def _canonical(cleaned: str, mark: str | None) -> str:
    """``cleaned`` with the decimal mark a dot and no grouping, per the module's rules."""
    commas, dots = cleaned.count(","), cleaned.count(".")
    if commas and dots:
        decimal = "," if cleaned.rfind(",") > cleaned.rfind(".") else "."
    elif commas > 1 or dots > 1:
        decimal = "." if commas > 1 else ","  # the repeated mark groups
    elif commas or dots:
        found = "," if commas else "."
        decimal = found if mark in (None, found) else ("," if found == "." else ".")
    else:
        return cleaned
    grouping = "." if decimal == "," else ","
    return cleaned.replace(grouping, "").replace(decimal, ".")


def parse_decimal(text: str, mark: str | None = None) -> Decimal | None:
    """``text`` as a Decimal; ``None`` when empty. ``mark`` is the file's decimal mark when
    known (``"."`` or ``","``), ``None`` to read each value by itself. Accepts signs, a
    Unicode minus, ``(12.50)`` for a negative, spaces and apostrophes grouping thousands,
    currency signs and exponents (``1E-8``). Raises :class:`BadNumber`."""
    if mark is not None and mark not in MARKS:
        raise ValueError(f"a decimal mark is '.' or ',', not {mark!r}")
    cleaned, negative = _clean(text)
    if not cleaned:
        return None
    if not _SHAPE.match(cleaned):
        raise BadNumber(f"not a number: {text.strip()!r}")
    try:
        value = Decimal(_canonical(cleaned, mark))
    except InvalidOperation:
        raise BadNumber(f"not a number: {text.strip()!r}") from None
    return -value if negative else value


def require_decimal(text: str, what: str, mark: str | None = None) -> Decimal:
    """:func:`parse_decimal`, raising :class:`MissingValue` naming ``what`` when empty."""
    value = parse_decimal(text, mark)
    if value is None:
        raise MissingValue(f"the {what} is empty")
    return value


def mark_of(text: str) -> str | None:
    """The decimal mark ``text`` shows beyond doubt, else ``None``.

    Beyond doubt: both marks (the rightmost decimal), a repeated mark (the other one is the
    decimal mark), or one mark not followed by exactly three digits or after a lone zero
    (``24,1500``, ``0.010``, ``12.5``). ``1,234`` and ``1.234`` prove nothing.
    """
    cleaned, _ = _clean(text)
    cleaned = cleaned.lstrip("+-")
    commas, dots = cleaned.count(","), cleaned.count(".")
    if commas and dots:
        return "," if cleaned.rfind(",") > cleaned.rfind(".") else "."
    if commas > 1 or dots > 1:
        return "." if commas > 1 else ","
    if not (commas or dots):
        return None
    found = "," if commas else "."
    whole, _, fraction = cleaned.partition(found)
    if len(fraction) != 3 or whole in ("", "0"):
        return found
    return None


def detect_decimal_mark(values: Iterable[str]) -> str | None:
    """The decimal mark a set of values (a column, a file) uses: the one they show beyond
    doubt (see :func:`mark_of`). ``None`` when they show none, or both (a file that mixes
    marks: read each value by itself)."""
    seen = {mark for value in values if (mark := mark_of(value)) is not None}
    return seen.pop() if len(seen) == 1 else None


def round_money(value: Decimal, exponent: Decimal = CENT) -> Decimal:
    """Rounded half up to cents (or ``exponent``), the way statements round."""
    return value.quantize(exponent, rounding=ROUND_HALF_UP)


def decimal_sum(values: Iterable[Decimal]) -> Decimal:
    """The exact sum; ``Decimal(0)`` for nothing (``sum()`` would give the int ``0``)."""
    return sum(values, Decimal(0))


def split_currency(text: str) -> tuple[str, str]:
    """``"EUR 1440.10"`` or ``"1440.10 EUR"`` → ``("EUR", "1440.10")``; text without a
    currency code → ``("", text)``."""
    cleaned = text.strip()
    match = _LEADING_CURRENCY.match(cleaned)
    if match:
        return match.group(1), match.group(2)
    match = _TRAILING_CURRENCY.match(cleaned)
    if match:
        return match.group(2), match.group(1)
    return "", text
