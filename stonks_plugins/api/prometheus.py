"""``/metrics``: the Prometheus text format, for a scraper (no login, no session, no CSRF;
who may read it: :mod:`stonks_plugins.monitoring.scrape_access`)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from ..monitoring import scrape_access


@csrf_exempt
@require_http_methods(["GET", "HEAD"])
def metrics(request: HttpRequest) -> HttpResponse:
    verdict = scrape_access.check(request.META)
    if not verdict.allowed:
        response = HttpResponse(
            verdict.message + "\n", status=verdict.status, content_type="text/plain"
        )
        if verdict.status == 401:
            response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    # prometheus-client is imported by the first scrape, not by every process that routes URLs.
    from ..monitoring import prometheus

    response = HttpResponse(prometheus.render(), content_type=prometheus.CONTENT_TYPE)
    response["Cache-Control"] = "no-store"
    return response
