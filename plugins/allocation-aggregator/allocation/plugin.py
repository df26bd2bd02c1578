"""Breakdowns of the portfolio's value. Values are summed as reported by each broker (in
the position's currency); enable a base-currency middleware to compare like with like."""

from __future__ import annotations

from collections import defaultdict

from stonks_plugins.sdk import BaseAggregatorPlugin, Panel, PortfolioEntry


def _totals(portfolio: list[PortfolioEntry], key: str) -> dict[str, float]:
    totals: dict[str, float] = defaultdict(float)
    for entry in portfolio:
        totals[str(getattr(entry, key) or "unknown")] += entry.value
    return dict(totals)


class AllocationAggregator(BaseAggregatorPlugin):
    def aggregate(self, portfolio: list[PortfolioEntry]) -> list[Panel]:
        if not portfolio:
            return []
        currencies = {e.currency for e in portfolio}
        note = (
            ""
            if len(currencies) <= 1
            else (
                "Values in several currencies (" + ", ".join(sorted(currencies)) + ") are added "
                "as they are; enable a base-currency middleware to convert them first."
            )
        )
        return [
            Panel.breakdown("By currency", _totals(portfolio, "currency")),
            Panel.breakdown("By broker", _totals(portfolio, "broker"), note=note),
            Panel.breakdown("By product type", _totals(portfolio, "product_type"), note=note),
        ]
