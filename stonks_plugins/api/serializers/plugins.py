"""A plugin as the API shows it: the contract's summary (the list, ``plugins list --json``'s
shape plus a URL) and the detail (everything the database knows, and where to act on it).

The list must cost no more than a bare DRF list view over the same columns: its fields read
only the row's own columns (:data:`SUMMARY_FIELDS`; of the manifest only its translations,
annotated by :func:`with_translations`), and what every row shares - the language, the URL
prefix - is read once per response.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from django.db.models.fields.json import KeyTransform
from django.urls import reverse
from django.utils.translation import get_language
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.request import Request

from ... import dependents as dependency_links
from ...manifest.texts import language_candidates, localized, translations_of
from ...models import Plugin, PluginType
from .base import PLUGIN_SOURCES, PLUGIN_STATES, REASON_CODES, TRUST_STATUSES, ReadOnlySerializer
from .compiled import Shaped
from .fields import (
    EqualsField,
    FlagField,
    RedactedCharField,
    RedactedObjectListField,
    StoredListField,
    StoredObjectField,
)

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
"""The model fields the list's fields read: the list loads only these columns."""

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


class LocalizedTextField(serializers.CharField):
    """The plugin's ``text`` (``display_name``, ``description``) in the request's language
    (Accept-Language, else LANGUAGE_CODE) when its manifest translates it, else as stored."""

    def __init__(self, text: str, **kwargs: Any) -> None:
        super().__init__(source="*", **kwargs)
        self.text = text
        self._language: str | None = None
        self._read = False

    def to_representation(self, plugin: Plugin) -> str:
        if not self._read:  # once per response
            self._language, self._read = get_language(), True
        stored = {self.text: getattr(plugin, self.text)}
        return localized(_translations(plugin), self._language, **stored)[self.text]


class PluginURLField(serializers.URLField):
    """The plugin's URL in the API (``.../plugins/<name>/``), or one of its resources'
    (``suffix``, ``"health/"``); the prefix is resolved once per response, not per row."""

    def __init__(self, suffix: str = "", **kwargs: Any) -> None:
        super().__init__(source="*", **kwargs)
        self.suffix = suffix
        self._base: str | None = None

    def to_representation(self, plugin: Plugin) -> str:
        if self._base is None:  # shared by the response's URL fields (a detail has nine)
            shared = self.root.__dict__
            if "_plugins_url" not in shared:
                request: Request | None = self.context.get("request")
                base = reverse("plugins_api:plugin-list")
                shared["_plugins_url"] = (
                    base if request is None else request.build_absolute_uri(base)
                )
            self._base = shared["_plugins_url"]
        return f"{self._base}{quote(plugin.name, safe='@:')}/{self.suffix}"


class PluginErrorSerializer(ReadOnlySerializer):
    code = serializers.ChoiceField(choices=REASON_CODES)
    # Messages quote exceptions, which may quote a credential.
    message = RedactedCharField()


class PluginTrustSerializer(Shaped, ReadOnlySerializer):
    status = serializers.ChoiceField(
        choices=TRUST_STATUSES,
        help_text="signed (by a trusted key), unsigned, untrusted_key (signed by a key not "
        "in PLUGINS_TRUSTED_KEYS), bad_signature (the manifest changed after signing), or "
        "tampered (files differ from the lock or the distribution's RECORD).",
    )
    key = serializers.CharField(
        allow_null=True, help_text="The public key that signed the manifest (ed25519:...)."
    )
    locked = FlagField(help_text="The manifest records its files' SHA-256.")
    problem = serializers.CharField(allow_null=True, help_text="What is wrong, for a person.")
    trusted = FlagField(help_text="Signed by a trusted key, locked, and its files intact.")

    def shape(self, stored: Any) -> Any:
        """``Plugin.trust`` when it is in this shape; None before the first sync checked it
        (or for a status this version does not know)."""
        known = isinstance(stored, dict) and stored.get("status") in TRUST_STATUSES
        return stored if known else None


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
    display_name = LocalizedTextField("display_name", allow_blank=True)
    location = serializers.CharField(
        allow_blank=True, help_text="Plugin folder, or DIST==VERSION for an installed package."
    )
    missing = serializers.BooleanField(help_text="Not found by the last sync.")
    restart_required = EqualsField(
        "restart",
        source="requires",
        help_text="A Django-app plugin this process has not loaded: restart, then migrate.",
    )
    migrate_required = EqualsField(
        "migrate",
        source="requires",
        help_text="A Django-app plugin whose migrations are not applied: run migrate.",
    )
    instance_of = serializers.CharField(
        source="base_name",
        allow_null=True,
        help_text="For an instance (NAME:LABEL), the plugin it is an instance of; null for a "
        "plugin's default instance (NAME).",
    )
    label = serializers.CharField(
        allow_blank=True, help_text="The instance's label; empty for the default instance."
    )
    trust = PluginTrustSerializer(
        allow_null=True,
        help_text="Integrity and signature status from the last sync (null: not checked yet).",
    )
    url = PluginURLField(help_text="This plugin's detail in the API.")


class PluginLinksSerializer(ReadOnlySerializer):
    self = PluginURLField()
    enable = PluginURLField("enable/")
    disable = PluginURLField("disable/")
    reload = PluginURLField("reload/")
    health = PluginURLField("health/")
    metrics = PluginURLField("metrics/")
    events = PluginURLField("events/")
    config = PluginURLField("config/")
    instances = PluginURLField("instances/")


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

    # Not "requires": the model's field of that name says what a Django-app plugin waits
    # for (restart, migrate; see restart_required/migrate_required).
    depends_on = serializers.SerializerMethodField(
        help_text="The plugins this one needs (its manifest's dependencies.plugins)."
    )
    dependents = serializers.SerializerMethodField(
        help_text="The plugins that need this one directly; disabling it while any is "
        "enabled answers 409 has_dependents unless forced."
    )
    declared_name = serializers.CharField(allow_blank=True, help_text="Name in the manifest.")
    description = LocalizedTextField("description", allow_blank=True)
    warnings = StoredListField(child=serializers.CharField())
    error_details = RedactedObjectListField(
        help_text="Structured details of the error (JSON paths of manifest problems, the "
        "traceback of a failure); secrets are masked.",
    )
    manifest = StoredObjectField(help_text="plugin_manifest.json as found.")
    capabilities = StoredObjectField(
        "capabilities", source="manifest", help_text="The manifest's capabilities section."
    )
    services = StoredObjectField(
        "services",
        source="manifest",
        help_text="The manifest's services map: service type to class.",
    )
    revision = serializers.IntegerField(help_text="Bumped by every reload.")
    consecutive_unhealthy = serializers.IntegerField()
    state_changed_at = serializers.DateTimeField()
    discovered_at = serializers.DateTimeField()
    last_seen_at = serializers.DateTimeField(allow_null=True)
    updated_at = serializers.DateTimeField()
    links = PluginLinksSerializer(source="*")

    @extend_schema_field(DependencyLinkSerializer(many=True))
    def get_depends_on(self, plugin: Plugin) -> Any:
        return DependencyLinkSerializer(dependency_links.depends_on(plugin), many=True).data

    @extend_schema_field(DependencyLinkSerializer(many=True))
    def get_dependents(self, plugin: Plugin) -> Any:
        return DependencyLinkSerializer(dependency_links.dependents(plugin.name), many=True).data
