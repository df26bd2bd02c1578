"""A plugin's instances, as ``plugins/{name}/instances/`` (list, add) and
``plugins/{name}/instances/{label}/`` (remove). Actions of ``views.PluginViewSet``."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from ..instance_names import InvalidLabel
from ..instances import InstanceRefused
from ..manager import manager
from .base import NAME, TAG, PluginViewSetBase, errors
from .errors import Conflict
from .serializers import NewInstanceSerializer, PluginDetailSerializer, PluginSerializer


class PluginInstanceActions(PluginViewSetBase):
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
