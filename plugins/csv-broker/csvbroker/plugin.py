"""The CSV broker plugin class: lifecycle defaults, plus a health check of the files."""

from __future__ import annotations

from typing import Any

from stonks_plugins.sdk import BaseBrokerPlugin, ExportError, HealthStatus

from .services import data_folder, load, positions, settings_of, totals

SHOWN_ROWS = 5
"""How many reported rows the health details spell out (the count is always complete)."""


class CsvBrokerPlugin(BaseBrokerPlugin):
    """Services and config class come from the manifest; this class only adds health.

    Healthy: the files match the mapping and every row was understood or skipped by a named
    rule. Degraded: rows were reported (``details["reported"]`` counts them,
    ``details["first_reported"]`` says where and why), the report does not account for every
    row, or amounts in a currency without an ``fx_rates`` entry are left out of the totals.
    Unhealthy: no file to read, or a file the mapping does not fit.
    """

    def health_check(self) -> HealthStatus:
        config = getattr(self, "config", None)
        folder = data_folder(config)
        details: dict[str, Any] = {"folder": str(folder)}
        try:
            data = load(config)
        except (ExportError, OSError) as exc:
            return HealthStatus.unhealthy(str(exc), **details)
        result = totals(data, settings_of(config))
        details.update(
            files=list(data.files),
            rows=len(data.records),
            positions=len(positions(data.records)),
            rows_by_outcome=data.report.counts(),
            reported=len(data.report),
        )
        problems: list[str] = []
        if len(data.report):
            reported = data.report.reported_rows()
            details["first_reported"] = [str(row) for row in reported[:SHOWN_ROWS]]
            problems.append(data.report.summary(shown=2))
        problems += data.report.problems()
        if result.unconverted:
            details["unconverted_currencies"] = list(result.unconverted)
            problems.append(
                f"no fx_rates entry for {', '.join(result.unconverted)}: left out of the totals"
            )
        if problems:
            return HealthStatus.degraded("; ".join(problems), **details)
        return HealthStatus.healthy("CSV files readable", **details)
