"""The legacy brokers' plugin rows (called by the manager): every broker the legacy core
registered gets a row with source ``legacy``, a config version migrated from its own config,
and a state and warnings that follow its ``enabled`` flag and ``PLUGINS_REGISTRY_MODE``
(whose rules are in :mod:`.modes`). Discovery never sees these brokers, so sync, enable,
disable and reload come here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from .. import jsonpath, propagation, store, writes
from ..discovery.candidate import Candidate, Problem, Source
from ..errors import ReasonCode
from ..lifecycle.states import PluginState
from ..models import ConfigStatus, EventKind, Plugin, PluginConfig
from .broker_adapter import LEGACY_LOCATION, LegacyBrokerAdapter, fingerprint
from .modes import legacy_keeps_its_name, manages_legacy, not_served_note, registry_mode
from .serving import legacy_serving


@dataclass
class LegacySyncReport:
    added: list[str] = dataclasses.field(default_factory=list)
    updated: list[str] = dataclasses.field(default_factory=list)
    missing: list[str] = dataclasses.field(default_factory=list)
    skipped: list[str] = dataclasses.field(default_factory=list)


def sync_legacy(actor: str, plugins: Mapping[str, Candidate]) -> LegacySyncReport:
    """Give every legacy broker a plugin row (source ``legacy``): generated manifest, config
    version 1 migrated from its defaults, state active unless an operator disabled it. Who
    has a name that a plugin's row held follows the mode (see :mod:`.modes`). ``plugins``:
    what the caller's discovery found, by name (see :func:`reconcile`)."""
    report = LegacySyncReport()
    if not manages_legacy():
        return report
    # A legacy broker that keeps its name takes its row back from a plugin of that name
    # (which had it in 'plugins' mode); mode_plan leaves that row to this sync.
    owns_its_name = legacy_keeps_its_name(registry_mode())
    saved = legacy_serving.saved_now()
    # In bulk, like the plugins' sync, and through the same upsert: the same few queries
    # however many brokers.
    with transaction.atomic(), writes.bulk():
        has_config = Exists(PluginConfig.objects.filter(plugin=OuterRef("pk")))
        rows: dict[str, Plugin] = {
            p.name: p
            for p in Plugin.objects.select_for_update()
            .filter(name__in=list(saved) or [""])
            .annotate(has_config=has_config)
        }
        found: dict[str, tuple[LegacyBrokerAdapter, dict[str, Any]]] = {}
        for name, reg in sorted(saved.items()):
            row = rows.get(name)
            if row is not None and row.source != Source.LEGACY and not owns_its_name:
                report.skipped.append(name)
                continue
            adapter = LegacyBrokerAdapter(reg)
            found[name] = (adapter, _row_fields(name, adapter.create_plugin_manifest()))
        # New rows at once (their config version 1 is stored below): they get their ids.
        upsert = writes.RowUpsert(now=timezone.now(), enabled=True)
        created = upsert.create([(n, f) for n, (_, f) in found.items() if n not in rows])
        for name, (adapter, fields) in found.items():
            row = created[name] if name in created else rows[name]
            if name in created:
                row.has_config = False  # type: ignore[attr-defined]
                store.record(
                    row,
                    EventKind.DISCOVERY,
                    f"legacy broker found in the BrokerRegistry ({LEGACY_LOCATION})",
                    actor,
                    {"version": row.version},
                )
                report.added.append(name)
            elif changes := upsert.changes(row, fields):
                upsert.update(row, changes)
                store.record(
                    row, EventKind.DISCOVERY, f"changed: {', '.join(sorted(changes))}", actor
                )
                report.updated.append(name)
            else:
                upsert.seen(row.pk)
            _migrate_config(row, adapter, actor)
            reconcile(row, actor, plugins)
        upsert.finish()
        gone = Plugin.objects.select_for_update().filter(source=Source.LEGACY.value, missing=False)
        for lost in gone.exclude(name__in=list(saved)):
            lost.missing = True
            store.save(lost, ["missing"])
            report.missing.append(lost.name)
            if lost.state != PluginState.DISABLED:
                store.fail(
                    lost,
                    Problem(
                        ReasonCode.MANIFEST_UNREADABLE,
                        "no longer registered by registry_setup.py (retired or migrated); "
                        "its row and config are kept",
                    ),
                    actor,
                )
    return report


