"""Header rows: where each canonical key is in a file, by name or by the file's layout.

A header whose columns all have names is mapped by name (:func:`map_by_name`, through the
:class:`~.aliases.Aliases`). Some exports leave columns without a name (the currency next to an
amount): those files are told apart by :class:`Layout`, which key sits at which position
(:func:`detect_layout`). The aliases live in :mod:`.aliases` and :mod:`.standard_aliases`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from .aliases import Aliases, currency_in_header, fold
from .errors import BadHeader
from .standard_aliases import STANDARD_ALIASES

__all__ = [
    "STANDARD_ALIASES",
    "Aliases",
    "HeaderMap",
    "Layout",
    "currency_in_header",
    "detect_layout",
    "fold",
    "map_by_name",
]


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
