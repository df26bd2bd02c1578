"""The account statement as users have it: rows that real DeGiro exports hold and that were
once lost without a word, each checked by what the user sees (fees, interest, deposits,
positions, the import report, health). Every test writes its own small export; products and
numbers are made up."""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from pathlib import Path

from stonks_plugins.health import Health
from stonks_plugins.sdk import Money

from . import load_plugin, manifest_of, write

dg = load_plugin("degiro-broker", "degiro")

EN = "Date,Time,Value date,Product,ISIN,Description,FX,Change,,Balance,,Order Id"
NL_TRANSACTIONS = (
    "Datum,Tijd,Product,ISIN,Beurs,Uitvoeringsplaats,Aantal,Koers,,Lokale waarde,,Waarde EUR,"
    "Wisselkoers,AutoFX Kosten,Transactiekosten en/of kosten van derden EUR,Totaal EUR,"
    "Order ID,"
)


def row(
    description: str,
    amount: str | None,
    currency: str = "EUR",
    *,
    day: str = "02-06-2025",
    time: str = "10:00",
    product: str = "",
    isin: str = "",
    fx: str = "",
    order: str = "",
    balance: str = "100,00",
) -> str:
    """One Account.csv line as DeGiro writes it (amounts with a decimal comma, quoted)."""
    cells = [day, time, day, product, isin, description, fx]
    cells += [currency if amount is not None else "", amount or "", currency, balance, order]
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="").writerow(cells)
    return buffer.getvalue()


def statement(tmp_path: Path, *rows: str, header: str = EN) -> Path:
    folder = tmp_path / "export"
    write(folder / "Account.csv", [header, *rows])
    return folder


def config(folder: Path):  # type: ignore[no-untyped-def]
    return dg.config.DegiroConfig(import_folder=str(folder))


def health(folder: Path):  # type: ignore[no-untyped-def]
    plugin = dg.plugin.DegiroPlugin(manifest_of("degiro-broker"))
    plugin.config = config(folder)
    return plugin.health_check()


def fees(folder: Path) -> list[tuple[str, Money]]:
    return [(f.description, f.amount) for f in dg.services.FeeService(config(folder)).get_fees()]


def outcomes(folder: Path) -> list[tuple[int, str, str]]:
    service = dg.services.AccountService(config(folder))
    service.get_account_overview()
    return [(o.line, str(o.outcome), o.rule) for o in service.import_report.outcomes()]


def eur(text: str) -> Money:
    return Money(Decimal(text), "EUR")


# --- fees that were lost ------------------------------------------------------------------------


def test_a_portuguese_transaction_fee_is_counted_in_fees(tmp_path: Path) -> None:
    folder = statement(
        tmp_path,
        row("Comissões de transação DEGIRO e/ou taxas de terceiros", "-3,90", order="o-1"),
        row("Compra 6 Exemplo SA@49,785 EUR (PT0000000063)", "-298,71", order="o-1"),
    )
    assert fees(folder) == [("Comissões de transação DEGIRO e/ou taxas de terceiros", eur("-3.90"))]


def test_a_french_broker_fee_is_counted_in_fees(tmp_path: Path) -> None:
    folder = statement(tmp_path, row("Frais DEGIRO de courtage et/ou de parties tierces", "-3,90"))
    assert fees(folder) == [("Frais DEGIRO de courtage et/ou de parties tierces", eur("-3.90"))]


def test_a_connection_fee_with_its_year_and_exchange_is_counted_in_fees(tmp_path: Path) -> None:
    folder = statement(
        tmp_path, row("Custo de Conectividade DEGIRO 2023 (Tradegate AG - TDG)", "-2,50")
    )
    assert fees(folder) == [
        ("Custo de Conectividade DEGIRO 2023 (Tradegate AG - TDG)", eur("-2.50"))
    ]


def test_corporate_action_costs_are_counted_in_fees(tmp_path: Path) -> None:
    folder = statement(tmp_path, row("DEGIRO Corporate Action Kosten", "-1,00"))
    assert fees(folder) == [("DEGIRO Corporate Action Kosten", eur("-1.00"))]


# --- credits and deposits that were lost ----------------------------------------------------


def test_a_courtesy_credit_counts_as_interest(tmp_path: Path) -> None:
    folder = statement(
        tmp_path,
        row("DEGIRO courtesy", "5,00", day="30-06-2025"),
        row("Flatex Interest", "-0,12", day="01-06-2025"),
    )
    overview = dg.services.AccountService(config(folder)).get_account_overview()
    assert overview.extra["interest_EUR"] == "4.88"
    assert dg.services.DepositService(config(folder)).get_cash_deposits() == []


