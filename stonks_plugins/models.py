"""What the database remembers: plugins, their configs and their history.

The database is the source of truth for which plugins are enabled and in what state; every
process holds its own loaded instances and follows these rows.
"""

from __future__ import annotations

from typing import Any

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy, pgettext_lazy

from . import instance_names
from .discovery.candidate import Source
from .errors import ReasonCode
from .lifecycle.states import PluginState
from .logs.capture import level_name


class PluginType(models.TextChoices):
    BROKER = "broker", pgettext_lazy("plugin type", "Broker")
    AGGREGATOR = "aggregator", pgettext_lazy("plugin type", "Aggregator")
    VIEW = "view", pgettext_lazy("plugin type", "View")
    MIDDLEWARE = "middleware", pgettext_lazy("plugin type", "Middleware")


STATE_LABELS = {
    PluginState.DISCOVERED: pgettext_lazy("plugin state", "discovered"),
    PluginState.LOADING: pgettext_lazy("plugin state", "loading"),
    PluginState.LOADED: pgettext_lazy("plugin state", "loaded"),
    PluginState.ACTIVE: pgettext_lazy("plugin state", "active"),
    PluginState.ERROR: pgettext_lazy("plugin state", "error"),
    PluginState.DISABLED: pgettext_lazy("plugin state", "disabled"),
    PluginState.UNLOADING: pgettext_lazy("plugin state", "unloading"),
}
"""The states' names for people (the console); in English each is its stable code, so the
choices below equal the stored ones and need no migration."""


