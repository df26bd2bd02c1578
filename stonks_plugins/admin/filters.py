"""The plugin list's health column and filter: each plugin's latest health check, read in the
list's own query (a subquery per column, no query per row)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import OuterRef, QuerySet, Subquery
from django.http import HttpRequest
from django.utils.translation import gettext_lazy

from ..health import Health
from ..models import HealthCheck, Plugin
from .labels import health_label

HEALTH_STATES = [h.value for h in Health]


class HealthFilter(admin.SimpleListFilter):
    title = gettext_lazy("health")
    parameter_name = "health"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [*((h, health_label(h)) for h in HEALTH_STATES), ("none", health_label(None))]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        if value == "none":
            return queryset.filter(latest_health__isnull=True)
        if value in HEALTH_STATES:
            return queryset.filter(latest_health=value)
        return queryset


def with_latest_health(qs: QuerySet[Plugin]) -> QuerySet[Plugin]:
    latest = HealthCheck.objects.filter(plugin=OuterRef("pk")).order_by("-created_at", "-id")
    return qs.annotate(
        latest_health=Subquery(latest.values("status")[:1]),
        latest_health_at=Subquery(latest.values("created_at")[:1]),
    )
