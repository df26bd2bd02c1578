"""Make a saved config version live, or refuse it and keep the previous one.

Run by the ``apply_plugin_config`` Celery task (in a worker, or eagerly in-process on the
embedded default). The plugin's config object is built through the isolation boundary and,
when the plugin is loaded in this process, handed to its ``on_config_change`` hook; success
activates the version and bumps the propagation stamp so every process rebuilds the plugin's
services with it; failure marks the version failed, with the reason as an event. A plugin
waiting in error for the operator (``auth_failed``, ``config_invalid``) is made active again
by a version going live: every process then loads it with the new config.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from .. import propagation, store, writes
from ..errors import PluginError
from ..models import ConfigStatus, EventKind, PluginConfig
from .schema import secret_paths
from .secrets import secret_values_in
from .system import config_system, flatten
from .versions import plain_data, schema_of

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ApplyResult:
    plugin: str
    version: int
    applied: bool
    message: str = ""
    retried: bool = False
    """The plugin was waiting in error for the operator (credentials or config refused):
    the new config made it active again, to be loaded with it."""


Check = Callable[[str, dict[str, object]], None]
"""``check(name, flat_config)``: hand a new config to the plugin's loaded code, raising if
the plugin refuses it (the runtime provides it; config/ knows no runtime)."""


def apply_version(
    name: str,
    version: int,
    check: Check | None = None,
    on_live: Callable[[], None] | None = None,
) -> ApplyResult:
    """Make a pending config version live, unless the plugin refuses it (``check``);
    ``on_live`` runs after the commit that made it live."""
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
    data = config_system.layered(name, schema, plain_data(plugin, cfg, schema))
    try:
        if check is not None:
            check(plugin.name, flatten(data))
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
    with transaction.atomic(), writes.bulk() as batch:
        # One query locks the version and its plugin (applies of one plugin's versions
        # serialise on the plugin's row) and says whether a later version is live already.
        newer = PluginConfig.objects.filter(
            plugin_id=OuterRef("plugin_id"), is_active=True, version__gt=OuterRef("version")
        )
        found = (
            PluginConfig.objects.select_for_update(of=("self", "plugin"))
            .select_related("plugin")
            .annotate(newer_active=Exists(newer))
            .filter(pk=cfg.pk)
            .first()
        )
        if found is None:  # the plugin was purged meanwhile
            return ApplyResult(name, version, False, "no such config version")
        row = found
        if row.status != ConfigStatus.PENDING:
            return ApplyResult(name, version, row.status == ConfigStatus.ACTIVE, "already handled")
        if getattr(row, "newer_active", False):  # applied out of order: a later version won
            row.status = ConfigStatus.SUPERSEDED
            row.save(update_fields=["status"])
            return ApplyResult(name, version, False, "superseded by a later version")
        # The secrets the events below are masked with: this version's, read above with
        # the settings' and the environment's layers, and every one this process knows.
        # Those texts are the apply's own; reading every version's secrets again (three
        # queries and a decryption per version) would delay the change in every process.
        batch.knows(name, secret_values_in(data, secret_paths(schema)))
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
        # The operator's answer to auth_failed / config_invalid: try the plugin again.
        retried = store.retry_for_operator(
            row.plugin,
            f"config version {version} is live: trying again",
            row.created_by or "system",
        )
        propagation.bump(config=(name, version))
        if on_live is not None:
            transaction.on_commit(on_live)
    return ApplyResult(name, version, True, retried=retried)
