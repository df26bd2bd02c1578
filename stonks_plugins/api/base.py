"""What every plugin endpoint shares: authentication, the permission rule, the name lookup,
the actor recorded in events, the request limits, and the schema's error responses and
``{name}`` parameter. The viewsets (``views``, ``monitor_views``, ``instance_views``,
``config_views``, ``log_views``, ``install_views``) build on it."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import viewsets
from rest_framework.authentication import SessionAuthentication, TokenAuthentication
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ..models import Plugin
from .metadata import SchemaPointerMetadata
from .parsers import StrictJSONParser, check_declared_size
from .permissions import PluginPermission
from .serializers import ErrorSerializer, PluginDetailSerializer

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


class PluginViewSetBase(PluginAPIView, viewsets.GenericViewSet):
    """The parts of ``views.PluginViewSet`` (its actions are split by resource into mixins
    of this class, so that the routes and their names stay those of one viewset)."""

    def _plugin(self, plugin: Plugin) -> Response:
        """The plugin's detail, as an action answers."""
        return Response(PluginDetailSerializer(plugin, context=self.get_serializer_context()).data)