class Plugin(models.Model):
    name = models.CharField(
        max_length=200,
        unique=True,
        help_text=gettext_lazy("Unique; a duplicate is NAME@LOCATION."),
    )
    declared_name = models.CharField(
        max_length=100, blank=True, help_text=gettext_lazy("Name in the manifest.")
    )
    instance_of = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="instances",
        help_text=gettext_lazy(
            "The plugin this row is an instance of (NAME:LABEL); empty for a plugin's "
            "default instance. Purging a plugin removes its instances too."
        ),
    )
    label = models.CharField(
        max_length=40,
        blank=True,
        default="",
        help_text=gettext_lazy(
            "The instance's label; empty for the default instance (see instance_names)."
        ),
    )
    version = models.CharField(max_length=64, blank=True)
    type = models.CharField(max_length=20, choices=PluginType.choices, blank=True, db_index=True)
    source = models.CharField(
        max_length=20, choices=[(s.value, s.value) for s in Source], db_index=True
    )
    location = models.CharField(max_length=1000, blank=True)
    display_name = models.CharField(max_length=200, blank=True)
    description = models.TextField(blank=True)
    manifest = models.JSONField(default=dict, blank=True)
    manifest_hash = models.CharField(max_length=64, blank=True)
    state = models.CharField(
        max_length=20,
        choices=[(s.value, STATE_LABELS[s]) for s in PluginState],
        default=PluginState.DISCOVERED.value,
        db_index=True,
    )
    enabled = models.BooleanField(default=True, db_index=True)
    error_code = models.CharField(
        max_length=40, blank=True, choices=[(c.value, c.value) for c in ReasonCode]
    )
    error_message = models.TextField(blank=True)
    error_details = models.JSONField(default=list, blank=True)
    warnings = models.JSONField(default=list, blank=True)
    missing = models.BooleanField(
        default=False, help_text=gettext_lazy("Not found by the last sync.")
    )
    trust = models.JSONField(
        default=dict,
        blank=True,
        help_text=gettext_lazy(
            "Integrity and signature status from the last sync (see stonks_plugins.trust)."
        ),
    )
    requires = models.CharField(
        max_length=10,
        blank=True,
        help_text=gettext_lazy(
            "What a plugin that is a Django app waits for: 'restart' (its app is not "
            "loaded by this process) or 'migrate' (its migrations are not applied); set by sync."
        ),
    )
    revision = models.PositiveIntegerField(
        default=0,
        help_text=gettext_lazy("Bumped by reload: every process re-imports the plugin's code."),
    )
    consecutive_unhealthy = models.PositiveIntegerField(default=0)
    discovered_at = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(null=True, blank=True)
    state_changed_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        permissions = [
            ("manage_plugin", "Can enable, disable, reload and sync plugins"),
            ("install_plugin", "Can install, uninstall and purge plugins"),
        ]
        constraints = [
            # An instance has a label and a base; the default instance has neither.
            models.CheckConstraint(
                condition=(Q(instance_of__isnull=True) & Q(label=""))
                | (Q(instance_of__isnull=False) & ~Q(label="")),
                name="plugin_instance_has_label",
            )
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def base_name(self) -> str | None:
        """The name of the plugin this row is an instance of (None for a default instance),
        read from the row's own name: no query."""
        return instance_names.base_of(self.name) if self.label else None

    @property
    def error(self) -> dict[str, str] | None:
        if not self.error_code:
            return None
        return {"code": self.error_code, "message": self.error_message}

    def summary(self) -> dict[str, Any]:
        """The contract's shape for ``plugins list --json`` and the API list."""
        return {
            "name": self.name,
            "version": self.version,
            "type": self.type,
            "source": self.source,
            "state": self.state,
            "enabled": self.enabled,
            "error": self.error,
            "display_name": self.display_name,
            "location": self.location,
            "missing": self.missing,
            "restart_required": self.requires == "restart",
            "migrate_required": self.requires == "migrate",
            "instance_of": self.base_name,
            "label": self.label,
        }


class ConfigStatus(models.TextChoices):
    PENDING = "pending", gettext_lazy("Saved, being applied")
    ACTIVE = "active", gettext_lazy("Live")
    FAILED = "failed", gettext_lazy("Refused when applied")
    SUPERSEDED = "superseded", gettext_lazy("Replaced by a later version")


class PluginConfig(models.Model):
    """One saved version of a plugin's config. History is kept; at most one version is
    active. Secret fields are stored encrypted (see ``config.secrets``)."""

    plugin = models.ForeignKey(Plugin, on_delete=models.CASCADE, related_name="configs")
    version = models.PositiveIntegerField()
    data = models.JSONField(default=dict)
    is_active = models.BooleanField(default=False)
    status = models.CharField(
        max_length=20, choices=ConfigStatus.choices, default=ConfigStatus.PENDING
    )
    base_version = models.PositiveIntegerField(null=True, blank=True)
    message = models.TextField(
        blank=True, help_text=gettext_lazy("Why applying it failed, or what it is.")
    )
    changed = models.JSONField(
        default=list, blank=True, help_text=gettext_lazy("JSON paths that changed.")
    )
    schema_version = models.PositiveIntegerField(
        default=1,
        help_text=gettext_lazy(
            "The plugin's config schema version (manifest configuration.version) this "
            "data was written for; an upgrade that raises it migrates the data (config.upgrade)."
        ),
    )
    created_by = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    applied_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["plugin", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["plugin", "version"], name="plugin_config_version"),
            models.UniqueConstraint(
                fields=["plugin"],
                condition=models.Q(is_active=True),
                name="plugin_config_one_active",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.plugin.name} config v{self.version}"


class EventKind(models.TextChoices):
    TRANSITION = "transition", gettext_lazy("State transition")
    ACTION = "action", gettext_lazy("Operator action")
    DISCOVERY = "discovery", gettext_lazy("Discovery")
    FAILURE = "failure", gettext_lazy("Failure")


class PluginEvent(models.Model):
    """Who did what to which plugin, when, from which state to which, and why."""

    plugin = models.ForeignKey(Plugin, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=20, choices=EventKind.choices)
    from_state = models.CharField(max_length=20, blank=True)
    to_state = models.CharField(max_length=20, blank=True)
    reason = models.TextField(blank=True)
    actor = models.CharField(max_length=150, blank=True)
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["plugin", "-created_at"], name="plugin_event_recent")]

    def as_dict(self) -> dict[str, Any]:
        """The CLI's ``--json`` shape (details left out: they may hold a traceback)."""
        return {
            "plugin": self.plugin.name,
            "at": self.created_at,
            "kind": self.kind,
            "from": self.from_state,
            "to": self.to_state,
            "reason": self.reason,
            "actor": self.actor,
        }

    def __str__(self) -> str:
        arrow = f" {self.from_state}->{self.to_state}" if self.to_state else ""
        return f"{self.plugin.name}: {self.kind}{arrow} {self.reason}"


