"""The seed's LegacyBrokerAdapter (6.1) proper: a saved copy of what the legacy core
registered for a broker, and that copy in plugin form - a generated manifest, its config
migrated to plain data, its services behind the sandbox boundary plugins' services cross.

The copy is read from the ``BrokerRegistry``'s public snapshot, never re-imported from
``registry_setup``: what the core registered is what gets served.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import json
import logging
import typing
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from stonks_overwatch.core.registry import BrokerRegistry
from stonks_overwatch.core.service_types import ServiceType

from .. import CORE_API_VERSION
from ..discovery.candidate import Candidate, Source
from ..manifest import parse_manifest
from ..registry import plugin_registry

logger = logging.getLogger(__name__)

LEGACY_LOCATION = "stonks_overwatch.core.registry_setup"
API_MAX_VERSION = "1.999.999"
"""Any 1.x: the legacy brokers implement the v1 interfaces the core serves."""


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
    plugin's lazy proxies nor our wrapped copies), from one consistent snapshot."""
    found: dict[str, LegacyRegistration] = {}
    for name, entry in registry.snapshot().brokers.items():
        if name in exclude:
            continue
        provided = dict(entry.services)
        if _is_ours(entry.config_class) or any(_is_ours(p) for p in provided.values()):
            continue
        found[name] = LegacyRegistration(name, entry.config_class, provided)
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
        from ..compatibility import core_version

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
