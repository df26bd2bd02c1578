"""Amounts as brokers write them read into exact Decimals: both decimal marks, in one file
too; grouping; signs; long floats kept to the last digit."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stonks_plugins.exports import (
    BadNumber,
    MissingValue,
    decimal_sum,
    detect_decimal_mark,
    mark_of,
    parse_decimal,
    require_decimal,
    round_money,
    split_currency,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1.234,56", "1234.56"),
        ("1,234.56", "1234.56"),
        ("24,1500", "24.1500"),
        ("104.2000", "104.2000"),
        ("0.010713949999999999", "0.010713949999999999"),
        ("-1,73", "-1.73"),
        ("+5", "5"),
        ("\u22122,5", "-2.5"),
        ("(3.10)", "-3.10"),
        ("1.234.567", "1234567"),
        ("1 234,56", "1234.56"),
        ("1\u00a0234,56", "1234.56"),
        ("1'234.56", "1234.56"),
        ("€ 12,50", "12.50"),
        ("1E-8", "1E-8"),
        (" 7 ", "7"),
    ],
)
def test_each_value_read_by_itself(text: str, expected: str) -> None:
    value = parse_decimal(text)
    assert value == Decimal(expected)
    assert str(value) == expected  # the digits the export wrote, none added or lost


def test_a_file_with_both_marks_reads_each_value_right() -> None:
    """A DeGiro statement may hold ``"24,1500"`` and ``104.2000`` in one column."""
    column = ['"24,1500"', "104.2000", "-1,73", "9.961,4715", "0,00"]
    assert detect_decimal_mark(column) is None  # both shown: read each by itself
    values = [parse_decimal(text.strip('"')) for text in column]
    assert values == [
        Decimal("24.1500"),
        Decimal("104.2000"),
        Decimal("-1.73"),
        Decimal("9961.4715"),
        Decimal("0.00"),
    ]


def test_the_file_mark_settles_a_lone_mark() -> None:
    assert parse_decimal("1.234", ",") == Decimal("1234")
    assert parse_decimal("1,234", ".") == Decimal("1234")
    assert parse_decimal("1,234", ",") == Decimal("1.234")
    assert parse_decimal("1,234") == Decimal("1.234")  # unknown file: a lone mark is decimal
    with pytest.raises(ValueError, match="a decimal mark is"):
        parse_decimal("1", ";")


def test_detecting_a_files_mark() -> None:
    assert detect_decimal_mark(["1,5", "2,25", "1.234"]) == ","
    assert detect_decimal_mark(["1.5", "1,234.00"]) == "."
    assert detect_decimal_mark(["1,234", "12"]) is None
    assert (mark_of("0,123"), mark_of("1,234"), mark_of("1.234.567")) == (",", None, ",")


def test_empty_and_bad_values() -> None:
    assert parse_decimal("") is None
    assert parse_decimal("   ") is None
    with pytest.raises(MissingValue, match="the price is empty") as missing:
        require_decimal(" ", "price")
    assert missing.value.rule == "missing_value"
    for bad in ("twelve", "1,,2", "-", "1.2.3,4,5x", "NaN", "Infinity", "12-"):
        with pytest.raises(BadNumber) as error:
            parse_decimal(bad)
        assert error.value.rule == "bad_number"
        assert error.value.reason == f"not a number: {bad!r}"


def test_money_helpers() -> None:
    assert round_money(Decimal("2.345")) == Decimal("2.35")
    assert round_money(Decimal("-2.345")) == Decimal("-2.35")
    assert decimal_sum([]) == Decimal(0) and isinstance(decimal_sum([]), Decimal)
    assert decimal_sum([Decimal("0.1")] * 3) == Decimal("0.3")
    assert split_currency("EUR 1440.10") == ("EUR", "1440.10")
    assert split_currency("1440.10 USD") == ("USD", "1440.10")
    assert split_currency("1440.10") == ("", "1440.10")


@given(
    st.decimals(min_value=-(10**9), max_value=10**9, places=4, allow_nan=False),
    st.sampled_from([".", ","]),
    st.booleans(),
)
def test_any_amount_written_either_way_reads_back(value: Decimal, mark: str, group: bool) -> None:
    grouping = "," if mark == "." else "."
    text = f"{value:,.4f}" if group else f"{value:.4f}"
    text = text.replace(",", "\0").replace(".", mark).replace("\0", grouping if group else "")
    assert parse_decimal(text, mark) == value
