"""``plugins/install/`` (POST a wheel), ``plugins/{name}/uninstall/`` and
``plugins/{name}/purge/`` (POST): the manager's install, uninstall and purge (see
:mod:`stonks_plugins.install`).

They need ``stonks_plugins.install_plugin`` besides the change permission; installing and
uninstalling also need ``PLUGINS_INSTALL_ENABLED`` (403 ``install_disabled`` when it is off).
The upload is a ``multipart/form-data`` body whose ``wheel`` part is the ``.whl`` file, held
to the wheel size limit (not the JSON body limit). A failure answers in the API's error
shape with a stable code (``bad_target`` 400; ``busy``, ``pip_failed``, ``pip_timeout``,
``not_a_plugin``, ``integrity_failed``, ``not_uninstallable``, ``purge_refused`` 409); pip's
output, when pip ran, ends the message.
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ..install import MAX_WHEEL_BYTES, InstallError, check_enabled
from ..install.results import BAD_TARGET, DISABLED
from ..manager import manager
from .base import NAME, TAG, PluginAPIView, errors
from .errors import PayloadTooLarge, QueryValidationError
from .permissions import holds_any
from .serializers import PluginDetailSerializer, ReadOnlySerializer

INSTALL_PERMISSION = "stonks_plugins.install_plugin"
OUTPUT_SHOWN = 4000
"""Characters of pip's output (its end) put in an error message."""
_UPLOAD_OVERHEAD = 64 * 1024
"""Room for the multipart framing and the other fields around the wheel."""