def _row_fields(name: str, raw: dict[str, Any]) -> dict[str, Any]:
    """A legacy broker's row fields, from its generated manifest ``raw``."""
    return {
        "declared_name": name,
        "version": raw["plugin"]["version"],
        "type": "broker",
        "source": Source.LEGACY.value,
        "location": LEGACY_LOCATION,
        "display_name": raw["plugin"]["display_name"],
        "description": raw["plugin"]["description"],
        "manifest": raw,
        "manifest_hash": fingerprint(raw),
        "missing": False,
    }


def _migrate_config(row: Any, adapter: LegacyBrokerAdapter, actor: str) -> None:
    known = getattr(row, "has_config", None)  # annotated by sync_legacy
    if known is True or (known is None and row.configs.exists()):
        return
    data = adapter.migrate_configuration()
    PluginConfig.objects.create(
        plugin=row,
        version=1,
        data=data,
        is_active=True,
        status=ConfigStatus.ACTIVE,
        created_by=actor,
        applied_at=timezone.now(),
        message="migrated from the legacy broker's config",
        changed=[jsonpath.child("$", k) for k in sorted(data)],
    )
    row.has_config = True
    store.config_changed(row.name)
    store.record(
        row,
        EventKind.ACTION,
        "config version 1 migrated from the legacy broker's config",
        actor,
        {"config_version": 1},
    )
    propagation.bump()


def reconcile(row: Any, actor: str, plugins: Mapping[str, Candidate]) -> None:
    """Bring a legacy row's state in line with what this deployment serves — its ``enabled``
    flag, and ``PLUGINS_REGISTRY_MODE`` (see :mod:`.modes`) — and its warnings with
    why (discovery never sees legacy brokers, so sync, enable, disable and reload come
    here). ``plugins`` is what the caller's discovery found, by name.
    """
    if row.source != Source.LEGACY or row.missing:
        return
    mode = registry_mode()
    hold = not_served_note(Source.LEGACY.value, mode)
    notes = [hold] if hold is not None else _legacy_notes(row, mode, plugins)
    if row.warnings != notes:
        row.warnings = notes
        store.save(row, ["warnings"])
    if hold is not None:
        if row.state != PluginState.DISABLED:
            store.deactivate(row, hold, actor)
    elif mode == "legacy":
        if row.state != PluginState.ACTIVE:
            store.activate(
                row,
                "served as registry_setup.py registered it (PLUGINS_REGISTRY_MODE=legacy)",
                actor,
            )
    elif row.enabled and row.state != PluginState.ACTIVE:
        store.activate(row, "legacy broker registered by registry_setup.py", actor)
    elif not row.enabled and row.state != PluginState.DISABLED:
        store.deactivate(row, "disabled by an operator", actor)


def _legacy_notes(row: Any, mode: str, plugins: Mapping[str, Candidate]) -> list[str]:
    """The warnings of a legacy row the mode serves: that it is served although disabled,
    and which plugin of its name waits behind it."""
    notes = []
    if mode == "legacy" and not row.enabled:
        notes.append(
            "served although disabled: PLUGINS_REGISTRY_MODE=legacy serves every broker "
            "registry_setup.py registers, whatever its row says; 'disabled' takes effect "
            "in 'alongside' mode"
        )
    plugin = plugins.get(row.name)
    if plugin is not None:
        notes.append(
            f"the plugin at {plugin.location} is also named '{row.name}' and is not served "
            f"while PLUGINS_REGISTRY_MODE={mode}: the legacy broker keeps its name. Set it "
            "to 'plugins' and run 'plugins sync' to serve the plugin instead"
        )
    return notes
