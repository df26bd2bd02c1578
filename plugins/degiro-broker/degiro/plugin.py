"""The DeGiro plugin class: lifecycle defaults, plus a health check of the export files."""

from __future__ import annotations

from collections.abc import Callable, Sized
from pathlib import Path
from typing import Any

from stonks_plugins.sdk import BaseBrokerPlugin, HealthStatus

from .exports import (
    ACCOUNT_FILE,
    PORTFOLIO_FILE,
    TRANSACTIONS_FILE,
    ExportFormatError,
    ExportMissingError,
    parse_account,
    parse_portfolio,
    parse_transactions,
)
from .services import data_folder

_CHECKS: tuple[tuple[str, str, Callable[[Path], Sized]], ...] = (
    (PORTFOLIO_FILE, "portfolio_rows", lambda path: parse_portfolio(path)[1]),
    (TRANSACTIONS_FILE, "transaction_rows", parse_transactions),
    (ACCOUNT_FILE, "account_rows", parse_account),
)


class DegiroPlugin(BaseBrokerPlugin):
    """Services and config class come from the manifest; this class only adds health.

    Healthy: every export file exists and parses. Degraded: Transactions.csv or Account.csv
    is missing, so only some services work. Unhealthy: Portfolio.csv is missing, or a file
    is there but cannot be read.
    """

    def health_check(self) -> HealthStatus:
        # The host may attach the plugin's config; without one the shipped samples are used.
        folder = data_folder(getattr(self, "config", None))
        details: dict[str, Any] = {"folder": str(folder)}
        problems: list[str] = []
        fatal = False
        for file_name, key, parse in _CHECKS:
            try:
                details[key] = len(parse(folder / file_name))
            except ExportMissingError as exc:
                problems.append(str(exc))
                fatal = fatal or file_name == PORTFOLIO_FILE
            except (ExportFormatError, OSError) as exc:
                problems.append(str(exc))
                fatal = True
        if problems:
            details["problems"] = problems
            report = HealthStatus.unhealthy if fatal else HealthStatus.degraded
            return report("; ".join(problems), **details)
        return HealthStatus.healthy("DeGiro export files readable", **details)
