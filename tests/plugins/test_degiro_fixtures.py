"""Every DeGiro export set in tests/fixtures/exports/degiro/ (one per layout and language,
see its README) and the samples the plugin ships: no row is lost, and each set gives the
figures worked out by hand from its rows.

Rows are counted here from the files themselves (one CSV record per row, header and blank
lines included; a line that continues the row above is part of that row), not taken from
the plugin's reader, so a reader that dropped a row could not hide it by not counting it.
"""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from pathlib import Path

import pytest

from stonks_plugins.health import Health
from stonks_plugins.sdk import Money
from tests.conftest import ROOT

from . import load_plugin, manifest_of

dg = load_plugin("degiro-broker", "degiro")

FIXTURES = ROOT / "tests" / "fixtures" / "exports" / "degiro"
FOLDERS = [dg.services.SAMPLE_DATA_FOLDER, *sorted(p for p in FIXTURES.iterdir() if p.is_dir())]


def _rows_of(path: Path) -> int:
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("iso-8859-1")
    records = list(csv.reader(io.StringIO(text, newline="")))
    # A long description or order id wraps onto a line that starts with empty cells: it is
    # part of the row above, one row in the file.
    continued = sum(
        1
        for i, cells in enumerate(records)
        if i > 0 and len(cells) > 2 and not any(cells[:2]) and any(c.strip() for c in cells)
    )
    return len(records) - continued


def _config(folder: Path):  # type: ignore[no-untyped-def]
    return dg.config.DegiroConfig(import_folder=str(folder))


@pytest.mark.parametrize("folder", FOLDERS, ids=lambda p: p.name)
def test_every_row_of_every_file_is_understood_skipped_or_reported(folder: Path) -> None:
    service = dg.services.PortfolioService(config=_config(folder))
    service.get_portfolio()
    shown = service.import_report.as_dict()
    files = sorted(p.name for p in folder.glob("*.csv"))
    assert sorted(shown["files"]) == files
    for name in files:
        counts = shown["files"][name]
        rows = _rows_of(folder / name)
        accounted = counts["understood"] + sum(counts["skipped"].values()) + counts["reported"]
        assert (counts["rows"], accounted) == (rows, rows), (name, counts)
        assert service.import_report.check(name, rows) is None
    assert shown["complete"] is True


def eur(text: str) -> Money:
    return Money(Decimal(text), "EUR")


def _figures(folder: Path) -> dict[str, object]:
    config = _config(folder)
    portfolio = dg.services.PortfolioService(config=config)
    total = portfolio.get_portfolio_total()
    fees = dg.services.FeeService(config=config).get_fees()
    dividends = dg.services.DividendService(config=config).get_dividends()
    deposits = dg.services.DepositService(config=config).get_cash_deposits()
    overview = dg.services.AccountService(config=config).get_account_overview()
    return {
        "positions": sorted((p.isin, p.shares) for p in portfolio.get_portfolio()),
        "value": total.total_value,
        "cash": total.total_cash,
        "deposits": [d.amount for d in deposits],
        "fees": sum((f.amount.amount for f in fees), Decimal(0)),
        "dividends": [(d.amount, d.taxes) for d in dividends],
        "interest": overview.extra.get("interest_EUR"),
        "trades": len(dg.services.TransactionService(config=config).get_transactions()),
        "reported": portfolio.import_report.counts()["reported"],
    }


def usd(text: str) -> Money:
    return Money(Decimal(text), "USD")


