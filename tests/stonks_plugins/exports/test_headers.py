"""Header rows in the languages the toolkit knows: the language, each column's key, layouts
told apart by their unnamed columns, truncated names and currencies in names."""

from __future__ import annotations

import pytest

from stonks_plugins.exports import (
    STANDARD_ALIASES,
    Aliases,
    BadHeader,
    Layout,
    currency_in_header,
    detect_layout,
    map_by_name,
)

# DeGiro's account statement header in each language, the unnamed amount columns included.
ACCOUNT_HEADERS = {
    "en": "Date,Time,Value date,Product,ISIN,Description,FX,Change,,Balance,,Order Id",
    "nl": "Datum,Tijd,Valutadatum,Product,ISIN,Omschrijving,FX,Mutatie,,Saldo,,Order Id",
    "de": "Datum,Uhrzeit,Valutadatum,Produkt,ISIN,Beschreibung,FX,Änderung,,Saldo,,Order-ID",
    "fr": "Date,Heure,Date de valeur,Produit,ISIN,Description,FX,Mouvements,,Solde,,ID Ordre",
    "es": "Fecha,Hora,Fecha valor,Producto,ISIN,Descripción,FX,Variación,,Saldo,,ID Orden",
    "pt": "Data,Hora,Data Valor,Produto,ISIN,Descrição,FX,Mudança,,Saldo,,ID da Ordem",
    "it": "Data,Ora,Data valuta,Prodotto,ISIN,Descrizione,FX,Variazioni,,Saldo,,ID Ordine",
}
ACCOUNT_KEYS = {
    "date": 0,
    "time": 1,
    "value_date": 2,
    "product": 3,
    "isin": 4,
    "description": 5,
    "fx": 6,
    "change": 7,
    "balance": 9,
    "order_id": 11,
}


@pytest.mark.parametrize("language", sorted(ACCOUNT_HEADERS))
def test_each_language_is_detected_and_mapped(language: str) -> None:
    header = ACCOUNT_HEADERS[language].split(",")
    assert STANDARD_ALIASES.detect_language(header) == language
    mapped = map_by_name(header, STANDARD_ALIASES, required=("date", "description"))
    assert (mapped.language, dict(mapped.positions)) == (language, ACCOUNT_KEYS)
    assert mapped.unknown == ()
    row = ["02-06-2025", "10:01", "01-06-2025", "", "", "iDEAL Deposit", "", "EUR", "500,00"]
    assert mapped.cell(row, "description") == "iDEAL Deposit"
    assert mapped.cell(row, "order_id") == ""  # beyond the row's end


def test_names_compare_folded_and_survive_truncation_and_currencies() -> None:
    aliases = STANDARD_ALIASES
    assert aliases.key_of("  QUANTITA ") == "quantity"  # accents and case do not matter
    assert aliases.key_of("Transaction and/or third") == "fee"  # DeGiro's truncated header
    assert aliases.key_of("Value EUR") == aliases.key_of("Waarde in EUR") == "value"
    assert aliases.key_of("Totaal EUR") == "total"
    assert aliases.key_of("Something else") is None
    assert aliases.key_of("Data", "pt") == "date"
    assert currency_in_header("Value in EUR") == "EUR"
    assert currency_in_header("Total (USD)") == "USD"
    assert currency_in_header("ISIN") == ""
    assert currency_in_header("Total", "EUR") == "EUR"


def test_a_broker_adds_its_own_names() -> None:
    mine = STANDARD_ALIASES.extended({"quantity": {"en": ["Amount"]}, "status": {"en": ["Status"]}})
    assert mine.key_of("Amount") == "quantity" and mine.key_of("Status") == "status"
    assert STANDARD_ALIASES.key_of("Amount") is None  # the shared table is unchanged
    assert "Aantal" in mine.names("quantity", "nl")


def test_a_missing_required_column_is_named() -> None:
    aliases = Aliases({"date": {"en": ["Date"]}, "amount": {"en": ["Amount"]}})
    with pytest.raises(BadHeader) as error:
        map_by_name(
            ["Date", "Note"], aliases, required=("date", "amount"), file="x.csv", what="history"
        )
    assert str(error.value) == (
        "x.csv line 1: not a history: no column for 'Amount' (the header has 'Date', 'Note')"
    )


