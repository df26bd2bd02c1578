"""Header rows: canonical column keys from names in several languages, the language and the
layout of a file, and columns found by position where the export leaves them unnamed.

Brokers translate their headers (DeGiro into eight languages), truncate them (``Transaction
and/or third``), add the account currency to them (``Value EUR``, ``Waarde in EUR``) and leave
some columns without a name (the currency next to an amount). So a plugin names its columns
by *canonical keys* (``date``, ``quantity``, ``order_id``) and lets :class:`Aliases` say which
header names mean which key, and :class:`Layout` which key sits at which position.

Names are compared folded: case, accents, surrounding spaces and repeated spaces do not matter
(``Quantità`` = ``quantita``), which also survives a file decoded in the wrong encoding less
badly than an exact comparison.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from .errors import BadHeader

_CURRENCY_SUFFIX = re.compile(r"^(.*?)(?:\s+(?:in|en|em|de|da|del))?(?:\s+|\s*\()([A-Z]{3})\)?$")
_TRUNCATED_MIN = 8
"""A header name this long or longer may be a truncated alias (``Transaction and/or third``)."""


def fold(name: str) -> str:
    """``name`` for comparison: accents dropped, case folded, spaces collapsed."""
    decomposed = unicodedata.normalize("NFKD", name)
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(bare.replace("\ufeff", "").casefold().split())


def currency_in_header(name: str, default: str = "") -> str:
    """The currency code a header name ends with (``Value EUR``, ``Waarde in EUR``,
    ``Total (USD)``), else ``default``: DeGiro names the account currency only there."""
    match = _CURRENCY_SUFFIX.match(name.strip())
    return match.group(2) if match and match.group(1) else default


def _without_currency(name: str) -> str:
    match = _CURRENCY_SUFFIX.match(name.strip())
    return match.group(1) if match and match.group(1) else name


class Aliases:
    """Header names per canonical key and language::

        Aliases({"date": {"en": ["Date"], "nl": ["Datum"], "de": ["Datum"]},
                 "quantity": {"en": ["Quantity", "Amount"], "nl": ["Aantal"]}})

    A name may mean one key in several languages (``Datum``); :meth:`detect_language` counts
    the header names each language knows. Languages are ISO 639-1 codes, ``""`` for names
    that belong to none in particular (``ISIN``).
    """

    def __init__(self, table: Mapping[str, Mapping[str, Iterable[str]]]) -> None:
        self._table: dict[str, dict[str, tuple[str, ...]]] = {
            key: {language: tuple(names) for language, names in by_language.items()}
            for key, by_language in table.items()
        }
        self._index: dict[str, dict[str, set[str]]] = {}  # folded name -> key -> languages
        for key, by_language in self._table.items():
            for language, names in by_language.items():
                for name in names:
                    entry = self._index.setdefault(fold(name), {})
                    entry.setdefault(key, set()).add(language)

    def extended(self, table: Mapping[str, Mapping[str, Iterable[str]]]) -> Aliases:
        """These aliases plus ``table`` (names are added to a key, never replaced)."""
        merged: dict[str, dict[str, list[str]]] = {
            key: {language: list(names) for language, names in by_language.items()}
            for key, by_language in self._table.items()
        }
        for key, by_language in table.items():
            for language, names in by_language.items():
                merged.setdefault(key, {}).setdefault(language, []).extend(names)
        return Aliases(merged)

    @property
    def keys(self) -> list[str]:
        return list(self._table)

    @property
    def languages(self) -> list[str]:
        found = {lang for by_language in self._table.values() for lang in by_language}
        return sorted(found - {""})

    def names(self, key: str, language: str | None = None) -> list[str]:
        """The header names of ``key`` (in ``language``, or in every language)."""
        by_language = self._table.get(key, {})
        if language is not None:
            return list(by_language.get(language, ()))
        return [name for names in by_language.values() for name in names]

    def _lookup(self, name: str) -> dict[str, set[str]]:
        folded = fold(name)
        if not folded:
            return {}
        found = self._index.get(folded) or self._index.get(fold(_without_currency(name)))
        if found:
            return found
        if len(folded) >= _TRUNCATED_MIN:
            # A truncated header: the start of exactly one key's name.
            matches: dict[str, set[str]] = {}
            for full, keys in self._index.items():
                if full.startswith(folded):
                    for key, languages in keys.items():
                        matches.setdefault(key, set()).update(languages)
            if len(matches) == 1:
                return matches
        return {}

    def keys_of(self, name: str) -> set[str]:
        """Every key ``name`` may mean (several when languages disagree)."""
        return set(self._lookup(name))

    def key_of(self, name: str, language: str | None = None) -> str | None:
        """The key ``name`` means (in ``language`` when given), ``None`` when it is unknown
        or means different keys and no language tells which."""
        found = self._lookup(name)
        if language is not None:
            found = {k: v for k, v in found.items() if language in v or "" in v}
        return next(iter(found)) if len(found) == 1 else None

    def detect_language(self, header: Sequence[str]) -> str:
        """The language whose names match most cells of ``header``; ``""`` when none does.
        Ties go to the language listed first in the table."""
        scores: dict[str, int] = {}
        order: list[str] = []
        for by_language in self._table.values():
            for language in by_language:
                if language and language not in order:
                    order.append(language)
        for cell in header:
            languages = {lang for langs in self._lookup(cell).values() for lang in langs}
            for language in languages - {""}:
                scores[language] = scores.get(language, 0) + 1
        if not scores:
            return ""
        best = max(scores.values())
        return next(language for language in order if scores.get(language) == best)


@dataclass(frozen=True)
class HeaderMap:
    """Where each canonical key is in a file's rows, and what the header told about it."""

    positions: Mapping[str, int]
    language: str = ""
    layout: str = ""
    header: tuple[str, ...] = ()
    unknown: tuple[str, ...] = ()
    """Header names no alias matched (for a message; the columns are left unused)."""

    def has(self, key: str) -> bool:
        return key in self.positions

    @property
    def width(self) -> int:
        """How many cells a row needs for every mapped key."""
        return max(self.positions.values(), default=-1) + 1

    def cell(self, cells: Sequence[str], key: str) -> str:
        """The stripped cell of ``key``; ``""`` when unmapped or beyond the row's end."""
        index = self.positions.get(key)
        return cells[index].strip() if index is not None and index < len(cells) else ""

    def name(self, key: str) -> str:
        """The header's own name for ``key`` (for messages), else the key."""
        index = self.positions.get(key)
        if index is not None and index < len(self.header) and self.header[index]:
            return self.header[index]
        return key


