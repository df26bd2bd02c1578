"""csv-broker reads any CSV through the column mapping in its config: the shipped sample with
the defaults, a German semicolon file with decimal commas and its own words for the kinds, a
file without a header, a Latin-1 file; bad rows are reported with file, line and reason, a
kind the config does not map is reported and changes nothing, and every row of every file
has exactly one outcome.

Expected totals are worked out by hand from the rows written here."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from stonks_plugins.config.schema import config_schema
from stonks_plugins.config.system import flatten
from stonks_plugins.config.validation import validate_config
from stonks_plugins.health import Health
from stonks_plugins.sdk import BadHeader, Outcome

from . import line_of, load_plugin, manifest_of, write

cb = load_plugin("csv-broker", "csvbroker")

GERMAN = [
    "Datum;Art;Wertpapier;Kürzel;Stück;Kurs;Betrag;Gebühr;Währung",
    '02.01.2025;Einzahlung;Überweisung;;;;"10.000,00";;EUR',
    '06.01.2025;Kauf;Muster AG;MUS;100;"45,50";"4.550,00";"4,90";EUR',
    '07.01.2025;Kauf;Example Corp;EXC;10;"200,00";"2.000,00";"1,00";USD',
    "",
    '15.03.2025;Dividende;Muster AG;MUS;;;"120,00";;EUR',
    '15.03.2025;Quellensteuer;Muster AG;MUS;;;"31,65";;EUR',
    '01.04.2025;Verkauf;Muster AG;MUS;40;"50,00";"2.000,00";"4,90";EUR',
    '31.13.2025;Kauf;Muster AG;MUS;1;"1,00";"1,00";;EUR',
    '02.04.2025;Tausch;Muster AG;MUS;1;"1,00";"1,00";;EUR',
    '03.04.2025;Kauf;Muster AG;MUS;;"1,00";;;EUR',
    '30.06.2025;Depotgebühr;Depotgebühr 2025;;;;"12,00";;EUR',
]

GERMAN_SETTINGS = {
    "delimiter": ";",
    "decimal_mark": ",",
    "date_format": "%d.%m.%Y",
    "encoding": "cp1252",
    "columns": {
        "date": "Datum",
        "kind": "Art",
        "name": "Wertpapier",
        "symbol": "Kürzel",
        "quantity": "Stück",
        "price": "Kurs",
        "amount": "Betrag",
        "fee": "Gebühr",
        "currency": "Währung",
    },
    "kinds": {
        "Einzahlung": "deposit",
        "Kauf": "buy",
        "Verkauf": "sell",
        "Dividende": "dividend",
        "Quellensteuer": "dividend_tax",
        "Depotgebühr": "fee",
    },
    "fx_rates": {"USD": 0.9},
}


@pytest.fixture
def german(tmp_path: Path):  # type: ignore[no-untyped-def]
    folder = tmp_path / "depot"
    write(folder / "umsaetze.csv", GERMAN, encoding="cp1252")
    return cb.config.CsvBrokerConfig.from_dict({**GERMAN_SETTINGS, "import_folder": str(folder)})


def _plugin(config: object | None):  # type: ignore[no-untyped-def]
    plugin = cb.plugin.CsvBrokerPlugin(manifest_of("csv-broker"))
    plugin.config = config
    return plugin


def _by_currency(items) -> dict[str, float]:  # type: ignore[no-untyped-def]
    out: dict[str, float] = {}
    for item in items:
        out[item.currency] = round(out.get(item.currency, 0) + item.amount, 2)
    return out


# --- the shipped sample with the default mapping ------------------------------------------------


def test_sample_totals() -> None:
    config = cb.config.CsvBrokerConfig()
    portfolio = cb.services.PortfolioService(config=config)
    # VWCE 20 + 5 = 25 at the latest price 124.00; SMPL 50 - 20 = 30 at 21.40.
    assert [(e.symbol, e.shares, e.value) for e in portfolio.get_portfolio()] == [
        ("SMPL", 30.0, 642.00),
        ("VWCE", 25.0, 3100.00),
    ]
    total = portfolio.get_portfolio_total()
    assert total.total_value == pytest.approx(3742.00)
    assert total.total_deposits == pytest.approx(5000 - 500 + 1000)
    # Deposits 5500, buys -(2410 + 2) - (910 + 2) - (620 + 1), sale 428 - 2, custody fee
    # -1.50, dividend 25 less 3.75 tax.
    assert total.total_cash == pytest.approx(5500 - 2412 - 912 - 621 + 426 - 1.50 + 25 - 3.75)
    fees = cb.services.FeeService(config=config).get_fees()
    assert _by_currency(fees) == {"EUR": -(2 + 2 + 2 + 1 + 1.50)}
    dividends = cb.services.DividendService(config=config).get_dividends()
    assert [(d.symbol, d.amount, d.taxes) for d in dividends] == [("SMPL", 25.0, -3.75)]
    transactions = cb.services.TransactionService(config=config).get_transactions()
    assert [(t.kind, t.symbol, t.total) for t in transactions] == [
        ("buy", "VWCE", -621.0),
        ("sell", "SMPL", 426.0),
        ("buy", "SMPL", -912.0),  # same day: the later line first
        ("buy", "VWCE", -2412.0),
    ]
    assert _plugin(None).health_check().status is Health.HEALTHY


# --- a German semicolon file with decimal commas -----------------------------------------------


def test_german_portfolio(german) -> None:  # type: ignore[no-untyped-def]
    service = cb.services.PortfolioService(config=german)
    # MUS 100 - 40 = 60 at the latest price 50.00 = 3000.00 EUR; EXC 10 at 200 USD = 2000 USD,
    # 1800.00 EUR at the configured rate 0.9.
    assert [(e.symbol, e.name, e.shares, e.value, e.currency) for e in service.get_portfolio()] == [
        ("EXC", "Example Corp", 10.0, 2000.0, "USD"),
        ("MUS", "Muster AG", 60.0, 3000.0, "EUR"),
    ]
    total = service.get_portfolio_total()
    assert total.total_value == pytest.approx(3000.00 + 1800.00)
    assert total.total_deposits == pytest.approx(10000.00)
    # EUR: 10000 - (4550 + 4.90) + 120 - 31.65 + (2000 - 4.90) - 12 = 7516.55;
    # USD: -(2000 + 1) = -2001, i.e. -1800.90 EUR.
    assert total.total_cash == pytest.approx(7516.55 - 1800.90)


def test_german_bad_rows_are_reported(german) -> None:  # type: ignore[no-untyped-def]
    service = cb.services.TransactionService(config=german)
    assert len(service.get_transactions()) == 3
    assert [(r.file, r.line, r.rule, r.reason) for r in service.import_report] == [
        (
            "umsaetze.csv",
            line_of(GERMAN, "31.13.2025"),
            "bad_date",
            "not a date (expected DD.MM.YYYY): '31.13.2025'",
        ),
        (
            "umsaetze.csv",
            line_of(GERMAN, "Tausch"),
            "unknown_kind",
            "unknown kind 'Tausch': expected one of buy, sell, deposit, withdrawal, dividend, "
            "dividend_tax, fee (map your file's words to them in settings.kinds); not applied",
        ),
        (
            "umsaetze.csv",
            line_of(GERMAN, "03.04.2025"),
            "missing_value",
            "a buy without a quantity",
        ),
    ]
    status = _plugin(german).health_check()
    assert status.status is Health.DEGRADED
    assert status.details["reported"] == 3
    assert status.details["first_reported"][0].startswith("umsaetze.csv line 9: not a date")
    assert status.message.startswith("3 row(s) reported: umsaetze.csv line 9: not a date")


def test_german_every_row_has_one_outcome(german) -> None:  # type: ignore[no-untyped-def]
    service = cb.services.AccountService(config=german)
    service.get_account_overview()
    assert service.import_report.as_dict()["files"] == {
        "umsaetze.csv": {
            "rows": len(GERMAN),
            "understood": 7,
            "skipped": {"blank": 1, "header": 1},
            "reported": 3,
        }
    }
    assert service.import_report.complete


def test_german_dividends_fees_deposits(german) -> None:  # type: ignore[no-untyped-def]
    dividends = cb.services.DividendService(config=german).get_dividends()
    assert [(d.name, d.amount, d.taxes) for d in dividends] == [("Muster AG", 120.0, -31.65)]
    assert sum(d.amount + d.taxes for d in dividends) == pytest.approx(88.35)
    fees = cb.services.FeeService(config=german).get_fees()
    # Commissions 4.90 + 4.90 (EUR) and 1.00 (USD), the custody fee 12.00.
    assert _by_currency(fees) == {"EUR": -21.80, "USD": -1.00}
    deposits = cb.services.DepositService(config=german).get_cash_deposits()
    assert [(d.amount, d.description) for d in deposits] == [(10000.0, "Überweisung")]
    overview = cb.services.AccountService(config=german).get_account_overview()
    assert overview.cash == pytest.approx(5715.65)
    assert (overview.extra["cash_EUR"], overview.extra["cash_USD"]) == ("7516.55", "-2001.00")


def test_currency_without_a_rate_degrades_health(german) -> None:  # type: ignore[no-untyped-def]
    config = cb.config.CsvBrokerConfig.from_dict({**german.to_dict(), "fx_rates": {}})
    total = cb.services.PortfolioService(config=config).get_portfolio_total()
    assert total.total_value == pytest.approx(3000.00)  # the USD position is left out
    status = _plugin(config).health_check()
    assert status.status is Health.DEGRADED
    assert status.details["unconverted_currencies"] == ["USD"]


# --- other shapes ------------------------------------------------------------------------------


def test_file_without_header_mapped_by_position(tmp_path: Path) -> None:
    write(
        tmp_path / "a.csv",
        [
            "2025-01-02,deposit,,,,500",
            "2025-01-03,purchase,ABC,3,100,",
            "2025-01-04,sold,ABC,1,110,",
        ],
    )
    config = cb.config.CsvBrokerConfig.from_dict(
        {
            "import_folder": str(tmp_path),
            "has_header": False,
            "columns": {
                "date": 0,
                "kind": 1,
                "symbol": 2,
                "quantity": 3,
                "price": 4,
                "amount": 5,
                "name": "",
                "fee": "",
                "currency": "",
            },
        }
    )
    total = cb.services.PortfolioService(config=config).get_portfolio_total()
    # ABC 3 - 1 = 2 at 110; cash 500 - 3 x 100 + 110.
    assert (total.total_value, total.total_cash, total.currency) == (220.0, 310.0, "EUR")


def test_mapping_that_does_not_fit_the_file(tmp_path: Path) -> None:
    write(tmp_path / "a.csv", ["When,What,Amount", "2025-01-02,deposit,500"])
    config = cb.config.CsvBrokerConfig(import_folder=str(tmp_path))
    with pytest.raises(BadHeader, match=r"^a\.csv line 1: columns\.date names the column 'Date'"):
        cb.services.DepositService(config=config).get_cash_deposits()
    assert _plugin(config).health_check().status is Health.UNHEALTHY
    fitting = cb.config.CsvBrokerConfig.from_dict(
        {
            "import_folder": str(tmp_path),
            "columns": {
                "date": "when",  # header names match case-insensitively
                "kind": "What",
                **dict.fromkeys(("symbol", "name", "quantity", "price", "fee", "currency"), ""),
            },
        }
    )
    deposits = cb.services.DepositService(config=fitting).get_cash_deposits()
    assert [(d.amount, d.currency) for d in deposits] == [(500.0, "EUR")]


def test_config_as_the_host_builds_it(tmp_path: Path) -> None:
    """The manifest's schema fills the defaults; the config class gets the flattened result."""
    manifest = manifest_of("csv-broker")
    schema = config_schema(manifest, None)
    data, issues = validate_config(schema, {"settings": {"columns": {"date": "When"}}})
    assert issues == []
    config = cb.config.CsvBrokerConfig.from_dict(flatten(data))
    assert config.columns["date"] == "When"
    assert config.columns["amount"] == "Amount"
    assert config == cb.config.CsvBrokerConfig(
        columns={**cb.config.DEFAULT_COLUMNS, "date": "When"}
    )
    _, issues = validate_config(schema, {"settings": {"columns": {"dat": "When"}}})
    assert issues  # a typo in a field name is an error, not an ignored setting
    _, issues = validate_config(schema, {"settings": {"decimal_mark": ";"}})
    assert issues
    assert cb.services.settings_of({"import_folder": str(tmp_path)}).import_folder == str(tmp_path)


