"""The plugin endpoints and the system health endpoint.

Each view is a translation: read the path and query, call the manager with the requesting
user as the actor, serialise what it returns. Errors the manager raises (``PluginNotFound``,
``IllegalTransition``, ``PluginError``) become 404/409 in the one error shape
(``errors.exception_handler``). No view changes a row itself.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, status, viewsets
from rest_framework.authentication import SessionAuthentication, TokenAuthentication
from rest_framework.decorators import action
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ..dependents import HasDependents
from ..imports import ImportReportUnavailable, NoImportReport
from ..instance_names import InvalidLabel
from ..instances import InstanceRefused
from ..manager import manager
from ..models import EventKind, Plugin
from .errors import Conflict, QueryValidationError, error_body
from .filters import (
    EventFilter,
    FilterBackend,
    PluginFilter,
    PluginSearchFilter,
    StableOrderingFilter,
)
from .metadata import SchemaPointerMetadata
from .pagination import StandardPagination
from .parsers import StrictJSONParser, check_declared_size
from .permissions import PluginPermission
from .serializers import (
    SUMMARY_FIELDS,
    DisableSerializer,
    ErrorSerializer,
    HealthCheckResultSerializer,
    HealthQuerySerializer,
    ImportReportSerializer,
    NewInstanceSerializer,
    PluginDetailSerializer,
    PluginEventSerializer,
    PluginHealthSerializer,
    PluginMetricsSerializer,
    PluginSerializer,
    SyncReportSerializer,
    SystemHealthSerializer,
    with_translations,
)
from .system import system_health

TAG = "plugins"

_ERRORS = {
    400: "Invalid query parameters; `details` names each bad parameter.",
    401: "Not logged in: send `Authorization: Token <key>` or a session cookie.",
    403: "Logged in without the needed permission (view or change plugins), or a session "
    "request without its CSRF token.",
    404: "No plugin by that name (run a sync to discover new ones), or no such page.",
    409: "The plugin's current state does not allow this (`conflict`), or the plugin failed "
    "while it ran (`code` is its reason code).",
}


def errors(*codes: int, **descriptions: str) -> dict[int, OpenApiResponse]:
    """Error responses for the schema; ``e404="..."`` overrides a description."""
    return {
        code: OpenApiResponse(
            response=ErrorSerializer, description=descriptions.get(f"e{code}", _ERRORS[code])
        )
        for code in codes
    }


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

NAME = OpenApiParameter(
    "name",
    OpenApiTypes.STR,
    OpenApiParameter.PATH,
    description="The plugin's name, e.g. `degiro-broker`; for an instance "
    "`degiro-broker:partner`; for a duplicate `degiro-broker@folder` (URL-encode anything "
    "but letters, digits and `-._~@:`).",
)


class PluginAPIView(APIView):
    """What every plugin endpoint shares: token and session authentication, the view/change
    permission rule, the name lookup, the actor for the events, and the request limits (JSON
    bodies only, within the size limit). A view for a new plugin resource (the config views)
    mixes this in to behave the same."""

    authentication_classes = [TokenAuthentication, SessionAuthentication]
    permission_classes = [PluginPermission]
    parser_classes = [StrictJSONParser]
    metadata_class = SchemaPointerMetadata
    lookup_field = "name"
    lookup_url_kwarg = "name"
    # Names hold dots, dashes, '@' and (for a duplicate from a package) '='; never '/'. Nor
    # NUL (%00), which no name holds and PostgreSQL cannot compare: such a URL is a 404.
    lookup_value_regex = r"[^/\x00]+"
    change_actions: frozenset[str] = frozenset()

    request: Request

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        # After authentication: a stranger learns nothing; a body over the limit is
        # refused even by an endpoint that would not read it.
        check_declared_size(request.META)

    @property
    def actor(self) -> str:
        """Who is asking, as recorded in events: the username."""
        return str(self.request.user.get_username())


class PluginViewSet(PluginAPIView, viewsets.GenericViewSet):
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

    def _plugin(self, plugin: Plugin) -> Response:
        return Response(PluginDetailSerializer(plugin, context=self.get_serializer_context()).data)

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
        return Response(PluginHealthSerializer({"plugin": plugin, "history": history}).data)

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

    @extend_schema(
        methods=["GET"],
        tags=[TAG],
        summary="A plugin's instances",
        description="The plugin's default instance (`NAME`) first, then its other instances "
        "(`NAME:LABEL`) by label; `name` may be any of them. Each instance is a plugin of its "
        "own everywhere else in the API (config, health, events...).",
        parameters=[NAME],
        filters=False,
        responses={200: PluginSerializer(many=True), **errors(401, 403, 404)},
    )
    @extend_schema(
        methods=["POST"],
        tags=[TAG],
        summary="Add an instance",
        description="Configure the plugin once more, as `NAME:LABEL`: its own config (the "
        "schema's defaults until one is saved), secrets, state, health, metrics and events, "
        "and its own broker on the pages. Enabled per `PLUGINS_ENABLE_NEW` and started at "
        "once. **409** when the plugin supports a single instance (its manifest's "
        "`capabilities.multiple_instances`), the label is taken, or `name` is an instance.",
        parameters=[NAME],
        request=NewInstanceSerializer,
        responses={200: PluginDetailSerializer, **errors(400, 401, 403, 404, 409)},
    )
    @action(detail=True, methods=["get", "post"], pagination_class=None)
    def instances(self, request: Request, name: str) -> Response:
        if request.method != "POST":
            rows = manager.list_instances(name)
            context = self.get_serializer_context()
            return Response(PluginSerializer(rows, many=True, context=context).data)
        body = NewInstanceSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            plugin = manager.add_instance(name, body.validated_data["label"], actor=self.actor)
        except InvalidLabel as exc:
            raise exceptions.ValidationError({"label": [str(exc)]}) from exc
        except InstanceRefused as exc:
            raise Conflict(str(exc)) from exc
        return self._plugin(plugin)

    @extend_schema(
        tags=[TAG],
        summary="Remove an instance",
        description="Delete the instance `NAME:LABEL` with its config, secrets, events, "
        "health and metrics; every process stops serving it. The answer is the plugin "
        "(`NAME`). A plugin's default instance cannot be removed (**409**).",
        parameters=[
            NAME,
            OpenApiParameter(
                "label",
                OpenApiTypes.STR,
                OpenApiParameter.PATH,
                description="The instance's label (`partner` for `degiro-broker:partner`).",
            ),
        ],
        request=None,
        responses={
            200: PluginDetailSerializer,
            **errors(
                401,
                403,
                404,
                409,
                e404="No plugin by that name, or it has no instance with that label.",
                e409="The label names the plugin's default instance, which cannot be removed.",
            ),
        },
    )
    @action(
        detail=True,
        methods=["delete"],
        url_path=r"instances/(?P<label>[^/\x00]+)",
        url_name="instance",
    )
    def remove_instance(self, request: Request, name: str, label: str) -> Response:
        try:
            plugin = manager.remove_instance(name, label, actor=self.actor)
        except InvalidLabel as exc:  # no instance can have it
            raise exceptions.NotFound(str(exc)) from exc
        except InstanceRefused as exc:
            raise Conflict(str(exc)) from exc
        return self._plugin(plugin)


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
