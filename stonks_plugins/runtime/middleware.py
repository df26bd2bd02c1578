"""Gives each request its page budget (``PLUGINS_PAGE_BUDGET``) and makes sure the process
runs its background runtime (warm-up, retries, the outbox) from its first request on; that
runtime's deferrable work waits while a request is in flight (:mod:`.quiet`)."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from . import budget, quiet
from .background import ensure_started


class PageBudgetMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        ensure_started()
        with quiet.request(), budget.page():
            return self.get_response(request)
