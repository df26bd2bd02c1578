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

The secret values of that result are handed to :mod:`stonks_plugins.redaction`, which masks
them wherever a plugin's text is stored, shown or logged (:func:`secret_values`).
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Max, Q

from .. import redaction
from ..models import ConfigStatus, Plugin, PluginConfig
from . import versions
from .schema import SchemaError, secret_paths
from .secrets import SecretUnreadable, decrypt, secret_values_in
from .validation import ConfigIssue, fill_defaults, validate_config

logger = logging.getLogger(__name__)

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

    def layered(
        self,
        name: str,
        schema: dict[str, Any],
        stored: dict[str, Any],
        env: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The precedence of the module docstring over ``stored`` (a config version's data,
        secrets in the clear): the one place the layers are put together, for the live
        config (:meth:`effective`) and for a version about to go live (``config.apply``),
        so a plugin checks the very config it is then built with. ``env``: the plugin's
        environment overrides, when the caller read them already."""
        return self.merge_configurations(
            self.base_settings(name),
            fill_defaults(schema, {}),
            stored,
            env_overrides(name) if env is None else env,
        )

    def effective(self, name: str) -> dict[str, Any]:
        """The layered config, secrets in the clear: for building the config object only,
        never for display."""
        plugin = Plugin.objects.get(name=name)
        schema = versions.schema_of(plugin)
        stored = versions.plain_data(plugin, versions.active(plugin), schema)
        env = env_overrides(name)
        merged = self.layered(name, schema, stored, env)
        # Before the plugin gets them: whatever it does with them is masked from now on.
        redaction.remember(
            name, secret_values_in(merged, secret_paths(schema)) | _named_values(env)
        )
        return merged

    def effective_flat(self, name: str) -> dict[str, Any]:
        return flatten(self.effective(name))

    def validate_configuration(self, name: str, data: Any) -> list[ConfigIssue]:
        plugin = Plugin.objects.get(name=name)
        return validate_config(versions.schema_of(plugin), data)[1]

    def secret_paths(self, name: str) -> list[tuple[str, ...]]:
        return list(secret_paths(versions.schema_of(Plugin.objects.get(name=name))))


config_system = DynamicConfigSystem()


# -- the secret values of a plugin, for masking ---------------------------------------------
_cache: dict[str, tuple[Any, frozenset[str]]] = {}
_cache_lock = threading.Lock()


def secret_values(name: str) -> frozenset[str]:
    """The clear secret values of plugin ``name``: those of its active config and of any
    newer version not yet live, of ``BROKER_CONFIGS`` and of its environment overrides.

    Cached per config version: a call costs one small query while no config of the plugin
    was saved or applied since the last one. Never raises - masking must not break the write
    it protects: on a failure, the values this process already knows."""
    try:
        layers = (config_system.base_settings(name), env_overrides(name))
        # One savepoint for every read (inside a transaction, a failed query must not
        # poison it): masking runs in the writes of a save and of an apply, on the path a
        # config change takes to every process.
        with transaction.atomic():
            key = (_versions_key(name), json.dumps(layers, sort_keys=True, default=str))
            with _cache_lock:
                hit = _cache.get(name)
            if hit is not None and hit[0] == key:
                return hit[1]
            values = frozenset(_collect(name, key[0], layers))
    except Exception:  # a database, schema or key problem: reported where it matters
        logger.warning("could not read the secrets of plugin %s to mask them", name)
        return frozenset(redaction.known_secrets(name))
    with _cache_lock:
        _cache[name] = (key, values)
    redaction.remember(name, values)
    return values


def _versions_key(name: str) -> tuple[Any, ...]:
    """Changes with any save or apply of the plugin's config (the times too: an id can be
    used again once its row is gone, as after a purge)."""
    found = PluginConfig.objects.filter(plugin__name=name).aggregate(
        latest=Max("pk"),
        live=Max("pk", filter=Q(is_active=True)),
        created=Max("created_at"),
        applied=Max("applied_at"),
    )
    return found["latest"], found["live"], found["created"], found["applied"]


def _collect(
    name: str, versions_key: tuple[Any, ...], layers: tuple[dict[str, Any], ...]
) -> set[str]:
    values: set[str] = set()
    for layer in layers:
        values |= _named_values(layer)
    if versions_key[0] is None and not any(layers):
        return values  # nothing configured: no query
    plugin = Plugin.objects.filter(name=name).first()
    if plugin is None:
        return values
    try:
        paths = list(secret_paths(versions.schema_of(plugin)))
    except (SchemaError, ValueError):  # an unreadable schema: the names still tell
        return values
    # The live version and the pending ones, in one query; of these, the pending versions
    # newer than the live one count.
    rows = list(
        plugin.configs.filter(Q(is_active=True) | Q(status=ConfigStatus.PENDING)).order_by("pk")
    )
    live = next((c for c in rows if c.is_active), None)
    newer = [
        c
        for c in rows
        if c.status == ConfigStatus.PENDING and (live is None or c.version > live.version)
    ]
    for cfg in [c for c in (live,) if c is not None] + newer:
        try:
            values |= secret_values_in(decrypt(cfg.data, paths), paths)
        except SecretUnreadable:  # no key decrypts it: it cannot leak either
            continue
    for layer in layers:
        values |= secret_values_in(layer, paths)
    return values


def _named_values(data: Any) -> set[str]:
    """Values under secret-looking keys: what an override of a field the schema does not
    declare (or an unreadable schema) still says is secret."""
    out: set[str] = set()
    if isinstance(data, dict):
        for key, value in data.items():
            if redaction.is_secret_key(str(key)) and isinstance(value, str | int | float):
                out.add(str(value))
            else:
                out |= _named_values(value)
    elif isinstance(data, list):
        for item in data:
            out |= _named_values(item)
    return out


redaction.provide(secret_values)
