"""What DeGiro's account statement descriptions mean, in NL, EN, DE, FR, ES, PT and IT, and
the trades they write out (``Koop 1 @ 33,9 USD``): quantity, price, currency and ISIN.

The descriptions are the ones DeGiro writes (as several independent importers show them);
products and numbers are made up."""

from __future__ import annotations

from decimal import Decimal

import pytest

from stonks_plugins.sdk import RowError

from . import load_plugin

dg = load_plugin("degiro-broker", "degiro")

DESCRIPTIONS = [
    # Trades, in every language.
    ("nl", "Koop 12 @ 24,15 EUR", "trade"),
    ("nl", "Verkoop 10 VOORBEELD WERELD ETF@101,4 EUR (IE0000000051)", "trade"),
    ("en", "Buy 5 Foo Inc@21.31 USD (US0000000007)", "trade"),
    ("en", "Sell 4 AVIVA@496 GBX", "trade"),
    ("de", "Kauf 8 Mustermann & Söhne AG@52,3 EUR (DE0000000004)", "trade"),
    ("de", "Verkauf 2 Beispiel AG@10 EUR", "trade"),
    ("fr", "Achat 6 QT GROUP OYJ@79,96 EUR (FI0000000001)", "trade"),
    ("fr", "Vente 21 Exemple Monde UCITS ETF USD (Acc)@115 EUR (IE0000000041)", "trade"),
    ("es", "Compra 6 Ejemplo Mundo ETF@100 USD (IE0000000011)", "trade"),
    ("es", "Venta 2 Ejemplo SA@1 EUR", "trade"),
    ("pt", "Compra 6 X@49,785 EUR (IE00B3RBWM25)", "trade"),
    ("pt", "Venda 20 Exemplo Energia SA@4,5 EUR (PT0000000021)", "trade"),
    ("it", "Acquisto 50 Esempio Banca SpA@5,5 EUR (IT0000000032)", "trade"),
    ("it", "Vendita 3 Esempio@13 EUR", "trade"),
    # Shares without cash: a stock dividend, product and ISIN changes.
    ("en", "STOCK DIVIDEND: Koop 999 @ 0 EUR", "stock_dividend"),
    ("nl", "PRODUCTWIJZIGING : Koop 10 @ 0 EUR", "corporate_action"),
    ("nl", "WIJZIGING ISIN: Verkoop 10 @ 0 EUR", "corporate_action"),
    ("nl", "AANDELENSPLITSING: Koop 30 @ 1,23 USD", "corporate_action"),
    ("", "WHATEVER THIS IS: Koop 10 @ 0 EUR", "other"),
    # Transaction fees.
    ("nl", "DEGIRO Transactiekosten en/of kosten van derden", "fee"),
    ("en", "DEGIRO Transaction and/or third party fees", "fee"),
    ("en", "DEGIRO Transaction Fee", "fee"),
    ("de", "Transaktionsgebühr", "fee"),
    ("fr", "Frais DEGIRO de courtage et/ou de parties tierces", "fee"),
    ("es", "Costes de transacción y/o externos de DEGIRO", "fee"),
    ("pt", "Comissões de transação DEGIRO e/ou taxas de terceiros", "fee"),
    ("it", "Commissioni di transazione DEGIRO e/o di terzi", "fee"),
    # Exchange connection fees: a year and an exchange.
    ("nl", "DEGIRO Aansluitingskosten 2024 (Xetra - XET)", "connection_fee"),
    ("en", "DEGIRO Exchange Connection Fee 2024 (Euronext Amsterdam - EAM)", "connection_fee"),
    ("de", "Einrichtung von Handelsmodalitäten 2019 (NASDAQ - NDQ)", "connection_fee"),
    ("fr", "Frais de connexion aux places boursières 2025", "connection_fee"),
    ("es", "Comisión de conectividad con el mercado 2025 (Nasdaq - NDQ)", "connection_fee"),
    ("pt", "Custo de Conectividade DEGIRO 2023 (Tradegate AG - TDG)", "connection_fee"),
    ("it", "DEGIRO Costi di connessione 2021 (Xetra - XET)", "connection_fee"),
    ("", "DEGIRO Whatever-the-language 2026 (Tradegate AG - TDG)", "connection_fee"),
    # Corporate action costs, transaction taxes, other charges.
    ("nl", "DEGIRO Corporate Action Kosten", "corporate_action_fee"),
    ("nl", "Transactiebelasting", "transaction_tax"),
    ("en", "London/Dublin Stamp Duty", "transaction_tax"),
    ("es", "Spanish Transaction Tax", "transaction_tax"),
    ("pt", "Imposto de selo Londres/Dublin", "transaction_tax"),
    ("it", "Imposta sulle transazioni finanziarie", "transaction_tax"),
    ("en", "ADR/GDR Pass-Through Fee", "other_fee"),
    ("de", "ADR/GDR Weitergabegebühr", "other_fee"),
    ("de", "SOFORT Zahlungsgebühr", "other_fee"),
    # Dividends, their taxes and refunds.
    ("nl", "Dividend", "dividend"),
    ("nl", "Kapitaalsuitkering", "dividend"),
    ("en", "Fund Distribution", "dividend"),
    ("de", "Dividende", "dividend"),
    ("fr", "Dividende", "dividend"),
    ("es", "Dividendo", "dividend"),
    ("es", "Rendimiento de capital", "dividend"),
    ("nl", "Dividendbelasting", "dividend_tax"),
    ("nl", "Teruggave NL Dividend Tax", "dividend_tax"),
    ("en", "Dividend Tax", "dividend_tax"),
    ("de", "Dividendensteuer", "dividend_tax"),
    ("fr", "Impôts sur dividende", "dividend_tax"),
    ("es", "Retención del dividendo", "dividend_tax"),
    ("pt", "Imposto sobre dividendo", "dividend_tax"),
    ("it", "Ritenuta sul dividendo", "dividend_tax"),
    # Interest, charged or received, and courtesy credits.
    ("nl", "Rente", "interest"),
    ("en", "Flatex Interest", "interest"),
    ("en", "Flatex Interest Income", "interest"),
    ("de", "Zinsen", "interest"),
    ("fr", "Intérêts", "interest"),
    ("es", "Intereses", "interest"),
    ("pt", "Juros", "interest"),
    ("it", "Interessi", "interest"),
    ("en", "DEGIRO courtesy", "courtesy"),
    ("nl", "DEGIRO Verrekening Promotie", "courtesy"),
    ("de", "Gutschrift für die Neukundenaktion", "courtesy"),
    # Deposits and withdrawals: one kind, the sign says which.
    ("nl", "iDEAL storting", "deposit"),
    ("nl", "flatex terugstorting", "deposit"),
    ("en", "iDEAL Deposit", "deposit"),
    ("en", "Processed Flatex Withdrawal", "deposit"),
    ("de", "SOFORT Einzahlung", "deposit"),
    ("de", "Auszahlung", "deposit"),
    ("fr", "Dépôt flatex", "deposit"),
    ("fr", "Retrait de fonds", "deposit"),
    ("es", "Ingreso", "deposit"),
    ("pt", "Depósito", "deposit"),
    ("pt", "Levantamento", "deposit"),
    ("it", "Deposito flatex", "deposit"),
    ("it", "Prelievo flatex", "deposit"),
    # Currency conversion legs.
    ("nl", "Valuta Creditering", "fx"),
    ("nl", "Valuta Debitering", "fx"),
    ("en", "FX Credit", "fx"),
    ("en", "FX Debit", "fx"),
    ("de", "Währungswechsel (Ausbuchung)", "fx"),
    ("fr", "Opération de change - Débit", "fx"),
    ("es", "Ingreso Cambio de Divisa", "fx"),
    ("es", "Retirada Cambio de Divisa", "fx"),
    ("pt", "Crédito de divisa", "fx"),
    ("pt", "Levantamento de divisa", "fx"),
    ("it", "Credito FX", "fx"),
    ("it", "Prelievo FX", "fx"),
    # Money that stays in the account.
    ("nl", "Reservation iDEAL / Sofort Deposit", "reservation"),
    ("de", "Reservierung SOFORT Einzahlung", "reservation"),
    ("en", "Degiro Cash Sweep Transfer", "cash_sweep"),
    ("nl", "Overboeking naar uw geldrekening bij flatexDEGIRO Bank: 100,00 EUR", "cash_sweep"),
    ("es", "Transferir a su Cuenta de Efectivo en flatexDEGIRO Bank: 51,18 EUR", "cash_sweep"),
    ("fr", "Virement vers votre compte espèces chez flatexDEGIRO Bank: 25,00 EUR", "cash_sweep"),
    ("pt", "Levantamentos da sua Conta Caixa na flatexDEGIRO Bank", "cash_sweep"),
    ("en", "Money Market fund conversion: Sell 0.5 at 9,961.4715 EUR", "money_market"),
    ("nl", "Conversie geldmarktfonds: Koop 0,1 @ 9.961,4715 EUR", "money_market"),
    ("de", "Geldmarktfonds Umwandlung: Kauf 0,5 zu je 9.961,4715 EUR", "money_market"),
    ("pt", "Conversão do Fundo do Mercado Monetário", "money_market"),
    # Nothing DeGiro writes.
    ("", "Something DeGiro never wrote", "other"),
]