def test_an_unknown_kind_is_reported_and_not_applied(tmp_path: Path) -> None:
    lines = [
        "Date,Kind,Symbol,Name,Quantity,Price,Amount,Fee,Currency",
        "2025-01-02,Deposit,,Bank transfer,,,5000.00,,EUR",
        "2025-01-06,Buy,VWCE,Sample All-World ETF,20,120.50,2410.00,2.00,EUR",
    ]
    unknown = "2025-02-01,Spin-off,NEWCO,New Co,5,10.00,50.00,1.00,EUR"
    nothing = "2025-02-02,Notice,,Annual report,,,,,EUR"
    write(tmp_path / "without" / "t.csv", lines)
    write(tmp_path / "with" / "t.csv", [*lines, unknown, nothing])

    def everything(folder: Path) -> tuple:  # type: ignore[type-arg]
        config = cb.config.CsvBrokerConfig(import_folder=str(folder))
        return (
            cb.services.PortfolioService(config=config).get_portfolio(),
            cb.services.PortfolioService(config=config).get_portfolio_total(),
            cb.services.TransactionService(config=config).get_transactions(),
            cb.services.FeeService(config=config).get_fees(),
            cb.services.DepositService(config=config).get_cash_deposits(),
            cb.services.DividendService(config=config).get_dividends(),
        )

    assert everything(tmp_path / "with") == everything(tmp_path / "without")
    config = cb.config.CsvBrokerConfig(import_folder=str(tmp_path / "with"))
    service = cb.services.FeeService(config=config)
    service.get_fees()
    report = service.import_report
    assert [(r.line, r.rule) for r in report] == [(4, "unknown_kind")]
    assert report.outcome_of("t.csv", 5) is not None
    assert report.outcome_of("t.csv", 5).outcome is Outcome.SKIPPED  # type: ignore[union-attr]
    assert report.counts() == {"understood": 2, "skipped": 2, "reported": 1}
    assert _plugin(config).health_check().status is Health.DEGRADED


def test_a_latin1_file_and_exact_quantities(tmp_path: Path) -> None:
    """The default encoding reads UTF-8 and falls back to Latin-1; numbers stay exact."""
    write(
        tmp_path / "t.csv",
        [
            "Date,Kind,Symbol,Name,Quantity,Price,Amount,Fee,Currency",
            "2025-01-02,Deposit,,Überweisung,,,100.00,,EUR",
            "2025-01-03,Buy,BTC,Bitcoin,0.010713949999999999,93330,1000.00,,EUR",
        ],
        encoding="iso-8859-1",
    )
    config = cb.config.CsvBrokerConfig(import_folder=str(tmp_path))
    deposits = cb.services.DepositService(config=config).get_cash_deposits()
    assert [d.description for d in deposits] == ["Überweisung"]
    data = cb.services.load(config)
    assert data.records[1].quantity == Decimal("0.010713949999999999")
    strict = cb.config.CsvBrokerConfig(import_folder=str(tmp_path), encoding="utf-8")
    status = _plugin(strict).health_check()
    assert status.status is Health.UNHEALTHY
    assert status.message.startswith("t.csv: not utf-8 text")
    assert status.message.endswith("set settings.encoding")
