"""What a sync changed, and the whole system's health (for load balancers)."""

from __future__ import annotations

from rest_framework import serializers

from .base import CHECK_RESULTS, SYSTEM_STATUSES, ReadOnlySerializer


class SyncReportSerializer(ReadOnlySerializer):
    """What a sync changed, by plugin name."""

    added = serializers.ListField(child=serializers.CharField())
    updated = serializers.ListField(child=serializers.CharField())
    missing = serializers.ListField(child=serializers.CharField())
    activated = serializers.ListField(child=serializers.CharField())
    failed = serializers.ListField(child=serializers.CharField())
    unchanged = serializers.ListField(child=serializers.CharField())


class SystemChecksSerializer(ReadOnlySerializer):
    database = serializers.ChoiceField(choices=CHECK_RESULTS)
    cache = serializers.ChoiceField(choices=CHECK_RESULTS)


class SystemPluginsSerializer(ReadOnlySerializer):
    total = serializers.IntegerField()
    enabled = serializers.IntegerField()
    active = serializers.IntegerField()
    failing_count = serializers.IntegerField(help_text="Enabled plugins in state error.")
    failing = serializers.ListField(
        child=serializers.CharField(), help_text="Their names (at most 100)."
    )


class SystemHealthSerializer(ReadOnlySerializer):
    status = serializers.ChoiceField(
        choices=SYSTEM_STATUSES,
        help_text="ok: all good. degraded: some enabled plugins are in error (the site "
        "serves everything else; HTTP 200). unavailable: the database or the cache does "
        "not answer (HTTP 503).",
    )
    checks = SystemChecksSerializer()
    plugins = SystemPluginsSerializer(allow_null=True, help_text="Null when the database is down.")
