"""Purging a plugin that is gone: deleting what the database remembers of it.

Sync never deletes a row: a plugin that disappears is marked missing with its config kept,
so a reinstall finds it again. Purge is the operator's explicit "forget it":

* only for a plugin that is gone (``missing``) or never ran (never reached ``active``):
  one that is installed and has run is refused - uninstall it (or delete its folder) first;
  a legacy broker is part of the host and is refused too;
* ``plugins purge NAME`` deletes the row and everything that hangs on it (config versions,
  events, health checks, metric samples, and any other row that refers to it);
* ``--keep-config`` deletes the history (everything but the config versions) and keeps the
  row, still marked missing, with its config versions: a later reinstall of the same plugin
  name picks the row up again, config included, as after any other absence. The row gets
  one event saying it was purged.

The purge itself is logged (logger ``stonks_plugins.install``) with the actor and the
counts, which is the record that survives when the row and its events are deleted.
"""

from __future__ import annotations

import logging

from django.db import transaction
from django.db.models import CASCADE, Model

from .. import propagation, store
from ..discovery import Source
from ..lifecycle.states import PluginState
from ..models import EventKind, Plugin, PluginConfig, PluginEvent
from .results import PURGE_REFUSED, InstallError, PurgeResult

logger = logging.getLogger("stonks_plugins.install")

KEPT_WITH_CONFIG: tuple[type[Model], ...] = (PluginConfig,)
"""What ``--keep-config`` keeps beside the row."""
_RUNNING = {
    PluginState.ACTIVE.value,
    PluginState.LOADING.value,
    PluginState.LOADED.value,
    PluginState.UNLOADING.value,
}


def _has_run(row: Plugin) -> bool:
    return (
        row.state in _RUNNING
        or PluginEvent.objects.filter(plugin=row, to_state=PluginState.ACTIVE.value).exists()
    )


def purge(name: str, *, actor: str, keep_config: bool = False) -> PurgeResult:
    """Delete plugin ``name``'s rows (keeping the row and its config with ``keep_config``);
    ``InstallError(purge_refused)`` for a plugin that is present and has run."""
    with transaction.atomic():
        row = store.locked(name)
        if row.source == Source.LEGACY:
            raise InstallError(
                PURGE_REFUSED,
                f"plugin '{name}' is a legacy broker, part of the host: it cannot be purged",
            )
        if getattr(row, "label", ""):
            raise InstallError(
                PURGE_REFUSED,
                f"'{name}' is an instance of a plugin: remove it with 'manage.py plugins "
                "instances remove NAME LABEL', or purge the plugin itself",
            )
        if not row.missing and _has_run(row):
            how = (
                f"uninstall it ('manage.py plugins uninstall {name}')"
                if row.source == Source.ENTRY_POINT
                else f"delete its folder ({row.location}) and run 'manage.py plugins sync'"
            )
            raise InstallError(
                PURGE_REFUSED,
                f"plugin '{name}' is present and has been active (state {row.state}): purge "
                f"is for plugins that are gone or never ran. First {how}, then purge it",
            )
        if keep_config:
            deleted = _delete_history(row)
            store.record(
                row,
                EventKind.ACTION,
                "purged: its history was deleted; the row and its config versions are kept "
                "for a reinstall",
                actor,
                {"deleted": deleted},
            )
        else:
            _, counts = row.delete()
            deleted = {label: n for label, n in counts.items() if n}
        propagation.bump()
    logger.warning(
        "plugin %s purged by %s (%s): deleted %s",
        name,
        actor,
        "config kept" if keep_config else "config deleted",
        deleted or "nothing else",
    )
    return PurgeResult(name, keep_config, deleted, present=not row.missing)


def _delete_history(row: Plugin) -> dict[str, int]:
    """Delete every row that refers to ``row`` or to one of its instances (``NAME:LABEL``,
    kept as the row is) and would go with it (``CASCADE``), except :data:`KEPT_WITH_CONFIG`;
    counts by model."""
    rows = [row, *Plugin.objects.filter(instance_of=row)]
    deleted: dict[str, int] = {}
    for relation in Plugin._meta.related_objects:
        model = relation.related_model
        if not relation.one_to_many or getattr(relation, "on_delete", None) is not CASCADE:
            continue
        if not isinstance(model, type) or issubclass(model, (Plugin, *KEPT_WITH_CONFIG)):
            continue
        found = model._base_manager.filter(**{f"{relation.field.name}__in": rows})
        _, counts = found.delete()
        for label, n in counts.items():
            if n:
                deleted[label] = deleted.get(label, 0) + n
    return deleted