class InstallFailed(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "install_failed"

    def __init__(self, exc: InstallError) -> None:
        message = exc.message
        if exc.output:
            message += "\n" + gettext("pip said:") + "\n" + exc.output[-OUTPUT_SHOWN:]
        super().__init__(message, code=exc.code)
        if exc.code == DISABLED:
            self.status_code = status.HTTP_403_FORBIDDEN
        elif exc.code == BAD_TARGET:
            self.status_code = status.HTTP_400_BAD_REQUEST


class InstallRequestSerializer(serializers.Serializer):
    wheel = serializers.FileField(allow_empty_file=True, help_text="The plugin's wheel (.whl).")
    upgrade = serializers.BooleanField(
        default=False, help_text="Also upgrade its dependencies that are installed already."
    )

    def create(self, validated_data: Any) -> Any:  # pragma: no cover - never called
        raise NotImplementedError

    def update(self, instance: Any, validated_data: Any) -> Any:  # pragma: no cover
        raise NotImplementedError


class PurgeQuerySerializer(serializers.Serializer):
    keep_config = serializers.BooleanField(
        default=False,
        help_text="Keep the row and its config versions for a reinstall; delete only its "
        "history (events, health checks, metrics).",
    )

    def create(self, validated_data: Any) -> Any:  # pragma: no cover - never called
        raise NotImplementedError

    def update(self, instance: Any, validated_data: Any) -> Any:  # pragma: no cover
        raise NotImplementedError


class InstalledSerializer(ReadOnlySerializer):
    name = serializers.CharField()
    version = serializers.CharField()
    requested = serializers.BooleanField(help_text="The one asked for (else a dependency).")
    previous = serializers.CharField(
        allow_null=True, help_text="The version it replaced (null: not installed before)."
    )


class InstallResultSerializer(ReadOnlySerializer):
    target = serializers.CharField()
    ok = serializers.BooleanField(help_text="Every plugin it provides is active (or disabled).")
    distributions = InstalledSerializer(many=True, help_text="What pip installed.")
    plugins = serializers.ListField(
        child=serializers.DictField(),
        help_text="The plugins it provides, in the summary shape of plugins/, after the sync.",
    )
    output = serializers.CharField(allow_blank=True, help_text="pip's output.")


class UninstallResultSerializer(ReadOnlySerializer):
    name = serializers.CharField()
    distribution = serializers.CharField(help_text="NAME==VERSION of what was uninstalled.")
    plugins = serializers.ListField(
        child=serializers.DictField(),
        help_text="Every plugin it provided: marked missing, config kept.",
    )
    output = serializers.CharField(allow_blank=True, help_text="pip's output.")


class PurgeResultSerializer(ReadOnlySerializer):
    name = serializers.CharField()
    config_kept = serializers.BooleanField()
    deleted = serializers.DictField(
        child=serializers.IntegerField(), help_text="Rows deleted, by model."
    )
    present = serializers.BooleanField(
        help_text="Still found on disk: the next sync records it again."
    )


class PluginInstallViewSet(PluginAPIView, viewsets.GenericViewSet):
    """Install, uninstall and purge; registered before ``PluginViewSet`` so that
    ``plugins/install/`` is this action, not the detail of a plugin named ``install``
    (a GET there still is: see :meth:`retrieve_install`)."""

    change_actions = frozenset({"install", "uninstall", "purge"})

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        if self.action == "install":
            # An upload is held to the wheel limit, not to the JSON body limit: run the
            # checks before PluginAPIView's (authentication and permission, then size).
            APIView.initial(self, request, *args, **kwargs)
            self._check_install_permission(request)
            try:
                declared = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                declared = 0
            if declared > MAX_WHEEL_BYTES + _UPLOAD_OVERHEAD:
                raise PayloadTooLarge(declared, MAX_WHEEL_BYTES + _UPLOAD_OVERHEAD)
            return
        super().initial(request, *args, **kwargs)
        if self.action in self.change_actions:
            self._check_install_permission(request)

    def _check_install_permission(self, request: Request) -> None:
        if not holds_any(request.user, INSTALL_PERMISSION):
            raise exceptions.PermissionDenied(
                gettext(
                    "installing, uninstalling and purging plugins needs the '%(permission)s' "
                    "permission"
                )
                % {"permission": INSTALL_PERMISSION}
            )

    @extend_schema(
        tags=[TAG],
        summary="Install a plugin",
        description="Upload a plugin's wheel (`multipart/form-data`, part `wheel`): pip "
        "installs it into the site's environment, its plugins are verified (files against "
        "the RECORD and the lock, signature under `PLUGINS_SIGNATURE_POLICY`; a refused one "
        "is uninstalled again) and synced, active without a restart. Needs "
        "`stonks_plugins.install_plugin` and `PLUGINS_INSTALL_ENABLED`.",
        request={"multipart/form-data": InstallRequestSerializer},
        responses={200: InstallResultSerializer, **errors(400, 401, 403, 409)},
    )
    @action(detail=False, methods=["post"], parser_classes=[MultiPartParser])
    def install(self, request: Request) -> Response:
        try:
            check_enabled()  # before the upload is read
        except InstallError as exc:
            raise InstallFailed(exc) from exc
        body = InstallRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        wheel = body.validated_data["wheel"]
        try:
            result = manager.install_upload(
                str(wheel.name or ""),
                wheel.chunks(),
                wheel.size,
                actor=self.actor,
                upgrade=body.validated_data["upgrade"],
            )
        except InstallError as exc:
            raise InstallFailed(exc) from exc
        return Response(InstallResultSerializer(result.as_dict()).data)

    @extend_schema(exclude=True)  # documented as GET plugins/{name}/
    @install.mapping.get
    def retrieve_install(self, request: Request) -> Response:
        """A GET of ``plugins/install/`` is the detail of a plugin named ``install``."""
        plugin = manager.get("install")
        return Response(PluginDetailSerializer(plugin, context=self.get_serializer_context()).data)

    @extend_schema(
        tags=[TAG],
        summary="Uninstall a plugin",
        description="pip uninstalls the distribution that provides the plugin (so every "
        "plugin it provides), then a sync marks them missing; their configs are kept. Only "
        "for installed packages (a directory plugin is removed by deleting its folder: 409). "
        "Needs `stonks_plugins.install_plugin` and `PLUGINS_INSTALL_ENABLED`.",
        parameters=[NAME],
        request=None,
        responses={200: UninstallResultSerializer, **errors(401, 403, 404, 409)},
    )
    @action(detail=True, methods=["post"])
    def uninstall(self, request: Request, name: str) -> Response:
        try:
            result = manager.uninstall(name, actor=self.actor)
        except InstallError as exc:
            raise InstallFailed(exc) from exc
        return Response(UninstallResultSerializer(result.as_dict()).data)

    @extend_schema(
        tags=[TAG],
        summary="Purge a plugin that is gone",
        description="Delete the rows of a plugin that is missing or never ran: its events, "
        "health checks and metrics, and its row and config unless `?keep_config=true`. A "
        "plugin that is present and has run is refused (409): uninstall it first. Needs "
        "`stonks_plugins.install_plugin`.",
        parameters=[NAME, PurgeQuerySerializer],
        request=None,
        responses={200: PurgeResultSerializer, **errors(400, 401, 403, 404, 409)},
    )
    @action(detail=True, methods=["post"])
    def purge(self, request: Request, name: str) -> Response:
        # A plain dict: with a QueryDict DRF reads "?keep_config=" as "not given".
        query = PurgeQuerySerializer(data=request.query_params.dict())
        if not query.is_valid():
            raise QueryValidationError(query.errors)
        try:
            result = manager.purge(
                name, actor=self.actor, keep_config=query.validated_data["keep_config"]
            )
        except InstallError as exc:
            raise InstallFailed(exc) from exc
        return Response(PurgeResultSerializer(result.as_dict()).data)
