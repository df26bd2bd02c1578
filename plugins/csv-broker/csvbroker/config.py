"""Settings of the generic CSV broker: where the files are and how to read them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from stonks_plugins.sdk import BaseConfig

DEFAULT_COLUMNS: dict[str, str | int] = {
    "date": "Date",
    "kind": "Kind",
    "symbol": "Symbol",
    "name": "Name",
    "quantity": "Quantity",
    "price": "Price",
    "amount": "Amount",
    "fee": "Fee",
    "currency": "Currency",
}
"""Which CSV column holds each field: a header name, or a 0-based position (an integer).
An empty string means the file has no such column. They fit the shipped sample."""


def default_columns() -> dict[str, str | int]:
    return dict(DEFAULT_COLUMNS)


@dataclass
class CsvBrokerConfig(BaseConfig):
    """How to read your CSV files. Must agree with the defaults of the manifest's schema.

    ``kinds`` maps your file's words for a row's kind to ``buy``, ``sell``, ``deposit``,
    ``withdrawal``, ``dividend``, ``dividend_tax`` or ``fee`` (``{"Kauf": "buy"}``); common
    English words are understood without it. ``fx_rates`` gives the value of one unit of a
    foreign currency in ``currency`` so totals can add positions and cash held in it.
    """

    import_folder: str = ""
    file_pattern: str = "*.csv"
    delimiter: str = ","
    decimal_mark: str = "."
    date_format: str = "%Y-%m-%d"
    encoding: str = "utf-8-sig"
    has_header: bool = True
    currency: str = "EUR"
    broker_name: str = "csv"
    columns: dict[str, Any] = field(default_factory=default_columns)
    kinds: dict[str, str] = field(default_factory=dict)
    fx_rates: dict[str, float] = field(default_factory=dict)

    def column_map(self) -> dict[str, str | int]:
        """The mapping with every field present (the defaults fill what the config omits)."""
        return {**DEFAULT_COLUMNS, **(self.columns or {})}
