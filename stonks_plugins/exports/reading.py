"""Opening an export: bytes to text, text to rows that know their line numbers.

What real exports do that a plain ``csv.reader`` does not handle: a BOM; Latin-1 bytes from
a spreadsheet that re-saved the file; blank lines; ``;`` instead of ``,``; a quoted cell that
spans lines (the row starts where the editor shows it, not where ``csv`` ends it); and rows
broken over two lines, where the second starts with delimiters and carries the rest of a
description or an order id (DeGiro's account statement). :func:`read_csv` handles each and
records the rows it settles itself (the header, blank lines, a continuation with no row above
it) as outcomes, so a plugin's parse function only ever sees data rows.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .errors import BadEncoding, BadFile, EmptyFile, MissingFile
from .report import ImportReport, Outcome, RowOutcome, shorten

DELIMITERS = (",", ";", "\t", "|")
FALLBACK_ENCODING = "iso-8859-1"


@dataclass(frozen=True)
class Row:
    """One data row: its cells and the physical line it starts on (1-based). A row repaired
    from a continuation lists the lines it was joined from in ``joined``."""

    line: int
    cells: tuple[str, ...]
    joined: tuple[int, ...] = ()

    def get(self, index: int) -> str:
        """The stripped cell at ``index``; ``""`` beyond the row's end."""
        return self.cells[index].strip() if 0 <= index < len(self.cells) else ""

    def __len__(self) -> int:
        return len(self.cells)

    @property
    def text(self) -> str:
        """The row as one CSV line (shortened), to show a user which row is meant."""
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="").writerow(self.cells)
        return shorten(buffer.getvalue())


@dataclass(frozen=True)
class Continuation:
    """How a row broken over lines looks, and how it is glued back.

    A record whose first ``leading_empty`` cells are empty and that has some text continues
    the row above: each non-empty cell is appended to the cell at the same position, with
    ``glue`` between them (``glue_by_column`` overrides it per position, e.g. ``""`` to put
    an order id back together).
    """

    leading_empty: int = 2
    glue: str = " "
    glue_by_column: Mapping[int, str] = field(default_factory=dict)

    def continues(self, cells: Sequence[str]) -> bool:
        head = cells[: self.leading_empty]
        return (
            len(cells) > self.leading_empty
            and not any(cell.strip() for cell in head)
            and any(cell.strip() for cell in cells[self.leading_empty :])
        )

    def join(self, above: Sequence[str], below: Sequence[str]) -> tuple[str, ...]:
        cells = list(above)
        for index, cell in enumerate(below):
            if not cell.strip():
                continue
            while len(cells) <= index:
                cells.append("")
            glue = self.glue_by_column.get(index, self.glue)
            cells[index] = f"{cells[index].strip()}{glue}{cell.strip()}".strip()
        return tuple(cells)


@dataclass(frozen=True)
class CsvFile:
    """An export read into rows. ``outcomes`` are the rows :func:`read_csv` settled itself
    (header, blank lines, orphan continuations); ``rows`` are the data rows left for the
    plugin. ``total_rows`` counts both: what :meth:`ImportReport.check` expects."""

    path: Path
    header: tuple[str, ...]
    rows: tuple[Row, ...]
    outcomes: tuple[RowOutcome, ...] = ()
    encoding: str = "utf-8"
    delimiter: str = ","
    header_line: int = 1

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def total_rows(self) -> int:
        return len(self.rows) + len(self.outcomes)

    def record_into(self, report: ImportReport) -> None:
        """Add the outcomes settled while reading to ``report``."""
        for outcome in self.outcomes:
            report.add(outcome)


def decode(raw: bytes, encoding: str | None = None, *, file: str = "") -> tuple[str, str]:
    """The text of ``raw`` and the encoding it was read with. Without ``encoding``: UTF-8
    (a BOM stripped), else ISO-8859-1, which reads any byte (spreadsheets re-save exports as
    Latin-1). A named encoding that does not fit raises :class:`BadEncoding`."""
    if encoding:
        try:
            return raw.decode(encoding).lstrip("\ufeff"), encoding
        except LookupError:
            raise BadEncoding(f"unknown encoding {encoding!r}", file=file) from None
        except UnicodeDecodeError as exc:
            raise BadEncoding(
                f"not {encoding} text (byte {exc.start}: {exc.reason}); name the file's "
                "encoding, e.g. 'iso-8859-1'",
                file=file,
            ) from None
    try:
        return raw.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError:
        return raw.decode(FALLBACK_ENCODING).lstrip("\ufeff"), FALLBACK_ENCODING


def sniff_delimiter(text: str, candidates: Sequence[str] = DELIMITERS) -> str:
    """The delimiter of the first non-blank line: the candidate it holds most often outside
    quotes; ``,`` when it holds none."""
    first = next((line for line in text.splitlines() if line.strip()), "")
    outside, quoted = [], False
    for char in first:
        if char == '"':
            quoted = not quoted
        elif not quoted:
            outside.append(char)
    counts = {d: outside.count(d) for d in candidates}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def read_bytes(path: Path, *, file: str = "") -> bytes:
    name = file or path.name
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise MissingFile("file not found", file=str(path)) from None
    except IsADirectoryError:
        raise BadFile("is a folder, not a CSV file", file=name) from None
    except OSError as exc:
        raise BadFile(f"cannot be read ({exc.strerror or exc})", file=name) from None


def read_csv(
    path: Path,
    *,
    encoding: str | None = None,
    delimiter: str | None = None,
    has_header: bool = True,
    continuation: Continuation | None = None,
) -> CsvFile:
    """Read ``path`` into a :class:`CsvFile`. ``delimiter=None`` sniffs it; ``continuation``
    (off by default) repairs rows broken over lines. Raises :class:`MissingFile`,
    :class:`BadEncoding`, :class:`BadFile` or :class:`EmptyFile` (no row at all)."""
    name = path.name
    text, used = decode(read_bytes(path), encoding, file=name)
    sep = delimiter or sniff_delimiter(text)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=sep)
    header: tuple[str, ...] | None = None
    header_line = 0
    rows: list[Row] = []
    outcomes: list[RowOutcome] = []
    start = 1
    try:
        for cells in reader:
            line, start = start, reader.line_num + 1
            if not any(cell.strip() for cell in cells):
                outcomes.append(RowOutcome(name, line, Outcome.SKIPPED, "blank", "a blank line"))
                continue
            if header is None and has_header:
                header, header_line = tuple(cell.strip() for cell in cells), line
                outcomes.append(RowOutcome(name, line, Outcome.SKIPPED, "header", "the header row"))
                continue
            if continuation is not None and continuation.continues(cells):
                if rows:
                    above = rows[-1]
                    rows[-1] = Row(
                        above.line, continuation.join(above.cells, cells), (*above.joined, line)
                    )
                else:
                    outcomes.append(
                        RowOutcome(
                            name,
                            line,
                            Outcome.REPORTED,
                            "orphan_continuation",
                            "a continuation line (it starts with empty cells) with no row "
                            "above it to join; check the file was not cut",
                            Row(line, tuple(cells)).text,
                        )
                    )
                continue
            rows.append(Row(line, tuple(cells)))
    except csv.Error as exc:
        raise BadFile(str(exc), file=name, line=reader.line_num) from exc
    if has_header and header is None:
        raise EmptyFile("the file is empty (no header row)", file=name)
    if not has_header and not rows:
        raise EmptyFile("the file is empty", file=name)
    # A blank line *before* the header is no data row either: it keeps its outcome.
    return CsvFile(path, header or (), tuple(rows), tuple(outcomes), used, sep, header_line)
