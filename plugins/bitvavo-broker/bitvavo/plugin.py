"""The Bitvavo plugin class: lifecycle defaults, plus a health check of the history export."""

from __future__ import annotations

from typing import Any

from stonks_plugins.sdk import BaseBrokerPlugin, HealthStatus

from .exports import ExportFormatError, read_history
from .services import data_folder, holdings


class BitvavoPlugin(BaseBrokerPlugin):
    """Services and config class come from the manifest; this class only adds health.

    Healthy means the transaction history exists and parses, which is what the services need.
    """

    def health_check(self) -> HealthStatus:
        # The host may attach the plugin's config; without one the shipped sample is used.
        folder = data_folder(getattr(self, "config", None))
        details: dict[str, Any] = {"folder": str(folder)}
        try:
            rows = read_history(folder)
        except (ExportFormatError, OSError) as exc:
            return HealthStatus.unhealthy(str(exc), **details)
        positions, _ = holdings(rows)
        details.update(history_rows=len(rows), assets=len(positions))
        unpriced = [holding.currency for holding in positions if not holding.price]
        if unpriced:
            details["unpriced"] = unpriced
            message = f"no quote price seen for {', '.join(unpriced)}"
            return HealthStatus.degraded(message, **details)
        return HealthStatus.healthy("Bitvavo transaction history readable", **details)
