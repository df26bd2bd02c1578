"""``plugins/{name}/config/`` (GET, PUT, PATCH), ``config/schema/``, ``config/history/`` and
``config/rollback/``.

The config is versioned: GET answers with an ``ETag`` (``"<name>-v<version>"``); a write
must send it back in ``If-Match`` and gets 412 when someone saved meanwhile or sends a weak
ETag (``W/"..."``: If-Match compares strongly, RFC 9110 13.1.1), 428 when it sends none.
Secrets are write-only: shown masked; a masked value sent back keeps the stored one. A config
that does not match the schema answers 400 with the JSON path and rule of every bad field,
and nothing is saved. Saving answers 200 with the new version and its status: ``active``
once applied, ``pending`` while a worker applies it. When the plugin refuses the new config
as it is applied here (its config hook or its initialisation raises), the answer is 422
``config_refused`` with the reason: that version is kept in the history as ``failed``, the
previous version stays live and stays the base of the next write (the ETag says which).
"""

from __future__ import annotations

import re
from typing import Any

from django.utils.translation import gettext, gettext_lazy
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from ..config.validation import ConfigInvalid
from ..config.versions import ConfigView, StaleConfig
from ..manager import manager
from ..redaction import scrub_text
from .base import NAME, TAG, PluginAPIView, errors
from .errors import PreconditionFailed, error_body
from .parsers import StrictJSONParser
from .serializers import ErrorSerializer, ReadOnlySerializer

ETAG = re.compile(r'^\s*"(?P<name>.+)-v(?P<version>\d{1,18})"\s*$')
WEAK = re.compile(r"^\s*W/", re.IGNORECASE)
MAX_VERSION = 2**31 - 1


class PreconditionRequired(exceptions.APIException):
    status_code = status.HTTP_428_PRECONDITION_REQUIRED
    default_detail = gettext_lazy(
        "send If-Match with the ETag from GET plugins/{name}/config/ so that a write based on "
        "an old version is refused instead of overwriting someone else's change"
    )
    default_code = "precondition_required"


class ConfigSerializer(ReadOnlySerializer):
    plugin = serializers.CharField()
    version = serializers.IntegerField(help_text="0 when no config was ever saved.")
    status = serializers.ChoiceField(
        choices=["none", "pending", "active", "failed", "superseded"],
        help_text="active: live; pending: being applied; failed: refused by the plugin "
        "(message says why; the previous version stays live).",
    )
    data = serializers.JSONField(help_text="The config; secret fields read '********'.")
    created_by = serializers.CharField(allow_blank=True)
    created_at = serializers.DateTimeField(allow_null=True)
    message = serializers.CharField(allow_blank=True)
    changed = serializers.ListField(
        child=serializers.CharField(), help_text="JSON paths that changed from the version before."
    )


class RollbackSerializer(serializers.Serializer):
    version = serializers.IntegerField(
        min_value=1, max_value=MAX_VERSION, help_text="The version to restore."
    )

    def create(self, validated_data: Any) -> Any:  # pragma: no cover - never called
        raise NotImplementedError

    def update(self, instance: Any, validated_data: Any) -> Any:  # pragma: no cover
        raise NotImplementedError


IF_MATCH = OpenApiParameter(
    "If-Match",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    required=True,
    description='The ETag from GET (e.g. `"degiro-broker-v3"`), as sent: a strong ETag; '
    'a weak one (`W/"..."`) is refused with 412.',
)
_WRITE_ERRORS = {
    400: OpenApiResponse(
        ErrorSerializer,
        description="The config does not match the plugin's "
        "schema: `details` has the JSON path and rule of every bad field.",
    ),
    412: OpenApiResponse(
        ErrorSerializer, description="If-Match names an old version, or is a weak ETag."
    ),
    413: OpenApiResponse(
        ErrorSerializer,
        description="The body is larger than the server accepts (`payload_too_large`; "
        "DATA_UPLOAD_MAX_MEMORY_SIZE, 2.5 MB by default).",
    ),
    422: OpenApiResponse(
        ErrorSerializer,
        description="The config matches the schema but the plugin refused it when it was "
        "applied (`config_refused`; `message` says why). The new version is kept in the "
        "history as `failed`; the previous version stays live and the `ETag` header names "
        "it, the base of the next write.",
    ),
    428: OpenApiResponse(ErrorSerializer, description="No If-Match header."),
}


def _respond(view: ConfigView, code: int = 200) -> Response:
    return Response(ConfigSerializer(view.as_dict()).data, status=code, headers={"ETag": view.etag})


def _outcome(name: str, saved: ConfigView) -> Response:
    """The answer to a write, from what became of the saved version. Applied here at once
    (the embedded default), it is ``active`` or ``failed``; with a worker, ``pending``."""
    if saved.status != "failed":
        return _respond(manager.get_config(name))
    live = manager.get_config(name)
    reason = scrub_text(saved.message) or gettext("no reason given")
    message = gettext(
        "plugin '%(name)s' refused config version %(version)s when it was applied: "
        "%(reason)s. Version %(live)s stays live; nothing else changed."
    )
    values = {"name": name, "version": saved.version, "reason": reason, "live": live.version}
    return Response(
        error_body("config_refused", message % values),
        status=status.HTTP_422_UNPROCESSABLE_ENTITY,
        headers={"ETag": live.etag},
    )


