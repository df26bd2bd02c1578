"""The Bitvavo plugin class: lifecycle defaults, plus a health check of the history export."""

from __future__ import annotations

from typing import Any

from stonks_plugins.sdk import BaseBrokerPlugin, ExportError, HealthStatus

from .exports import read_history
from .services import data_folder, holdings

SHOWN_ROWS = 5
"""How many reported rows the health details spell out (the count is always complete)."""


class BitvavoPlugin(BaseBrokerPlugin):
    """Services and config class come from the manifest; this class only adds health.

    Healthy: the transaction history exists and every row was understood or skipped by a
    named rule. Degraded: rows were reported (an unknown Type, a number that is not one...:
    ``details["reported"]`` counts them, ``details["first_reported"]`` says where and why),
    the report does not account for every row, or a coin was never traded so it has no
    price. Unhealthy: no export, or one that cannot be read at all.
    """

    def health_check(self) -> HealthStatus:
        # The host attaches the plugin's config; without one the shipped sample is used.
        folder = data_folder(getattr(self, "config", None))
        details: dict[str, Any] = {"folder": str(folder)}
        try:
            history = read_history(folder)
        except (ExportError, OSError) as exc:
            return HealthStatus.unhealthy(str(exc), **details)
        report = history.report
        positions, _ = holdings(history.rows)
        details.update(
            history_rows=len(history.rows),
            assets=len(positions),
            files=dict(history.layouts),
            rows_by_outcome=report.counts(),
            reported=len(report),
        )
        problems: list[str] = []
        if len(report):
            details["first_reported"] = [str(row) for row in report.reported_rows()[:SHOWN_ROWS]]
            problems.append(report.summary(shown=2))
        problems += report.problems()
        unpriced = [holding.currency for holding in positions if not holding.price]
        if unpriced:
            details["unpriced"] = unpriced
            problems.append(f"no quote price seen for {', '.join(unpriced)}")
        if problems:
            return HealthStatus.degraded("; ".join(problems), **details)
        return HealthStatus.healthy("Bitvavo transaction history readable", **details)
