"""The API's response shapes. Each serializer is also an OpenAPI component, so the fields
declared here are the contract a generated client sees.

The plugin serializers build their output directly (``to_representation``) from
``Plugin.summary()`` — the same dict ``plugins list --json`` prints — instead of running DRF's
per-field machinery: listing 1,000 plugins must cost no more than a bare DRF list view, and the
per-field path is the slow part. The declared fields still describe that output exactly; a
test compares the two, and schemathesis checks every response against the schema.

Everything here only reads: the API changes plugins through the manager alone.
"""

from __future__ import annotations

import os
import re
from typing import Any
from urllib.parse import quote

from django.db.models.fields.json import KeyTransform
from django.urls import reverse
from django.utils.translation import get_language, gettext, gettext_lazy
from drf_spectacular.extensions import OpenApiSerializerExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.request import Request

from .. import dependents as dependency_links
from ..checks import CheckOutcome
from ..discovery.candidate import Source
from ..errors import ReasonCode
from ..health import Health
from ..instance_names import LABEL_PATTERN
from ..lifecycle.states import PluginState
from ..manifest.texts import language_candidates, localized, translations_of
from ..models import EventKind, HealthCheck, Plugin, PluginEvent, PluginType
from ..redaction import redact, scrub_text
from ..sandbox.circuit import CircuitState
from ..trust import TrustStatus


def _values(enum: Any) -> list[str]:
    return [member.value for member in enum]


SUMMARY_FIELDS = (
    "name",
    "version",
    "type",
    "source",
    "state",
    "enabled",
    "error_code",
    "error_message",
    "display_name",
    "location",
    "missing",
    "requires",
    "trust",
    "label",
)
"""The model fields ``Plugin.summary()`` reads, and ``trust``: the list loads only these
columns."""

# Choice sets, as plain values, named in SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"] so that
# each is one named enum in the schema.
PLUGIN_STATES = _values(PluginState)
PLUGIN_SOURCES = _values(Source)
REASON_CODES = _values(ReasonCode)
TRUST_STATUSES = _values(TrustStatus)
HEALTH_STATUSES = _values(Health)
CIRCUIT_STATES = _values(CircuitState)
SYSTEM_STATUSES = ["ok", "degraded", "unavailable"]
CHECK_RESULTS = ["ok", "error"]
ERROR_LOCATIONS = ["body", "query"]

# Links of a plugin's detail. The configuration system adds "config" here and a matching
# field to PluginLinksSerializer (the schema), with its views in config_views.py.
DETAIL_LINKS = (
    "enable",
    "disable",
    "reload",
    "health",
    "metrics",
    "events",
    "config",
    "instances",
)

_DATETIME = serializers.DateTimeField()


def _datetime(value: Any) -> str | None:
    return None if value is None else str(_DATETIME.to_representation(value))


class ReadOnlySerializer(serializers.Serializer):
    # A response shape: never used to read input, so create/update are not supported. (No
    # docstring: the schema would show it as every subclass's description.)

    def create(self, validated_data: Any) -> Any:  # pragma: no cover - never called
        raise NotImplementedError

    def update(self, instance: Any, validated_data: Any) -> Any:  # pragma: no cover
        raise NotImplementedError


# -- errors -------------------------------------------------------------------------------------


class ErrorDetailItemSerializer(ReadOnlySerializer):
    path = serializers.CharField(
        help_text="JSON path of the bad field in the body ($.a.b[0]) or the query parameter."
    )
    message = serializers.CharField()
    code = serializers.CharField(help_text="DRF's code for this problem (required, invalid...)")
    location = serializers.ChoiceField(choices=ERROR_LOCATIONS)


class ErrorBodySerializer(ReadOnlySerializer):
    code = serializers.CharField(
        help_text="Stable machine-readable code: not_authenticated, authentication_failed, "
        "permission_denied, not_found, method_not_allowed, validation_error, conflict, "
        "precondition_failed, server_error, or a plugin reason code ("
        + ", ".join(REASON_CODES)
        + ")."
    )
    message = serializers.CharField(help_text="What is wrong, for a person.")
    details = ErrorDetailItemSerializer(
        many=True, help_text="Every problem of a validation error; empty otherwise."
    )
    dependents = serializers.ListField(
        child=serializers.CharField(),
        required=False,
        help_text="With code has_dependents (a disable): the enabled plugins that need the "
        "plugin, directly or through others.",
    )


