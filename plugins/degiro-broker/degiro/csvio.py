"""Opening DeGiro's CSV files with the SDK's export toolkit: the header languages DeGiro
writes, the continuation lines of its account statement, and a cache of parsed files.

A file that cannot be read at all (empty, an unknown layout) raises the toolkit's
:class:`~stonks_plugins.sdk.ExportError`; a bad row never does: it is *reported* in the import
report with its line, so one odd line in years of history does not hide the rest of it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from stonks_plugins.sdk import STANDARD_ALIASES, Continuation, MissingFile

T = TypeVar("T")

_ISIN = re.compile(r"^[A-Z]{2}[A-Z0-9]{9}[0-9]$")

ALIASES = STANDARD_ALIASES.extended(
    {
        # Czech is one of DeGiro's languages; the SDK's table stops at Italian.
        "date": {"cs": ["Datum"]},
        "time": {"cs": ["Čas"]},
        "value_date": {"cs": ["Datum valuty"]},
        "product": {"cs": ["Produkt"]},
        "quantity": {"cs": ["Množství", "Počet"], "en": ["Amount"]},
        "description": {"cs": ["Popis"]},
    }
)
"""DeGiro's header names: the SDK's, plus Czech and the few DeGiro words it lacks."""

STATEMENT_CONTINUATION = Continuation(leading_empty=2, glue=" ", glue_by_column={11: ""})
"""A long Description or Order Id wraps onto a line starting with commas: it is joined to
the row above, text with a space, the order id (column 12) glued back without one."""


def detect_language(header: Sequence[str]) -> str:
    """``en``, ``nl``, ``de``, ``fr``, ``es``, ``it``, ``pt``, ``cs`` or ``""`` (unknown).

    Only informative: columns are mapped by position, so an unknown language (or a truncated
    header) still imports, and descriptions are read in every language anyway.
    """
    return ALIASES.detect_language(header)


def is_isin(text: str) -> bool:
    return bool(_ISIN.match(text.strip()))


def stamp(path: Path) -> tuple[int, int] | None:
    """What tells a changed file from an unchanged one; ``None`` when there is no file."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return None
    return (info.st_mtime_ns, info.st_size)


_cache: dict[tuple[str, str], tuple[tuple[int, int], object]] = {}


def cached(kind: str, path: Path, parse: Callable[[Path], T]) -> T:
    """``parse(path)``, reused while the file keeps its size and modification time.

    Services read the files on every call (a user dropping in a fresh export sees it at
    once); parsing years of history for each page would be wasteful.
    """
    now = stamp(path)
    if now is None:
        raise MissingFile("file not found", file=str(path))
    key = (kind, str(path))
    hit = _cache.get(key)
    if hit is not None and hit[0] == now:
        return hit[1]  # type: ignore[return-value]
    value = parse(path)
    _cache[key] = (now, value)
    return value
