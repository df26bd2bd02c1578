"""The plugin endpoints and the system health endpoint.

Each view is a translation: read the path and query, call the manager with the requesting
user as the actor, serialise what it returns. Errors the manager raises (``PluginNotFound``,
``IllegalTransition``, ``PluginError``) become 404/409 in the one error shape
(``errors.exception_handler``). No view changes a row itself.

``PluginViewSet`` is one viewset (one set of routes and route names) in parts: the list, the
detail, the operator actions and sync here; health, metrics, import reports and events in
``monitor_views``; instances in ``instance_views``.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ..dependents import HasDependents
from ..manager import manager
from .base import NAME, TAG, PluginAPIView, errors
from .errors import QueryValidationError, error_body
from .filters import FilterBackend, PluginFilter, PluginSearchFilter, StableOrderingFilter
from .instance_views import PluginInstanceActions
from .monitor_views import PluginMonitoringActions
from .pagination import StandardPagination
from .serializers import (
    SUMMARY_FIELDS,
    DisableSerializer,
    PluginDetailSerializer,
    PluginSerializer,
    SyncReportSerializer,
    SystemHealthSerializer,
    with_translations,
)
from .system import system_health

__all__ = ["NAME", "TAG", "PluginAPIView", "PluginViewSet", "SystemHealthView", "errors"]

DISABLE_BODY = {
    "type": "object",
    "properties": {
        "force": {
            "type": "boolean",
            "default": False,
            "description": "Disable it even though enabled plugins need it (as the query's).",
        }
    },
    "additionalProperties": False,
}
"""The optional body of a disable: closed (the view reads only ``force``)."""


class PluginViewSet(PluginMonitoringActions, PluginInstanceActions):
    """Plugins: list, detail, the operator actions, health, metrics and events."""

    change_actions = frozenset({"enable", "disable", "reload", "sync"})
    serializer_class = PluginDetailSerializer
    pagination_class = StandardPagination
    filter_backends = [FilterBackend, PluginSearchFilter, StableOrderingFilter]
    filterset_class = PluginFilter
    search_fields = ["name", "display_name", "description"]
    ordering_fields = ["name", "state", "type", "source", "version", "state_changed_at"]
    ordering = ["name"]

    def get_queryset(self) -> Any:
        # The list loads only what it shows (and of the manifest only its translations);
        # the detail goes through manager.get().
        return with_translations(manager.get_available_plugins().only(*SUMMARY_FIELDS))

    @extend_schema(
        tags=[TAG],
        summary="List plugins",
        description="Every known plugin in the contract's summary shape, filtered, searched "
        "(`search` over name, display name and description) and ordered (by name unless "
        "`ordering` says otherwise; name breaks ties), a page at a time.",
        responses={
            200: PluginSerializer(many=True),
            **errors(400, 401, 403, 404, e404="No such page (`page` beyond the last)."),
        },
    )
    def list(self, request: Request) -> Response:
        queryset = self.filter_queryset(self.get_queryset())
        page = self.paginate_queryset(queryset)
        data = PluginSerializer(page, many=True, context=self.get_serializer_context()).data
        return self.get_paginated_response(data)

    @extend_schema(
        tags=[TAG],
        summary="Show a plugin",
        description="Everything known about one plugin: the summary fields, its manifest, "
        "capabilities and services, warnings, error details and links to its actions.",
        parameters=[NAME],
        responses={200: PluginDetailSerializer, **errors(401, 403, 404)},
    )
    def retrieve(self, request: Request, name: str) -> Response:
        return self._plugin(manager.get(name))

    @extend_schema(
        tags=[TAG],
        summary="Enable a plugin",
        description="Switch a plugin on (or retry one in error): it is revalidated and "
        "activated in every process. The response is the plugin afterwards — check `state` "
        "and `error`: a plugin that cannot start is enabled but in `error`.",
        parameters=[NAME],
        request=None,
        responses={200: PluginDetailSerializer, **errors(401, 403, 404, 409)},
    )
    @action(detail=True, methods=["post"])
    def enable(self, request: Request, name: str) -> Response:
        return self._plugin(manager.enable(name, actor=self.actor))

    @extend_schema(
        tags=[TAG],
        summary="Disable a plugin",
        description="Switch a plugin off in every process; plugins that depend on it fail "
        "with `missing_dependency`. While enabled plugins need it, nothing changes and the "
        "answer is **409** with `error.code` `has_dependents` and `error.dependents` (their "
        "names), unless `force` is true (in the body or the query).",
        parameters=[NAME, DisableSerializer],
        request={"application/json": DISABLE_BODY},
        responses={
            200: PluginDetailSerializer,
            **errors(
                400,
                401,
                403,
                404,
                409,
                e400="`force` is not a boolean.",
                e409="Enabled plugins need this one (`has_dependents`, listed in "
                "`dependents`), or the plugin's state does not allow this (`conflict`).",
            ),
        },
    )
    @action(detail=True, methods=["post"])
    def disable(self, request: Request, name: str) -> Response:
        query = DisableSerializer(data=request.query_params.dict())
        if not query.is_valid():
            raise QueryValidationError(query.errors)
        # No body reads as {}; any body sent must be the object the schema says.
        sent = request.data if request.stream is not None else {}
        body = DisableSerializer(data=sent, closed=True)
        body.is_valid(raise_exception=True)
        force = query.validated_data["force"] or body.validated_data["force"]
        try:
            plugin = manager.disable(name, actor=self.actor, force=force)
        except HasDependents as exc:  # nothing changed: who needs it, in the one error shape
            shape = error_body(exc.code, str(exc))
            shape["error"]["dependents"] = exc.dependents
            return Response(shape, status=status.HTTP_409_CONFLICT)
        return self._plugin(plugin)

    @extend_schema(
        tags=[TAG],
        summary="Reload a plugin",
        description="Unload the plugin and load it again from its files in every process "
        "(`revision` goes up). A broken edit shows as `state: error` with its reason. A "
        "disabled plugin cannot be reloaded (409).",
        parameters=[NAME],
        request=None,
        responses={200: PluginDetailSerializer, **errors(401, 403, 404, 409)},
    )
    @action(detail=True, methods=["post"])
    def reload(self, request: Request, name: str) -> Response:
        return self._plugin(manager.reload(name, actor=self.actor))

    @extend_schema(
        tags=[TAG],
        summary="Sync plugins",
        description="Discover plugins (installed packages and plugin folders) and bring the "
        "database in line: new plugins are added, vanished ones marked missing (never "
        "deleted).",
        request=None,
        responses={200: SyncReportSerializer, **errors(401, 403)},
    )
    @action(detail=False, methods=["post"])
    def sync(self, request: Request) -> Response:
        return Response(SyncReportSerializer(manager.sync(actor=self.actor).as_dict()).data)

    @extend_schema(exclude=True)  # documented as GET plugins/{name}/
    @sync.mapping.get
    def retrieve_sync(self, request: Request) -> Response:
        """``plugins/sync/`` is the sync action's route, which would hide the detail of a
        plugin named ``sync`` (a valid name): a GET there is that plugin's detail."""
        return self.retrieve(request, name="sync")


class SystemHealthView(APIView):
    """The whole system, for load balancers and monitoring (see ``system`` for the rule)."""

    authentication_classes: list[type] = []
    permission_classes = [AllowAny]

    @extend_schema(
        tags=["system"],
        summary="System health",
        description="No login needed. **200** `ok`, or `degraded` when some enabled plugins "
        "are in error (listed by name: the site serves everything else, so a load balancer "
        "keeps this process). **503** `unavailable` when the database or the cache does not "
        "answer. Only counts and names are shown.",
        auth=[],
        responses={
            200: OpenApiResponse(SystemHealthSerializer, description="ok or degraded"),
            503: OpenApiResponse(SystemHealthSerializer, description="unavailable"),
        },
    )
    def get(self, request: Request) -> Response:
        health = system_health()
        return Response(
            SystemHealthSerializer(health.as_dict()).data,
            status=health.http_status,
            headers={"Cache-Control": "no-store"},
        )
