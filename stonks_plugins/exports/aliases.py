"""Header names to canonical column keys, in several languages.

Brokers translate their headers (DeGiro into eight languages), truncate them (``Transaction
and/or third``) and add the account currency to them (``Value EUR``, ``Waarde in EUR``). So a
plugin names its columns by *canonical keys* (``date``, ``quantity``, ``order_id``) and lets
:class:`Aliases` say which header names mean which key.

Names are compared folded: case, accents, surrounding spaces and repeated spaces do not matter
(``Quantità`` = ``quantita``), which also survives a file decoded in the wrong encoding less
badly than an exact comparison.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence

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