def map_by_name(
    header: Sequence[str],
    aliases: Aliases,
    *,
    required: Sequence[str] = (),
    file: str = "",
    line: int = 1,
    what: str = "export",
) -> HeaderMap:
    """Map a header whose columns all have names. The first column of each key wins.
    Raises :class:`BadHeader` naming the missing keys' usual names when a required key has
    no column."""
    language = aliases.detect_language(header)
    positions: dict[str, int] = {}
    unknown: list[str] = []
    for index, name in enumerate(header):
        key = aliases.key_of(name, language or None) or aliases.key_of(name)
        if key is None:
            if name.strip():
                unknown.append(name.strip())
            continue
        positions.setdefault(key, index)
    missing = [key for key in required if key not in positions]
    if missing:
        wanted = ", ".join(repr((aliases.names(key) or [key])[0]) for key in missing)
        raise BadHeader(
            f"not a {what}: no column for {wanted} (the header has "
            f"{', '.join(repr(n.strip()) for n in header if n.strip()) or 'no names'})",
            file=file,
            line=line,
        )
    return HeaderMap(positions, language, "", tuple(header), tuple(unknown))


@dataclass(frozen=True)
class Layout:
    """One known shape of a file: the canonical key at each position.

    ``unnamed`` lists the positions the export leaves without a header name (DeGiro's currency
    columns); they are how layouts of the same file are told apart, whatever the language.
    ``""`` as a key marks a column the plugin does not read.
    """

    name: str
    columns: tuple[str, ...]
    unnamed: frozenset[int] = field(default_factory=frozenset)

    def fit(self, header: Sequence[str], aliases: Aliases | None = None) -> int | None:
        """How well ``header`` fits: ``None`` when it cannot be this layout (another width,
        a name where the layout has none or the reverse, a name meaning another key), else
        the number of names recognised as their key. Empty trailing header cells (a trailing
        delimiter) are ignored, and a header may lack the layout's trailing unnamed columns
        (some exports end with a delimiter, some do not)."""
        cells = [cell.strip() for cell in header]
        while len(cells) > len(self.columns) and not cells[-1]:
            cells.pop()
        if len(cells) < len(self.columns) and all(
            i in self.unnamed for i in range(len(cells), len(self.columns))
        ):
            cells += [""] * (len(self.columns) - len(cells))
        if len(cells) != len(self.columns):
            return None
        score = 0
        for index, (cell, key) in enumerate(zip(cells, self.columns, strict=True)):
            if (index in self.unnamed) != (not cell):
                return None
            if not cell or aliases is None or not key:
                continue
            meanings = aliases.keys_of(cell)
            if key in meanings:
                score += 1
            elif meanings and key in aliases.keys:
                return None  # a known name of another column: not this layout
        return score

    def header_map(self, header: Sequence[str], language: str = "") -> HeaderMap:
        positions = {key: i for i, key in reversed(list(enumerate(self.columns))) if key}
        return HeaderMap(positions, language, self.name, tuple(header))