class PluginConfigViewSet(PluginAPIView, viewsets.GenericViewSet):
    change_actions = frozenset({"rollback"})
    serializer_class = ConfigSerializer
    parser_classes = [StrictJSONParser]  # a config is JSON; a form post is 415

    def _base_version(self, request: Request, name: str) -> int:
        header = request.headers.get("If-Match")
        if not header:
            raise PreconditionRequired()
        if WEAK.match(header):
            current = manager.get_config(name)
            raise PreconditionFailed(
                gettext(
                    "If-Match %(header)r is a weak ETag; a write needs the strong one from GET "
                    "(RFC 9110 strong comparison): the current one is %(etag)s"
                )
                % {"header": header, "etag": current.etag}
            )
        match = ETAG.match(header)
        if match is None or match["name"] != name:
            current = manager.get_config(name)
            raise PreconditionFailed(
                gettext(
                    "If-Match %(header)r is not an ETag of this plugin's config; the current "
                    "one is %(etag)s"
                )
                % {"header": header, "etag": current.etag}
            )
        return int(match["version"])

    def _write(self, request: Request, name: str, partial: bool) -> Response:
        manager.get(name)  # 404 before anything else
        if not isinstance(request.data, dict):  # a malformed body is 400 whatever the ETag
            return Response(
                error_body(
                    "config_invalid",
                    gettext("the config must be a JSON object"),
                    [
                        {
                            "path": "$",
                            "message": gettext("must be a JSON object"),
                            "code": "type",
                            "location": "body",
                        }
                    ],
                ),
                status=status.HTTP_400_BAD_REQUEST,
            )
        base = self._base_version(request, name)
        try:
            view = manager.set_config(
                name, request.data, actor=self.actor, base_version=base, partial=partial
            )
        except StaleConfig as exc:
            raise PreconditionFailed(str(exc)) from exc
        except ConfigInvalid as exc:
            details = [
                {"path": i.path, "message": i.message, "code": i.rule, "location": "body"}
                for i in exc.issues
            ]
            where = ", ".join(d["path"] for d in details) or "$"
            return Response(
                error_body(
                    "config_invalid",
                    gettext("invalid config at %(where)s; nothing was saved") % {"where": where},
                    details,
                ),
                status=status.HTTP_400_BAD_REQUEST,
            )
        return _outcome(name, view)

    @extend_schema(
        tags=[TAG],
        summary="A plugin's config",
        parameters=[NAME],
        responses={200: ConfigSerializer, **errors(401, 403, 404)},
    )
    @action(detail=True, methods=["get"], url_path="config")
    def config(self, request: Request, name: str) -> Response:
        return _respond(manager.get_config(name))

    @extend_schema(
        tags=[TAG],
        summary="Replace a plugin's config",
        parameters=[NAME, IF_MATCH],
        request=OpenApiTypes.OBJECT,
        responses={200: ConfigSerializer, **errors(401, 403, 404), **_WRITE_ERRORS},
    )
    @config.mapping.put
    def put_config(self, request: Request, name: str) -> Response:
        return self._write(request, name, partial=False)

    @extend_schema(
        tags=[TAG],
        summary="Change part of a plugin's config (deep merge)",
        parameters=[NAME, IF_MATCH],
        request=OpenApiTypes.OBJECT,
        responses={200: ConfigSerializer, **errors(401, 403, 404), **_WRITE_ERRORS},
    )
    @config.mapping.patch
    def patch_config(self, request: Request, name: str) -> Response:
        return self._write(request, name, partial=True)

    @extend_schema(
        tags=[TAG],
        summary="A plugin's config schema (JSON Schema; secrets are writeOnly)",
        parameters=[NAME],
        responses={200: OpenApiTypes.OBJECT, **errors(401, 403, 404)},
    )
    @action(detail=True, methods=["get"], url_path="config/schema")
    def config_schema(self, request: Request, name: str) -> Response:
        return Response(manager.config_schema(name))

    @extend_schema(
        tags=[TAG],
        summary="Every saved version of a plugin's config, newest first (secrets masked)",
        parameters=[NAME],
        responses={200: ConfigSerializer(many=True), **errors(401, 403, 404)},
    )
    @action(detail=True, methods=["get"], url_path="config/history")
    def config_history(self, request: Request, name: str) -> Response:
        return Response(
            ConfigSerializer([v.as_dict() for v in manager.config_history(name)], many=True).data
        )

    @extend_schema(
        tags=[TAG],
        summary="Save an earlier config version again as the newest",
        parameters=[NAME, IF_MATCH],
        request=RollbackSerializer,
        responses={200: ConfigSerializer, **errors(401, 403, 404), **_WRITE_ERRORS},
    )
    @action(detail=True, methods=["post"], url_path="config/rollback")
    def rollback(self, request: Request, name: str) -> Response:
        manager.get(name)
        body = RollbackSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        base = self._base_version(request, name)
        try:
            view = manager.rollback_config(
                name, body.validated_data["version"], actor=self.actor, base_version=base
            )
        except StaleConfig as exc:
            raise PreconditionFailed(str(exc)) from exc
        except LookupError as exc:
            raise exceptions.ValidationError({"version": [str(exc)]}) from exc
        except ConfigInvalid as exc:  # the old version no longer fits a newer schema
            raise exceptions.ValidationError(
                {i.path: [i.message] for i in exc.issues} or str(exc)
            ) from exc
        return _outcome(name, view)
