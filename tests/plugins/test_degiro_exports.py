"""degiro-broker reads DeGiro's own exports: localised headers mapped by position, decimal
commas, the three Transactions.csv layouts, both Portfolio.csv variants, BOM, blank and
continuation lines, Latin-1 files; a bad row is reported with file, line and reason, and the
services hand out exact money (``Decimal`` with the digits of the file).

Expected totals are worked out by hand from the rows written here."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from stonks_plugins.health import Health
from stonks_plugins.interface_adapters import SERVICE_INTERFACES_V2, CompatibilityAdapter
from stonks_plugins.sdk import MissingFile, Money

from . import line_of, load_plugin, manifest_of, write

dg = load_plugin("degiro-broker", "degiro")

NL_TRANSACTIONS = [
    "Datum,Tijd,Product,ISIN,Beurs,Uitvoeringsplaats,Aantal,Koers,,Lokale waarde,,Waarde EUR,"
    "Wisselkoers,AutoFX Kosten,Transactiekosten en/of kosten van derden EUR,Totaal EUR,"
    "Order ID,",
    '03-06-2025,10:05,SAMPLE WORLD ETF,IE0000000002,EAM,XAMS,-10,"101,4000",EUR,"1014,00",EUR,'
    '"1014,00",,"0,00","-1,00","1013,00",,9f8e7d6c-aaaa-4bbb-8ccc-ddddeeeeffff',
    "",
    '12-03-2025,15:42,EXAMPLE TECH CORP,US0000000001,NDQ,XNAS,4,"187,2500",USD,"-749,00",USD,'
    '"-690,12","1,0853","-1,73","-2,00","-693,85",,0a1b2c3d-1111-4222-8333-444455556666',
    # The Order ID in column 16 instead of the trailing one.
    '07-01-2025,09:31,SAMPLE WORLD ETF,IE0000000002,EAM,XAMS,15,"98,2000",EUR,"-1473,00",EUR,'
    '"-1473,00",,"0,00","-1,00","-1474,00",5c2a1e90-0b1d-4a7e-9d3f-1e2f3a4b5c61,',
    # Bad: the quantity is not a number.
    '05-01-2025,09:00,SAMPLE WORLD ETF,IE0000000002,EAM,XAMS,veel,"98,0000",EUR,"-98,00",EUR,'
    '"-98,00",,"0,00","-1,00","-99,00",,ffff0000-0000-4000-8000-000000000000',
]

NL_ACCOUNT = [
    "Datum,Tijd,Valutadatum,Product,ISIN,Omschrijving,FX,Mutatie,,Saldo,,Order Id",
    '30-06-2025,09:00,30-06-2025,,,flatex terugstorting,,EUR,"-250,00",EUR,"1000,00",',
    '28-06-2025,08:00,28-06-2025,,,Degiro Cash Sweep Transfer,,EUR,"-100,00",EUR,"1250,00",',
    '28-06-2025,08:00,28-06-2025,,,Degiro Cash Sweep Transfer,,,,EUR,"1350,00",',
    '20-06-2025,06:00,19-06-2025,,,Flatex Interest Income,,EUR,"0,12",EUR,"1350,00",',
    '19-06-2025,06:00,18-06-2025,,,Flatex Interest,,EUR,"-0,05",EUR,"1349,88",',
    "15-06-2025,06:00,15-06-2025,MORGAN STANLEY EUR LIQUIDITY FUND,LU0000000005,"
    '"Conversie geldmarktfonds: Koop 0,1 @ 9.961,4715 EUR",,,,EUR,"1349,93",',
    "03-06-2025,10:05,03-06-2025,SAMPLE WORLD ETF,IE0000000002,DEGIRO Transactiekosten en/of "
    'kosten van derden,,EUR,"-1,00",EUR,"1349,93",9f8e7d6c-aaaa-4bbb-8ccc-ddddeeeeffff',
    '03-06-2025,10:05,03-06-2025,SAMPLE WORLD ETF,IE0000000002,"Verkoop 10 SAMPLE WORLD ETF@101,4 '
    'EUR (IE0000000002)",,EUR,"1014,00",EUR,"1350,93",9f8e7d6c-aaaa-4bbb-8ccc-ddddeeeeffff',
    '02-06-2025,10:01,01-06-2025,,,iDEAL storting,,EUR,"500,00",EUR,"336,93",',
    "20-05-2025,07:00,20-05-2025,VOORBEELD BANK NV,NL0000000003,Teruggave NL Dividend Tax,,EUR,"
    '"0,50",EUR,"-163,07",',
    '17-05-2025,06:01,16-05-2025,,,Valuta Creditering,,EUR,"2,71",EUR,"-163,57",',
    '17-05-2025,06:01,16-05-2025,,,Valuta Debitering,"1,1300",USD,"-3,06",USD,"0,00",',
    "16-05-2025,07:30,15-05-2025,EXAMPLE TECH CORP,US0000000001,Dividendbelasting,,USD,"
    '"-0,54",USD,"3,06",',
    '16-05-2025,07:30,15-05-2025,EXAMPLE TECH CORP,US0000000001,Dividend,,USD,"3,60",USD,"3,60",',
    "28-04-2025,07:12,25-04-2025,VOORBEELD BANK NV,NL0000000003,Dividendbelasting,,EUR,"
    '"-2,48",EUR,"-166,28",',
    '28-04-2025,07:12,25-04-2025,VOORBEELD BANK NV,NL0000000003,Dividend,,EUR,"16,50",EUR,'
    '"-163,80",',
    "10-04-2025,07:00,10-04-2025,MUSTERMANN & SÖHNE AG,DE0000000004,Kapitaalsuitkering,,EUR,"
    '"4,00",EUR,"-180,30",',
    # Bad: the date is not a date.
    '99-04-2025,07:00,10-04-2025,,,Rente,,EUR,"1,00",EUR,"-184,30",',
    '05-04-2025,12:00,05-04-2025,SAMPLE TAX PLC,GB0000000006,Transactiebelasting,,EUR,"-0,75",'
    'EUR,"-184,30",',
    "12-03-2025,15:42,12-03-2025,EXAMPLE TECH CORP,US0000000001,DEGIRO Transactiekosten en/of "
    'kosten van derden,,EUR,"-2,00",EUR,"-183,55",0a1b2c3d-1111-4222-8333-444455556666',
    '12-03-2025,15:42,12-03-2025,,,Valuta Debitering,,EUR,"-691,85",EUR,"-181,55",'
    "0a1b2c3d-1111-4222-8333-444455556666",
    '12-03-2025,15:42,12-03-2025,,,Valuta Creditering,"1,0853",USD,"749,00",USD,"0,00",'
    "0a1b2c3d-1111-4222-8333-444455556666",
    '12-03-2025,15:42,12-03-2025,EXAMPLE TECH CORP,US0000000001,"Koop 4 EXAMPLE TECH CORP@187,25 '
    'USD (US0000000001)",,USD,"-749,00",USD,"-749,00",0a1b2c3d-1111-4222-8333-444455556666',
    '03-03-2025,06:55,28-02-2025,,,DEGIRO Aansluitingskosten 2025 (Xetra - XET),,EUR,"-2,50",EUR,'
    '"510,30",',
    # A long description wrapped onto a continuation line: one connection fee of 2,50.
    '04-01-2025,08:00,04-01-2025,,,DEGIRO Exchange Connection,,EUR,"-2,50",EUR,"512,80",',
    ",,,,,Fee 2024 (Euronext Amsterdam - EAM),,,,,,",
    "07-01-2025,09:31,07-01-2025,SAMPLE WORLD ETF,IE0000000002,DEGIRO Transactiekosten en/of "
    'kosten van derden,,EUR,"-1,00",EUR,"1526,00",5c2a1e90-0b1d-4a7e-9d3f-1e2f3a4b5c61',
    '07-01-2025,09:31,07-01-2025,SAMPLE WORLD ETF,IE0000000002,"Koop 15 SAMPLE WORLD ETF@98,2 EUR '
    '(IE0000000002)",,EUR,"-1473,00",EUR,"1527,00",5c2a1e90-0b1d-4a7e-9d3f-1e2f3a4b5c61',
    '06-01-2025,09:40,05-01-2025,,,iDEAL storting,,EUR,"3000,00",EUR,"3000,00",',
    '06-01-2025,09:40,05-01-2025,,,Reservation iDEAL / Sofort Deposit,,EUR,"-3000,00",EUR,"0,00",',
    '06-01-2025,09:12,05-01-2025,,,Reservation iDEAL / Sofort Deposit,,EUR,"3000,00",EUR,'
    '"3000,00",',
    "",
]

NL_PORTFOLIO = [
    "Product,Symbool/ISIN,Aantal,Slotkoers,Lokale waarde,,Waarde in EUR",
    'CASH & CASH FUND & FTX CASH (EUR),,,,EUR,"1234,56","1234,56"',
    'SAMPLE WORLD ETF,IE0000000002,5,"103,5200",EUR,"517,60","517,60"',
    'EXAMPLE TECH CORP,US0000000001,4,"195,1000",USD,"780,40","714,65"',
    # Bad: the local value is missing.
    'BROKEN LINE NV,NL0000000009,3,"10,0000",EUR,,',
]


@pytest.fixture
def dutch(tmp_path: Path) -> Path:
    """A Dutch export set: decimal commas, a BOM on every file, blank lines, one bad row in
    each file."""
    folder = tmp_path / "nl"
    write(folder / "Transactions.csv", NL_TRANSACTIONS, bom=True)
    write(folder / "Account.csv", NL_ACCOUNT, bom=True)
    write(folder / "Portfolio.csv", NL_PORTFOLIO, bom=True)
    return folder


def _config(folder: Path):  # type: ignore[no-untyped-def]
    return dg.config.DegiroConfig(import_folder=str(folder))


def _plugin(config: object | None):  # type: ignore[no-untyped-def]
    plugin = dg.plugin.DegiroPlugin(manifest_of("degiro-broker"))
    plugin.config = config
    return plugin


def _sum(moneys) -> Decimal:  # type: ignore[no-untyped-def]
    return sum((m.amount for m in moneys), Decimal(0))


def eur(text: str) -> Money:
    return Money(Decimal(text), "EUR")


def _reported(report) -> list[tuple[str, int, str, str]]:  # type: ignore[no-untyped-def]
    return [(o.file, o.line, o.rule, o.reason) for o in report.reported_rows()]


# --- the shipped samples -----------------------------------------------------------------------


def test_samples_totals() -> None:
    portfolio = dg.services.PortfolioService(config=dg.config.DegiroConfig())
    total = portfolio.get_portfolio_total()
    # Portfolio.csv's "Value in EUR": 1035.20 + 714.65 + 760.80 + 399.04.
    assert total.total_value == eur("2909.69")
    assert total.total_cash == eur("1405.48")
    # iDEAL 3000 + iDEAL 1500 - withdrawal 300; the reservation pair does not count.
    assert total.total_deposits == eur("4200.00")
    assert [e.symbol for e in portfolio.get_portfolio()] == [
        "IE0000000002",
        "US0000000001",
        "NL0000000003",
        "DE0000000004",
    ]
    dividends = dg.services.DividendService().get_dividends()
    net: dict[str, Decimal] = {}
    for d in dividends:
        taxes = d.taxes.amount if d.taxes else Decimal(0)
        net[d.amount.currency] = net.get(d.amount.currency, Decimal(0)) + d.amount.amount + taxes
    assert net == {"EUR": Decimal("14.02"), "USD": Decimal("3.06")}
    fees = dg.services.FeeService().get_fees()
    # Five trade fees (1 + 2 + 2 + 2 + 1), the 2025 connection fee 2.50, AutoFX 1.73.
    assert _sum(f.amount for f in fees) == Decimal("-12.23")
    transactions = dg.services.TransactionService().get_transactions()
    assert len(transactions) == 6
    assert _sum(t.total for t in transactions) == Decimal("506.00") - Decimal("693.85") - Decimal(
        "420.40"
    ) - Decimal("289.80") - Decimal("436.70") - Decimal("1474.00")
    account = dg.services.AccountService().get_account_overview()
    assert account.cash == eur("1405.48")
    assert account.extra["source"] == "sample"
    assert _plugin(None).health_check().status is Health.HEALTHY


def test_the_legacy_pages_see_the_same_figures_through_api_v1() -> None:
    """The services are API v2; the v1 pages get them through the compatibility adapter."""
    service = dg.services.PortfolioService(config=dg.config.DegiroConfig())
    v1 = CompatibilityAdapter.adapt_v2_to_v1(service, "portfolio")
    total = v1.get_portfolio_total()
    assert (total.total_value, total.total_cash, total.currency) == (2909.69, 1405.48, "EUR")
    assert [e.shares for e in v1.get_portfolio()] == [10.0, 4.0, 30.0, 8.0]


# --- a Dutch export set -----------------------------------------------------------------------


def test_dutch_portfolio_and_cash(dutch: Path) -> None:
    service = dg.services.PortfolioService(config=_config(dutch))
    total = service.get_portfolio_total()
    assert total.total_value == eur("517.60") + eur("714.65")
    assert total.total_cash == eur("1234.56")
    # storting 3000 + storting 500 - terugstorting 250: the reservations and the cash sweep
    # are not money in or out.
    assert total.total_deposits == eur("3250.00")
    entries = service.get_portfolio()
    assert [(e.name, e.shares, e.price) for e in entries] == [
        ("SAMPLE WORLD ETF", Decimal(5), Money(Decimal("103.5200"), "EUR")),
        ("EXAMPLE TECH CORP", Decimal(4), Money(Decimal("195.1000"), "USD")),
    ]
    assert _reported(service.import_report) == [
        ("Portfolio.csv", 5, "missing_value", "the local value is empty"),
        (
            "Transactions.csv",
            line_of(NL_TRANSACTIONS, "veel"),
            "bad_number",
            "not a number: 'veel'",
        ),
        (
            "Account.csv",
            line_of(NL_ACCOUNT, "99-04-2025"),
            "bad_date",
            "not a date (expected DD-MM-YYYY or YYYY-MM-DD): '99-04-2025'",
        ),
    ]


def test_dutch_transactions(dutch: Path) -> None:
    service = dg.services.TransactionService(config=_config(dutch))
    transactions = service.get_transactions()
    assert [(t.date.isoformat(), t.kind, t.quantity) for t in transactions] == [
        ("2025-06-03", "sell", 10),
        ("2025-03-12", "buy", 4),
        ("2025-01-07", "buy", 15),
    ]
    tech = transactions[1]
    # The price in the product's currency; the total and fees in the account currency, with
    # the digits of the file.
    assert (tech.price, tech.total) == (Money(Decimal("187.2500"), "USD"), eur("-693.85"))
    assert tech.fees == eur("-3.73")  # AutoFX 1.73 and the transaction fee 2.00
    assert _sum(t.total for t in transactions) == Decimal("1013.00") - Decimal("693.85") - Decimal(
        "1474.00"
    )
    assert [o.file for o in service.import_report.reported_rows()].count("Transactions.csv") == 1


def test_dutch_deposits(dutch: Path) -> None:
    deposits = dg.services.DepositService(config=_config(dutch)).get_cash_deposits()
    assert [(d.date.isoformat(), d.amount) for d in deposits] == [
        ("2025-06-30", eur("-250.00")),
        ("2025-06-02", eur("500.00")),
        ("2025-01-06", eur("3000.00")),
    ]


def test_dutch_dividends_net_of_tax(dutch: Path) -> None:
    dividends = dg.services.DividendService(config=_config(dutch)).get_dividends()
    net: dict[str, Decimal] = {}
    for d in dividends:
        taxes = d.taxes.amount if d.taxes else Decimal(0)
        net[d.amount.currency] = net.get(d.amount.currency, Decimal(0)) + d.amount.amount + taxes
    # EUR: 16.50 - 2.48 (VOORBEELD) + 4.00 (Kapitaalsuitkering) + 0.50 refund of NL tax.
    # USD: 3.60 - 0.54.
    assert net == {"EUR": Decimal("18.52"), "USD": Decimal("3.06")}
    voorbeeld = next(d for d in dividends if d.date.isoformat() == "2025-04-28")
    assert (voorbeeld.amount, voorbeeld.taxes, voorbeeld.symbol) == (
        eur("16.50"),
        eur("-2.48"),
        "NL0000000003",
    )
    refund = next(d for d in dividends if d.date.isoformat() == "2025-05-20")
    assert (refund.amount, refund.taxes) == (eur("0"), eur("0.50"))


def test_dutch_fees(dutch: Path) -> None:
    fees = dg.services.FeeService(config=_config(dutch)).get_fees()
    # Trade fees 1.00 + 2.00 + 1.00, transaction tax 0.75, connection fees 2.50 (2025) and
    # 2.50 (2024, its description joined from a continuation line), AutoFX 1.73.
    assert _sum(f.amount for f in fees) == Decimal("-11.48")
    descriptions = {f.description for f in fees}
    assert "DEGIRO Exchange Connection Fee 2024 (Euronext Amsterdam - EAM)" in descriptions
    assert "Transactiebelasting" in descriptions
    assert "DEGIRO AutoFX fee (EXAMPLE TECH CORP)" in descriptions
    assert not any("Interest" in d or "Sweep" in d for d in descriptions)


def test_dutch_account_overview(dutch: Path) -> None:
    overview = dg.services.AccountService(config=_config(dutch)).get_account_overview()
    assert overview.cash == eur("1234.56")
    assert overview.extra["interest_EUR"] == "0.07"  # 0.12 received, 0.05 charged
    assert overview.extra["balance_EUR"] == "1000.00"  # the newest statement row
    assert overview.extra["balance_USD"] == "0.00"
    assert overview.extra["reported_rows"] == "3"
    assert overview.extra["source"] == "import"


def test_what_became_of_each_row_of_the_dutch_statement(dutch: Path) -> None:
    service = dg.services.DepositService(config=_config(dutch))
    service.get_cash_deposits()
    outcomes = [(str(o.outcome), o.rule) for o in service.import_report.outcomes("Account.csv")]
    assert outcomes == [
        ("skipped", "header"),
        ("understood", ""),  # flatex terugstorting
        ("skipped", "cash_sweep"),
        ("skipped", "cash_sweep"),  # its balance-only partner
        ("understood", ""),  # interest income
        ("understood", ""),  # interest charged
        ("skipped", "money_market"),
        ("understood", ""),  # the sale's fee
        ("skipped", "in_transactions"),  # the sale: counted from Transactions.csv
        ("understood", ""),  # iDEAL storting
        ("understood", ""),  # dividend tax refund
        ("skipped", "fx_conversion"),  # the dividend's conversion
        ("skipped", "fx_conversion"),
        ("understood", ""),
        ("understood", ""),
        ("understood", ""),
        ("understood", ""),
        ("understood", ""),  # Kapitaalsuitkering
        ("reported", "bad_date"),
        ("understood", ""),  # Transactiebelasting
        ("understood", ""),
        ("skipped", "fx_leg"),  # the trade's conversion, its order counted
        ("skipped", "fx_leg"),
        ("skipped", "in_transactions"),
        ("understood", ""),  # connection fee 2025
        ("understood", ""),  # connection fee 2024, its continuation line joined
        ("understood", ""),
        ("skipped", "in_transactions"),
        ("understood", ""),  # iDEAL storting
        ("skipped", "reservation"),
        ("skipped", "reservation"),
        ("skipped", "blank"),
    ]


def test_continuation_line_without_a_row_above(tmp_path: Path) -> None:
    lines = [
        "Date,Time,Value date,Product,ISIN,Description,FX,Change,,Balance,,Order Id",
        ",,,,,orphaned text,,,,,,",
        '02-06-2025,10:01,01-06-2025,,,iDEAL Deposit,,EUR,"500,00",EUR,"500,00",',
    ]
    parsed = dg.exports.parse_account(write(tmp_path / "Account.csv", lines))
    assert [row.description for row in parsed.rows] == ["iDEAL Deposit"]
    assert [(o.line, o.rule) for o in parsed.report.reported_rows()] == [(2, "orphan_continuation")]


def test_health_reports_the_reported_rows(dutch: Path) -> None:
    status = _plugin(_config(dutch)).health_check()
    assert status.status is Health.DEGRADED
    assert status.details["reported"] == 3
    assert status.details["first_reported"][0] == "Portfolio.csv line 5: the local value is empty"
    assert "3 row(s) reported" in status.message
    assert status.details["Transactions.csv"]["language"] == "nl"
    assert status.details["Transactions.csv"]["layout"] == "current"
    assert status.details["Account.csv"]["reported"] == 1


# --- the older layouts, without Portfolio.csv or Account.csv ---------------------------------

EN_OLDER = [
    "Date,Time,Product,ISIN,Reference,Venue,Quantity,Price,,Local value,,Value,,Exchange rate,"
    "Transaction and/or third,,Total,,Order ID",
    "01-12-2022,16:00,EXAMPLE TECH CORP,US0000000001,NDQ,XNAS,-1,160.0000,USD,160.00,USD,152.00,"
    "EUR,1.0526,-0.50,EUR,151.50,EUR,c3d4",
    "20-10-2022,14:00,SAMPLE WORLD ETF,IE0000000002,EAM,XAMS,10,80.0000,EUR,-800.00,EUR,-800.00,"
    "EUR,,-2.00,EUR,-802.00,EUR,b2c3",
    "15-09-2022,09:05,EXAMPLE TECH CORP,US0000000001,NDQ,XNAS,2,150.0000,USD,-300.00,USD,-305.00,"
    "EUR,0.9836,-0.50,EUR,-305.50,EUR,a1b2",
    # Bad: cut off after the price.
    "14-09-2022,09:05,EXAMPLE TECH CORP,US0000000001,NDQ,XNAS,2,150.0000",
]

DE_OLDEST = [
    "Datum,Uhrzeit,Produkt,ISIN,Börse,Anzahl,,Kurs,,Wert in Lokalwährun,,Wert,Wechselkurs,,"
    "Gebühr,,Gesamt,Order-ID",
    '05-01-2021,10:15,MUSTERMANN & SÖHNE AG,DE0000000004,XET,8,EUR,"52,30",EUR,"-418,40",EUR,'
    '"-418,40",,EUR,"-2,00",EUR,"-420,40",8e5f3a22',
    '04-01-2021,10:15,EXAMPLE TECH CORP,US0000000001,NDQ,3,USD,"120,00",USD,"-360,00",EUR,'
    '"-300,00","1,2000",EUR,"-0,50",EUR,"-300,50",7d4e2f11',
]


def test_older_english_layout_without_portfolio(tmp_path: Path) -> None:
    folder = tmp_path / "en"
    write(folder / "Transactions.csv", EN_OLDER)
    config = _config(folder)
    parsed = dg.exports.parse_transactions(folder / "Transactions.csv")
    assert (parsed.layout, parsed.language) == ("older", "en")
    service = dg.services.PortfolioService(config=config)
    # Rebuilt from the trades: 1 EXAMPLE TECH at the latest price 160 USD, worth 152.00 EUR
    # at that trade's rate; 10 SAMPLE WORLD ETF at 80 EUR.
    assert [(e.name, e.shares, e.value) for e in service.get_portfolio()] == [
        ("SAMPLE WORLD ETF", 10, eur("800.0000")),
        ("EXAMPLE TECH CORP", 1, Money(Decimal("160.0000"), "USD")),
    ]
    assert service.get_portfolio_total().total_value == eur("952.00")
    assert _reported(service.import_report) == [
        ("Transactions.csv", 5, "short_row", "expected at least 17 columns, found 8"),
    ]
    # No Account.csv: the fees come from Transactions.csv.
    fees = dg.services.FeeService(config=config).get_fees()
    assert _sum(f.amount for f in fees) == Decimal("-3.00")
    transactions = dg.services.TransactionService(config=config).get_transactions()
    assert [t.total for t in transactions] == [eur("151.50"), eur("-802.00"), eur("-305.50")]
    with pytest.raises(MissingFile, match=r"Account\.csv"):
        dg.services.DepositService(config=config).get_cash_deposits()
    status = _plugin(config).health_check()
    assert status.status is Health.DEGRADED
    assert status.details["missing"] == ["Portfolio.csv", "Account.csv"]


def test_oldest_german_layout_in_latin1(tmp_path: Path) -> None:
    folder = tmp_path / "de"
    write(folder / "Transactions.csv", DE_OLDEST, encoding="iso-8859-1")
    parsed = dg.exports.parse_transactions(folder / "Transactions.csv")
    assert (parsed.layout, parsed.language, parsed.report.reported_rows()) == ("oldest", "de", [])
    mustermann, tech = parsed.rows
    assert mustermann.product == "MUSTERMANN & SÖHNE AG"
    assert (mustermann.quantity, mustermann.price) == (Decimal(8), Decimal("52.30"))
    assert mustermann.price_currency == "EUR"
    assert (tech.price_currency, tech.account_currency) == ("USD", "EUR")
    assert tech.total == Decimal("-300.50")
    assert mustermann.order_id == "8e5f3a22"
    transactions = dg.services.TransactionService(config=_config(folder)).get_transactions()
    assert _sum(t.total for t in transactions) == Decimal("-720.90")
    assert _sum(t.fees for t in transactions) == Decimal("-2.50")


def test_older_portfolio_variant_with_currency_in_the_value(tmp_path: Path) -> None:
    folder = tmp_path / "old"
    write(
        folder / "Portfolio.csv",
        [
            "Product,Symbol/ISIN,Amount,Closing,Local value,,Value in EUR",
            "CASH & CASH FUND & FTX CASH (EUR),,,,EUR 250.00,,EUR 250.00",
            "SAMPLE WORLD ETF,IE0000000002,12,120.0100,EUR 1440.12,,EUR 1440.12",
            "EXAMPLE TECH CORP,US0000000001,2,200.0000,USD 400.00,,EUR 368.00",
        ],
    )
    service = dg.services.PortfolioService(config=_config(folder))
    total = service.get_portfolio_total()
    assert (total.total_value, total.total_cash) == (eur("1808.12"), eur("250.00"))
    assert total.total_deposits == eur("0")  # no Account.csv
    assert [(e.value, e.price) for e in service.get_portfolio()] == [
        (eur("1440.12"), eur("120.0100")),
        (Money(Decimal("400.00"), "USD"), Money(Decimal("200.0000"), "USD")),
    ]


@pytest.mark.parametrize(
    ("header", "language"),
    [
        ("Date,Time,Value date,Product", "en"),
        ("Datum,Tijd,Valutadatum,Product", "nl"),
        ("Datum,Uhrzeit,Valutadatum,Produkt", "de"),
        ("Date,Heure,Date de valeur,Produit", "fr"),
        ("Fecha,Hora,Fecha valor,Producto", "es"),
        ("Data,Ora,Data valuta,Prodotto", "it"),
        ("Data,Hora,Data valor,Produto", "pt"),
        ("Datum,Čas,Datum valuty,Produkt", "cs"),
        ("Produkt,Symbol/ISIN,Anzahl,Schlusskurs", "de"),
        ("Product,Symbool/ISIN,Aantal,Slotkoers", "nl"),
        ("Quando,Cosa", ""),
    ],
)
def test_language_detection(header: str, language: str) -> None:
    assert dg.csvio.detect_language(header.split(",")) == language


def test_unreadable_and_missing_exports(tmp_path: Path) -> None:
    assert _plugin(_config(tmp_path / "nowhere")).health_check().status is Health.UNHEALTHY
    folder = tmp_path / "odd"
    write(folder / "Transactions.csv", ["Date,Time,Product,Whatever", "01-01-2025,10:00,X,1"])
    status = _plugin(_config(folder)).health_check()
    assert status.status is Health.UNHEALTHY
    assert "Transactions.csv line 1: unknown Transactions.csv layout" in status.message


def test_manifest_services_implement_the_v2_interfaces() -> None:
    manifest = manifest_of("degiro-broker")
    for service_type, ref in manifest.services.items():
        cls = getattr(dg.services, ref.rsplit(".", 1)[1])
        assert issubclass(cls, SERVICE_INTERFACES_V2[service_type])
        assert not getattr(cls, "__abstractmethods__", None), cls
