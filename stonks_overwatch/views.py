"""Host pages. The home page shows the portfolio of every active broker, plugin or legacy."""

from __future__ import annotations

import os

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.html import format_html_join
from django.utils.safestring import SafeString
from django.utils.translation import gettext

from stonks_plugins.conf import plugin_settings
from stonks_plugins.hosting.aggregators import panels as insight_panels
from stonks_plugins.runtime.budget import Stale, stale_notes

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
            "stale_items": _stale_items(stale),
            "failure_items": _failure_items(portfolio.failures),
        },
    )


# The notes are built here rather than in a template loop, where each cost about 25 µs (its
# loop variables, lookups and escaping): a site with many broken plugins shows one per
# plugin on every page, and those pages must cost little more than a healthy site's.


def _failure_items(failures: dict[str, str]) -> SafeString:
    """One ``<li>`` per broker that could not be read: its name and why."""
    return format_html_join(
        "",
        '<li data-broker="{}"><strong>{}</strong>: {}</li>',
        ((broker, broker, message) for broker, message in failures.items()),
    )


def _stale_items(stale: list[Stale]) -> SafeString:
    """One ``<li>`` per plugin shown from an earlier answer: as of when, and why."""
    as_of = gettext("as of")
    return format_html_join(
        "",
        '<li data-stale="{}"><strong>{}</strong>: {} '
        '<time datetime="{}" title="{}">{}</time> ({})</li>',
        ((s.plugin, s.plugin, as_of, s.iso, s.full, s.hhmm, s.reason) for s in stale),
    )


def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness for load balancers; the pid tells which worker answered."""
    return JsonResponse({"status": "ok", "pid": os.getpid()})
