"""The DeGiro plugin class: lifecycle defaults, plus a health check of the export files."""

from __future__ import annotations

from typing import Any

from stonks_plugins.sdk import BaseBrokerPlugin, HealthStatus

from .classify import Kind, classify
from .csvio import ExportFormatError, Parsed
from .exports import ACCOUNT_FILE, PORTFOLIO_FILE, TRANSACTIONS_FILE
from .services import data_folder, load_exports

SHOWN_ISSUES = 5
"""How many skipped rows the health details spell out (the count is always complete)."""


class DegiroPlugin(BaseBrokerPlugin):
    """Services and config class come from the manifest; this class only adds health.

    Healthy: the three exports are there and every row was read. Degraded: some rows were
    skipped (``details["issues"]`` counts them, ``details["first_issues"]`` says where and
    why), or Portfolio.csv, Transactions.csv or Account.csv is missing so only some services
    work. Unhealthy: the import folder or all three files are missing, or a file is there
    but cannot be read at all.
    """

    def health_check(self) -> HealthStatus:
        # The host attaches the plugin's config; without one the shipped samples are used.
        folder = data_folder(getattr(self, "config", None))
        details: dict[str, Any] = {"folder": str(folder)}
        try:
            exports = load_exports(folder)
        except (ExportFormatError, OSError) as exc:
            return HealthStatus.unhealthy(str(exc), **details)
        files: list[tuple[str, Parsed[Any] | None]] = [
            (PORTFOLIO_FILE, exports.portfolio),
            (TRANSACTIONS_FILE, exports.transactions),
            (ACCOUNT_FILE, exports.account),
        ]
        missing = [name for name, parsed in files if parsed is None]
        for name, parsed in files:
            if parsed is not None:
                details[name] = {
                    "rows": len(parsed.rows),
                    "skipped": len(parsed.issues),
                    "language": parsed.language or "unknown",
                    **({"layout": parsed.layout} if parsed.layout else {}),
                }
        if exports.account is not None:
            unknown = sorted(
                {row.description for row in exports.account.rows if classify(row) is Kind.OTHER}
            )
            if unknown:
                details["unclassified_descriptions"] = unknown[:SHOWN_ISSUES]
        issues = exports.issues
        details["issues"] = len(issues)
        problems: list[str] = []
        if issues:
            details["first_issues"] = [str(issue) for issue in issues[:SHOWN_ISSUES]]
            shown = "; ".join(details["first_issues"][:2])
            more = f" (and {len(issues) - 2} more)" if len(issues) > 2 else ""
            problems.append(f"{len(issues)} row(s) skipped: {shown}{more}")
        if missing:
            details["missing"] = missing
            problems.append(f"missing in {folder}: {', '.join(missing)}")
        if problems:
            return HealthStatus.degraded("; ".join(problems), **details)
        return HealthStatus.healthy("DeGiro export files readable", **details)
