"""What the API shows of a plugin at work: its health checks, its metrics in the answering
process, its events and a broker's import report."""

from __future__ import annotations

from rest_framework import serializers

from ...models import EventKind, HealthCheck, PluginEvent
from .base import CIRCUIT_STATES, HEALTH_STATUSES, PLUGIN_STATES, ReadOnlySerializer
from .fields import (
    NumberField,
    ProcessIdField,
    RedactedCharField,
    RedactedJSONField,
    RoundedFloatField,
)
from .plugins import PluginErrorSerializer

# -- events -------------------------------------------------------------------------------------


class PluginEventSerializer(serializers.ModelSerializer):
    """Who did what, when, from which state to which, and why."""

    plugin = serializers.CharField(source="plugin.name")
    kind = serializers.ChoiceField(choices=EventKind.choices)
    from_state = serializers.ChoiceField(
        choices=PLUGIN_STATES, allow_blank=True, help_text="Empty unless a transition."
    )
    to_state = serializers.ChoiceField(
        choices=PLUGIN_STATES, allow_blank=True, help_text="Empty unless a transition."
    )
    reason = RedactedCharField(allow_blank=True)
    actor = serializers.CharField(
        allow_blank=True, help_text="Username, 'cli', or 'system' for the engine itself."
    )
    details = RedactedJSONField(help_text="Structured details (tracebacks...); secrets masked.")
    at = serializers.DateTimeField(source="created_at")

    class Meta:
        model = PluginEvent
        fields = ["id", "plugin", "kind", "from_state", "to_state", "reason", "actor", "details"]
        fields += ["at"]
        read_only_fields = fields


# -- health -------------------------------------------------------------------------------------


class HealthCheckSerializer(serializers.ModelSerializer):
    """One stored health check result."""

    status = serializers.ChoiceField(choices=HEALTH_STATUSES)
    message = RedactedCharField(allow_blank=True)
    details = RedactedJSONField()
    actor = serializers.CharField(allow_blank=True)
    at = serializers.DateTimeField(source="created_at")

    class Meta:
        model = HealthCheck
        fields = ["id", "status", "message", "details", "duration_ms", "actor", "at"]
        read_only_fields = fields


class PluginHealthSerializer(ReadOnlySerializer):
    """A plugin's latest health check and its history, newest first."""

    # Serialises {"plugin": Plugin, "latest": HealthCheck | None, "history": [HealthCheck]}.
    plugin = serializers.CharField(source="plugin.name")
    state = serializers.ChoiceField(choices=PLUGIN_STATES, source="plugin.state")
    enabled = serializers.BooleanField(source="plugin.enabled")
    consecutive_unhealthy = serializers.IntegerField(source="plugin.consecutive_unhealthy")
    latest = HealthCheckSerializer(allow_null=True)
    history = HealthCheckSerializer(many=True)


class HealthCheckResultSerializer(ReadOnlySerializer):
    """The result of a check run now, and the plugin's state after it (three unhealthy
    results in a row put a plugin in error ``health_failed``)."""

    # Serialises {"outcome": CheckOutcome, "plugin": Plugin (after the check)}.
    plugin = serializers.CharField(source="outcome.plugin")
    status = serializers.ChoiceField(choices=HEALTH_STATUSES, source="outcome.status.status")
    message = RedactedCharField(allow_blank=True, source="outcome.status.message")
    details = RedactedJSONField(source="outcome.status.details")
    duration_ms = RoundedFloatField(3, source="outcome.duration_ms")
    state = serializers.ChoiceField(choices=PLUGIN_STATES, source="plugin.state")
    error = PluginErrorSerializer(allow_null=True, source="plugin.error")


# -- metrics ------------------------------------------------------------------------------------


class CircuitSerializer(ReadOnlySerializer):
    state = serializers.ChoiceField(choices=CIRCUIT_STATES)
    failures = serializers.IntegerField()
    threshold = serializers.IntegerField()
    opens = serializers.IntegerField()
    delay = NumberField(help_text="Seconds the circuit stays open this time.")
    retry_in = NumberField(help_text="Seconds until the next trial call.")


class CallStatsSerializer(ReadOnlySerializer):
    calls = serializers.IntegerField()
    errors = serializers.IntegerField()
    rejected = serializers.IntegerField(help_text="Refused by the open circuit.")
    timeouts = serializers.IntegerField()
    timed = serializers.IntegerField(help_text="Calls whose latency was measured (sampled).")
    avg_ms = NumberField()
    max_ms = NumberField()
    histogram = serializers.DictField(
        child=serializers.IntegerField(),
        required=False,
        help_text="Calls per latency bucket (le_<ms>ms, inf); absent in the totals.",
    )


class AbandonedCallSerializer(ReadOnlySerializer):
    operation = serializers.CharField()
    thread = serializers.CharField()
    timeout = NumberField()


class PluginMetricsSerializer(ReadOnlySerializer):
    """Calls, errors and latency per operation, and the circuit — in the process that
    answered (each web and worker process counts its own calls)."""

    plugin = serializers.CharField()
    circuit = CircuitSerializer()
    metrics = serializers.DictField(
        child=CallStatsSerializer(), help_text="Per operation, and '__total__' for the sum."
    )
    abandoned = AbandonedCallSerializer(many=True, help_text="Timed-out calls still running.")
    threads = serializers.ListField(child=serializers.CharField())
    tracked = serializers.ListField(
        child=serializers.CharField(), help_text="Resources the plugin holds open."
    )
    process = ProcessIdField(help_text="Id of the process whose counters these are.")


# -- imports ------------------------------------------------------------------------------------


class ImportFileSerializer(ReadOnlySerializer):
    rows = serializers.IntegerField(
        allow_null=True, help_text="Every physical row of the file; null: not counted."
    )
    understood = serializers.IntegerField(
        allow_null=True, help_text="Rows that made records; null: not counted."
    )
    skipped = serializers.DictField(
        child=serializers.IntegerField(), help_text="Rows skipped, per named rule."
    )
    reported = serializers.IntegerField(help_text="Rows the plugin could not use.")


class ImportTotalsSerializer(ReadOnlySerializer):
    files = serializers.IntegerField()
    rows = serializers.IntegerField(allow_null=True, help_text="null when a file was not counted")
    understood = serializers.IntegerField(allow_null=True)
    skipped = serializers.IntegerField()
    reported = serializers.IntegerField()


class ImportRowSerializer(ReadOnlySerializer):
    file = serializers.CharField(help_text="The file's name (never its path).")
    line = serializers.IntegerField(allow_null=True, help_text="1-based, as in an editor.")
    outcome = serializers.CharField()
    rule = serializers.CharField(allow_blank=True, help_text="What went wrong, as a short code.")
    reason = serializers.CharField(help_text="What is wrong and what the user can do.")
    text = serializers.CharField(allow_blank=True, help_text="The row, shortened; secrets masked.")


class ImportReportSerializer(ReadOnlySerializer):
    """A broker's import report: what became of every row of every file it read."""

    plugin = serializers.CharField()
    read_at = serializers.DateTimeField(help_text="When this report was read from the plugin.")
    files = serializers.DictField(child=ImportFileSerializer(), help_text="Per file name.")
    totals = ImportTotalsSerializer(help_text="Rows per outcome over every file.")
    reported = ImportRowSerializer(many=True, help_text="The reported rows, by file and line.")
    truncated = serializers.IntegerField(help_text="Reported rows left out of `reported`.")
    complete = serializers.BooleanField(
        help_text="Every file's rows each have exactly one outcome (reported rows included)."
    )
