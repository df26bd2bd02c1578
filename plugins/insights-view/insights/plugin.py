"""A page at /plugins/insights-view/ with one row per broker: positions and value."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path

from stonks_plugins.sdk import BaseViewPlugin, get_portfolio


@login_required
def summary(request: HttpRequest) -> HttpResponse:
    rows: dict[str, dict[str, Any]] = defaultdict(lambda: {"positions": 0, "value": 0.0})
    for entry in get_portfolio():
        rows[entry.broker]["positions"] += 1
        rows[entry.broker]["value"] += entry.value
    return render(request, "plugins/insights-view/summary.html", {"rows": sorted(rows.items())})


class InsightsView(BaseViewPlugin):
    nav_label = "Insights"

    def get_urlpatterns(self) -> list[Any]:
        return [path("", summary, name="summary")]