@pytest.mark.parametrize(
    ("language", "description", "kind"),
    DESCRIPTIONS,
    ids=[f"{lang or 'any'}:{text}" for lang, text, _ in DESCRIPTIONS],
)
def test_what_a_description_means(language: str, description: str, kind: str) -> None:
    assert dg.wording.kind_of(description) == kind


@pytest.mark.parametrize(
    ("description", "kind"),
    [
        ("COMISSOES DE TRANSACAO DEGIRO E/OU TAXAS DE TERCEIROS", "fee"),
        ("impots sur dividende", "dividend_tax"),
        ("  Frais   DEGIRO  de courtage et/ou de parties tierces ", "fee"),
        ("DIVIDENDBELASTING", "dividend_tax"),
    ],
)
def test_case_accents_and_spaces_do_not_matter(description: str, kind: str) -> None:
    assert dg.wording.kind_of(description) == kind


def test_every_language_has_its_words_for_the_main_kinds() -> None:
    """The table module names each kind's phrases per language: the seven languages the
    issue names are there for trades, transaction fees, dividends and deposits."""
    by_kind = {w.kind.value: w for w in dg.wording.TABLE}
    for kind in ("fee", "connection_fee", "dividend", "dividend_tax", "interest", "deposit"):
        assert {"nl", "en", "de", "fr", "es", "pt", "it"} <= set(by_kind[kind].phrases), kind
    assert {"nl", "en", "de", "fr", "es", "pt", "it"} <= set(dg.wording.VERBS)


