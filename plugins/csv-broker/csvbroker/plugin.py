"""The CSV broker plugin class: lifecycle defaults, plus a health check of the files."""

from __future__ import annotations

from typing import Any

from stonks_plugins.sdk import BaseBrokerPlugin, HealthStatus

from .reader import ExportFormatError
from .services import data_folder, load, positions, settings_of, totals

SHOWN_ISSUES = 5
"""How many skipped rows the health details spell out (the count is always complete)."""


class CsvBrokerPlugin(BaseBrokerPlugin):
    """Services and config class come from the manifest; this class only adds health.

    Healthy: the files match the mapping and every row was read. Degraded: some rows were
    skipped (``details["issues"]`` counts them, ``details["first_issues"]`` says where and
    why), or amounts in a currency without an ``fx_rates`` entry are left out of the totals.
    Unhealthy: no file to read, or a file the mapping does not fit.
    """

    def health_check(self) -> HealthStatus:
        config = getattr(self, "config", None)
        folder = data_folder(config)
        details: dict[str, Any] = {"folder": str(folder)}
        try:
            data = load(config)
        except (ExportFormatError, OSError) as exc:
            return HealthStatus.unhealthy(str(exc), **details)
        result = totals(data, settings_of(config))
        details.update(
            files=list(data.files),
            rows=len(data.records),
            positions=len(positions(data.records)),
            issues=len(data.issues),
        )
        problems: list[str] = []
        if data.issues:
            details["first_issues"] = [str(issue) for issue in data.issues[:SHOWN_ISSUES]]
            shown = "; ".join(details["first_issues"][:2])
            more = f" (and {len(data.issues) - 2} more)" if len(data.issues) > 2 else ""
            problems.append(f"{len(data.issues)} row(s) skipped: {shown}{more}")
        if result.unconverted:
            details["unconverted_currencies"] = list(result.unconverted)
            problems.append(
                f"no fx_rates entry for {', '.join(result.unconverted)}: left out of the totals"
            )
        if problems:
            return HealthStatus.degraded("; ".join(problems), **details)
        return HealthStatus.healthy("CSV files readable", **details)
