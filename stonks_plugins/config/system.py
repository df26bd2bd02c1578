"""The seed's DynamicConfigSystem: the effective config of a plugin and the object its
services are built with.

Precedence, lowest first (each layer deep-merged over the previous one):

1. base settings: ``settings.BROKER_CONFIGS[name]`` (host-wide defaults);
2. plugin defaults: the ``default`` values of the plugin's config schema;
3. the stored, active config version (secrets decrypted);
4. environment overrides: ``STONKS_PLUGIN_<NAME>__<KEY>[__<KEY>...]=value`` — the plugin name
   upper-cased with non-alphanumerics as ``_``; the value is parsed as JSON when it can be
   (``600``, ``true``), else taken as a string. For example
   ``STONKS_PLUGIN_DEGIRO_BROKER__SETTINGS__SESSION_TIMEOUT=600``.

The config class receives the *flattened* result: the keys of the seed's ``credentials`` and
``settings`` sections merged with the top-level keys, since config classes are flat.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

from django.conf import settings

from ..models import Plugin
from . import versions
from .schema import secret_paths
from .validation import ConfigIssue, fill_defaults, validate_config

SECTIONS = ("credentials", "settings")


def env_prefix(name: str) -> str:
    return "STONKS_PLUGIN_" + re.sub(r"[^0-9A-Za-z]", "_", name).upper() + "__"


def env_overrides(name: str, environ: dict[str, str] | None = None) -> dict[str, Any]:
    prefix = env_prefix(name)
    out: dict[str, Any] = {}
    for key, raw in sorted((environ if environ is not None else os.environ).items()):
        if not key.startswith(prefix):
            continue
        path = [p.lower() for p in key[len(prefix) :].split("__") if p]
        if not path:
            continue
        try:
            value: Any = json.loads(raw)
        except ValueError:
            value = raw
        node = out
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value
    return out


def flatten(data: dict[str, Any]) -> dict[str, Any]:
    flat = {k: v for k, v in data.items() if k not in SECTIONS}
    for section in SECTIONS:
        if isinstance(data.get(section), dict):
            flat.update(data[section])
    return flat


class DynamicConfigSystem:
    def base_settings(self, name: str) -> dict[str, Any]:
        return dict(getattr(settings, "BROKER_CONFIGS", {}).get(name, {}))

    def merge_configurations(self, *layers: dict[str, Any]) -> dict[str, Any]:
        merged: dict[str, Any] = {}
        for layer in layers:
            merged = versions.deep_merge(merged, layer)
        return merged

    def effective(self, name: str) -> dict[str, Any]:
        """The layered config, secrets in the clear: for building the config object only,
        never for display."""
        plugin = Plugin.objects.get(name=name)
        schema = versions.schema_of(plugin)
        stored = versions.plain_data(plugin, versions.active(plugin), schema)
        return self.merge_configurations(
            self.base_settings(name), fill_defaults(schema, {}), stored, env_overrides(name)
        )

    def effective_flat(self, name: str) -> dict[str, Any]:
        return flatten(self.effective(name))

    def validate_configuration(self, name: str, data: Any) -> list[ConfigIssue]:
        plugin = Plugin.objects.get(name=name)
        return validate_config(versions.schema_of(plugin), data)[1]

    def secret_paths(self, name: str) -> list[tuple[str, ...]]:
        return list(secret_paths(versions.schema_of(Plugin.objects.get(name=name))))


config_system = DynamicConfigSystem()