def detect_layout(
    header: Sequence[str],
    layouts: Sequence[Layout],
    aliases: Aliases | None = None,
    *,
    file: str = "",
    line: int = 1,
    what: str = "export",
) -> HeaderMap:
    """The best-fitting layout's map (the first of equal fits). Raises :class:`BadHeader`
    listing the known layouts when none fits."""
    best: tuple[int, Layout] | None = None
    for layout in layouts:
        score = layout.fit(header, aliases)
        if score is not None and (best is None or score > best[0]):
            best = (score, layout)
    if best is None:
        cells = list(header)
        while cells and not cells[-1].strip():
            cells.pop()
        blanks = [i for i, cell in enumerate(cells) if not cell.strip()]
        known = ", ".join(f"{layout.name} ({len(layout.columns)} columns)" for layout in layouts)
        raise BadHeader(
            f"unknown {what} layout ({len(cells)} columns, unnamed at {blanks}); "
            f"known layouts: {known}",
            file=file,
            line=line,
        )
    language = aliases.detect_language(header) if aliases is not None else ""
    return best[1].header_map(header, language)


STANDARD_ALIASES = Aliases(
    {
        "date": {
            "en": ["Date"],
            "nl": ["Datum"],
            "de": ["Datum"],
            "fr": ["Date"],
            "es": ["Fecha"],
            "pt": ["Data"],
            "it": ["Data"],
            "cs": ["Datum"],
        },
        "time": {
            "en": ["Time"],
            "nl": ["Tijd"],
            "de": ["Uhrzeit", "Zeit"],
            "fr": ["Heure"],
            "es": ["Hora"],
            "pt": ["Hora"],
            "it": ["Ora"],
            "cs": ["Čas"],
        },
        "value_date": {
            "en": ["Value date"],
            "nl": ["Valutadatum"],
            "de": ["Valutadatum"],
            "fr": ["Date de valeur"],
            "es": ["Fecha valor"],
            "pt": ["Data Valor"],
            "it": ["Data valuta"],
        },
        "product": {
            "en": ["Product"],
            "nl": ["Product"],
            "de": ["Produkt"],
            "fr": ["Produit"],
            "es": ["Producto"],
            "pt": ["Produto"],
            "it": ["Prodotto"],
        },
        "isin": {"": ["ISIN"]},
        "symbol_or_isin": {
            "en": ["Symbol/ISIN"],
            "nl": ["Symbool/ISIN"],
            "de": ["Symbol/ISIN"],
            "fr": ["Symbole/ISIN"],
            "es": ["Símbolo/ISIN"],
            "pt": ["Símbolo/ISIN"],
            "it": ["Simbolo/ISIN"],
        },
        "exchange": {
            "en": ["Reference exchange", "Reference", "Exchange"],
            "nl": ["Beurs"],
            "de": ["Referenzbörse", "Börse"],
            "fr": ["Bourse de référence", "Bourse"],
            "es": ["Bolsa de referencia", "Bolsa"],
            "pt": ["Bolsa de referência", "Bolsa"],
            "it": ["Borsa di riferimento", "Borsa"],
        },
        "venue": {
            "en": ["Venue"],
            "nl": ["Uitvoeringsplaats"],
            "de": ["Ausführungsort"],
            "fr": ["Lieu d'exécution"],
            "es": ["Centro de ejecución"],
            "pt": ["Local de execução"],
            "it": ["Sede di esecuzione"],
        },
        "quantity": {
            "en": ["Quantity", "Shares"],
            "nl": ["Aantal"],
            "de": ["Anzahl", "Stück"],
            "fr": ["Quantité", "Nombre"],
            "es": ["Número", "Cantidad"],
            "pt": ["Quantidade"],
            "it": ["Quantità"],
        },
        "price": {
            "en": ["Price", "Closing"],
            "nl": ["Koers", "Slotkoers"],
            "de": ["Kurs", "Schlusskurs"],
            "fr": ["Cours", "Clôture"],
            "es": ["Precio", "Precio de cierre"],
            "pt": ["Preço", "Preço de fecho"],
            "it": ["Quotazione", "Prezzo", "Chiusura"],
        },
        "local_value": {
            "en": ["Local value"],
            "nl": ["Lokale waarde"],
            "de": ["Wert in Lokalwährung", "Kurswert in Lokalwährung"],
            "fr": ["Valeur locale"],
            "es": ["Valor local"],
            "pt": ["Valor local"],
            "it": ["Valore locale"],
        },
        "value": {
            "en": ["Value", "Value in"],
            "nl": ["Waarde", "Waarde in"],
            "de": ["Wert", "Wert in"],
            "fr": ["Valeur", "Valeur en"],
            "es": ["Valor", "Valor en"],
            "pt": ["Valor", "Valor em"],
            "it": ["Valore", "Valore in"],
        },
        "exchange_rate": {
            "en": ["Exchange rate"],
            "nl": ["Wisselkoers"],
            "de": ["Wechselkurs"],
            "fr": ["Taux de change"],
            "es": ["Tipo de cambio"],
            "pt": ["Taxa de câmbio"],
            "it": ["Tasso di cambio"],
        },
        "autofx_fee": {
            "en": ["AutoFX Fee"],
            "nl": ["AutoFX Kosten"],
            "de": ["AutoFX Gebühr"],
            "fr": ["Frais AutoFX"],
            "es": ["Comisión AutoFX"],
            "pt": ["Taxa AutoFX"],
            "it": ["Commissione AutoFX"],
        },
        "fee": {
            "en": ["Transaction and/or third party fees", "Transaction costs", "Fee", "Fees"],
            "nl": ["Transactiekosten en/of kosten van derden", "Transactiekosten", "Kosten"],
            "de": ["Transaktionskosten und/oder Kosten Dritter", "Transaktionskosten", "Gebühr"],
            "fr": ["Frais de courtage et/ou de parties tierces", "Frais de transaction", "Frais"],
            "es": ["Costes de transacción y/o costes de terceros", "Costes de transacción"],
            "pt": ["Custos de transação e/ou taxas de terceiros", "Custos de transação"],
            "it": ["Commissioni di transazione e/o costi di terzi", "Commissioni"],
        },
        "total": {
            "en": ["Total"],
            "nl": ["Totaal"],
            "de": ["Gesamt"],
            "fr": ["Total"],
            "es": ["Total"],
            "pt": ["Total"],
            "it": ["Totale"],
        },
        "order_id": {
            "en": ["Order ID", "Order Id"],
            "nl": ["Order ID", "Order Id"],
            "de": ["Order-ID", "Order ID"],
            "fr": ["ID Ordre", "Identifiant de l'ordre"],
            "es": ["ID Orden", "Id. de orden"],
            "pt": ["ID da Ordem", "ID Ordem"],
            "it": ["ID Ordine"],
        },
        "description": {
            "en": ["Description"],
            "nl": ["Omschrijving"],
            "de": ["Beschreibung"],
            "fr": ["Description"],
            "es": ["Descripción"],
            "pt": ["Descrição"],
            "it": ["Descrizione"],
        },
        "fx": {"": ["FX"]},
        "change": {
            "en": ["Change"],
            "nl": ["Mutatie"],
            "de": ["Änderung"],
            "fr": ["Mouvements", "Mouvement"],
            "es": ["Variación"],
            "pt": ["Mudança", "Variação"],
            "it": ["Variazioni", "Variazione"],
        },
        "balance": {
            "en": ["Balance"],
            "nl": ["Saldo"],
            "de": ["Saldo"],
            "fr": ["Solde"],
            "es": ["Saldo"],
            "pt": ["Saldo"],
            "it": ["Saldo"],
        },
        "currency": {
            "en": ["Currency"],
            "nl": ["Valuta", "Munt"],
            "de": ["Währung"],
            "fr": ["Devise"],
            "es": ["Divisa", "Moneda"],
            "pt": ["Moeda"],
            "it": ["Valuta"],
        },
        "symbol": {
            "en": ["Symbol", "Ticker"],
            "nl": ["Symbool", "Ticker"],
            "de": ["Symbol", "Kürzel"],
            "fr": ["Symbole"],
            "es": ["Símbolo"],
            "pt": ["Símbolo"],
            "it": ["Simbolo"],
        },
        "kind": {
            "en": ["Type", "Kind"],
            "nl": ["Soort", "Type"],
            "de": ["Art", "Typ"],
            "fr": ["Type"],
            "es": ["Tipo"],
            "pt": ["Tipo"],
            "it": ["Tipo"],
        },
    }
)
"""Header names of common broker export columns in English, Dutch, German, French, Spanish,
Portuguese and Italian (DeGiro's wording where DeGiro has the column). Extend them with
:meth:`Aliases.extended` for a broker's own columns."""
