"""What DeGiro's words mean: the Description phrases of the account statement per kind and
language, and the shape of a trade written out in words (``Koop 12 @ 24,15 EUR``).

DeGiro writes a description in the account's language, which need not be the header's (an
English interface over a French account still writes ``Frais DEGIRO de courtage``), so every
phrase of every language is tried on every row. Text is compared folded (case, accents and
repeated spaces do not matter) and phrases match whole words, so ``storting`` does not match
``terugstorting`` and ``dividend`` does not match ``dividendbelasting``.

:data:`TABLE` is checked in order and the first kind that matches wins; the order is part of
the meaning: ``Money Market fund conversion: Buy ...`` is no trade, ``STOCK DIVIDEND: Koop
999 @ 0 EUR`` is neither a trade nor a dividend, ``Ingreso Cambio de Divisa`` is a currency
conversion and not the deposit ``Ingreso``, ``Dividend Tax`` is no dividend.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum


class Kind(StrEnum):
    """What an account statement row is. Fees, taxes and interest keep the sign DeGiro gives
    them (a refunded fee is positive); deposits and withdrawals are one kind whose sign says
    which way the money went."""

    TRADE = "trade"  # Koop / Buy / Achat ... with quantity and price
    STOCK_DIVIDEND = "stock_dividend"  # shares received instead of cash
    CORPORATE_ACTION = "corporate_action"  # product or ISIN change, split, merger
    FEE = "fee"  # transaction and/or third-party fees
    CONNECTION_FEE = "connection_fee"  # yearly exchange connection fee
    CORPORATE_ACTION_FEE = "corporate_action_fee"
    TRANSACTION_TAX = "transaction_tax"  # financial transaction tax, stamp duty
    AUTOFX_FEE = "autofx_fee"
    OTHER_FEE = "other_fee"  # ADR/GDR pass-through, real-time prices, payment fees...
    DIVIDEND = "dividend"  # also fund distributions and capital returns
    DIVIDEND_TAX = "dividend_tax"  # withheld (negative) or refunded (positive)
    INTEREST = "interest"  # charged (negative) or received (positive)
    COURTESY = "courtesy"  # DeGiro's courtesy credits and promotions
    DEPOSIT = "deposit"  # deposits and withdrawals
    FX = "fx"  # one leg of a currency conversion
    CASH_SWEEP = "cash_sweep"  # cash moved to or from the flatexDEGIRO bank account
    MONEY_MARKET = "money_market"  # conversions into or out of the money-market fund
    RESERVATION = "reservation"  # an iDEAL/Sofort reservation: booked again when it settles
    BALANCE_ONLY = "balance_only"  # no amount, only a balance
    OTHER = "other"  # not a description DeGiro is known to write


FEES = frozenset(
    {
        Kind.FEE,
        Kind.CONNECTION_FEE,
        Kind.CORPORATE_ACTION_FEE,
        Kind.TRANSACTION_TAX,
        Kind.AUTOFX_FEE,
        Kind.OTHER_FEE,
    }
)
POSITION_CHANGES = frozenset({Kind.TRADE, Kind.STOCK_DIVIDEND, Kind.CORPORATE_ACTION})


def fold(text: str) -> str:
    """``text`` for comparison: accents dropped, case folded, spaces collapsed."""
    decomposed = unicodedata.normalize("NFKD", text)
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(bare.casefold().split())


@dataclass(frozen=True)
class Wording:
    """How one kind reads. ``phrases``: whole words anywhere in the description, per language
    (``""`` for words every language uses, like ``FX Credit``); ``prefixes``: words the
    description starts with; ``patterns``: regular expressions on the folded text, for the
    parametrised descriptions (a year and an exchange)."""

    kind: Kind
    phrases: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    prefixes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    patterns: tuple[str, ...] = ()

    def compile(self) -> re.Pattern[str]:
        words = [_word(p) for by_lang in self.phrases.values() for p in by_lang]
        starts = ["^" + _word(p) for by_lang in self.prefixes.values() for p in by_lang]
        return re.compile("|".join([*starts, *words, *self.patterns]))


def _word(phrase: str) -> str:
    return r"(?<!\w)" + re.escape(fold(phrase)) + r"(?!\w)"


TABLE: tuple[Wording, ...] = (
    Wording(
        Kind.MONEY_MARKET,
        phrases={
            "en": ("money market fund", "money market"),
            "nl": ("geldmarktfonds",),
            "de": ("geldmarktfonds", "geldmarktfonds umwandlung"),
            "fr": ("fonds monétaire", "fonds du marché monétaire"),
            "es": ("fondo monetario", "fondo del mercado monetario"),
            "pt": ("fundo do mercado", "fundo monetário"),
            "it": ("fondo monetario", "mercato monetario"),
        },
    ),
    Wording(
        Kind.RESERVATION,
        prefixes={
            "en": ("reservation",),
            "nl": ("reservering",),
            "de": ("reservierung",),
            "fr": ("réservation",),
            "es": ("reserva",),
            "pt": ("reserva",),
            "it": ("prenotazione",),
        },
    ),
    # "STOCK DIVIDEND: Koop 999 @ 0 EUR": shares, not cash. The part after the colon is a
    # trade (see TRADE_TEXT); the prefix decides what kind of position change it is.
    Wording(
        Kind.STOCK_DIVIDEND,
        prefixes={
            "en": ("stock dividend", "scrip dividend", "dividend in shares"),
            "nl": ("stockdividend", "stock dividend", "aandelendividend", "keuzedividend"),
            "de": ("aktiendividende", "stockdividende", "dividende in aktien"),
            "fr": ("dividende en actions",),
            "es": ("dividendo en acciones", "dividendo flexible"),
            "pt": ("dividendo em ações",),
            "it": ("dividendo in azioni",),
        },
    ),
    Wording(
        Kind.CORPORATE_ACTION,
        prefixes={
            "en": (
                "product change",
                "isin change",
                "change isin",
                "stock split",
                "reverse split",
                "split",
                "merger",
                "spin-off",
                "spin off",
                "corporate action",
            ),
            "nl": (
                "productwijziging",
                "wijziging isin",
                "isin-wijziging",
                "isin wijziging",
                "aandelensplitsing",
                "splitsing",
                "omgekeerde splitsing",
                "fusie",
                "afsplitsing",
            ),
            "de": (
                "produktänderung",
                "isin-änderung",
                "isin änderung",
                "aktiensplit",
                "split",
                "fusion",
                "abspaltung",
            ),
            "fr": (
                "changement de produit",
                "changement d'isin",
                "changement isin",
                "division d'actions",
                "regroupement d'actions",
                "fusion",
                "scission",
            ),
            "es": (
                "cambio de producto",
                "cambio de isin",
                "cambio isin",
                "desdoblamiento",
                "contrasplit",
                "fusión",
                "escisión",
            ),
            "pt": (
                "alteração de produto",
                "alteração do produto",
                "alteração de isin",
                "desdobramento",
                "fusão",
                "cisão",
            ),
            "it": (
                "modifica prodotto",
                "cambio prodotto",
                "modifica isin",
                "cambio isin",
                "frazionamento",
                "raggruppamento",
                "fusione",
                "scissione",
            ),
        },
    ),
    Wording(
        Kind.CASH_SWEEP,
        phrases={
            "": ("cash sweep",),
            # The balance-only partner of a sweep: money moved to or from the flatexDEGIRO
            # Bank cash account, named in each language.
            "en": ("cash account",),
            "nl": ("geldrekening",),
            "de": ("geldkonto",),
            "fr": ("compte espèces", "compte de liquidités"),
            "es": ("cuenta de efectivo",),
            "pt": ("conta caixa",),
            "it": ("conto di liquidità", "conto liquidità", "conto contante"),
        },
    ),
    Wording(
        Kind.FX,
        phrases={
            "en": ("fx credit", "fx debit", "fx withdrawal", "fx deposit"),
            "nl": ("valuta creditering", "valuta debitering"),
            "de": ("währungswechsel",),
            "fr": ("opération de change", "crédit de change", "débit de change"),
            "es": ("cambio de divisa",),
            "pt": ("crédito de divisa", "levantamento de divisa", "débito de divisa"),
            "it": ("credito fx", "prelievo fx", "addebito fx", "cambio valuta"),
            "cs": ("konverze měny",),
        },
    ),
    Wording(
        Kind.CONNECTION_FEE,
        phrases={
            "en": ("exchange connection fee", "connection fee"),
            "nl": ("aansluitingskosten",),
            "de": ("handelsmodalitäten", "börsenanbindung", "verbindungsgebühr"),
            "fr": ("frais de connexion",),
            "es": ("comisión de conectividad", "costes de conexión", "coste de conectividad"),
            "pt": ("custo de conectividade", "custos de conectividade"),
            "it": ("costi di connessione", "commissione di connessione"),
            "cs": ("poplatek za obchodování",),
        },
        # Any "DEGIRO <words> 2024 (Xetra - XET)": the yearly fee per exchange, whatever
        # the language calls it.
        patterns=(r"(?<!\w)degiro(?!\w).*(?<!\d)(?:19|20)\d\d(?!\d)\s*\(",),
    ),
    Wording(
        Kind.CORPORATE_ACTION_FEE,
        phrases={
            "": ("corporate action kosten", "corporate action fee", "corporate action"),
            "de": ("kapitalmaßnahme",),
            "fr": ("opération sur titres",),
            "es": ("operación corporativa", "evento corporativo"),
            "pt": ("evento corporativo", "ação corporativa"),
            "it": ("operazione societaria", "evento societario"),
        },
    ),
    Wording(
        Kind.TRANSACTION_TAX,
        phrases={
            "en": ("transaction tax", "stamp duty", "financial transaction tax"),
            "nl": ("transactiebelasting", "beurstaks"),
            "de": ("finanztransaktionssteuer", "börsenumsatzsteuer"),
            "fr": (
                "taxe sur les transactions",
                "taxe sur les opérations de bourse",
                "impôt de bourse",
            ),
            "es": (
                "impuesto de transacción",
                "impuesto sobre transacciones",
                "impuesto sobre las transacciones",
            ),
            "pt": ("imposto de selo", "imposto sobre transações"),
            "it": ("imposta sulle transazioni", "tassa sulle transazioni", "tobin tax"),
        },
    ),
    Wording(Kind.AUTOFX_FEE, phrases={"": ("autofx", "auto fx")}),
    Wording(
        Kind.FEE,
        phrases={
            "en": ("transaction and/or third", "transaction fee", "transaction costs"),
            "nl": ("transactiekosten",),
            "de": ("transaktionsgebühr", "transaktionsgebühren", "transaktionskosten"),
            "fr": ("frais degiro de courtage", "frais de courtage", "frais de transaction"),
            "es": ("costes de transacción", "comisión de transacción", "costes de compraventa"),
            "pt": (
                "comissões de transação",
                "comissão de transação",
                "custos de transação",
            ),
            "it": ("commissioni di transazione", "costi di transazione", "commissioni degiro"),
            "cs": ("transakční poplatky",),
        },
    ),
    Wording(
        Kind.OTHER_FEE,
        phrases={
            "": ("adr/gdr",),
            "en": (
                "exercise and assignment",
                "real-time price",
                "realtime price",
                "custody fee",
                "service fee",
            ),
            "nl": ("bewaarloon", "realtime koersen"),
            "de": ("realtimekurse", "zahlungsgebühr", "ausübung/zuteilung", "depotgebühr"),
            "fr": ("données en temps réel", "frais de garde"),
            "es": ("comisión tiempo real", "comisión cierre", "comisión por transferencia"),
            "pt": ("dados em tempo real", "custo de exercício"),
            "it": ("dati in tempo reale", "commissione di esercizio"),
        },
    ),
    Wording(
        Kind.DIVIDEND_TAX,
        phrases={
            "en": ("dividend tax", "withholding tax"),
            "nl": ("dividendbelasting", "bronbelasting"),
            "de": ("dividendensteuer", "quellensteuer", "kapitalertragsteuer"),
            "fr": ("impôts sur dividende", "impôt sur dividende", "retenue à la source"),
            "es": ("retención del dividendo", "retención de dividendos"),
            "pt": ("imposto sobre dividendo", "imposto sobre dividendos", "retenção na fonte"),
            "it": ("ritenuta sul dividendo", "ritenuta sui dividendi"),
            "cs": ("daň z dividend",),
        },
    ),
    Wording(
        Kind.DIVIDEND,
        phrases={
            "en": ("dividend", "fund distribution", "capital return", "return of capital"),
            "nl": ("dividend", "kapitaalsuitkering", "terugbetaling kapitaal", "fondsuitkering"),
            "de": ("dividende", "ausschüttung", "fondsausschüttung", "kapitalrückzahlung"),
            "fr": ("dividende", "remboursement de capital", "distribution de fonds"),
            "es": ("dividendo", "rendimiento de capital", "devolución de capital"),
            "pt": ("dividendo", "reembolso de capital", "distribuição do fundo"),
            "it": ("dividendo", "rimborso di capitale", "distribuzione del fondo"),
            "cs": ("dividenda",),
        },
    ),
    Wording(
        Kind.COURTESY,
        phrases={
            "": ("degiro courtesy", "courtesy"),
            "en": ("promotion", "rebate"),
            "nl": ("verrekening promotie", "promotie"),
            "de": ("neukundenaktion", "rabatt", "gutschrift für die"),
            "fr": ("geste commercial", "promotion degiro"),
            "es": ("promoción", "cortesía"),
            "pt": ("promoção", "cortesia"),
            "it": ("promozione", "cortesia"),
        },
    ),
    Wording(
        Kind.INTEREST,
        phrases={
            "en": ("interest", "flatex interest", "flatex interest income"),
            "nl": ("rente", "debetrente"),
            "de": ("zinsen", "sollzinsen"),
            "fr": ("intérêts", "intérêt"),
            "es": ("intereses", "interés"),
            "pt": ("juros",),
            "it": ("interessi", "interesse"),
            "cs": ("úrok", "úroky"),
        },
    ),
    # Deposits and withdrawals are one kind: the sign of the amount says which way.
    Wording(
        Kind.DEPOSIT,
        phrases={
            "en": ("deposit", "withdrawal"),
            "nl": ("storting", "terugstorting", "opname"),
            "de": ("einzahlung", "auszahlung"),
            "fr": ("dépôt", "retrait", "versement de fonds"),
            "es": ("ingreso", "retirada", "depósito"),
            "pt": ("depósito", "depósitos", "levantamento", "levantamentos"),
            "it": ("deposito", "versamento", "prelievo"),
            "cs": ("vklad", "výběr"),
        },
    ),
)

_COMPILED: dict[Kind, re.Pattern[str]] = {w.kind: w.compile() for w in TABLE}
_EMBEDDING = (Kind.STOCK_DIVIDEND, Kind.CORPORATE_ACTION)
"""Kinds that are a trade written after a prefix (``PRODUCTWIJZIGING : Koop 10 @ 0 EUR``)."""


# --- trades written out ----------------------------------------------------------------------

BUY, SELL = "buy", "sell"

VERBS: Mapping[str, Mapping[str, str]] = {
    "nl": {"koop": BUY, "verkoop": SELL},
    "en": {"buy": BUY, "sell": SELL},
    "de": {"kauf": BUY, "verkauf": SELL},
    "fr": {"achat": BUY, "vente": SELL},
    "es": {"compra": BUY, "venta": SELL},
    "pt": {"compra": BUY, "venda": SELL},
    "it": {"acquisto": BUY, "vendita": SELL},
    "cs": {"nakup": BUY, "prodej": SELL},
}
"""Folded first word of a trade -> its side, per language."""

_SIDES: dict[str, str] = {verb: side for by in VERBS.values() for verb, side in by.items()}

_NUMBER = r"\d+(?:[.,']\d+)*"
TRADE_TEXT = re.compile(
    rf"^\s*(?P<verb>[^\W\d_]+)\s+(?P<quantity>{_NUMBER})"
    rf"(?:\s+(?P<product>.*?))?(?:\s*@\s*|\s+(?:zu je|at|à)\s+)"
    rf"(?P<price>-?{_NUMBER})\s+(?P<currency>[A-Za-z]{{3}})"
    r"(?:\s*\((?P<isin>[A-Za-z]{2}[A-Za-z0-9]{9}\d)\))?\s*$"
)
"""``Koop 1 @ 33,9 USD``, ``Compra 6 X@49,785 EUR (IE00B3RBWM25)``, ``Sell 4 AVIVA@496 GBX``,
``Kauf 5 zu je 21,31 EUR``: side, quantity, optional product, price, currency, optional
ISIN."""


def side_of(verb: str) -> str | None:
    """``buy``/``sell`` for a trade verb in any language, else ``None``."""
    return _SIDES.get(fold(verb))


def trade_match(text: str) -> re.Match[str] | None:
    """The match of ``text`` as a written-out trade whose verb is a known one."""
    match = TRADE_TEXT.match(text)
    return match if match is not None and side_of(match.group("verb")) else None


def embedded_trade(text: str) -> tuple[str, str] | None:
    """``("PRODUCTWIJZIGING", "Koop 10 @ 0 EUR")``: the words before a written-out trade and
    the trade, for a description that is more than a trade; ``None`` otherwise (a plain
    trade, or no trade at all). The words are usually separated by a colon."""
    head, colon, tail = text.partition(":")
    if colon and head.strip() and trade_match(tail) is not None:
        return head.strip(), tail.strip()
    words = text.split()
    for start in range(1, len(words)):
        rest = " ".join(words[start:])
        if trade_match(rest) is not None:
            return " ".join(words[:start]).rstrip(" :"), rest
    return None


def kind_of(description: str) -> Kind:
    """The kind the wording of ``description`` says; :attr:`Kind.OTHER` when no phrase of any
    language matches, or when a trade follows words that are not a known corporate action
    (an unknown ``WHATEVER: Koop 10 @ 0 EUR`` must not move a position)."""
    text = fold(description)
    if not text:
        return Kind.OTHER
    for kind in (Kind.MONEY_MARKET, Kind.RESERVATION):
        if _COMPILED[kind].search(text):
            return kind
    if trade_match(description) is not None:
        return Kind.TRADE
    embedded = embedded_trade(description)
    if embedded is not None:
        prefix = fold(embedded[0])
        return next((k for k in _EMBEDDING if _COMPILED[k].search(prefix)), Kind.OTHER)
    for kind, pattern in _COMPILED.items():
        if kind not in (Kind.MONEY_MARKET, Kind.RESERVATION, *_EMBEDDING) and pattern.search(text):
            return kind
    return Kind.OTHER


def mentions_degiro(description: str) -> bool:
    """Whether the text names DeGiro as a word (its own charges do, in every language)."""
    return re.search(r"(?<!\w)degiro(?!\w)", fold(description)) is not None
