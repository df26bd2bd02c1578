"""The Bitvavo plugin class: lifecycle defaults, plus a health check of the history export."""

from __future__ import annotations

from typing import Any

from stonks_plugins.sdk import BaseBrokerPlugin, HealthStatus

from .exports import ExportFormatError, read_history
from .services import data_folder, holdings

SHOWN_ISSUES = 5
"""How many skipped rows the health details spell out (the count is always complete)."""


class BitvavoPlugin(BaseBrokerPlugin):
    """Services and config class come from the manifest; this class only adds health.

    Healthy: the transaction history exists and every row was read. Degraded: some rows were
    skipped (``details["issues"]`` counts them, ``details["first_issues"]`` says where and
    why), or a coin was never traded so it has no price. Unhealthy: no export, or one that
    cannot be read at all.
    """

    def health_check(self) -> HealthStatus:
        # The host attaches the plugin's config; without one the shipped sample is used.
        folder = data_folder(getattr(self, "config", None))
        details: dict[str, Any] = {"folder": str(folder)}
        try:
            history = read_history(folder)
        except (ExportFormatError, OSError) as exc:
            return HealthStatus.unhealthy(str(exc), **details)
        positions, _ = holdings(history.rows)
        details.update(
            history_rows=len(history.rows),
            assets=len(positions),
            files=dict(history.layouts),
            issues=len(history.issues),
        )
        problems: list[str] = []
        if history.issues:
            details["first_issues"] = [str(issue) for issue in history.issues[:SHOWN_ISSUES]]
            shown = "; ".join(details["first_issues"][:2])
            more = f" (and {len(history.issues) - 2} more)" if len(history.issues) > 2 else ""
            problems.append(f"{len(history.issues)} row(s) skipped: {shown}{more}")
        unpriced = [holding.currency for holding in positions if not holding.price]
        if unpriced:
            details["unpriced"] = unpriced
            problems.append(f"no quote price seen for {', '.join(unpriced)}")
        if problems:
            return HealthStatus.degraded("; ".join(problems), **details)
        return HealthStatus.healthy("Bitvavo transaction history readable", **details)
