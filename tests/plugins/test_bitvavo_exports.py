"""bitvavo-broker reads Bitvavo's transaction history: both layouts (one export per year in
one folder, overlapping rows counted once), Pending skipped, staking, rebates, fees, crypto
withdrawals; a bad row is reported with file, line and reason; a Type the plugin does not
know is reported and changes nothing; every row of every file has exactly one outcome.

Expected totals are worked out by hand from the rows written here."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from stonks_plugins.health import Health
from stonks_plugins.sdk import ImportReport, Outcome

from . import line_of, load_plugin, manifest_of, write

bv = load_plugin("bitvavo-broker", "bitvavo")

OLDER_2024 = [
    "Timezone,Date,Time,Type,Currency,Amount,Price (EUR),EUR received / paid,Fee currency,"
    "Fee amount,Status,Transaction ID,Address",
    "Europe/Amsterdam,2024-03-01,10:00:00,deposit,EUR,1000,,,,,Completed,id-01,NL00BANK0123456789",
    "Europe/Amsterdam,2024-03-02,11:00:00,buy,BTC,0.01,60000,-601.50,EUR,1.50,Completed,id-02,",
    "Europe/Amsterdam,2024-03-02,11:00:01,rebate,EUR,0.50,,,,,Completed,id-03,",
    "",
    "Europe/Amsterdam,2024-04-01,02:00:00,staking,ETH,0.5,,,,,Distributed,id-04,",
    "Europe/Amsterdam,2024-05-10,12:00:00,buy,ETH,1,3000,-3007.50,EUR,7.50,Pending,id-05,",
    # Bad: not a time.
    "Europe/Amsterdam,2024-06-01,noon,deposit,EUR,50,,,,,Completed,id-06,NL00BANK0123456789",
]

CURRENT_2025 = [
    "Timezone,Date,Time,Type,Currency,Amount,Quote Currency,Quote Price,Received / Paid Currency,"
    "Received / Paid Amount,Fee currency,Fee amount,Status,Transaction ID,Address",
    # Also in the 2024 export: counted once.
    "Europe/Amsterdam,2024-03-01,10:00:00,deposit,EUR,1000,,,,,,,Completed,id-01,"
    "NL00BANK0123456789",
    "Europe/Amsterdam,2025-01-05,08:00:00,deposit,EUR,500.00,,,,,,,Completed,id-09,"
    "NL00BANK0123456789",
    "Europe/Amsterdam,2025-01-10,09:15:07.381,buy,ETH,0.2,EUR,2500,EUR,-500.75,EUR,0.75,"
    "Completed,id-10,",
    "Europe/Amsterdam,2025-02-01,12:00:00,sell,BTC,-0.004,EUR,90000,EUR,359.10,EUR,0.90,"
    "Completed,id-11,",
    "Europe/Amsterdam,2025-02-15,12:30:44,withdrawal,BTC,-0.001,,,,,BTC,0.00002,Completed,id-12,"
    "bc1qexampleaddress000000000000000000000",
    "Europe/Amsterdam,2025-03-01,02:00:00,fixed_staking,ETH,0.001,,,,,,,Distributed,id-13,",
    "Europe/Amsterdam,2025-03-05,08:00:00,affiliate,EUR,2.00,,,,,,,Completed,id-14,",
    "Europe/Amsterdam,2025-03-10,09:00:00,withdrawal,EUR,-100,,,,,EUR,0,Completed,id-15,"
    "NL00BANK0123456789",
    # Bad: the amount is not a number.
    "Europe/Amsterdam,2025-03-11,09:00:00,buy,SOL,1.5x,EUR,150,EUR,-225.56,EUR,0.56,Completed,"
    "id-16,",
    "Europe/Amsterdam,2025-03-12,09:00:00,buy,SOL,1,EUR,150,EUR,-150.38,EUR,0.38,Pending,id-17,",
]


@pytest.fixture
def history(tmp_path: Path) -> Path:
    folder = tmp_path / "bitvavo"
    write(folder / "bitvavo-2024.csv", OLDER_2024)
    write(folder / "bitvavo-2025.csv", CURRENT_2025, bom=True)
    return folder


def _config(folder: Path):  # type: ignore[no-untyped-def]
    return bv.config.BitvavoConfig(import_folder=str(folder))


def _plugin(config: object | None):  # type: ignore[no-untyped-def]
    plugin = bv.plugin.BitvavoPlugin(manifest_of("bitvavo-broker"))
    plugin.config = config
    return plugin


def test_portfolio_totals(history: Path) -> None:
    service = bv.services.PortfolioService(config=_config(history))
    total = service.get_portfolio_total()
    # BTC 0.01 - 0.004 - 0.001 = 0.005 at the latest quote 90000 = 450.00;
    # ETH 0.5 + 0.2 + 0.001 (staking, buy, fixed staking) = 0.701 at 2500 = 1752.50.
    assert total.total_value == pytest.approx(450.00 + 1752.50)
    # Cash: deposits 1000 + 500, withdrawal -100, rebate 0.50, affiliate 2.00, the BTC buy
    # -601.50, the ETH buy -500.75 and the BTC sale +359.10 (trade fees included).
    assert total.total_cash == pytest.approx(
        1000 + 500 - 100 + 0.50 + 2.00 - 601.50 - 500.75 + 359.10
    )
    assert total.total_deposits == pytest.approx(1400.00)
    entries = {e.symbol: e for e in service.get_portfolio()}
    assert set(entries) == {"BTC", "ETH"}  # the SOL buys were pending or unreadable
    assert entries["ETH"].shares == pytest.approx(0.701)
    assert (entries["BTC"].price, entries["BTC"].value) == (90000.0, 450.0)
    assert [(r.file, r.line, r.rule, r.reason) for r in service.import_report] == [
        (
            "bitvavo-2024.csv",
            line_of(OLDER_2024, "noon"),
            "bad_date",
            "not a time (expected HH:MM or HH:MM:SS): 'noon'",
        ),
        ("bitvavo-2025.csv", line_of(CURRENT_2025, "1.5x"), "bad_number", "not a number: '1.5x'"),
    ]
    assert "1.5x" in service.import_report.reported_rows()[1].text


def test_every_row_has_one_outcome(history: Path) -> None:
    service = bv.services.PortfolioService(config=_config(history))
    service.get_portfolio()
    report = service.import_report.as_dict()
    assert report["complete"] is True
    assert report["files"] == {
        "bitvavo-2024.csv": {
            "rows": len(OLDER_2024),
            "understood": 4,
            "skipped": {"blank": 1, "header": 1, "pending_order": 1},
            "reported": 1,
        },
        "bitvavo-2025.csv": {
            "rows": len(CURRENT_2025),
            "understood": 7,
            "skipped": {"duplicate": 1, "header": 1, "pending_order": 1},
            "reported": 1,
        },
    }
    duplicate = service.import_report.outcome_of(
        "bitvavo-2025.csv", line_of(CURRENT_2025, "2024-03-01")
    )
    assert duplicate is not None
    assert (
        duplicate.reason
        == f"already counted from bitvavo-2024.csv line {line_of(OLDER_2024, 'id-01')}"
    )


def test_transactions(history: Path) -> None:
    transactions = bv.services.TransactionService(config=_config(history)).get_transactions()
    assert [(t.date.isoformat(), t.kind, t.symbol) for t in transactions] == [
        ("2025-02-01", "sell", "BTC"),
        ("2025-01-10", "buy", "ETH"),
        ("2024-03-02", "buy", "BTC"),
    ]
    assert [t.total for t in transactions] == [359.10, -500.75, -601.50]
    assert sum(t.fees for t in transactions) == pytest.approx(-(0.90 + 0.75 + 1.50))
    older_buy = transactions[-1]
    assert (older_buy.price, older_buy.currency, older_buy.quantity) == (60000.0, "EUR", 0.01)


def test_deposits(history: Path) -> None:
    deposits = bv.services.DepositService(config=_config(history)).get_cash_deposits()
    assert [(d.date.isoformat(), d.amount) for d in deposits] == [
        ("2025-03-10", -100.0),
        ("2025-01-05", 500.0),
        ("2024-03-01", 1000.0),  # in both exports, counted once
    ]


def test_fees_and_rebates(history: Path) -> None:
    fees = bv.services.FeeService(config=_config(history)).get_fees()
    by_currency: dict[str, float] = {}
    for fee in fees:
        by_currency[fee.currency] = by_currency.get(fee.currency, 0) + fee.amount
    # EUR: trade fees 1.50 + 0.75 + 0.90, less the 0.50 rebate; the EUR withdrawal's fee is 0.
    assert by_currency == pytest.approx({"EUR": -(1.50 + 0.75 + 0.90) + 0.50, "BTC": -0.00002})
    assert [f.amount for f in fees if f.description == "Fee rebate"] == [0.50]


def test_account_overview(history: Path) -> None:
    overview = bv.services.AccountService(config=_config(history)).get_account_overview()
    assert overview.cash == pytest.approx(659.35)
    assert overview.extra["reported_rows"] == "2"
    assert overview.extra["assets"] == "2"
    assert overview.extra["last_activity"] == "2025-03-10"


def test_health_reports_reported_rows(history: Path) -> None:
    status = _plugin(_config(history)).health_check()
    assert status.status is Health.DEGRADED
    assert status.details["reported"] == 2
    assert status.details["first_reported"][1] == (
        f"bitvavo-2025.csv line {line_of(CURRENT_2025, '1.5x')}: not a number: '1.5x'"
    )
    assert status.details["files"] == {"bitvavo-2024.csv": "older", "bitvavo-2025.csv": "current"}
    assert status.message.startswith("2 row(s) reported: bitvavo-2024.csv line 8: not a time")


def test_sample_totals() -> None:
    service = bv.services.PortfolioService()
    total = service.get_portfolio_total()
    # BTC 0.010713949999999999 - 0.0025 (sold) - 0.0025 (withdrawn) = 0.00571395 at the
    # latest quote 80250 = 458.54; ETH 0.12 + 0.00021345 + 0.04121 + 0.00019877 (buys and
    # staking) = 0.16162222 at 2420.5 = 391.21; SOL 1.5 at 145.2 = 217.80 (the second SOL
    # buy is Pending).
    assert total.total_value == pytest.approx(458.54 + 391.21 + 217.80)
    # 1500 deposited - 50 withdrawn + rebates 0.50 + 0.25; trades -1002.44 - 305.56 + 200.13
    # - 100.00 - 218.34.
    assert total.total_cash == pytest.approx(
        1500 - 50 + 0.50 + 0.25 - 1002.44 - 305.56 + 200.13 - 100.00 - 218.34
    )
    assert total.total_deposits == pytest.approx(1450.00)
    assert _plugin(None).health_check().status is Health.HEALTHY


def test_unreadable_history(tmp_path: Path) -> None:
    assert _plugin(_config(tmp_path)).health_check().status is Health.UNHEALTHY
    write(tmp_path / "notes.csv", ["Date,Note", "2025-01-01,hello"])
    status = _plugin(_config(tmp_path)).health_check()
    assert status.status is Health.UNHEALTHY
    assert "notes.csv line 1: not a Bitvavo transaction history" in status.message


# --- the awkward real cases -------------------------------------------------------------------

HEADER = CURRENT_2025[0]
BASE = [
    HEADER,
    "Europe/Amsterdam,2025-01-08,10:02:11,deposit,EUR,1500.00,,,,,,,Completed,t-01,NL00BANK01",
    "Europe/Amsterdam,2025-01-08,10:15:42.118,buy,BTC,0.010713949999999999,EUR,93330,EUR,"
    "-1002.44,EUR,2.5,Completed,t-02,",
    "Europe/Amsterdam,2025-01-09,11:00:00,buy,BTC,0.000000000000000001,EUR,93330,EUR,-0.01,"
    ",,Completed,t-03,",
    "Europe/Amsterdam,2025-01-08,10:15:43,rebate,EUR,0.5,,,,,,,Completed,t-04,",
    "Europe/Amsterdam,2025-02-01,02:00:00,staking,BTC,0.00001,,,,,,,Distributed,t-05,",
    "Europe/Amsterdam,2025-02-02,09:00:00,campaign_new_user_incentive,EUR,10,,,,,,,Completed,t-06,",
    "Europe/Amsterdam,2025-02-03,09:00:00,affiliate,EUR,1.25,,,,,,,Completed,t-07,",
    "Europe/Amsterdam,2025-02-04,09:00:00,buy,ETH,1,EUR,3000,EUR,-3007.50,EUR,7.50,Pending,t-08,",
]
# Not a Type this plugin knows, with money in it: SOL arrives, EUR leaves, a fee is charged.
UNKNOWN = (
    "Europe/Amsterdam,2025-03-01,12:00:00,swap,SOL,3,EUR,150,EUR,-451.10,EUR,1.10,Completed,t-09,"
)
# Unknown too, but nothing moved.
NOTHING = "Europe/Amsterdam,2025-03-02,12:00:00,notice,EUR,0,,,,,,,Completed,t-10,"


def _everything(folder: Path) -> tuple:  # type: ignore[type-arg]
    config = _config(folder)
    return (
        bv.services.PortfolioService(config=config).get_portfolio(),
        bv.services.PortfolioService(config=config).get_portfolio_total(),
        bv.services.TransactionService(config=config).get_transactions(),
        bv.services.FeeService(config=config).get_fees(),
        bv.services.DepositService(config=config).get_cash_deposits(),
        bv.services.AccountService(config=config).get_account_overview().cash,
    )


def test_an_unknown_type_is_reported_and_not_applied(tmp_path: Path) -> None:
    write(tmp_path / "without" / "history.csv", BASE)
    lines = [*BASE, UNKNOWN, NOTHING]
    write(tmp_path / "with" / "history.csv", lines)
    # Holdings, cash, fees, trades and deposits are what they are without the row.
    assert _everything(tmp_path / "with") == _everything(tmp_path / "without")
    service = bv.services.FeeService(config=_config(tmp_path / "with"))
    service.get_fees()
    (reported,) = service.import_report
    assert (reported.line, reported.outcome, reported.rule) == (
        line_of(lines, "swap"),
        Outcome.REPORTED,
        "unknown_type",
    )
    assert reported.reason.startswith("unknown Type 'swap' (3 SOL): not applied")
    assert "swap,SOL,3" in reported.text
    nothing = service.import_report.outcome_of("history.csv", line_of(lines, "notice"))
    assert nothing is not None and (nothing.outcome, nothing.rule) == (Outcome.SKIPPED, "no_money")
    status = _plugin(_config(tmp_path / "with")).health_check()
    assert status.status is Health.DEGRADED
    assert status.details["reported"] == 1
    assert status.message.startswith(
        f"1 row(s) reported: history.csv line {line_of(lines, 'swap')}: unknown Type 'swap'"
    )
    assert _plugin(_config(tmp_path / "without")).health_check().status is Health.HEALTHY


def test_long_floats_stay_exact_and_rewards_count(tmp_path: Path) -> None:
    write(tmp_path / "history.csv", BASE)
    history = bv.exports.read_history(tmp_path)
    positions, cash = bv.services.holdings(history.rows)
    (btc,) = positions
    # 0.010713949999999999 + 0.000000000000000001 (buys) + 0.00001 (staking), to the last
    # digit (a float reads the first amount as 0.01071395 and the sum as ...950000000002).
    assert btc.amount == Decimal("0.010723950000000000")
    # Deposit 1500, the buys -1002.44 and -0.01, rebate 0.5, campaign 10, affiliate 1.25; the
    # pending ETH buy is not applied.
    assert cash == Decimal("509.30")
    counts = history.report.counts()
    assert counts == {"understood": 7, "skipped": 2, "reported": 0}
    pending = history.report.outcome_of("history.csv", line_of(BASE, "Pending"))
    assert pending is not None and pending.rule == "pending_order"
    fees = bv.services.FeeService(config=_config(tmp_path)).get_fees()
    assert [(f.description, f.amount) for f in fees] == [
        ("Fee rebate", 0.5),
        ("Buy BTC fee", -2.5),
    ]


def test_the_older_layout_is_in_eur(tmp_path: Path) -> None:
    lines = [
        OLDER_2024[0],
        "Europe/Amsterdam,2023-01-02,10:00:00,deposit,EUR,200,,,,,Completed,o-1,NL00BANK01",
        "Europe/Amsterdam,2023-01-03,10:00:00,buy,ADA,100.5,0.25,-25.19,EUR,0.06,Completed,o-2,",
        "Europe/Amsterdam,2023-01-04,10:00:00,fixed_staking,ADA,0.5,,,,,Distributed,o-3,",
        "Europe/Amsterdam,2023-01-05,10:00:00,mystery,ADA,1,,,,,Completed,o-4,",
    ]
    write(tmp_path / "old.csv", lines)
    history = bv.exports.read_history(tmp_path)
    assert history.layouts == {"old.csv": "older"}
    (ada,) = bv.services.holdings(history.rows)[0]
    assert (ada.amount, ada.price) == (Decimal("101.0"), Decimal("0.25"))
    buy = next(row for row in history.rows if row.kind == "buy")
    assert (buy.quote_currency, buy.paid_currency, buy.fee_currency) == ("EUR", "EUR", "EUR")
    assert [(r.line, r.rule) for r in history.report] == [(5, "unknown_type")]
    assert history.report.check("old.csv") is None


def test_reports_are_what_the_host_shows(history: Path) -> None:
    """The shape the console, the API and the CLI read."""
    service = bv.services.AccountService(config=_config(history))
    assert isinstance(service.import_report, ImportReport)
    service.get_account_overview()
    shown = service.import_report.as_dict()
    assert set(shown) == {"files", "reported", "truncated", "complete"}
    assert shown["reported"][0] == {
        "file": "bitvavo-2024.csv",
        "line": line_of(OLDER_2024, "noon"),
        "outcome": "reported",
        "rule": "bad_date",
        "reason": "not a time (expected HH:MM or HH:MM:SS): 'noon'",
        "text": OLDER_2024[line_of(OLDER_2024, "noon") - 1],
    }
    assert shown["truncated"] == 0