class ErrorSerializer(ReadOnlySerializer):
    error = ErrorBodySerializer()


class StrictBooleanField(serializers.BooleanField):
    """``true``/``false`` only - a JSON boolean in a body, that word in a query: DRF's own
    takes ``1``, ``"yes"``, ``"on"``..., which the schema's boolean does not."""

    def to_internal_value(self, data: Any) -> bool:
        if type(data) is bool:
            return data
        if data in ("true", "false"):
            return bool(data == "true")
        raise serializers.ValidationError(self.error_messages["invalid"], code="invalid")


class DisableSerializer(serializers.Serializer):
    """Options of a disable, in the query (``?force=true``) or the body; a body is closed:
    a key other than ``force`` is refused, not ignored."""

    force = StrictBooleanField(
        required=False,
        default=False,
        help_text="Disable it even though enabled plugins need it (they go to error, "
        "missing_dependency). Without it such a disable changes nothing and answers 409.",
    )

    def __init__(self, *args: Any, closed: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.closed = closed

    def to_internal_value(self, data: Any) -> Any:
        if self.closed and isinstance(data, dict):
            unknown = sorted(str(k) for k in data if k not in self.fields)
            if unknown:
                message = gettext("unknown key; expected: force")
                raise serializers.ValidationError({k: [message] for k in unknown})
        return super().to_internal_value(data)

    def create(self, validated_data: Any) -> Any:  # pragma: no cover - never called
        raise NotImplementedError

    def update(self, instance: Any, validated_data: Any) -> Any:  # pragma: no cover
        raise NotImplementedError


# -- plugins ------------------------------------------------------------------------------------


class PluginErrorSerializer(ReadOnlySerializer):
    code = serializers.ChoiceField(choices=REASON_CODES)
    message = serializers.CharField()


class PluginTrustSerializer(ReadOnlySerializer):
    status = serializers.ChoiceField(
        choices=TRUST_STATUSES,
        help_text="signed (by a trusted key), unsigned, untrusted_key (signed by a key not "
        "in PLUGINS_TRUSTED_KEYS), bad_signature (the manifest changed after signing), or "
        "tampered (files differ from the lock or the distribution's RECORD).",
    )
    key = serializers.CharField(
        allow_null=True, help_text="The public key that signed the manifest (ed25519:...)."
    )
    locked = serializers.BooleanField(help_text="The manifest records its files' SHA-256.")
    problem = serializers.CharField(allow_null=True, help_text="What is wrong, for a person.")
    trusted = serializers.BooleanField(
        help_text="Signed by a trusted key, locked, and its files intact."
    )


class PluginSerializer(ReadOnlySerializer):
    """The contract's summary of a plugin (``plugins list --json``), plus its URL."""

    name = serializers.CharField(help_text="Unique; a duplicate is NAME@LOCATION.")
    version = serializers.CharField(allow_blank=True)
    type = serializers.ChoiceField(
        choices=PluginType.choices,
        allow_blank=True,
        help_text="Empty when the manifest could not be read.",
    )
    source = serializers.ChoiceField(choices=PLUGIN_SOURCES)
    state = serializers.ChoiceField(choices=PLUGIN_STATES)
    enabled = serializers.BooleanField()
    error = PluginErrorSerializer(
        allow_null=True, help_text="Why the plugin is in error (null when it is not)."
    )
    display_name = serializers.CharField(allow_blank=True)
    location = serializers.CharField(
        allow_blank=True, help_text="Plugin folder, or DIST==VERSION for an installed package."
    )
    missing = serializers.BooleanField(help_text="Not found by the last sync.")
    restart_required = serializers.BooleanField(
        help_text="A Django-app plugin this process has not loaded: restart, then migrate."
    )
    migrate_required = serializers.BooleanField(
        help_text="A Django-app plugin whose migrations are not applied: run migrate."
    )
    trust = PluginTrustSerializer(
        allow_null=True,
        help_text="Integrity and signature status from the last sync (null: not checked yet).",
    )
    instance_of = serializers.CharField(
        allow_null=True,
        help_text="For an instance (NAME:LABEL), the plugin it is an instance of; null for a "
        "plugin's default instance (NAME).",
    )
    label = serializers.CharField(
        allow_blank=True, help_text="The instance's label; empty for the default instance."
    )
    url = serializers.URLField(help_text="This plugin's detail in the API.")

    _base: str | None = None

    @property
    def _language(self) -> str | None:
        """The request's language (Accept-Language, else LANGUAGE_CODE), read once."""
        if "language" not in self.__dict__:
            self.__dict__["language"] = get_language()
        return self.__dict__["language"]

    def plugin_url(self, plugin: Plugin) -> str:
        """``.../plugins/<name>/``; the prefix is resolved once per response, not per row."""
        if self._base is None:
            request: Request | None = self.context.get("request")
            base = reverse("plugins_api:plugin-list")
            if request is not None:
                base = request.build_absolute_uri(base)
            self._base = base
        return f"{self._base}{quote(plugin.name, safe='@:')}/"

    def to_representation(self, instance: Plugin) -> dict[str, Any]:
        data = instance.summary()
        texts = localized(
            _translations(instance), self._language, display_name=data["display_name"]
        )
        data["display_name"] = texts["display_name"]
        error = data["error"]
        if error is not None:  # messages quote exceptions, which may quote a credential
            data["error"] = {"code": error["code"], "message": scrub_text(error["message"])}
        data["trust"] = _trust(instance.trust)
        data["url"] = self.plugin_url(instance)
        return data


TRANSLATIONS = "manifest_translations"
"""The annotation carrying ``manifest.plugin.translations`` on a list that does not load
the manifests (see :func:`with_translations`)."""


def with_translations(queryset: Any) -> Any:
    """``queryset`` with each plugin's manifest translations (a small JSON object, usually
    none) annotated when the reader's language is not the manifests' own (English): the list
    shows display names in that language without loading every manifest."""
    if not language_candidates(get_language()):
        return queryset
    path = KeyTransform("translations", KeyTransform("plugin", "manifest"))
    return queryset.annotate(**{TRANSLATIONS: path})


def _translations(plugin: Plugin) -> Any:
    """The plugin's manifest translations, from the list's annotation, else from its
    manifest when that is loaded; none when neither is (a deferred manifest is not read)."""
    state = plugin.__dict__
    if TRANSLATIONS in state:
        found = state[TRANSLATIONS]
        return found if isinstance(found, dict) else None
    if "manifest" in state:
        return translations_of(state["manifest"])
    return None


def _trust(stored: Any) -> dict[str, Any] | None:
    """``Plugin.trust`` in its documented shape (None before the first sync checked it)."""
    if not isinstance(stored, dict) or stored.get("status") not in TRUST_STATUSES:
        return None
    return {
        "status": stored["status"],
        "key": stored.get("key"),
        "locked": bool(stored.get("locked")),
        "problem": stored.get("problem"),
        "trusted": bool(stored.get("trusted")),
    }


class PluginLinksSerializer(ReadOnlySerializer):
    self = serializers.URLField()
    enable = serializers.URLField()
    disable = serializers.URLField()
    reload = serializers.URLField()
    health = serializers.URLField()
    metrics = serializers.URLField()
    events = serializers.URLField()
    config = serializers.URLField()
    instances = serializers.URLField()


class DependencyLinkSerializer(ReadOnlySerializer):
    """A plugin at the other end of a dependency (``dependencies.plugins``)."""

    name = serializers.CharField()
    specifier = serializers.CharField(
        allow_blank=True,
        help_text="The version specifier the dependent declares ('' for any version).",
    )
    state = serializers.ChoiceField(
        choices=PLUGIN_STATES, allow_null=True, help_text="Its state; null: not installed."
    )
    enabled = serializers.BooleanField()
    version = serializers.CharField(allow_blank=True, help_text="Its installed version.")


class PluginDetailSerializer(PluginSerializer):
    """Everything the database knows about a plugin, and where to act on it."""

    declared_name = serializers.CharField(allow_blank=True, help_text="Name in the manifest.")
    description = serializers.CharField(allow_blank=True)
    warnings = serializers.ListField(child=serializers.CharField())
    error_details = serializers.ListField(
        child=serializers.DictField(),
        help_text="Structured details of the error (JSON paths of manifest problems, the "
        "traceback of a failure); secrets are masked.",
    )
    manifest = serializers.DictField(help_text="plugin_manifest.json as found.")
    capabilities = serializers.DictField(help_text="The manifest's capabilities section.")
    services = serializers.DictField(
        help_text="The manifest's services map: service type to class."
    )
    revision = serializers.IntegerField(help_text="Bumped by every reload.")
    consecutive_unhealthy = serializers.IntegerField()
    state_changed_at = serializers.DateTimeField()
    discovered_at = serializers.DateTimeField()
    last_seen_at = serializers.DateTimeField(allow_null=True)
    updated_at = serializers.DateTimeField()
    # Not "requires": the model's field of that name says what a Django-app plugin waits
    # for (restart, migrate; see restart_required/migrate_required).
    depends_on = DependencyLinkSerializer(
        many=True, help_text="The plugins this one needs (its manifest's dependencies.plugins)."
    )
    dependents = DependencyLinkSerializer(
        many=True,
        help_text="The plugins that need this one directly; disabling it while any is "
        "enabled answers 409 has_dependents unless forced.",
    )
    links = PluginLinksSerializer()

    def to_representation(self, instance: Plugin) -> dict[str, Any]:
        data = super().to_representation(instance)
        needs = dependency_links.depends_on(instance)
        needed_by = dependency_links.dependents(instance.name)
        data["depends_on"] = [link.as_dict() for link in needs]
        data["dependents"] = [link.as_dict() for link in needed_by]
        manifest = instance.manifest if isinstance(instance.manifest, dict) else {}
        capabilities = manifest.get("capabilities")
        services = manifest.get("services")
        details = instance.error_details if isinstance(instance.error_details, list) else []
        url = data["url"]
        description = localized(
            _translations(instance), self._language, description=instance.description
        )["description"]
        data.update(
            declared_name=instance.declared_name,
            description=description,
            warnings=[str(w) for w in instance.warnings or []],
            error_details=[redact(d) for d in details if isinstance(d, dict)],
            manifest=manifest,
            capabilities=capabilities if isinstance(capabilities, dict) else {},
            services=services if isinstance(services, dict) else {},
            revision=instance.revision,
            consecutive_unhealthy=instance.consecutive_unhealthy,
            state_changed_at=_datetime(instance.state_changed_at),
            discovered_at=_datetime(instance.discovered_at),
            last_seen_at=_datetime(instance.last_seen_at),
            updated_at=_datetime(instance.updated_at),
            links={"self": url, **{link: f"{url}{link}/" for link in DETAIL_LINKS}},
        )
        return data


class _LabelField(serializers.RegexField):
    """A label is a JSON string: DRF's text fields would take the number 5 as "5"."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return str(super().to_internal_value(data))


class NewInstanceSerializer(serializers.Serializer):
    """A new instance of a plugin: its label (the instance is then NAME:LABEL)."""

    label = _LabelField(
        rf"^{LABEL_PATTERN}$",
        max_length=40,
        help_text="1 to 40 lower-case letters, digits, '-' or '_', starting with a letter or "
        "digit; the instance is named NAME:LABEL.",
        error_messages={
            "invalid": gettext_lazy(
                "not a valid instance label: use 1 to 40 lower-case letters, digits, "
                "'-' or '_', starting with a letter or digit (e.g. 'partner')"
            )
        },
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        data = self.initial_data if isinstance(self.initial_data, dict) else {}
        unknown = sorted(str(k) for k in data if k not in self.fields)
        if unknown:
            message = gettext("unknown field: only 'label' is read")
            raise serializers.ValidationError({key: [message] for key in unknown})
        return attrs

    def create(self, validated_data: Any) -> Any:  # pragma: no cover - never called
        raise NotImplementedError

    def update(self, instance: Any, validated_data: Any) -> Any:  # pragma: no cover
        raise NotImplementedError


class NewInstanceSchema(OpenApiSerializerExtension):
    """The body of ``POST plugins/{name}/instances/`` is closed (only ``label``) and
    required, as the schema says: a client learns that other keys are not read."""

    target_class = NewInstanceSerializer

    def map_serializer(self, auto_schema: Any, direction: Any) -> Any:
        schema = auto_schema._map_serializer(self.target, direction, bypass_extensions=True)
        schema["additionalProperties"] = False
        return schema


# -- events -------------------------------------------------------------------------------------


@extend_schema_field(OpenApiTypes.OBJECT)
class RedactedJSONField(serializers.JSONField):
    """Free-form JSON with secret-looking keys masked and secrets scrubbed from text."""

    def to_representation(self, value: Any) -> Any:
        return redact(value if isinstance(value, dict) else {})


class RedactedCharField(serializers.CharField):
    def to_representation(self, value: Any) -> str:
        return scrub_text(str(value))


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

    plugin = serializers.CharField()
    state = serializers.ChoiceField(choices=PLUGIN_STATES)
    enabled = serializers.BooleanField()
    consecutive_unhealthy = serializers.IntegerField()
    latest = HealthCheckSerializer(allow_null=True)
    history = HealthCheckSerializer(many=True)

    def to_representation(self, instance: dict[str, Any]) -> dict[str, Any]:
        plugin: Plugin = instance["plugin"]
        history: list[HealthCheck] = instance["history"]
        rows = HealthCheckSerializer(history, many=True).data
        return {
            "plugin": plugin.name,
            "state": plugin.state,
            "enabled": plugin.enabled,
            "consecutive_unhealthy": plugin.consecutive_unhealthy,
            "latest": rows[0] if rows else None,
            "history": rows,
        }


class HealthCheckResultSerializer(ReadOnlySerializer):
    """The result of a check run now, and the plugin's state after it (three unhealthy
    results in a row put a plugin in error ``health_failed``)."""

    plugin = serializers.CharField()
    status = serializers.ChoiceField(choices=HEALTH_STATUSES)
    message = serializers.CharField(allow_blank=True)
    details = RedactedJSONField()
    duration_ms = serializers.FloatField()
    state = serializers.ChoiceField(choices=PLUGIN_STATES)
    error = PluginErrorSerializer(allow_null=True)

    def to_representation(self, instance: dict[str, Any]) -> dict[str, Any]:
        outcome: CheckOutcome = instance["outcome"]
        plugin: Plugin = instance["plugin"]
        return {
            "plugin": outcome.plugin,
            "status": outcome.status.status.value,
            "message": scrub_text(outcome.status.message),
            "details": redact(dict(outcome.status.details)),
            "duration_ms": round(outcome.duration_ms, 3),
            "state": plugin.state,
            "error": plugin.error,
        }


class StrictIntegerField(serializers.IntegerField):
    """Digits only: DRF's own accepts ``"2.0"`` as 2, which the schema's integer does not."""

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, str) and not re.fullmatch(r"-?[0-9]+", data):
            self.fail("invalid")
        return int(super().to_internal_value(data))


class HealthQuerySerializer(serializers.Serializer):
    limit = StrictIntegerField(
        min_value=1, max_value=1000, default=50, help_text="How many past results to return."
    )


# -- metrics ------------------------------------------------------------------------------------


class CircuitSerializer(ReadOnlySerializer):
    state = serializers.ChoiceField(choices=CIRCUIT_STATES)
    failures = serializers.IntegerField()
    threshold = serializers.IntegerField()
    opens = serializers.IntegerField()
    delay = serializers.FloatField(help_text="Seconds the circuit stays open this time.")
    retry_in = serializers.FloatField(help_text="Seconds until the next trial call.")


class CallStatsSerializer(ReadOnlySerializer):
    calls = serializers.IntegerField()
    errors = serializers.IntegerField()
    rejected = serializers.IntegerField(help_text="Refused by the open circuit.")
    timeouts = serializers.IntegerField()
    timed = serializers.IntegerField(help_text="Calls whose latency was measured (sampled).")
    avg_ms = serializers.FloatField()
    max_ms = serializers.FloatField()
    histogram = serializers.DictField(
        child=serializers.IntegerField(),
        required=False,
        help_text="Calls per latency bucket (le_<ms>ms, inf); absent in the totals.",
    )


class AbandonedCallSerializer(ReadOnlySerializer):
    operation = serializers.CharField()
    thread = serializers.CharField()
    timeout = serializers.FloatField()


class PluginMetricsSerializer(ReadOnlySerializer):
    """Calls, errors and latency per operation, and the circuit — in the process that
    answered (each web and worker process counts its own calls)."""

    plugin = serializers.CharField()
    process = serializers.IntegerField(help_text="Id of the process whose counters these are.")
    circuit = CircuitSerializer()
    metrics = serializers.DictField(
        child=CallStatsSerializer(), help_text="Per operation, and '__total__' for the sum."
    )
    abandoned = AbandonedCallSerializer(many=True, help_text="Timed-out calls still running.")
    threads = serializers.ListField(child=serializers.CharField())
    tracked = serializers.ListField(
        child=serializers.CharField(), help_text="Resources the plugin holds open."
    )

    def to_representation(self, instance: dict[str, Any]) -> dict[str, Any]:
        return {**instance, "process": os.getpid()}


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


# -- sync and system health ---------------------------------------------------------------------


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
