"""The export error family: what a broker plugin raises when an export cannot be used.

Two kinds, kept apart on purpose. An :class:`ExportError` means a whole file cannot be read
(missing, empty, not text, an unknown header): the import of that file stops and the plugin's
health says so. A :class:`RowError` means one row cannot be used: it is recorded in the
:class:`~stonks_plugins.exports.report.ImportReport` as *reported* and the rest of the file
still counts, so one odd line in years of history never hides the rest of it.
"""

from __future__ import annotations

from ..errors import StonksPluginsError


class ExportError(StonksPluginsError, ValueError):
    """A file that cannot be read at all. ``str()`` names the file and, when known, the line
    (``Account.csv line 1: ...``), which is what the user has to look at."""

    def __init__(self, message: str, *, file: str = "", line: int | None = None) -> None:
        self.message = message
        self.file = file
        self.line = line
        super().__init__(self._where() + message)

    def _where(self) -> str:
        if not self.file:
            return ""
        return f"{self.file} line {self.line}: " if self.line else f"{self.file}: "


class MissingFile(ExportError):
    """No export where one was expected (callers may treat some files as optional)."""


class EmptyFile(ExportError):
    """The file has no header row (nothing but blank lines, or zero bytes)."""


class BadEncoding(ExportError):
    """The bytes are not text in the encoding the file was read with."""


class BadFile(ExportError):
    """Not a readable CSV file (a folder, an unterminated quote, a NUL byte...)."""


class BadHeader(ExportError):
    """The header row is not one of the layouts the plugin knows, or lacks a column."""


class IncompleteReport(ExportError):
    """The import report does not account for every row of a file exactly once."""


class RowError(StonksPluginsError, ValueError):
    """One row cannot be used: it is *reported* (with ``rule`` as its short code and the
    message as the reason a user reads) and the import goes on."""

    rule = "bad_row"

    def __init__(self, reason: str, *, rule: str | None = None) -> None:
        self.reason = reason
        if rule is not None:
            self.rule = rule
        super().__init__(reason)


class BadNumber(RowError):
    """A cell that should hold a number does not."""

    rule = "bad_number"


class BadDate(RowError):
    """A cell that should hold a date, a time or a time zone does not."""

    rule = "bad_date"


class MissingValue(RowError):
    """A cell the row needs is empty."""

    rule = "missing_value"


class ShortRow(RowError):
    """The row has fewer cells than the columns it must be read from."""

    rule = "short_row"
