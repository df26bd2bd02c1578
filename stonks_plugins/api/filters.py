"""Query filters for the plugin list and the event list.

Filters are django-filter FilterSets (so the OpenAPI schema lists each parameter with its
enum); a bad value is a 400 ``validation_error`` naming the parameter. Ordering always ends
with the unique ``name`` (or the event id), so pages are stable.
"""

from __future__ import annotations

from typing import Any

import django_filters
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.utils.translation import gettext
from django_filters.rest_framework import DjangoFilterBackend
from django_filters.utils import translate_validation
from rest_framework.filters import OrderingFilter, SearchFilter
from rest_framework.request import Request

from ..discovery.candidate import Source
from ..errors import ReasonCode
from ..lifecycle.states import PluginState
from ..models import EventKind, Plugin, PluginEvent, PluginType
from .errors import QueryValidationError


def _choices(enum: Any) -> list[tuple[str, str]]:
    return [(member.value, member.value) for member in enum]


class StrictFilterSet(django_filters.FilterSet):
    """A FilterSet that holds to the schema: an empty value (``?state=``) and a boolean that
    is not ``true`` or ``false`` are errors, where django-filter would quietly not filter."""

    def is_valid(self) -> bool:
        if not self.is_bound:
            return True
        form = self.form
        form.is_valid()
        for name, flt in self.filters.items():
            raw = self.data.get(name)
            if raw is None or name in form.errors:
                continue
            if raw == "":
                message = gettext("may not be empty; leave the parameter out to not filter")
                form.add_error(name, ValidationError(message, code="blank"))
            elif isinstance(flt, django_filters.BooleanFilter) and raw not in ("true", "false"):
                message = gettext("must be true or false, not %(value)r") % {"value": raw}
                form.add_error(name, ValidationError(message, code="invalid"))
        return not form.errors


class PluginFilter(StrictFilterSet):
    state = django_filters.ChoiceFilter(choices=_choices(PluginState), help_text="Lifecycle state.")
    type = django_filters.ChoiceFilter(choices=PluginType.choices, help_text="Plugin type.")
    source = django_filters.ChoiceFilter(choices=_choices(Source), help_text="Where it was found.")
    enabled = django_filters.BooleanFilter(help_text="Switched on by an operator.")
    missing = django_filters.BooleanFilter(help_text="Not found by the last sync.")
    error_code = django_filters.ChoiceFilter(
        choices=_choices(ReasonCode), help_text="Reason code of a plugin in error."
    )

    class Meta:
        model = Plugin
        fields = ["state", "type", "source", "enabled", "missing", "error_code"]


class EventFilter(StrictFilterSet):
    kind = django_filters.ChoiceFilter(choices=EventKind.choices, help_text="Kind of event.")

    class Meta:
        model = PluginEvent
        fields = ["kind"]


class FilterBackend(DjangoFilterBackend):
    """django-filter, with a bad parameter reported as a query validation error. A request
    that names none of the filters skips the FilterSet: building its form costs more than
    the rest of a short list, and it would filter nothing and find nothing wrong."""

    def filter_queryset(self, request: Request, queryset: QuerySet, view: Any) -> QuerySet:
        filterset_class = getattr(view, "filterset_class", None)
        names = getattr(filterset_class, "base_filters", None)
        # A filter's widget may read suffixed parameters (``x_min``): any prefix counts.
        if names is not None and not any(
            key.startswith(name) for key in request.query_params for name in names
        ):
            return queryset
        filterset = self.get_filterset(request, queryset, view)
        if filterset is None:
            return queryset
        if not filterset.is_valid():
            raise QueryValidationError(translate_validation(filterset.errors).detail)
        return filterset.qs


class StableOrderingFilter(OrderingFilter):
    """``?ordering=-state_changed_at`` etc., always tie-broken by the unique key."""

    tie_breaker = "name"
    ordering_description = (
        "Sort by name, state, type, source, version or state_changed_at; '-' before a field "
        "sorts descending; separate several with commas. Unknown fields are ignored; name "
        "always breaks ties."
    )

    def get_ordering(self, request: Request, queryset: QuerySet, view: Any) -> list[str]:
        ordering = list(super().get_ordering(request, queryset, view) or [])
        key = getattr(view, "ordering_tie_breaker", self.tie_breaker)
        if key not in ordering and f"-{key}" not in ordering:
            ordering.append(key)
        return ordering


MAX_SEARCH_CHARS = 200


class PluginSearchFilter(SearchFilter):
    """Each word is a condition on three columns: bounding the length bounds the query to
    what the database accepts (SQLite refuses an expression 1000 deep, PostgreSQL a NUL in
    a string). The limits are in the schema, so a client can know them."""

    search_description = (
        "Words to find (case-insensitive) in the name, display name or description; every "
        f"word must match. At most {MAX_SEARCH_CHARS} characters."
    )

    def get_search_terms(self, request: Request) -> list[str]:
        raw = request.query_params.get(self.search_param, "")
        if "\x00" in raw:
            problem = gettext("may not hold a NUL character (%(char)s)") % {"char": "%00"}
        elif len(raw) > MAX_SEARCH_CHARS:
            problem = gettext("may be at most %(max)d characters long, not %(length)d") % {
                "max": MAX_SEARCH_CHARS,
                "length": len(raw),
            }
        else:
            return list(super().get_search_terms(request))
        raise QueryValidationError({self.search_param: [problem]})

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            parameter["schema"].update({"maxLength": MAX_SEARCH_CHARS, "pattern": "^[^\\x00]*$"})
        return parameters
