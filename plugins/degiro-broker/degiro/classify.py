"""What each Account.csv row is, from its Description (in any of DeGiro's languages).

The order of the checks matters: ``Reservation iDEAL / Sofort Deposit`` is not a deposit,
``Dividendbelasting`` is a tax and not a dividend, ``Money Market fund conversion: Buy ...``
is not a trade, ``flatex terugstorting`` is a withdrawal although it contains ``storting``
(deposits and withdrawals are one kind: the sign of the amount says which way money went).
"""

from __future__ import annotations

import re
from enum import StrEnum

from .exports import AccountRow


class Kind(StrEnum):
    TRADE = "trade"
    CORPORATE_ACTION = "corporate_action"
    FEE = "fee"  # transaction and/or third-party fees, ADR/GDR fees
    CONNECTION_FEE = "connection_fee"  # yearly exchange connection fee
    TRANSACTION_TAX = "transaction_tax"  # e.g. Transactiebelasting, stamp duty
    AUTOFX_FEE = "autofx_fee"
    DIVIDEND = "dividend"
    DIVIDEND_TAX = "dividend_tax"  # withheld (negative) or refunded (positive)
    DEPOSIT = "deposit"  # deposits and withdrawals; the sign says which
    FX = "fx"  # one leg of a currency conversion
    INTEREST = "interest"
    CASH_SWEEP = "cash_sweep"
    MONEY_MARKET = "money_market"
    RESERVATION = "reservation"  # an iDEAL/Sofort reservation pair: not money moved
    BALANCE_ONLY = "balance_only"  # no amount: a summary or conversion line
    OTHER = "other"


FEES = frozenset({Kind.FEE, Kind.CONNECTION_FEE, Kind.TRANSACTION_TAX, Kind.AUTOFX_FEE})


def _words(*phrases: str) -> tuple[str, ...]:
    return tuple(p.lower() for p in phrases)


_RESERVATION = _words(
    "reservation ideal", "reservering ideal", "reservation sofort", "reservierung"
)
_CORPORATE = re.compile(
    r"^(productwijziging|wijziging isin|product change|isin change|produktänderung|"
    r"isin-änderung|changement de produit|changement d'isin|cambio de producto|cambio isin)\b",
    re.IGNORECASE,
)
# A trade reads "Koop 12 @ 24,15 EUR", "Buy 5 Foo Inc@21.31 USD (US...)", "Kauf ...".
_TRADE = re.compile(
    r"^(koop|verkoop|buy|sell|kauf|verkauf|achat|vente|compra|venta|venda|acquisto|vendita|"
    r"nákup|prodej)\s+[\d.,]+",
    re.IGNORECASE,
)
_MONEY_MARKET = _words(
    "money market fund conversion",
    "conversie geldmarktfonds",
    "geldmarktfonds umwandlung",
    "geldmarktfonds-umwandlung",
    "conversion fonds monétaire",
    "conversión fondo del mercado monetario",
)
_CASH_SWEEP = _words("cash sweep")
_CONNECTION_FEES = _words(
    "connection fee",
    "aansluitingskosten",
    "verbindungsgebühr",
    "börsenanbindung",
    "frais de connexion",
    "costes de conexión",
    "commissione di connessione",
)
_TRANSACTION_TAXES = _words(
    "transactiebelasting",
    "transaction tax",
    "finanztransaktionssteuer",
    "taxe sur les transactions",
    "impuesto sobre transacciones",
    "stamp duty",
)
_AUTOFX = _words("autofx")
_FEES = _words(
    "transaction and/or third",
    "transactiekosten",
    "transaction fee",
    "transaktionsgebühr",
    "transaktionskosten",
    "frais de courtage",
    "frais de transaction",
    "costes de transacción",
    "commissioni di transazione",
    "adr/gdr",
)
_DIVIDEND_TAXES = _words(
    "dividend tax",
    "dividendbelasting",
    "dividendensteuer",
    "quellensteuer",
    "impôts sur dividende",
    "retención del dividendo",
    "ritenuta sul dividendo",
    "daň z dividend",
)
_DIVIDENDS = _words(
    "dividend",  # also Dividende, Dividendo, Dividenda
    "fund distribution",
    "kapitaalsuitkering",
    "ausschüttung",
    "capital return",
)
_FX = _words(
    "valuta creditering",
    "valuta debitering",
    "fx credit",
    "fx debit",
    "währungswechsel",
    "opération de change",
    "cambio de divisa",
)
# Whole words: "rente" is also the end of other words.
_INTEREST = re.compile(r"\b(interest|rente|zinsen|intérêts|intereses|interessi|úrok)\b")
_DEPOSITS = _words(
    "deposit",
    "storting",  # also terugstorting (a withdrawal)
    "withdrawal",
    "einzahlung",
    "auszahlung",
    "dépôt",
    "retrait",
    "depósito",
    "retirada",
    "deposito",
    "prelievo",
    "vklad",
    "výběr",
)


def classify(row: AccountRow) -> Kind:
    text = row.description.strip().lower()

    def has(words: tuple[str, ...]) -> bool:
        return any(word in text for word in words)

    if has(_MONEY_MARKET):
        return Kind.MONEY_MARKET
    if row.change is None:
        return Kind.BALANCE_ONLY
    if has(_RESERVATION):
        return Kind.RESERVATION
    if _CORPORATE.match(text):
        return Kind.CORPORATE_ACTION
    if _TRADE.match(text):
        return Kind.TRADE
    if has(_CASH_SWEEP):
        return Kind.CASH_SWEEP
    if has(_CONNECTION_FEES):
        return Kind.CONNECTION_FEE
    if has(_TRANSACTION_TAXES):
        return Kind.TRANSACTION_TAX
    if has(_AUTOFX):
        return Kind.AUTOFX_FEE
    if has(_FEES):
        return Kind.FEE
    if has(_DIVIDEND_TAXES):
        return Kind.DIVIDEND_TAX
    if has(_DIVIDENDS):
        return Kind.DIVIDEND
    if has(_FX):
        return Kind.FX
    if _INTEREST.search(text):
        return Kind.INTEREST
    if has(_DEPOSITS):
        return Kind.DEPOSIT
    return Kind.OTHER
