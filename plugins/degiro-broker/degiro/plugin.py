"""The DeGiro plugin class: lifecycle defaults, plus a health check of the export files."""

from __future__ import annotations

from typing import Any

from stonks_plugins.sdk import BaseBrokerPlugin, ExportError, HealthStatus

from .exports import Export
from .ledger import FILES, load
from .services import data_folder

SHOWN_REPORTED = 3
"""How many reported rows the health message spells out; the details list more and the
import report (``service.import_report``) lists them all."""

DETAILED_REPORTED = 20


class DegiroPlugin(BaseBrokerPlugin):
    """Services and config class come from the manifest; this class only adds health.

    Healthy: every row of the exports found is understood or skipped by a named rule, and
    the account statement is there (without Transactions.csv or Portfolio.csv, trades and
    positions are rebuilt from it; the import notes say so). Degraded: rows are reported
    (the message counts them and names the first; every one of them is in the import
    report), or Account.csv is missing so deposits, dividends and most fees are unknown.
    Unhealthy: the import folder or all three files are missing, or a file is there but
    cannot be read at all.
    """

    def health_check(self) -> HealthStatus:
        # The host attaches the plugin's config; without one the shipped samples are used.
        folder = data_folder(getattr(self, "config", None))
        details: dict[str, Any] = {"folder": str(folder)}
        try:
            ledger = load(folder)
        except (ExportError, OSError) as exc:
            return HealthStatus.unhealthy(str(exc), **details)
        exports: list[tuple[str, Export[Any] | None]] = [
            (FILES[0], ledger.portfolio),
            (FILES[1], ledger.transactions),
            (FILES[2], ledger.account),
        ]
        report = ledger.report
        for name, export in exports:
            if export is not None:
                details[name] = {
                    **report.counts(name),
                    "language": export.language or "unknown",
                    **({"layout": export.layout} if export.layout else {}),
                }
        reported = report.reported_rows()
        details["reported"] = len(reported)
        if reported:
            details["first_reported"] = [str(o) for o in reported[:DETAILED_REPORTED]]
        if ledger.notes:
            details["notes"] = list(ledger.notes)
        problems: list[str] = []
        if reported:
            problems.append(report.summary(SHOWN_REPORTED) + " (all in the import report)")
        missing = [name for name, export in exports if export is None]
        if missing:
            details["missing"] = missing
        if ledger.account is None:
            # Positions and trades can be rebuilt from the other files; deposits, dividends
            # and the statement's fees cannot.
            problems.append(f"missing in {folder}: {', '.join(missing)}")
        if not report.complete:
            problems.extend(report.problems())
        if problems:
            return HealthStatus.degraded("; ".join(problems), **details)
        return HealthStatus.healthy("DeGiro export files readable", **details)