def test_a_spanish_ingreso_is_a_deposit_and_a_currency_ingreso_is_not(tmp_path: Path) -> None:
    folder = statement(
        tmp_path,
        row("Ingreso Cambio de Divisa", "51,18"),
        row("Retirada Cambio de Divisa", "-59,21", "USD", fx="1,1568"),
        row("Ingreso", "1500,00"),
    )
    deposits = dg.services.DepositService(config(folder)).get_cash_deposits()
    assert [(d.description, d.amount) for d in deposits] == [("Ingreso", eur("1500.00"))]
    assert [rule for _, _, rule in outcomes(folder)] == [
        "header",
        "fx_conversion",
        "fx_conversion",
        "",
    ]


def test_a_deposit_or_withdrawal_trusts_the_sign_not_the_word(tmp_path: Path) -> None:
    folder = statement(
        tmp_path,
        row("Processed Flatex Withdrawal", "-100,00", day="03-06-2025"),
        row("flatex Deposit", "-20,00", day="02-06-2025"),  # a deposit taken back
        row("Withdrawal", "5,00", day="01-06-2025"),  # a withdrawal that came back
    )
    deposits = dg.services.DepositService(config(folder)).get_cash_deposits()
    assert [d.amount for d in deposits] == [eur("-100.00"), eur("-20.00"), eur("5.00")]
    total = dg.services.PortfolioService(config(folder)).get_portfolio_total()
    assert total.total_deposits == eur("-115.00")


# --- rows that cannot be applied are reported, with their line -------------------------------


def test_an_empty_description_with_an_amount_is_reported_with_its_line(tmp_path: Path) -> None:
    folder = statement(
        tmp_path,
        row("iDEAL Deposit", "500,00", day="03-06-2025"),
        row("", "-4,20", day="02-06-2025"),
        row("", None, day="01-06-2025"),  # no words and no amount: a balance line
    )
    service = dg.services.FeeService(config(folder))
    assert service.get_fees() == []  # not guessed to be a fee
    (reported,) = service.import_report.reported_rows()
    assert (reported.file, reported.line, reported.rule) == ("Account.csv", 3, "empty_description")
    assert "-4.20 EUR" in reported.reason
    assert reported.text.startswith("02-06-2025,10:00")
    status = health(folder)
    assert status.status is Health.DEGRADED
    assert "1 row(s) reported: Account.csv line 3: an amount of -4.20 EUR" in status.message
    deposits = dg.services.DepositService(config(folder)).get_cash_deposits()
    assert [d.amount for d in deposits] == [eur("500.00")]


def test_an_unknown_description_with_an_amount_is_reported_not_applied(tmp_path: Path) -> None:
    folder = statement(
        tmp_path,
        row("Something DeGiro never wrote", "7,50"),
        row("Something else DeGiro never wrote", "0,00"),
    )
    service = dg.services.AccountService(config(folder))
    overview = service.get_account_overview()
    assert overview.extra["reported_rows"] == "1"
    assert not any(key.startswith("interest_") for key in overview.extra)
    assert dg.services.DepositService(config(folder)).get_cash_deposits() == []
    assert [(o.line, o.rule) for o in service.import_report.reported_rows()] == [
        (2, "unknown_description")
    ]
    # Without an amount nothing is lost: skipped by a named rule.
    assert service.import_report.outcome_of("Account.csv", 3).rule == "zero_amount"


def test_health_counts_every_reported_row_and_the_report_lists_them_all(tmp_path: Path) -> None:
    unknown = [row(f"Mystery charge {n}", f"-{n},00") for n in range(1, 8)]
    folder = statement(tmp_path, *unknown)
    status = health(folder)
    assert status.status is Health.DEGRADED
    assert status.message.startswith("7 row(s) reported: Account.csv line 2")
    assert "(and 4 more)" in status.message
    assert status.details["reported"] == 7
    service = dg.services.FeeService(config(folder))
    service.get_fees()
    shown = service.import_report.as_dict()
    assert [r["line"] for r in shown["reported"]] == [2, 3, 4, 5, 6, 7, 8]
    assert shown["truncated"] == 0


def test_a_trade_whose_amount_contradicts_its_words_is_reported(tmp_path: Path) -> None:
    folder = statement(tmp_path, row("Koop 10 @ 5 EUR", "50,00", isin="NL0000000071"))
    service = dg.services.TransactionService(config(folder))
    assert service.get_transactions() == []
    assert [o.rule for o in service.import_report.reported_rows()] == ["sign_mismatch"]


