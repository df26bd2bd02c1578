"""The seed's LegacyBrokerAdapter (6.1): every broker that ``registry_setup.py`` registered
the old way appears as a plugin with source ``legacy``, without a change to its code.

What the legacy core put in the ``BrokerRegistry`` is read back (never re-imported from
``registry_setup``) and kept as a saved copy. From that copy the adapter generates a manifest
in the seed's format, migrates the broker's default config into config version 1, and wraps
its services so each instance goes through the same sandbox boundary as a plugin's (metrics,
timeouts, circuit). The bridge then serves the copy according to the broker's row (enabled,
disabled) and to ``PLUGINS_REGISTRY_MODE``, whose rules, and what they make the rows say,
are in :mod:`.modes`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import json
import logging
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, Subquery
from django.utils import timezone

from stonks_overwatch.core.factory import BrokerFactory
from stonks_overwatch.core.registry import BrokerRegistry
from stonks_overwatch.core.service_types import ServiceType

from .. import CORE_API_VERSION, jsonpath, propagation, store, writes
from ..discovery.candidate import Candidate, Problem, Source
from ..errors import ReasonCode
from ..lifecycle.states import PluginState
from ..manifest import parse_manifest
from ..models import EventKind, Plugin, PluginConfig
from ..registry import plugin_registry
from .modes import legacy_keeps_its_name, manages_legacy, not_served_note, registry_mode

logger = logging.getLogger(__name__)

LEGACY_LOCATION = "stonks_overwatch.core.registry_setup"
API_MAX_VERSION = "1.999.999"
"""Any 1.x: the legacy brokers implement the v1 interfaces the core serves."""

S = PluginState


@dataclass(frozen=True)
class LegacyRegistration:
    """A saved copy of what the legacy core registered for one broker."""

    name: str
    config_class: Any | None
    services: dict[ServiceType, Any]

    def register_raw(self, registry: BrokerRegistry) -> None:
        """Put the broker back exactly as ``registry_setup`` had it."""
        if self.config_class is not None:
            registry.register_broker_config(self.name, self.config_class)
        if self.services:
            registry.register_broker_services(
                self.name, **{t.value: p for t, p in self.services.items()}
            )


class LegacyProvider:
    """Stands in the registry for a legacy service class: builds it and hands out a proxy
    whose public methods run through the broker's sandbox, like a plugin's services."""

    def __init__(self, broker: str, service_type: ServiceType, provider: Any) -> None:
        self.broker = broker
        self.service_type = service_type
        self.provider = provider

    def __call__(self, **kwargs: Any) -> Any:
        box = plugin_registry.sandbox(self.broker)
        op = self.service_type.value
        instance = box.run(f"{op}.__init__", self.provider, timeout=None, **kwargs)
        return box.wrap(instance, op)

    def __repr__(self) -> str:
        return f"<LegacyProvider {self.broker}:{self.service_type.value}>"


def _is_ours(provider: Any) -> bool:
    """Registered by the plugin system (a bridge proxy), not by the legacy core."""
    from .bridge import LazyConfigClass, LazyService

    return isinstance(provider, LazyService | LazyConfigClass | LegacyProvider)


def capture(registry: BrokerRegistry, exclude: set[str]) -> dict[str, LegacyRegistration]:
    """The brokers in the registry that the legacy core registered itself (neither a
    plugin's lazy proxies nor our wrapped copies), read under the registry's lock."""
    found: dict[str, LegacyRegistration] = {}
    with registry._lock:
        configs = dict(registry._configs)
        services = {k: dict(v) for k, v in registry._services.items()}
    for name in sorted(set(configs) | set(services)):
        if name in exclude:
            continue
        cfg = configs.get(name)
        provided = services.get(name, {})
        if _is_ours(cfg) or any(_is_ours(p) for p in provided.values()):
            continue
        found[name] = LegacyRegistration(name, cfg, provided)
    return found


def dotted_ref(obj: Any) -> str | None:
    """``module.Class`` for a class importable under that name, else None."""
    if not isinstance(obj, type) or "<" in obj.__qualname__:
        return None
    ref = f"{obj.__module__}.{obj.__qualname__}"
    try:
        found: Any = importlib.import_module(obj.__module__)
        for part in obj.__qualname__.split("."):
            found = getattr(found, part)
    except Exception:
        return None
    return ref if found is obj else None


_JSON_TYPES: dict[Any, str] = {bool: "boolean", int: "integer", float: "number", str: "string"}


def config_schema_of(config_class: Any) -> dict[str, Any]:
    """A JSON Schema for a dataclass config: one property per field, typed when the field is
    a plain bool/int/float/str, with its default."""
    props: dict[str, Any] = {}
    if config_class is None or not dataclasses.is_dataclass(config_class):
        return {"type": "object", "additionalProperties": True}
    try:
        hints = typing.get_type_hints(config_class)
    except Exception:
        hints = {}
    defaults = migrate_configuration(config_class, {})
    for f in dataclasses.fields(config_class):
        prop: dict[str, Any] = {}
        json_type = _JSON_TYPES.get(hints.get(f.name))
        if json_type:
            prop["type"] = json_type
        if f.name in defaults:
            prop["default"] = defaults[f.name]
        props[f.name] = prop
    return {"type": "object", "properties": props}


def migrate_configuration(config_class: Any, data: dict[str, Any] | None) -> dict[str, Any]:
    """The broker's config as plain data: ``config_class.from_dict(data).to_dict()``; with
    ``settings.BROKER_CONFIGS[name]`` as ``data`` it carries over what the operator had."""
    if config_class is None:
        return {}
    try:
        config = config_class.from_dict(data or {})
        as_dict = getattr(config, "to_dict", None)
        out = as_dict() if callable(as_dict) else dataclasses.asdict(config)
        json.dumps(out)
        return dict(out)
    except Exception:
        logger.exception("could not migrate the config of a legacy broker (%r)", config_class)
        return {}


class LegacyBrokerAdapter:
    """Turns one legacy registration into plugin form."""

    def __init__(self, registration: LegacyRegistration) -> None:
        self.registration = registration

    @property
    def name(self) -> str:
        return self.registration.name

    def create_plugin_manifest(self) -> dict[str, Any]:
        """A manifest in the seed's format. Services whose provider is not an importable
        class (a factory function, a class defined in a function) are served but not named."""
        from ..compat import core_version

        reg = self.registration
        services = {
            t.value: ref
            for t, p in sorted(reg.services.items(), key=lambda i: i[0].value)
            if (ref := dotted_ref(p)) is not None
        }
        configuration: dict[str, Any] = {"schema": config_schema_of(reg.config_class)}
        config_ref = dotted_ref(reg.config_class)
        if config_ref:
            configuration["config_class"] = config_ref
        return {
            "plugin": {
                "name": reg.name,
                "version": str(core_version()),
                "type": "broker",
                "display_name": f"{reg.name} (legacy)",
                "description": f"The legacy broker '{reg.name}' registered by "
                "registry_setup.py, managed as a plugin.",
            },
            "api": {
                "min_version": CORE_API_VERSION,
                "max_version": API_MAX_VERSION,
                "interfaces": sorted(
                    {f"{t.value.capitalize()}ServiceInterface" for t in reg.services}
                ),
            },
            "capabilities": {"services": sorted(t.value for t in reg.services)},
            "configuration": configuration,
            "services": services,
        }

    def wrap_legacy_services(self) -> dict[ServiceType, LegacyProvider]:
        reg = self.registration
        return {t: LegacyProvider(reg.name, t, p) for t, p in reg.services.items()}

    def migrate_configuration(self) -> dict[str, Any]:
        configs: dict[str, Any] = getattr(settings, "BROKER_CONFIGS", {}) or {}
        return migrate_configuration(self.registration.config_class, configs.get(self.name))

    def candidate(self) -> Candidate:
        raw = self.create_plugin_manifest()
        manifest = parse_manifest(raw, f"generated manifest of legacy broker {self.name}")
        return Candidate.quick(
            self.name, Source.LEGACY, LEGACY_LOCATION, None, manifest, raw, fingerprint(raw)
        )

    def register_wrapped(self, registry: BrokerRegistry) -> None:
        """Serve the broker as a plugin: sandboxed services; its code is importable, so the
        plugin registry can load it for health checks."""
        reg = self.registration
        if reg.config_class is not None:
            registry.register_broker_config(reg.name, reg.config_class)
        if reg.services:
            registry.register_broker_services(
                reg.name, **{t.value: p for t, p in self.wrap_legacy_services().items()}
            )
        try:
            plugin_registry.register(self.candidate())
        except Exception:
            logger.exception("legacy broker %s: generated manifest refused", reg.name)


def fingerprint(raw: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(raw, sort_keys=True).encode()).hexdigest()


# -- serving (called by the bridge) -------------------------------------------------------


@dataclass(frozen=True)
class LegacyRow:
    serving: bool
    revision: int
    config_version: int


def legacy_rows() -> dict[str, LegacyRow]:
    live = PluginConfig.objects.filter(plugin=OuterRef("pk"), is_active=True).values("version")[:1]
    rows = (
        Plugin.objects.filter(source=Source.LEGACY.value)
        .annotate(config_version=Subquery(live))
        .values_list("name", "enabled", "state", "missing", "revision", "config_version")
    )
    return {
        name: LegacyRow(enabled and state == S.ACTIVE and not missing, rev, cv or 0)
        for name, enabled, state, missing, rev, cv in rows
    }


class LegacyServing:
    """The bridge's record of the legacy brokers: the saved copies and how each is served
    in this process now (``raw``, ``wrapped`` or ``off``)."""

    def __init__(self) -> None:
        self.saved: dict[str, LegacyRegistration] = {}
        self.applied: dict[str, str] = {}
        self.plugin_names: set[str] = set()
        """Brokers the runtime registered for plugins (never taken for legacy ones)."""

    def saved_now(self) -> dict[str, LegacyRegistration]:
        """The legacy brokers' registrations, with any made since the last look."""
        return self.capture(set(self.plugin_names))

    def capture(self, exclude: set[str]) -> dict[str, LegacyRegistration]:
        """Save copies of legacy registrations made since the last look (a re-registration
        replaces the copy and is re-applied)."""
        found = capture(BrokerRegistry(), exclude)
        for name, reg in found.items():
            self.saved[name] = reg
            self.applied.pop(name, None)
        return dict(self.saved)

    def wrapped(self) -> set[str]:
        return {n for n, how in self.applied.items() if how.startswith("wrapped")}

    def apply(self, rows: dict[str, LegacyRow], mode: str, exclude: set[str]) -> None:
        registry, factory = BrokerRegistry(), BrokerFactory()
        for name, reg in sorted(self.capture(exclude).items()):
            row = rows.get(name)
            if mode == "legacy" or (row is None and mode == "alongside"):
                how = "raw"
            elif mode == "plugins" or row is None or not row.serving:
                how = "off"
            else:
                how = f"wrapped|{row.revision}|{row.config_version}"
            if self.applied.get(name) == how:
                continue
            if self.applied.get(name) is not None or how != "raw":
                registry.unregister_broker(name)
                plugin_registry.unregister(name)
            if how == "raw":
                reg.register_raw(registry)
            elif how != "off":
                LegacyBrokerAdapter(reg).register_wrapped(registry)
            factory.clear_cache(name)
            self.applied[name] = how

    def restore(self) -> None:
        """Back to the legacy core's own registrations (tests, safe mode)."""
        registry = BrokerRegistry()
        for name, reg in self.saved.items():
            if self.applied.get(name, "raw") != "raw":
                registry.unregister_broker(name)
                plugin_registry.unregister(name)
                reg.register_raw(registry)
                BrokerFactory().clear_cache(name)
        self.applied.clear()


legacy_serving = LegacyServing()
"""This process's record of the legacy brokers (the runtime's serving set applies it)."""


# -- persistence (called by the manager) --------------------------------------------------


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
            if lost.state != S.DISABLED:
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
    from .. import store
    from ..models import ConfigStatus, EventKind, PluginConfig

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
    flag, and ``PLUGINS_REGISTRY_MODE`` (see the module docstring) — and its warnings with
    why (discovery never sees legacy brokers, so sync, enable, disable and reload come
    here). ``plugins`` is what the caller's discovery found, by name.
    """
    from .. import store

    if row.source != Source.LEGACY or row.missing:
        return
    mode = registry_mode()
    hold = not_served_note(Source.LEGACY.value, mode)
    notes = [hold] if hold is not None else _legacy_notes(row, mode, plugins)
    if row.warnings != notes:
        row.warnings = notes
        store.save(row, ["warnings"])
    if hold is not None:
        if row.state != S.DISABLED:
            store.deactivate(row, hold, actor)
    elif mode == "legacy":
        if row.state != S.ACTIVE:
            store.activate(
                row,
                "served as registry_setup.py registered it (PLUGINS_REGISTRY_MODE=legacy)",
                actor,
            )
    elif row.enabled and row.state != S.ACTIVE:
        store.activate(row, "legacy broker registered by registry_setup.py", actor)
    elif not row.enabled and row.state != S.DISABLED:
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
