"""The console's words for what it shows by code, in the active language (README "Languages").

States, health statuses and trust statuses are stable codes: the API, ``--json``, URLs,
CSS classes and ``data-`` attributes keep them; a person reads them by these labels, which
in English are the codes themselves.

The model fields' labels are set on the fields when the admin is imported rather than given
as ``verbose_name=`` in the models: a declared verbose name is part of the migration state,
and a label is no schema change. ``verbose_name_raw`` (permission names) stays English.
"""

from __future__ import annotations

from typing import Any

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy, pgettext_lazy

from ..models import STATE_LABELS, Plugin, PluginConfig, PluginEvent

HEALTH_LABELS: dict[str | None, Promise] = {
    "healthy": pgettext_lazy("health", "healthy"),
    "degraded": pgettext_lazy("health", "degraded"),
    "unhealthy": pgettext_lazy("health", "unhealthy"),
    None: pgettext_lazy("health", "not checked"),
}
TRUST_LABELS: dict[str, Promise] = {
    "signed": pgettext_lazy("trust", "signed"),
    "unsigned": pgettext_lazy("trust", "unsigned"),
    "untrusted_key": pgettext_lazy("trust", "untrusted key"),
    "bad_signature": pgettext_lazy("trust", "bad signature"),
    "tampered": pgettext_lazy("trust", "tampered"),
}


def state_label(state: str) -> str:
    if not state:
        return str(pgettext_lazy("plugin state", "unknown"))
    return str(STATE_LABELS.get(state, state))  # type: ignore[call-overload]


def health_label(status: str | None) -> str:
    return str(HEALTH_LABELS.get(status or None, status))


def trust_label(status: str) -> str:
    return str(TRUST_LABELS.get(status, status.replace("_", " ")))


FIELD_LABELS: dict[type[Any], dict[str, Promise]] = {
    Plugin: {
        "name": gettext_lazy("name"),
        "declared_name": gettext_lazy("declared name"),
        "instance_of": gettext_lazy("instance of"),
        "label": gettext_lazy("label"),
        "version": gettext_lazy("version"),
        "type": gettext_lazy("type"),
        "source": gettext_lazy("source"),
        "location": gettext_lazy("location"),
        "display_name": gettext_lazy("display name"),
        "description": gettext_lazy("description"),
        "manifest": gettext_lazy("manifest"),
        "manifest_hash": gettext_lazy("manifest hash"),
        "state": gettext_lazy("state"),
        "enabled": gettext_lazy("enabled"),
        "error_code": gettext_lazy("error code"),
        "error_message": gettext_lazy("error message"),
        "error_details": gettext_lazy("error details"),
        "warnings": gettext_lazy("warnings"),
        "missing": gettext_lazy("missing"),
        "trust": gettext_lazy("trust"),
        "requires": gettext_lazy("requires"),
        "revision": gettext_lazy("revision"),
        "consecutive_unhealthy": gettext_lazy("consecutive unhealthy"),
        "discovered_at": gettext_lazy("discovered at"),
        "last_seen_at": gettext_lazy("last seen at"),
        "state_changed_at": gettext_lazy("state changed at"),
        "updated_at": gettext_lazy("updated at"),
    },
    PluginConfig: {
        "plugin": gettext_lazy("plugin"),
        "version": gettext_lazy("version"),
        "data": gettext_lazy("data"),
        "is_active": gettext_lazy("is active"),
        "status": gettext_lazy("status"),
        "base_version": gettext_lazy("base version"),
        "message": gettext_lazy("message"),
        "changed": gettext_lazy("changed"),
        "schema_version": gettext_lazy("schema version"),
        "created_by": gettext_lazy("created by"),
        "created_at": gettext_lazy("created at"),
        "applied_at": gettext_lazy("applied at"),
    },
    PluginEvent: {
        "plugin": gettext_lazy("plugin"),
        "kind": gettext_lazy("kind"),
        "from_state": gettext_lazy("from state"),
        "to_state": gettext_lazy("to state"),
        "reason": gettext_lazy("reason"),
        "actor": gettext_lazy("actor"),
        "details": gettext_lazy("details"),
        "created_at": gettext_lazy("created at"),
    },
}
MODEL_NAMES: dict[type[Any], tuple[Promise, Promise]] = {
    Plugin: (gettext_lazy("plugin"), gettext_lazy("plugins")),
    PluginConfig: (gettext_lazy("plugin config"), gettext_lazy("plugin configs")),
    PluginEvent: (gettext_lazy("plugin event"), gettext_lazy("plugin events")),
}


def label_fields() -> None:
    """Give the console's models and fields their translated labels (idempotent). Each label
    is, in English, the name Django derives: nothing changes for an English page."""
    for model, labels in FIELD_LABELS.items():
        for name, label in labels.items():
            model._meta.get_field(name).verbose_name = label
    for model, (singular, plural) in MODEL_NAMES.items():
        model._meta.verbose_name = singular
        model._meta.verbose_name_plural = plural
