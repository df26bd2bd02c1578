"""Host pages. The home page shows the portfolio of every active broker, plugin or legacy."""

from __future__ import annotations

import os

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from stonks_plugins.conf import plugin_settings
from stonks_plugins.hosting.aggregators import panels as insight_panels
from stonks_plugins.runtime.budget import stale_notes

from .core.aggregators import PortfolioAggregator


@login_required
def home(request: HttpRequest) -> HttpResponse:
    portfolio = PortfolioAggregator().get_portfolio()
    total = round(sum(e.value for e in portfolio.items), 2)
    safe_mode = bool(plugin_settings.SAFE_MODE)
    insights = [] if safe_mode else insight_panels(portfolio.items)
    # Brokers (and panels) shown from an earlier answer: which, as of when, and why.
    stale = stale_notes()
    # Each row carries its broker's "as of" itself: a loop over the notes in every row cost
    # the page about a millisecond once one broker was late.
    as_of = {s.plugin: s.hhmm for s in stale}
    return render(
        request,
        "home.html",
        {
            "portfolio": portfolio,
            "rows": [(e, as_of.get(e.broker)) for e in portfolio.items],
            "total": total,
            "safe_mode": safe_mode,
            "insights": insights,
            "stale": stale,
        },
    )


def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness for load balancers; the pid tells which worker answered."""
    return JsonResponse({"status": "ok", "pid": os.getpid()})
