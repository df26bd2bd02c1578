"""Adding and removing a plugin's instances: the rows ``NAME:LABEL`` beside the plugin's own
row ``NAME`` (its default instance).

An instance is a plugin row of its own, so its config versions, secrets, state, events,
health checks and metrics are its own, and it is served, enabled, reloaded and configured by
its name like any plugin. It is not discovered: every sync gives it what discovery found for
its base (version, type, manifest, location, trust; missing with it, in error with it), see
:func:`stonks_plugins.instance_names.candidate_for`. The manager calls these functions inside
its transaction and then reconciles the new row's state the usual way.
"""

from __future__ import annotations

from . import propagation, store
from .conf import plugin_settings
from .config.system import env_prefix
from .discovery.candidate import Source
from .errors import PluginNotFound, StonksPluginsError
from .instance_names import MANIFEST_FIELD, check_label, instance_name
from .manifest import ManifestError, parse_manifest
from .models import EventKind, Plugin


class InstanceRefused(StonksPluginsError):
    """An instance that cannot be added or removed; the message names the plugin and why."""

    def __init__(self, plugin: str, message: str) -> None:
        super().__init__(f"plugin '{plugin}': {message}")
        self.plugin = plugin
        self.message = message


MIRRORED = (
    "declared_name",
    "version",
    "type",
    "source",
    "location",
    "display_name",
    "description",
    "manifest",
    "manifest_hash",
    "warnings",
    "trust",
    "missing",
)
"""What an instance row takes from its base's row when it is made (a sync keeps them equal
from then on, from the base's candidate)."""


def _single_instance_reason(base: Plugin) -> str | None:
    """Why ``base`` may not have instances, or None when it may."""
    try:
        manifest = parse_manifest(base.manifest, f"stored manifest of {base.name}")
    except ManifestError as exc:
        return f"its manifest cannot be read ({exc}); fix the plugin before adding instances"
    if manifest.allows_instances:
        return None
    declared = manifest.capabilities.multiple_instances
    if declared is False:
        why = f"its manifest says {MANIFEST_FIELD}: false"
    elif "x-django-app" in manifest.raw:
        why = "it is a Django app (x-django-app), which exists once per process"
    else:
        why = (
            f"it is a {manifest.type} plugin and its manifest does not set {MANIFEST_FIELD} "
            "(only brokers have several instances unless their manifest says so)"
        )
    return f"supports a single instance: {why}"


def _refuse_shared_environment(base: str, label: str, name: str) -> None:
    """An instance whose environment variables (``STONKS_PLUGIN_<NAME>__...``) another
    plugin would read as its own, or the other way round: ``a-b:c`` and a plugin ``a-b-c``
    spell the same prefix, and ``a:b__c`` starts with ``a-b``'s, so a password set for one
    would configure the other."""
    mine = env_prefix(name)
    for other in Plugin.objects.values_list("name", flat=True).iterator():
        theirs = env_prefix(other)
        if theirs.startswith(mine) or mine.startswith(theirs):
            raise InstanceRefused(
                base,
                f"an instance labelled '{label}' would read its environment overrides "
                f"({mine}...) where plugin '{other}' reads its own ({theirs}...): choose "
                "another label",
            )


def create(base_name: str, label: str, actor: str) -> Plugin:
    """Insert the row of ``base_name``'s instance ``label`` (enabled per
    ``PLUGINS_ENABLE_NEW``, with no stored config: its effective config is the schema's
    defaults) and record it on both rows. Call inside a transaction; the caller reconciles
    the new row's state. Raises ``PluginNotFound``, ``InvalidLabel`` or
    :class:`InstanceRefused`."""
    base = store.locked(base_name)
    check_label(base.name, label)
    if base.label:
        raise InstanceRefused(
            base.name,
            f"is itself an instance; add instances to its plugin: "
            f"'plugins instances add {base.base_name} {label}'",
        )
    if base.source == Source.LEGACY:
        raise InstanceRefused(
            base.name,
            "is a legacy broker registered by registry_setup.py; only plugins have instances",
        )
    refusal = _single_instance_reason(base)
    if refusal is not None:
        raise InstanceRefused(base.name, refusal)
    name = instance_name(base.name, label)
    if Plugin.objects.filter(name=name).exists():
        raise InstanceRefused(base.name, f"already has an instance labelled '{label}' ({name})")
    _refuse_shared_environment(base.name, label, name)
    row = Plugin(
        name=name,
        instance_of=base,
        label=label,
        enabled=bool(plugin_settings.ENABLE_NEW),
        last_seen_at=base.last_seen_at,
        **{field: getattr(base, field) for field in MIRRORED},
    )
    row.save(force_insert=True)
    store.record(
        row,
        EventKind.ACTION,
        f"instance '{label}' of {base.name} added",
        actor,
        {"instance_of": base.name, "label": label},
    )
    store.record(base, EventKind.ACTION, f"instance {name} added", actor, {"instance": name})
    return row


def delete(name: str, actor: str) -> Plugin:
    """Delete instance ``name`` with its config versions, events, health checks and metrics
    (its base and the base's other instances are untouched); returns the base. Call inside
    a transaction. Raises ``PluginNotFound`` or :class:`InstanceRefused` (a plugin's
    default instance is the plugin: uninstall or purge it instead)."""
    row = store.locked(name)
    base = row.instance_of
    if base is None:
        raise InstanceRefused(
            name,
            "is a plugin's default instance, which cannot be removed; remove its instances "
            "by their names (NAME:LABEL), or disable or uninstall the plugin",
        )
    store.record(
        base,
        EventKind.ACTION,
        f"instance {name} removed, with its config, secrets and history",
        actor,
        {"instance": name},
    )
    row.delete()
    propagation.bump()  # every process stops serving it
    return base


def of(base_name: str) -> list[Plugin]:
    """The instances of plugin ``base_name`` (its default instance first), by label.
    Raises ``PluginNotFound``."""
    base = Plugin.objects.filter(name=base_name).first()
    if base is None:
        raise PluginNotFound(base_name)
    if base.instance_of_id is not None:
        base = Plugin.objects.get(pk=base.instance_of_id)
    return [base, *base.instances.order_by("label")]
