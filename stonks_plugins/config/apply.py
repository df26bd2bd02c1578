"""Make a saved config version live, or refuse it and keep the previous one.

Run by the ``apply_plugin_config`` Celery task (in a worker, or eagerly in-process on the
embedded default). The plugin's config object is built through the isolation boundary and,
when the plugin is loaded in this process, handed to its ``on_config_change`` hook; success
activates the version and bumps the propagation stamp so every process rebuilds the plugin's
services with it; failure marks the version failed, with the reason as an event.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from .. import propagation, store
from ..errors import PluginError
from ..models import ConfigStatus, EventKind, Plugin, PluginConfig
from .system import config_system, env_overrides, flatten
from .versions import plain_data, schema_of

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ApplyResult:
    plugin: str
    version: int
    applied: bool
    message: str = ""


def _check_with_plugin(plugin: Plugin, data: dict[str, object]) -> None:
    """Build the config object and run the plugin's hook, when its code is loaded here."""
    from ..legacy.bridge import bridge
    from ..registry import plugin_registry

    bridge.refresh(force=True)
    if plugin.name not in plugin_registry.known():
        return  # not served in this process (disabled, not a broker...): schema-checked only
    loaded = plugin_registry.load(plugin.name)
    box = loaded.sandbox
    assert box is not None
    config = box.run("config.from_dict", loaded.config_class.from_dict, flatten(data), timeout=None)
    if loaded.instance is not None:
        ok = box.run("config_change", loaded.instance.on_config_change, config)
        if ok is False:
            raise ValueError("on_config_change() returned False")
    bridge.note_config_applied(plugin.name)


def apply_version(name: str, version: int) -> ApplyResult:
    cfg = (
        PluginConfig.objects.select_related("plugin")
        .filter(plugin__name=name, version=version)
        .first()
    )
    if cfg is None:
        return ApplyResult(name, version, False, "no such config version")
    if cfg.status != ConfigStatus.PENDING:
        return ApplyResult(name, version, cfg.status == ConfigStatus.ACTIVE, "already handled")
    plugin = cfg.plugin
    schema = schema_of(plugin)
    data = config_system.merge_configurations(
        config_system.base_settings(name),
        plain_data(plugin, cfg, schema),
        env_overrides(name),
    )
    try:
        _check_with_plugin(plugin, data)
    except (PluginError, Exception) as exc:  # the plugin refused it: keep the previous one
        reason = str(exc) if isinstance(exc, PluginError) else f"{type(exc).__name__}: {exc}"
        with transaction.atomic():
            row = PluginConfig.objects.select_for_update().get(pk=cfg.pk)
            if row.status != ConfigStatus.PENDING:
                return ApplyResult(name, version, False, "already handled")
            row.status = ConfigStatus.FAILED
            row.message = reason[:2000]
            row.save(update_fields=["status", "message"])
            store.record(
                plugin,
                EventKind.FAILURE,
                f"config version {version} refused; the previous config stays live: {reason}",
                "system",
                {"config_version": version},
            )
        logger.warning("plugin %s refused config version %s: %s", name, version, reason)
        return ApplyResult(name, version, False, reason)
    with transaction.atomic():
        store.locked(name)
        row = PluginConfig.objects.select_for_update().get(pk=cfg.pk)
        if row.status != ConfigStatus.PENDING:
            return ApplyResult(name, version, row.status == ConfigStatus.ACTIVE, "already handled")
        newer_active = PluginConfig.objects.filter(
            plugin_id=row.plugin_id, is_active=True, version__gt=version
        ).exists()
        if newer_active:  # applied out of order: a later version already won
            row.status = ConfigStatus.SUPERSEDED
            row.save(update_fields=["status"])
            return ApplyResult(name, version, False, "superseded by a later version")
        PluginConfig.objects.filter(plugin_id=row.plugin_id, is_active=True).update(
            is_active=False, status=ConfigStatus.SUPERSEDED
        )
        row.is_active = True
        row.status = ConfigStatus.ACTIVE
        row.applied_at = timezone.now()
        row.save(update_fields=["is_active", "status", "applied_at"])
        store.record(
            plugin,
            EventKind.ACTION,
            f"config version {version} is live",
            "system",
            {"config_version": version},
        )
        propagation.bump()
        # This process saw the version before it was live; look again after the commit.
        from ..legacy.bridge import bridge

        transaction.on_commit(bridge.invalidate)
    return ApplyResult(name, version, True)
