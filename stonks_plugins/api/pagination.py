"""Page-number pagination: ``{"count", "next", "previous", "results"}``, ``?page=`` and
``?page_size=`` (larger than 1,000 is capped at 1,000, so a dashboard can fetch every plugin in
one request).

Unlike DRF's default, a malformed ``page`` or ``page_size`` (``abc``, ``0``, ``2.5``) is a 400
naming the parameter, not silently the first page: the schema says "integer, at least 1" and
the API holds to it. A page beyond the last is a 404.

The rows are counted only when the page cannot tell their number: a page that reads one row
past its end and finds none knows the total itself (a dashboard listing every plugin makes no
``COUNT``); when rows lie beyond the page, or a page past the first is empty, they are counted
as Django's paginator counts them.
"""

from __future__ import annotations

import re
from typing import Any

from django.core.paginator import Page, Paginator
from django.utils.translation import gettext
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request

from .errors import QueryValidationError

_WHOLE = re.compile(r"^[0-9]+$")
_MAX_OFFSET = 2**63 - 1  # the databases' OFFSET is a 64-bit integer


def positive_int(request: Request, param: str) -> int | None:
    """The query parameter as an integer >= 1, None when absent; a 400 otherwise."""
    raw = request.query_params.get(param)
    if raw is None:
        return None
    if not _WHOLE.match(raw) or int(raw) < 1:
        message = gettext("must be a whole number of at least 1, not %(value)r") % {"value": raw}
        raise QueryValidationError({param: [message]})
    return int(raw)


class CountWhenNeededPaginator(Paginator):
    """A paginator that reads the page first, one row past its end, and counts the rows only
    when some lie beyond the page (the count is then asked for by the response) or the page
    is empty past the first (to answer as Django's paginator does)."""

    def page(self, number: Any) -> Page:
        bottom = (number - 1) * self.per_page if isinstance(number, int) else -1
        if bottom < 0 or bottom + self.per_page >= _MAX_OFFSET or self.orphans:
            return super().page(number)  # Django's own checks and messages (count first)
        rows = list(self.object_list[bottom : bottom + self.per_page + 1])
        if len(rows) > self.per_page:
            return Page(rows[: self.per_page], number, self)
        if not rows and (number > 1 or not self.allow_empty_first_page):
            return super().page(number)  # past the last page: its 404
        # The page holds the last row: the total is known. (Paginator.count is cached.)
        self.__dict__["count"] = bottom + len(rows)
        return Page(rows, number, self)


class StandardPagination(PageNumberPagination):
    django_paginator_class = CountWhenNeededPaginator
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 1000
    last_page_strings = ()  # the schema says integer: no "last"
    # JSON only: no browsable API whose page controls would need the count on every page.
    template = None

    def get_page_size(self, request: Request) -> int:
        size = positive_int(request, self.page_size_query_param)
        return self.page_size if size is None else min(size, self.max_page_size)

    def get_page_number(self, request: Request, paginator: Paginator) -> int:
        number = positive_int(request, self.page_query_param)
        return 1 if number is None else number

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        params = super().get_schema_operation_parameters(view)
        for param in params:
            param["schema"]["minimum"] = 1
            if param["name"] == self.page_size_query_param:
                param["description"] = (
                    f"Results per page (default {self.page_size}; more than "
                    f"{self.max_page_size} is capped at {self.max_page_size})."
                )
            else:
                param["description"] = "Page number, from 1; beyond the last page is a 404."
        return params
