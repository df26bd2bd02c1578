"""Host pages. The home page shows the portfolio of every active broker, plugin or legacy."""

from __future__ import annotations

import os
from html import escape

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.safestring import SafeString, mark_safe
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
# plugin on every page, and those pages must cost little more than a healthy site's. Each
# value is escaped by the standard library's html.escape, which Django's escape() calls
# behind wrappers for lazy strings and SafeString that cost ~10 µs a note here (notes are
# plain strings: a plugin's text is never trusted as markup).


def _failure_items(failures: dict[str, str]) -> SafeString:
    """One ``<li>`` per broker that could not be read: its name and why."""
    items = []
    for broker, message in failures.items():
        name = escape(broker)
        items.append(f'<li data-broker="{name}"><strong>{name}</strong>: {escape(message)}</li>')
    return mark_safe("".join(items))  # every value above is escaped


def _stale_items(stale: list[Stale]) -> SafeString:
    """One ``<li>`` per plugin shown from an earlier answer: as of when, and why."""
    as_of = escape(gettext("as of"))
    items = []
    for s in stale:
        name = escape(s.plugin)
        items.append(
            f'<li data-stale="{name}"><strong>{name}</strong>: {as_of} '
            f'<time datetime="{escape(s.iso)}" title="{escape(s.full)}">{escape(s.hhmm)}</time>'
            f" ({escape(s.reason)})</li>"
        )
    return mark_safe("".join(items))  # every value above is escaped


def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness for load balancers; the pid tells which worker answered."""
    return JsonResponse({"status": "ok", "pid": os.getpid()})