# --- shares without cash ------------------------------------------------------------------------


def test_a_stock_dividend_is_shares_not_cash(tmp_path: Path) -> None:
    folder = statement(
        tmp_path,
        row(
            "STOCK DIVIDEND: Koop 999 @ 0 EUR",
            "0,00",
            product="VOORBEELD BANK NV",
            isin="NL0000000061",
            day="20-06-2025",
        ),
        row(
            "Koop 1 @ 2,50 EUR",
            "-2,50",
            product="VOORBEELD BANK NV",
            isin="NL0000000061",
            day="01-06-2025",
        ),
    )
    assert dg.services.DividendService(config(folder)).get_dividends() == []
    (position,) = dg.services.PortfolioService(config(folder)).get_portfolio()
    assert (position.isin, position.shares, position.price) == (
        "NL0000000061",
        Decimal(1000),
        eur("2.50"),
    )
    transactions = dg.services.TransactionService(config(folder)).get_transactions()
    assert [(t.kind, t.quantity, t.total) for t in transactions] == [
        ("buy", Decimal(999), eur("0.00")),
        ("buy", Decimal(1), eur("-2.50")),
    ]


def test_a_product_change_moves_the_shares_to_the_new_isin(tmp_path: Path) -> None:
    folder = statement(
        tmp_path,
        row("WIJZIGING ISIN: Verkoop 12 @ 0 EUR", "0,00", product="OUD FONDS", isin="NL0000000072",
            day="14-04-2025"),
        row("PRODUCTWIJZIGING : Koop 12 @ 0 EUR", "0,00", product="NIEUW FONDS",
            isin="NL0000000073", day="14-04-2025"),
        row("Koop 12 @ 10 EUR", "-120,00", product="OUD FONDS", isin="NL0000000072",
            day="01-02-2025"),
    )  # fmt: skip
    positions = dg.services.PortfolioService(config(folder)).get_portfolio()
    assert [(p.isin, p.shares) for p in positions] == [("NL0000000073", Decimal(12))]


# --- the account statement alone ---------------------------------------------------------------


def test_the_account_statement_alone_gives_trades_and_positions(tmp_path: Path) -> None:
    """No Transactions.csv and no Portfolio.csv: the trades come from the descriptions in
    four languages, a London share priced in pence is held in pounds, and its value in the
    account currency uses the statement's own exchange rate."""
    folder = statement(
        tmp_path,
        row("DEGIRO Transaction and/or third party fees", "-4,90", product="AVIVA PLC",
            isin="GB0000000062", day="12-06-2025", order="gb-2"),
        row("FX Credit", "23,09", day="12-06-2025", order="gb-2"),
        row("FX Debit", "-19,84", "GBP", fx="0,8590", day="12-06-2025", order="gb-2"),
        row("Sell 4 AVIVA@496 GBX", "19,84", "GBP", product="AVIVA PLC", isin="GB0000000062",
            day="12-06-2025", order="gb-2"),
        row("Compra 6 Exemplo SA@49,785 EUR (PT0000000063)", "-298,71", product="EXEMPLO SA",
            isin="PT0000000063", day="05-06-2025", order="pt-1"),
        row("Achat 6 Exemple SA@10 EUR (FR0000000064)", "-60,00", product="EXEMPLE SA",
            isin="FR0000000064", day="04-06-2025", order="fr-1"),
        row("DEGIRO Transaction and/or third party fees", "-4,90", product="AVIVA PLC",
            isin="GB0000000062", day="02-06-2025", order="gb-1"),
        row("FX Debit", "-57,77", day="02-06-2025", order="gb-1"),
        row("FX Credit", "49,68", "GBP", fx="0,8600", day="02-06-2025", order="gb-1"),
        row("Buy 10 AVIVA@496,8 GBX", "-49,68", "GBP", product="AVIVA PLC",
            isin="GB0000000062", day="02-06-2025", order="gb-1"),
        row("Koop 1 @ 33,9 USD", "-33,90", "USD", product="SAMPLE TECH", isin="US0000000065",
            day="01-06-2025"),
        row("Valuta Debitering", "-10,00", "USD", fx="1,1300", day="01-06-2025", time="11:00"),
        row("Valuta Creditering", "8,85", day="01-06-2025", time="11:00"),
    )  # fmt: skip
    portfolio = dg.services.PortfolioService(config(folder))
    positions = {p.isin: (p.shares, p.price, p.value) for p in portfolio.get_portfolio()}
    assert positions == {
        "GB0000000062": (Decimal(6), Money(Decimal("4.96"), "GBP"), Money(Decimal("29.76"), "GBP")),
        "PT0000000063": (Decimal(6), eur("49.785"), eur("298.71")),
        "FR0000000064": (Decimal(6), eur("10"), eur("60")),
        "US0000000065": (Decimal(1), Money(Decimal("33.9"), "USD"), Money(Decimal("33.9"), "USD")),
    }
    # In EUR: 29.76 GBP at the sale's rate 0.8590 GBP/EUR is 34.64; 33.90 USD at the
    # statement's USD rate 1.1300 is 30.00.
    total = portfolio.get_portfolio_total().total_value
    assert total == eur("34.64") + eur("298.71") + eur("60") + eur("30.00")
    trades = dg.services.TransactionService(config(folder)).get_transactions()
    sale = trades[0]
    assert (sale.kind, sale.quantity, sale.price, sale.total, sale.fees) == (
        "sell",
        Decimal(4),
        Money(Decimal("4.96"), "GBP"),
        eur("18.19"),  # 23.09 received for the pounds, less the 4.90 fee
        eur("-4.90"),
    )
    assert len(trades) == 5
    status = health(folder)
    assert status.status is Health.HEALTHY, status.message
    assert "Transactions.csv" not in status.message
    assert status.details["notes"] == [
        "no Transactions.csv: 5 trade(s) read from the descriptions of Account.csv"
    ]