TRADES = [
    # description, the row's amount, side, quantity, price, currency, ISIN
    ("Koop 1 @ 33,9 USD", "-33.90", "buy", "1", "33.9", "USD", ""),
    ("Compra 6 X@49,785 EUR (IE00B3RBWM25)", "-298.71", "buy", "6", "49.785", "EUR",
     "IE00B3RBWM25"),
    ("Achat 6 QT GROUP OYJ@79,96 EUR (FI0000000001)", "-479.76", "buy", "6", "79.96", "EUR",
     "FI0000000001"),
    ("Sell 4 AVIVA@496 GBX", "19.84", "sell", "-4", "4.96", "GBP", ""),
    ("Kauf 5 zu je 21,31 EUR", "-106.55", "buy", "5", "21.31", "EUR", ""),
    ("Verkoop 10 Voorbeeld@101,4 EUR (IE0000000051)", "1014.00", "sell", "-10", "101.4", "EUR",
     "IE0000000051"),
    ("Venta 2 Ejemplo SA@1 USD", "2.00", "sell", "-2", "1", "USD", ""),
    ("Venda 20 Exemplo@4,5 EUR", "90.00", "sell", "-20", "4.5", "EUR", ""),
    ("Vente 1 Exemple Mines Ltd@0,011 AUD (AU0000000042)", "0.01", "sell", "-1", "0.011", "AUD",
     "AU0000000042"),
    ("Acquisto 50 Esempio Banca SpA@5,5 EUR", "-275.00", "buy", "50", "5.5", "EUR", ""),
    ("Vendita 3 Esempio@13 EUR", "39.00", "sell", "-3", "13", "EUR", ""),
    ("STOCK DIVIDEND: Koop 999 @ 0 EUR", "0", "buy", "999", "0", "EUR", ""),
    # Thousands in the description: the price shows the decimal mark...
    ("Koop 1.000 @ 0,5 EUR", "-500.00", "buy", "1000", "0.5", "EUR", ""),
    ("Buy 1,000 3M Company@100.5 USD", "-100500.00", "buy", "1000", "100.5", "USD", ""),
    # ...or the amount settles it.
    ("Koop 1.000 @ 12 EUR", "-12000.00", "buy", "1000", "12", "EUR", ""),
    ("Koop 1.000 @ 12 EUR", "-12.00", "buy", "1", "12", "EUR", ""),
    ("Koop 2 @ 1.234 GBX", "-24.68", "buy", "2", "12.34", "GBP", ""),
]  # fmt: skip


@pytest.mark.parametrize(
    ("description", "amount", "side", "quantity", "price", "currency", "isin"), TRADES
)
def test_a_written_out_trade(
    description: str, amount: str, side: str, quantity: str, price: str, currency: str, isin: str
) -> None:
    trade = dg.tradetext.parse_trade_text(description, Decimal(amount))
    assert (trade.side, trade.quantity, trade.price, trade.currency, trade.isin) == (
        side,
        Decimal(quantity),
        Decimal(price),
        currency,
        isin,
    )


def test_a_description_that_is_no_trade_says_so() -> None:
    with pytest.raises(RowError, match="not a trade DeGiro writes") as caught:
        dg.tradetext.parse_trade_text("Koop some shares please")
    assert caught.value.rule == "bad_trade"