EXPECTED: dict[str, dict[str, object]] = {
    # Current Transactions.csv layout, Dutch, with Portfolio.csv (positions and cash from it).
    # Fees: trade fees 1 + 2 + 1, connection fees 2.50 + 2.50 (one wrapped over two lines),
    # AutoFX 1.73. The stock dividend and the ISIN change are not cash.
    "nl-current": {
        "positions": [
            ("IE0000000051", Decimal(20)),
            ("NL0000000053", Decimal(33)),
            ("NL0000000055", Decimal(12)),
            ("US0000000052", Decimal(4)),
        ],
        "value": eur("3741.93"),
        "cash": eur("1030.15"),
        "deposits": [eur("-250.00"), eur("4000.00")],
        "fees": Decimal("-10.73"),
        "dividends": [(eur("0"), eur("0.50")), (eur("16.50"), eur("-2.48"))],
        "interest": None,  # the only interest row is 0,00
        "trades": 6,  # 3 fills, a stock dividend, the two legs of an ISIN change
        "reported": 0,
    },
    # Older layout, English, dot decimals, the older Portfolio.csv ("EUR 815.00").
    "en-older": {
        "positions": [("IE0000000002", Decimal(10)), ("US0000000001", Decimal(1))],
        "value": eur("971.75"),
        "cash": eur("250.00"),
        "deposits": [eur("-100.00"), eur("1306.03")],
        "fees": Decimal("-3.00"),
        "dividends": [],
        "interest": "-0.03",
        "trades": 3,
        "reported": 0,
    },
    # Oldest layout, German, Transactions.csv in Latin-1, no Portfolio.csv: positions rebuilt
    # from the trades (the USD share at its trade's rate: 360 USD = 300 EUR).
    "de-oldest": {
        "positions": [("DE0000000004", Decimal(8)), ("US0000000001", Decimal(3))],
        "value": eur("718.40"),
        "cash": eur("276.53"),
        "deposits": [eur("999.72")],
        "fees": Decimal("-5.00"),
        "dividends": [(usd("0.40"), usd("-0.06"))],
        "interest": "-0.07",
        "trades": 2,
        "reported": 0,
    },
    # Account statement alone, French: 71 bought, 21 sold at 115.
    "fr-statement": {
        "positions": [("IE0000000041", Decimal(50))],
        "value": eur("5750.00"),
        "cash": eur("3563.82"),
        "deposits": [eur("9000.00")],
        "fees": Decimal("-10.30"),
        "dividends": [(eur("12.34"), eur("-1.85"))],
        "interest": None,
        "trades": 2,
        "reported": 0,
    },
    # Account statement alone, Spanish: 600 USD at the trade's rate 1.0849 is 553.05 EUR.
    "es-statement": {
        "positions": [("ES0000000012", Decimal(10)), ("IE0000000011", Decimal(6))],
        "value": eur("675.55"),
        "cash": eur("468.04"),
        "deposits": [eur("1151.43")],
        "fees": Decimal("-7.75"),
        "dividends": [(usd("69.64"), usd("-10.43"))],
        "interest": None,
        "trades": 2,
        "reported": 0,
    },
    # Account statement alone, Portuguese.
    "pt-statement": {
        "positions": [("PT0000000021", Decimal(120))],
        "value": eur("540.00"),
        "cash": eur("812.38"),
        "deposits": [eur("1298.03")],
        "fees": Decimal("-10.30"),
        "dividends": [(eur("28.00"), eur("-7.00")), (usd("2.35"), usd("-0.35"))],
        "interest": "-0.12",
        "trades": 2,
        "reported": 0,
    },
    # Account statement alone, Italian.
    "it-statement": {
        "positions": [("IT0000000032", Decimal(50))],
        "value": eur("275.00"),
        "cash": eur("1532.80"),
        "deposits": [eur("-200.00"), eur("2003.35")],
        "fees": Decimal("-4.85"),
        "dividends": [(usd("11.50"), usd("-1.50"))],
        "interest": "0.45",
        "trades": 1,
        "reported": 0,
    },
    # One statement mixing the wordings of several languages, with the rows that were lost:
    # a courtesy credit, corporate action costs, a stock dividend, a London share in pence,
    # an empty description and an unknown one (both reported).
    "mixed-statement": {
        "positions": [
            ("FR0000000064", Decimal(6)),
            ("GB0000000062", Decimal(6)),
            ("NL0000000061", Decimal(999)),
            ("PT0000000063", Decimal(6)),
        ],
        "value": eur("393.35"),  # 60 + 298.71 + 0 + 29.76 GBP at 0.8590 = 34.64
        "cash": eur("1130.11"),
        "deposits": [eur("1534.40")],
        "fees": Decimal("-19.20"),
        "dividends": [],
        "interest": "5.00",
        "trades": 5,
        "reported": 2,
    },
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_export_set_gives_the_figures_worked_out_by_hand(name: str) -> None:
    assert _figures(FIXTURES / name) == EXPECTED[name]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_health_is_degraded_exactly_while_rows_are_reported(name: str) -> None:
    plugin = dg.plugin.DegiroPlugin(manifest_of("degiro-broker"))
    plugin.config = _config(FIXTURES / name)
    status = plugin.health_check()
    reported = EXPECTED[name]["reported"]
    assert status.status is (Health.DEGRADED if reported else Health.HEALTHY), status.message
    assert status.details["reported"] == reported