def test_a_statement_trade_missing_from_transactions_is_added(tmp_path: Path) -> None:
    folder = statement(
        tmp_path,
        row("Koop 5 @ 20 EUR", "-100,00", product="LATER NV", isin="NL0000000082",
            day="10-06-2025", order="o-2"),
        row("DEGIRO Transactiekosten en/of kosten van derden", "-1,00", product="EERDER NV",
            isin="NL0000000081", day="01-06-2025", order="o-1"),
        row("Koop 10 @ 8 EUR", "-80,00", product="EERDER NV", isin="NL0000000081",
            day="01-06-2025", order="o-1"),
    )  # fmt: skip
    write(
        folder / "Transactions.csv",
        [
            NL_TRANSACTIONS,
            '01-06-2025,10:00,EERDER NV,NL0000000081,EAM,XAMS,10,"8,0000",EUR,"-80,00",EUR,'
            '"-80,00",,"0,00","-1,00","-81,00",,o-1',
        ],
    )
    service = dg.services.TransactionService(config(folder))
    trades = service.get_transactions()
    assert [(t.symbol, t.quantity, t.total) for t in trades] == [
        ("NL0000000082", Decimal(5), eur("-100.00")),
        ("NL0000000081", Decimal(10), eur("-81.00")),
    ]
    rules = {o.line: o.rule for o in service.import_report.outcomes("Account.csv")}
    assert (rules[2], rules[4]) == ("", "in_transactions")


# --- money that stays in the account: skipped by a named rule -----------------------------


def test_money_that_stays_in_the_account_is_skipped_by_its_rule(tmp_path: Path) -> None:
    folder = statement(
        tmp_path,
        row("Degiro Cash Sweep Transfer", "-100,00", day="28-06-2025"),
        row("Overboeking naar uw geldrekening bij flatexDEGIRO Bank: 100,00 EUR", None,
            day="28-06-2025"),
        row("Conversie geldmarktfonds: Koop 0,1 @ 9.961,4715 EUR", None, day="15-06-2025"),
        row("iDEAL Deposit", "300,00", day="06-01-2025", time="09:40"),
        row("Reservation iDEAL / Sofort Deposit", "-300,00", day="06-01-2025", time="09:40"),
        row("Reservation iDEAL / Sofort Deposit", "300,00", day="06-01-2025", time="09:12"),
        row("Flatex Interest Income", "0,00", day="01-01-2025"),
    )  # fmt: skip
    total = dg.services.PortfolioService(config(folder)).get_portfolio_total()
    assert total.total_deposits == eur("300.00")
    assert outcomes(folder) == [
        (1, "skipped", "header"),
        (2, "skipped", "cash_sweep"),
        (3, "skipped", "cash_sweep"),
        (4, "skipped", "money_market"),
        (5, "understood", ""),
        (6, "skipped", "reservation"),
        (7, "skipped", "reservation"),
        (8, "skipped", "zero_amount"),
    ]


