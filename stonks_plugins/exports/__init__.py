"""The export toolkit: what every broker plugin that reads export files needs.

Plugins import these names from :mod:`stonks_plugins.sdk.exports` (or from
:mod:`stonks_plugins.sdk`, which re-exports them); this package holds them, one concern per
module: :mod:`.errors` (the export error family), :mod:`.numbers` (locale-aware decimals),
:mod:`.dates`, :mod:`.aliases` and :mod:`.standard_aliases` (header names across
languages), :mod:`.headers` (header rows to column positions, layouts),
:mod:`.reading` (bytes to rows with line numbers), :mod:`.parsing` (one outcome per row) and
:mod:`.report` (the import report). It imports nothing of Django or the host, so a plugin
running in a process-isolated child can use all of it. See ``docs/exports.md``.
"""

from .aliases import Aliases, currency_in_header, fold
from .dates import DATE_FORMATS, parse_date, parse_time, parse_timestamp, time_zone
from .errors import (
    BadDate,
    BadEncoding,
    BadFile,
    BadHeader,
    BadNumber,
    EmptyFile,
    ExportError,
    IncompleteReport,
    MissingFile,
    MissingValue,
    RowError,
    ShortRow,
)
from .headers import HeaderMap, Layout, detect_layout, map_by_name
from .numbers import (
    decimal_sum,
    detect_decimal_mark,
    mark_of,
    parse_decimal,
    require_decimal,
    round_money,
    split_currency,
)
from .parsing import Parsed, Skip, parse_rows, record
from .reading import Continuation, CsvFile, Row, decode, read_csv, sniff_delimiter
from .report import REPORTED_LIMIT, ImportReport, Outcome, RowOutcome, shorten
from .standard_aliases import STANDARD_ALIASES

__all__ = [
    "DATE_FORMATS",
    "REPORTED_LIMIT",
    "STANDARD_ALIASES",
    "Aliases",
    "BadDate",
    "BadEncoding",
    "BadFile",
    "BadHeader",
    "BadNumber",
    "Continuation",
    "CsvFile",
    "EmptyFile",
    "ExportError",
    "HeaderMap",
    "ImportReport",
    "IncompleteReport",
    "Layout",
    "MissingFile",
    "MissingValue",
    "Outcome",
    "Parsed",
    "Row",
    "RowError",
    "RowOutcome",
    "ShortRow",
    "Skip",
    "currency_in_header",
    "decimal_sum",
    "decode",
    "detect_decimal_mark",
    "detect_layout",
    "fold",
    "map_by_name",
    "mark_of",
    "parse_date",
    "parse_decimal",
    "parse_rows",
    "parse_time",
    "parse_timestamp",
    "read_csv",
    "record",
    "require_decimal",
    "round_money",
    "shorten",
    "sniff_delimiter",
    "split_currency",
    "time_zone",
]
