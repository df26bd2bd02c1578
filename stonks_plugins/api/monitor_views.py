"""A plugin at work, as ``plugins/{name}/...``: its health (stored, or checked now), its
metrics in the answering process, a broker's import report, and its events. Actions of
``views.PluginViewSet``."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from ..imports import ImportReportUnavailable, NoImportReport
from ..manager import manager
from ..models import EventKind
from .base import NAME, TAG, PluginViewSetBase, errors
from .errors import Conflict, QueryValidationError
from .filters import EventFilter
from .serializers import (
    HealthCheckResultSerializer,
    HealthQuerySerializer,
    ImportReportSerializer,
    PluginEventSerializer,
    PluginHealthSerializer,
    PluginMetricsSerializer,
)


class PluginMonitoringActions(PluginViewSetBase):
    @extend_schema(
        methods=["GET"],
        tags=[TAG],
        summary="A plugin's health",
        description="The latest stored health check and the history, newest first.",
        parameters=[NAME, HealthQuerySerializer],
        responses={200: PluginHealthSerializer, **errors(400, 401, 403, 404)},
    )
    @extend_schema(
        methods=["POST"],
        tags=[TAG],
        summary="Check a plugin's health now",
        description="Run the plugin's health check now and store the result. Unhealthy "
        "several times in a row puts the plugin in `error` (`health_failed`).",
        parameters=[NAME],
        request=None,
        responses={200: HealthCheckResultSerializer, **errors(401, 403, 404)},
    )
    @action(detail=True, methods=["get", "post"])
    def health(self, request: Request, name: str) -> Response:
        if request.method == "POST":
            outcome = manager.check_health(name, actor=self.actor)[0]
            result = {"outcome": outcome, "plugin": manager.get(name)}
            return Response(HealthCheckResultSerializer(result).data)
        # A plain dict: with a QueryDict DRF reads "?limit=" as "not given".
        query = HealthQuerySerializer(data=request.query_params.dict())
        if not query.is_valid():
            raise QueryValidationError(query.errors)
        plugin = manager.get(name)
        history = list(manager.health_history(name, limit=query.validated_data["limit"]))
        latest = history[0] if history else None
        shown = {"plugin": plugin, "latest": latest, "history": history}
        return Response(PluginHealthSerializer(shown).data)

    @extend_schema(
        tags=[TAG],
        summary="A plugin's metrics",
        description="Calls, errors, rejections, timeouts and latency per operation, and the "
        "circuit breaker, as counted by the process that answered.",
        parameters=[NAME],
        responses={200: PluginMetricsSerializer, **errors(401, 403, 404)},
    )
    @action(detail=True, methods=["get"])
    def metrics(self, request: Request, name: str) -> Response:
        return Response(PluginMetricsSerializer(manager.metrics(name)).data)

    @extend_schema(
        tags=[TAG],
        summary="A broker's import report",
        description="What the broker's import made of every row of the files it reads: rows "
        "per file and outcome (understood, skipped by a named rule, reported) and the reported "
        "rows with file, line and reason, read from its running services now (reading may "
        "have them read their files first). A plugin that keeps no report answers 404; one "
        "that is disabled or in error 409.",
        parameters=[NAME],
        responses={
            200: ImportReportSerializer,
            **errors(
                401,
                403,
                404,
                409,
                e404="No plugin by that name, or it keeps no import report (not a broker, or "
                "none of its services has one).",
                e409="The plugin is disabled or in error (`conflict`), or it failed or hung "
                "while its report was read (`code` is its reason code).",
            ),
        },
    )
    @action(detail=True, methods=["get"])
    def imports(self, request: Request, name: str) -> Response:
        try:
            report = manager.import_report(name)
        except NoImportReport as exc:
            raise exceptions.NotFound(str(exc)) from exc
        except ImportReportUnavailable as exc:
            raise Conflict(str(exc)) from exc
        return Response(ImportReportSerializer(report).data)

    @extend_schema(
        tags=[TAG],
        summary="A plugin's events",
        description="Every transition and operator action on the plugin, newest first: who "
        "(`actor`), when, from which state to which, why. Secrets are masked.",
        parameters=[
            NAME,
            OpenApiParameter(
                "kind", OpenApiTypes.STR, enum=EventKind.values, description="Only this kind."
            ),
        ],
        filters=False,
        responses={200: PluginEventSerializer(many=True), **errors(400, 401, 403, 404)},
    )
    @action(detail=True, methods=["get"])
    def events(self, request: Request, name: str) -> Response:
        events = EventFilter(request.query_params, queryset=manager.events(name, limit=None))
        if not events.is_valid():
            raise QueryValidationError(events.errors)
        page = self.paginate_queryset(events.qs)
        return self.get_paginated_response(PluginEventSerializer(page, many=True).data)