def test_the_currency_legs_of_a_trade_are_skipped_as_such(tmp_path: Path) -> None:
    """Legs sharing the trade's Order Id, or booked at its very moment without one, belong
    to the trade; a leg in words DeGiro is not known for is told by its FX rate."""
    folder = statement(
        tmp_path,
        row("DEGIRO poplatky za transakci", "-2,00", product="X CORP", order="o-1"),
        row("Konverze debet", "-691,85", order="o-1"),
        row("Konverze kredit", "749,00", "USD", fx="1,0853", order="o-1"),
        row("Koop 4 X Corp@187,25 USD", "-749,00", "USD", product="X CORP", isin="US0000000091",
            order="o-1"),
        row("Valuta Debitering", "-10,00", day="01-06-2025", time="09:00"),
        row("Valuta Creditering", "11,30", "USD", fx="1,1300", day="01-06-2025", time="09:00"),
        row("Koop 1 @ 11,30 USD", "-11,30", "USD", product="Y CORP", isin="US0000000092",
            day="01-06-2025", time="09:00"),
    )  # fmt: skip
    rules = [(outcome, rule) for _, outcome, rule in outcomes(folder)][1:]
    assert rules == [
        ("understood", ""),  # a DEGIRO charge on the trade's order: its fee
        ("skipped", "fx_leg"),
        ("skipped", "fx_leg"),
        ("understood", ""),
        ("skipped", "fx_leg"),
        ("skipped", "fx_leg"),
        ("understood", ""),
    ]
    trades = dg.services.TransactionService(config(folder)).get_transactions()
    assert [(t.symbol, t.total, t.fees) for t in trades] == [
        ("US0000000091", eur("-693.85"), eur("-2.00")),
        ("US0000000092", eur("-10.00"), None),  # the conversion booked at its moment
    ]


def test_a_position_without_an_exchange_rate_is_left_out_of_the_total_and_said_so(
    tmp_path: Path,
) -> None:
    folder = statement(
        tmp_path,
        row("Koop 1 @ 33,9 USD", "-33,90", "USD", product="SAMPLE TECH", isin="US0000000065"),
        row("Koop 2 @ 10 EUR", "-20,00", product="SAMPLE EURO", isin="NL0000000066"),
    )
    portfolio = dg.services.PortfolioService(config(folder))
    assert len(portfolio.get_portfolio()) == 2
    assert portfolio.get_portfolio_total().total_value == eur("20")
    assert (
        "SAMPLE TECH: the files show no USD to EUR exchange rate, so its value is left out of "
        "the portfolio total"
    ) in health(folder).details["notes"]


def test_amounts_booked_in_pence_are_read_in_pounds(tmp_path: Path) -> None:
    folder = statement(
        tmp_path,
        row("Dividend", "250,00", "GBX", product="AVIVA PLC", isin="GB0000000062"),
        row("Buy 10 AVIVA@496,8 GBX", "-4968,00", "GBX", product="AVIVA PLC",
            isin="GB0000000062", day="01-06-2025"),
    )  # fmt: skip
    (dividend,) = dg.services.DividendService(config(folder)).get_dividends()
    assert dividend.amount == Money(Decimal("2.5"), "GBP")
    (trade,) = dg.services.TransactionService(config(folder)).get_transactions()
    assert (trade.price, trade.total) == (
        Money(Decimal("4.968"), "GBP"),
        Money(Decimal("-49.68"), "GBP"),
    )


def test_the_statement_alone_gives_the_trades_transactions_csv_gives(tmp_path: Path) -> None:
    """The shipped samples hold both files: read from the statement alone, every fill has
    the quantity, price and total (fees and the currency conversion included) that
    Transactions.csv has."""
    samples = dg.services.SAMPLE_DATA_FOLDER
    folder = tmp_path / "statement-only"
    folder.mkdir()
    (folder / "Account.csv").write_bytes((samples / "Account.csv").read_bytes())

    def fills(source: Path) -> list[tuple[object, ...]]:
        trades = dg.services.TransactionService(config(source)).get_transactions()
        return [(t.date, t.symbol, t.kind, t.quantity, t.price.amount, t.total) for t in trades]

    assert fills(folder) == fills(samples)


def test_a_trade_priced_abroad_but_booked_in_euro_is_valued_at_its_own_rate(
    tmp_path: Path,
) -> None:
    folder = statement(
        tmp_path,
        row("Achat 100 Exemple Mines Ltd@0,50 AUD (AU0000000042)", "-31,00",
            product="EXEMPLE MINES LTD", isin="AU0000000042"),
    )  # fmt: skip
    (position,) = dg.services.PortfolioService(config(folder)).get_portfolio()
    assert position.value == Money(Decimal("50.00"), "AUD")
    total = dg.services.PortfolioService(config(folder)).get_portfolio_total()
    assert total.total_value == eur("31.00")
