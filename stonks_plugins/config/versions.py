"""Saved configs: every save is a new version with who and when; history is kept; a write
names the version it was based on and a stale one is refused; rollback is a new version
equal to an old one. Data is stored with its secrets encrypted."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from django.db import transaction
from django.utils import timezone

from .. import jsonpath, store, writes
from ..errors import PluginError, ReasonCode, StonksPluginsError
from ..manifest.model import PluginManifest
from ..models import ConfigStatus, EventKind, Plugin, PluginConfig
from ..redaction import MASK
from ..registry import plugin_registry
from . import secrets
from .schema import SchemaError, config_schema, public_schema, secret_paths
from .validation import ConfigInvalid, validate_config


class StaleConfig(StonksPluginsError):
    """The write was based on a version that is no longer the latest."""

    def __init__(self, plugin: str, based_on: int, current: int) -> None:
        super().__init__(
            f"plugin '{plugin}': config was changed meanwhile: you edited version {based_on} "
            f"but the latest is version {current}; reload it and apply your change again"
        )
        self.plugin = plugin
        self.based_on = based_on
        self.current = current


@dataclass(frozen=True)
class ConfigView:
    """A config version as anyone may see it: secrets masked."""

    plugin: str
    version: int
    status: str
    data: dict[str, Any]
    created_by: str = ""
    created_at: datetime | None = None
    message: str = ""
    changed: list[str] = field(default_factory=list)

    @property
    def etag(self) -> str:
        return f'"{self.plugin}-v{self.version}"'

    def as_dict(self) -> dict[str, Any]:
        return {
            "plugin": self.plugin,
            "version": self.version,
            "status": self.status,
            "data": self.data,
            "created_by": self.created_by,
            "created_at": self.created_at.isoformat() if self.created_at else None,
            "message": self.message,
            "changed": self.changed,
        }


def manifest_of(plugin: Plugin) -> PluginManifest:
    from ..manifest import parse_manifest

    return parse_manifest(plugin.manifest, f"stored manifest of {plugin.name}")


class UnreadableSchema(SchemaError, PluginError):
    """A plugin's config schema that cannot be read (a missing or bad file, a FIFO, one over
    ``PLUGINS_MAX_SCHEMA_BYTES``): a :class:`SchemaError` to the config system, and to the
    API and the pages a failure of that plugin, ``config_invalid``, saying what to fix."""

    def __init__(self, plugin: str, message: str) -> None:
        PluginError.__init__(self, plugin, ReasonCode.CONFIG_INVALID, message)


def schema_of(plugin: Plugin) -> dict[str, Any]:
    root = Path(plugin.location) if plugin.source == "directory" else _package_root(plugin)
    try:
        return config_schema(manifest_of(plugin), root)
    except UnreadableSchema:
        raise
    except SchemaError as exc:
        raise UnreadableSchema(plugin.name, str(exc)) from exc


def _package_root(plugin: Plugin) -> Path | None:
    known = plugin_registry.known()
    cand = known.get(plugin.name)
    if cand is None and plugin.label:  # an instance not served here: its plugin's files
        cand = known.get(plugin.base_name or "")
    return cand.root if cand is not None else None


def public_schema_of(plugin: Plugin) -> dict[str, Any]:
    return public_schema(schema_of(plugin))


def latest(plugin: Plugin) -> PluginConfig | None:
    """The newest version that was not refused: the base of the next write."""
    return plugin.configs.exclude(status=ConfigStatus.FAILED).order_by("-version").first()


def active(plugin: Plugin) -> PluginConfig | None:
    return plugin.configs.filter(is_active=True).first()


def view(plugin: Plugin, cfg: PluginConfig | None, schema: dict[str, Any]) -> ConfigView:
    if cfg is None:
        return ConfigView(plugin.name, 0, "none", {})
    return ConfigView(
        plugin.name,
        cfg.version,
        cfg.status,
        secrets.mask(cfg.data, secret_paths(schema)),
        cfg.created_by,
        cfg.created_at,
        cfg.message,
        list(cfg.changed),
    )


def history(plugin: Plugin) -> list[ConfigView]:
    schema = schema_of(plugin)
    return [view(plugin, c, schema) for c in plugin.configs.order_by("-version")]


def plain_data(plugin: Plugin, cfg: PluginConfig | None, schema: dict[str, Any]) -> dict[str, Any]:
    return secrets.decrypt(cfg.data, secret_paths(schema)) if cfg is not None else {}


def deep_merge(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _changed_paths(old: Any, new: Any, prefix: str = "$") -> Iterator[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new)):
            yield from _changed_paths(old.get(key), new.get(key), jsonpath.child(prefix, key))
    elif old != new:
        yield prefix


def save(
    plugin_name: str,
    data: Any,
    *,
    actor: str,
    base_version: int | None,
    partial: bool = False,
    message: str = "",
) -> PluginConfig:
    """Validate and store a new version (``pending`` until applied). Raises
    :class:`ConfigInvalid` (nothing stored) or :class:`StaleConfig`."""
    # In bulk: the event's text and details are masked with one look at the secrets.
    with transaction.atomic(), writes.bulk():
        plugin = store.locked(plugin_name)
        schema = schema_of(plugin)
        paths = list(secret_paths(schema))
        # The newest version is the base of this write unless it was refused: one query.
        newest = plugin.configs.order_by("-version").first()
        current = (
            newest if newest is None or newest.status != ConfigStatus.FAILED else latest(plugin)
        )
        current_version = current.version if current else 0
        if base_version is not None and base_version != current_version:
            raise StaleConfig(plugin.name, base_version, current_version)
        stored = plain_data(plugin, current, schema)
        if not isinstance(data, dict):
            filled, issues = validate_config(schema, data)
            raise ConfigInvalid(plugin.name, issues)
        incoming = secrets.keep_masked(data, stored, paths)
        merged = deep_merge(stored, incoming) if partial else incoming
        filled, issues = validate_config(schema, merged)
        if issues:
            raise ConfigInvalid(plugin.name, issues)
        if any(jsonpath.get(filled, p) == MASK for p in paths):
            raise ConfigInvalid(plugin.name, [])
        changed = list(_changed_paths(stored, filled))
        number = (newest.version if newest is not None else 0) + 1
        cfg = PluginConfig.objects.create(
            plugin=plugin,
            version=number,
            data=secrets.encrypt(filled, paths),
            status=ConfigStatus.PENDING,
            base_version=current_version,
            created_by=actor,
            changed=changed,
            message=message,
            schema_version=schema_version_of(plugin),
        )
        store.record(
            plugin,
            EventKind.ACTION,
            f"config version {number} saved"
            + (f" ({message})" if message else "")
            + (f"; changed: {', '.join(changed)}" if changed else "; no change"),
            actor,
            {"config_version": number, "changed": changed},
        )
        return cfg


def schema_version_of(plugin: Plugin) -> int:
    """The config schema version of the plugin's stored manifest (``configuration.version``,
    1 when it says none): what a config validated against its schema now is written for."""
    from ..manifest import ManifestError

    try:
        return manifest_of(plugin).configuration.version
    except ManifestError:  # an unreadable stored manifest: its schema could not be read either
        return 1


def save_migrated(
    plugin: Plugin,
    base: PluginConfig,
    data: dict[str, Any],
    schema: dict[str, Any],
    *,
    schema_version: int,
    actor: str,
    message: str,
    details: dict[str, Any],
) -> PluginConfig:
    """Store ``data`` (valid for ``schema``, secrets in the clear) as the new live version
    that replaces ``base``, the live one: a migration is made live by the sync that runs it
    (which restarts the plugin with it), not by the apply task, whose check would hand it
    to the old code still loaded. The caller holds the plugin's row locked."""
    paths = list(secret_paths(schema))
    stored, _ = secrets.decrypt_all(base.data)
    changed = list(_changed_paths(stored, data))
    newest = plugin.configs.order_by("-version").first()
    number = (newest.version if newest is not None else 0) + 1
    PluginConfig.objects.filter(plugin=plugin, is_active=True).update(
        is_active=False, status=ConfigStatus.SUPERSEDED
    )
    cfg = PluginConfig.objects.create(
        plugin=plugin,
        version=number,
        data=secrets.encrypt(data, paths),
        status=ConfigStatus.ACTIVE,
        is_active=True,
        applied_at=timezone.now(),
        base_version=base.version,
        created_by=actor,
        changed=changed,
        message=message,
        schema_version=schema_version,
    )
    store.config_changed(plugin.name)
    store.record(
        plugin,
        EventKind.ACTION,
        f"config version {number} saved and live ({message})"
        + (f"; changed: {', '.join(changed)}" if changed else "; no change"),
        actor,
        {**details, "config_version": number, "changed": changed},
    )
    return cfg


def rollback(
    plugin_name: str, version: int, *, actor: str, base_version: int | None = None
) -> PluginConfig:
    plugin = Plugin.objects.get(name=plugin_name)
    old = plugin.configs.filter(version=version).first()
    if old is None:
        known = list(plugin.configs.order_by("version").values_list("version", flat=True))
        raise LookupError(
            f"plugin '{plugin_name}' has no config version {version} (versions: {known or 'none'})"
        )
    schema = schema_of(plugin)
    return save(
        plugin_name,
        plain_data(plugin, old, schema),
        actor=actor,
        base_version=base_version,
        message=f"rollback to version {version}",
    )


def rotate_all() -> int:
    """Re-encrypt every stored secret with the primary key (after adding a new key)."""
    count = 0
    with transaction.atomic():
        for plugin in Plugin.objects.filter(configs__isnull=False).distinct():
            try:
                paths = list(secret_paths(schema_of(plugin)))
            except Exception:  # an unreadable schema: its rows cannot be rotated
                continue
            if not paths:
                continue
            for cfg in plugin.configs.select_for_update():
                rotated = secrets.rotate(cfg.data, paths)
                if rotated != cfg.data:
                    cfg.data = rotated
                    cfg.save(update_fields=["data"])
                    count += 1
    return count
