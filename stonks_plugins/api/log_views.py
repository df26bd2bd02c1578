"""``GET plugins/{name}/logs/``: what the plugin's code logged, newest first, a page at a time
(``?page=``, ``?page_size=``, like the events), optionally from a least ``level`` up.

The records are the ones the processes' runtimes stored (``stonks_plugins.logs``): masked
when stored, scrubbed again on the way out. Reading needs the view permission and writes
nothing (records still in a process's memory appear once its runtime stores them, within
a second or so).
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from ..logs.capture import LEVELS
from ..manager import manager
from ..models import PluginLogRecord
from .base import NAME, TAG, PluginAPIView, errors
from .errors import QueryValidationError
from .pagination import StandardPagination
from .serializers import RedactedCharField

LOG_LEVELS = list(LEVELS)
"""``DEBUG`` ... ``CRITICAL``: one named enum in the schema (``LogLevelEnum``)."""


class PluginLogRecordSerializer(serializers.ModelSerializer):
    """One record the plugin's code logged."""

    plugin = serializers.CharField(source="plugin.name")
    at = serializers.DateTimeField(help_text="When the plugin logged it.")
    level = serializers.ChoiceField(
        choices=LOG_LEVELS,
        source="level_name",
        help_text="The record's level (a custom level reads as the standard one below it).",
    )
    levelno = serializers.IntegerField(
        source="level", help_text="Python's level number (INFO is 20, WARNING 30...)."
    )
    logger = serializers.CharField(
        help_text="The logger: the plugin's own (`stonks_plugins.plugin.<name>`) or one of "
        "its modules'."
    )
    message = RedactedCharField(allow_blank=True, help_text="The message; secrets masked.")
    exc_text = RedactedCharField(
        allow_blank=True, help_text="The traceback (or stack) logged with it; empty if none."
    )
    process = serializers.CharField(help_text="hostname:pid of the process that logged it.")

    class Meta:
        model = PluginLogRecord
        fields = ["id", "plugin", "at", "level", "levelno", "logger", "message", "exc_text"]
        fields += ["process"]
        read_only_fields = fields


class LogQuerySerializer(serializers.Serializer):
    level = serializers.ChoiceField(
        choices=LOG_LEVELS,
        required=False,
        help_text="Only records at this level or above (e.g. `WARNING`: warnings, errors and "
        "critical ones).",
    )


class PluginLogViewSet(PluginAPIView, viewsets.GenericViewSet):
    """A plugin's log records (on the plugins prefix, beside the plugin views)."""

    serializer_class = PluginLogRecordSerializer
    pagination_class = StandardPagination

    @extend_schema(
        tags=[TAG],
        summary="A plugin's log records",
        description="What the plugin's code logged - through its logger or with "
        "`logging.getLogger(__name__)` in its modules, in any web or worker process or in its "
        "own child process - newest first. Each plugin (and instance) keeps its newest "
        "`PLUGINS_LOG_RECORDS` records at `PLUGINS_LOG_LEVEL` or above. Secrets are masked.",
        parameters=[NAME, LogQuerySerializer],
        filters=False,
        responses={200: PluginLogRecordSerializer(many=True), **errors(400, 401, 403, 404)},
    )
    @action(detail=True, methods=["get"])
    def logs(self, request: Request, name: str) -> Response:
        # A plain dict: with a QueryDict DRF reads "?level=" as "not given".
        query = LogQuerySerializer(data=request.query_params.dict())
        if not query.is_valid():
            raise QueryValidationError(query.errors)
        level = query.validated_data.get("level")
        records = manager.logs(name, least=LEVELS[level] if level else None)
        page = self.paginate_queryset(records)
        return self.get_paginated_response(PluginLogRecordSerializer(page, many=True).data)