# Transactions.csv: the layouts differ in width and in where the unnamed columns are.
CURRENT = Layout(
    "current",
    (
        "date", "time", "product", "isin", "exchange", "venue", "quantity", "price",
        "price_currency", "local_value", "local_currency", "value", "exchange_rate",
        "autofx_fee", "fee", "total", "order_id",
    ),
    frozenset({8, 10}),
)  # fmt: skip
OLDER = Layout(
    "older",
    (
        "date", "time", "product", "isin", "exchange", "venue", "quantity", "price",
        "price_currency", "local_value", "local_currency", "value", "value_currency",
        "exchange_rate", "fee", "fee_currency", "total", "total_currency", "order_id",
    ),
    frozenset({8, 10, 12, 15, 17}),
)  # fmt: skip


@pytest.mark.parametrize(
    ("header", "layout", "language"),
    [
        (
            "Date,Time,Product,ISIN,Reference exchange,Venue,Quantity,Price,,Local value,,"
            "Value EUR,Exchange rate,AutoFX Fee,Transaction and/or third party fees EUR,"
            "Total EUR,Order ID,",
            "current",
            "en",
        ),
        (
            "Datum,Tijd,Product,ISIN,Beurs,Uitvoeringsplaats,Aantal,Koers,,Lokale waarde,,"
            "Waarde EUR,Wisselkoers,AutoFX Kosten,Transactiekosten en/of kosten van derden EUR,"
            "Totaal EUR,Order ID,",
            "current",
            "nl",
        ),
        (
            "Date,Time,Product,ISIN,Reference,Venue,Quantity,Price,,Local value,,Value,,"
            "Exchange rate,Transaction and/or third,,Total,,Order ID",
            "older",
            "en",
        ),
        (
            "Datum,Čas,Produkt,ISIN,Burza,Místo,Počet,Cena,,Hodnota,,Hodnota EUR,Kurz,AutoFX,"
            "Poplatky,Celkem,ID,",
            "current",
            "de",  # Czech: not in the table, "Datum" and "Produkt" match German first
        ),
    ],
)
def test_layouts_by_position(header: str, layout: str, language: str) -> None:
    mapped = detect_layout(header.split(","), [CURRENT, OLDER], STANDARD_ALIASES)
    assert (mapped.layout, mapped.language) == (layout, language)
    assert mapped.positions["price_currency"] == 8
    assert mapped.positions["order_id"] == len(mapped.header) - (2 if layout == "current" else 1)


def test_no_layout_fits() -> None:
    with pytest.raises(BadHeader) as error:
        detect_layout(["Date", "Time", "", "Total"], [CURRENT, OLDER], file="Transactions.csv")
    assert str(error.value) == (
        "Transactions.csv line 1: unknown export layout (4 columns, unnamed at [2]); known "
        "layouts: current (17 columns), older (19 columns)"
    )
    # The right width, but a known name where the layout has another column.
    swapped = ACCOUNT_HEADERS["en"].split(",")
    layout = Layout("account", tuple(ACCOUNT_KEYS), frozenset())
    assert layout.fit(swapped, STANDARD_ALIASES) is None


def test_a_trailing_unnamed_column_may_be_missing() -> None:
    """DeGiro's current Transactions.csv ends with a comma in most files, not in all."""
    layout = Layout("current", (*CURRENT.columns, "order_id_2"), CURRENT.unnamed | {17})
    text = (
        "Date,Time,Product,ISIN,Reference exchange,Venue,Quantity,Price,,Local value,,"
        "Value EUR,Exchange rate,AutoFX Fee,Transaction and/or third party fees EUR,"
        "Total EUR,Order ID"
    )
    header = text.split(",")
    for cells in (header, [*header, ""], [*header, "", ""]):
        mapped = detect_layout(cells, [layout, OLDER], STANDARD_ALIASES)
        assert (mapped.layout, mapped.positions["order_id_2"]) == ("current", 17)
    assert layout.fit(header[:-1], STANDARD_ALIASES) is None  # a named column missing