class HealthCheck(models.Model):
    """One health check result. History is bounded per plugin (``PLUGINS_HEALTH_HISTORY``)."""

    plugin = models.ForeignKey(Plugin, on_delete=models.CASCADE, related_name="health_checks")
    status = models.CharField(max_length=20, db_index=True)
    message = models.TextField(blank=True)
    details = models.JSONField(default=dict, blank=True)
    duration_ms = models.FloatField(default=0.0)
    actor = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.plugin.name}: {self.status} at {self.created_at:%Y-%m-%d %H:%M:%S}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "plugin": self.plugin.name,
            "status": self.status,
            "message": self.message,
            "details": self.details,
            "duration_ms": round(self.duration_ms, 3),
            "at": self.created_at.isoformat(),
        }


class Generation(models.Model):
    """A counter bumped with every committed change to plugins; processes compare it with the
    value they last applied to know when to refresh (see ``propagation``)."""

    key = models.CharField(max_length=50, unique=True)
    value = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.key}={self.value}"


class MetricSample(models.Model):
    """One process's calls into a plugin during one minute (``metrics_store.flush``).

    Every process adds its deltas to its own row of the minute; ``metrics_store.series`` sums
    the rows of all processes, so the admin's chart over time covers the whole deployment.
    """

    plugin = models.ForeignKey(Plugin, on_delete=models.CASCADE, related_name="metric_samples")
    bucket = models.DateTimeField(help_text="Start of the minute (UTC, seconds zeroed).")
    process = models.CharField(max_length=200, help_text="hostname:pid of the process.")
    calls = models.PositiveBigIntegerField(default=0)
    errors = models.PositiveBigIntegerField(default=0)
    timed = models.PositiveBigIntegerField(
        default=0, help_text="Calls whose latency was measured (timing is sampled)."
    )
    total_ms = models.FloatField(default=0.0, help_text="Summed latency of the timed calls.")
    max_ms = models.FloatField(default=0.0)

    class Meta:
        ordering = ["plugin", "bucket", "process"]
        constraints = [
            models.UniqueConstraint(
                fields=["plugin", "bucket", "process"], name="metric_sample_minute"
            )
        ]
        indexes = [models.Index(fields=["bucket"], name="metric_sample_bucket")]

    def __str__(self) -> str:
        return f"{self.plugin.name} {self.bucket:%Y-%m-%d %H:%M} {self.process}: {self.calls}"


class PluginLogRecord(models.Model):
    """One log record of a plugin's code (``stonks_plugins.logs``): what it logged through its
    logger or under its package. Written by the background runtime's flush, masked and cut to
    size; each plugin (and instance) keeps its newest ``PLUGINS_LOG_RECORDS``."""

    plugin = models.ForeignKey(Plugin, on_delete=models.CASCADE, related_name="log_records")
    at = models.DateTimeField(help_text="When the plugin logged it.")
    level = models.PositiveSmallIntegerField(help_text="Python's level number (INFO is 20).")
    logger = models.CharField(max_length=200, help_text="Name of the logger it was logged on.")
    message = models.TextField(help_text="The message, secrets masked, cut to size.")
    exc_text = models.TextField(blank=True, help_text="Traceback or stack, if any; masked.")
    process = models.CharField(max_length=200, help_text="hostname:pid of the process.")

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["plugin", "-at", "-id"], name="plugin_log_recent")]

    @property
    def level_name(self) -> str:
        """``DEBUG``, ``INFO``, ``WARNING``, ``ERROR`` or ``CRITICAL`` (a custom level reads
        as the standard one below it)."""
        return level_name(self.level)

    def as_dict(self) -> dict[str, Any]:
        """The CLI's ``--json`` shape (the API's, less its id)."""
        return {
            "plugin": self.plugin.name,
            "at": self.at,
            "level": self.level_name,
            "levelno": self.level,
            "logger": self.logger,
            "message": self.message,
            "exc_text": self.exc_text,
            "process": self.process,
        }

    def __str__(self) -> str:
        at = f"{self.at:%Y-%m-%d %H:%M:%S}"
        return f"{self.plugin.name} {at} {self.level_name}: {self.message[:80]}"
