"""A plugin's new version meets the config stored for its old one: migrate it, or keep it and
say what no longer fits - never replace it with defaults.

Called by the sync (:func:`reconcile`) for a stored row it is about to act on: its manifest
changed, it is in error ``config_invalid``, or it is being started again (enable after a
disable, reload: state ``discovered``). Rows a sync leaves alone cost nothing here.

- Versions: a new version is an event (``discovery``, details ``{from_version,
  to_version}``). An older one (PEP 440 order) is a downgrade: refused - the plugin fails
  ``incompatible_core`` and its row keeps the version, manifest and config it had - unless
  the sync allows it (``plugins sync --allow-downgrade``: :func:`downgrades_allowed`).
- Config: each stored version records the config schema version it was written for
  (``PluginConfig.schema_version``); the manifest declares the current one
  (``configuration.version``, default 1). When the manifest's is higher and the plugin class
  defines ``migrate_config`` (:meth:`stonks_plugins.base.BasePlugin.migrate_config`), that
  runs - plugin code: through a boundary of its own, within ``PLUGINS_SYNC_LOAD_TIMEOUT``
  (or what is left of a request's budget), with the secrets decrypted - and its result,
  validated against the new schema, becomes the new live version with the message
  "migrated from schema vN to vM (plugin A -> B)" and an event. Secrets are encrypted again
  by the new schema.
- Otherwise (no hook, or it raised, hung or returned what the schema refuses) the stored
  config is checked against the new schema as it is: one that fits is kept (stamped with
  the new schema version); one that does not fails the plugin ``config_invalid`` with every
  bad JSON path, and stays exactly as it was stored. Once an operator saves a config that
  fits (``plugins config set``), the plugin is started again with it (``config.apply``), as
  ``plugins enable`` would.

A process-isolated plugin's ``migrate_config`` is not run: its code never runs in the host
process (its stored config is still checked).
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from packaging.version import InvalidVersion, Version

from .. import loader, store
from ..base import has_config_migration
from ..conf import plugin_settings
from ..discovery.candidate import Candidate, Problem
from ..errors import ReasonCode
from ..isolated_plugins import runs_isolated
from ..lifecycle.states import PluginState
from ..models import EventKind, Plugin, PluginConfig
from ..redaction import scrub_text
from ..registry import plugin_registry
from ..runtime import budget
from ..sandbox import PluginSandbox, SandboxError
from . import secrets, versions
from .schema import SchemaError, config_schema
from .validation import ConfigIssue, validate_config

_allow_downgrade: ContextVar[bool] = ContextVar("stonks_plugins_allow_downgrade", default=False)

OPERATION = "migrate_config"
_KEPT_ON_REFUSAL = frozenset({"missing"})
"""What a refused downgrade still changes on the row: it was found, nothing else."""
_SHOWN_ISSUES = 10


@contextmanager
def downgrades_allowed(allowed: bool = True) -> Iterator[None]:
    """Within the block, a sync accepts plugins older than their stored rows."""
    token = _allow_downgrade.set(allowed)
    try:
        yield
    finally:
        _allow_downgrade.reset(token)


def reconcile(
    row: Plugin, cand: Candidate, changes: dict[str, Any], actor: str
) -> tuple[Candidate, dict[str, Any]]:
    """The candidate the sync goes on with (with a problem when the plugin must not start)
    and the row changes it makes (fewer when a downgrade is refused). ``row`` is the stored
    row before ``changes`` (the sync's, from discovery) are applied."""
    manifest = cand.manifest
    if cand.problem is not None or manifest is None:
        return cand, changes  # it fails anyway, with its own reason
    acting = (
        "manifest_hash" in changes
        or row.error_code == ReasonCode.CONFIG_INVALID
        or row.state == PluginState.DISCOVERED
    )
    if not acting:
        return cand, changes
    old, new = row.version, manifest.version
    if "version" in changes and old and old != new:
        details = {"from_version": old, "to_version": new}
        order = _order(old, new)
        if not order:  # no PEP 440 order (or 1.0 and 1.0.0): a change, neither up nor down
            store.record(
                row, EventKind.DISCOVERY, f"version changed from {old} to {new}", actor, details
            )
        elif order < 0:
            if not _allow_downgrade.get():
                problem = _downgrade_refused(row, cand, old, new, actor)
                kept = {k: v for k, v in changes.items() if k in _KEPT_ON_REFUSAL}
                return cand.with_problem(problem), kept
            store.record(
                row,
                EventKind.DISCOVERY,
                f"downgraded from {old} to {new} (allowed by the sync: --allow-downgrade)",
                actor,
                {**details, "downgrade": True},
            )
        else:
            store.record(row, EventKind.DISCOVERY, f"upgraded from {old} to {new}", actor, details)
    unfit = check_config(row, cand, old or new, actor)
    return (cand.with_problem(unfit) if unfit is not None else cand), changes


def _order(old: str, new: str) -> int | None:
    """-1 when ``new`` comes before ``old`` (PEP 440), 1 when after, 0 when equal as
    versions (``1.0`` and ``1.0.0``); None when either is no PEP 440 version."""
    try:
        before, after = Version(old), Version(new)
    except InvalidVersion:
        return None
    return (after > before) - (after < before)


def _downgrade_refused(row: Plugin, cand: Candidate, old: str, new: str, actor: str) -> Problem:
    message = (
        f"version {new} found at {cand.location} is older than the installed {old}: a "
        f"downgrade is refused (its stored config was written for {old} and may not fit). "
        f"Put {old} back, or accept {new} with 'manage.py plugins sync --allow-downgrade'."
    )
    problem = Problem(ReasonCode.INCOMPATIBLE_CORE, message)
    # Said once: a disabled row stays off without the problem (enabling it shows it), and
    # a row that says it already is told nothing new by each sync.
    said = row.error_code == problem.code and row.error_message == message
    if not said and row.state != PluginState.DISABLED:
        store.record(
            row,
            EventKind.DISCOVERY,
            f"downgrade from {old} to {new} refused",
            actor,
            {"from_version": old, "to_version": new, "downgrade": True, "refused": True},
        )
    return problem


def check_config(row: Plugin, cand: Candidate, from_plugin: str, actor: str) -> Problem | None:
    """Migrate the live config of ``row`` to the schema of ``cand`` or check it against
    that schema; the problem that keeps the plugin from starting, or None."""
    manifest = cand.manifest
    assert manifest is not None
    live = versions.active(row)
    if live is None:
        return None  # nothing stored: the plugin runs on its defaults, as before
    to_plugin = manifest.version
    target = manifest.configuration.version
    source = live.schema_version
    where = f"config version {live.version} (written for config schema v{source})"
    try:
        schema = config_schema(manifest, cand.root)
    except SchemaError as exc:
        return Problem(
            ReasonCode.CONFIG_INVALID,
            f"its config schema cannot be read ({exc}); {where} is kept unchanged",
        )
    try:
        stored, hidden = secrets.decrypt_all(live.data)
    except secrets.SecretUnreadable as exc:
        return Problem(
            ReasonCode.CONFIG_INVALID,
            f"{where} cannot be read to check it against config schema v{target}: {exc}; "
            "it is kept unchanged",
        )
    why_not = ""  # why no migration replaced the stored config
    if target > source:
        migrated, why_not = _migrate(cand, source, stored, schema, hidden)
        if migrated is not None:
            versions.save_migrated(
                row,
                live,
                migrated,
                schema,
                schema_version=target,
                actor=actor,
                message=(
                    f"migrated from schema v{source} to v{target} "
                    f"(plugin {from_plugin} -> {to_plugin})"
                ),
                details={
                    "from_schema_version": source,
                    "to_schema_version": target,
                    "from_version": from_plugin,
                    "to_version": to_plugin,
                },
            )
            return None
    _, issues = validate_config(schema, stored)
    if not issues:
        _keep(row, live, target, why_not, actor)
        return None
    if target == source:
        why_not = f"the manifest's configuration.version is still {target}, so none was tried"
    elif target < source:
        why_not = f"configs are never migrated down (from v{source} to v{target})"
    return _invalid(cand, where, target, issues, why_not, hidden)


def _keep(row: Plugin, live: PluginConfig, target: int, why_not: str, actor: str) -> None:
    """The stored config fits the new schema as it is: it stays live, now known to be
    written for ``target``."""
    if why_not:
        store.record(
            row,
            EventKind.FAILURE,
            f"config version {live.version} was not migrated ({why_not}); it fits config "
            f"schema v{target} as it is and stays live",
            actor,
            {"config_version": live.version, "to_schema_version": target},
        )
    if live.schema_version != target:
        PluginConfig.objects.filter(pk=live.pk).update(schema_version=target)
        live.schema_version = target


def _invalid(
    cand: Candidate,
    where: str,
    target: int,
    issues: list[ConfigIssue],
    why_not: str,
    hidden: set[str],
) -> Problem:
    paths = ", ".join(dict.fromkeys(i.path for i in issues[:_SHOWN_ISSUES]))
    more = f" (and {len(issues) - _SHOWN_ISSUES} more)" if len(issues) > _SHOWN_ISSUES else ""
    manifest = cand.manifest
    assert manifest is not None
    message = (
        f"{where} does not fit the config schema v{target} of {cand.name} {manifest.version} "
        f"at {paths}{more}; "
        + (f"it was not migrated: {why_not}; " if why_not else "")
        + "the stored config is kept unchanged. Save a config that fits (manage.py plugins "
        f"config set {cand.name} ..., the console or the API), then enable the plugin."
    )
    details = tuple({k: scrub_text(v, hidden) for k, v in i.as_dict().items()} for i in issues)
    return Problem(ReasonCode.CONFIG_INVALID, scrub_text(message, hidden), details)


def _migrate(
    cand: Candidate,
    source: int,
    stored: dict[str, Any],
    schema: dict[str, Any],
    hidden: set[str],
) -> tuple[dict[str, Any] | None, str]:
    """``(the migrated config, "")``, or ``(None, why there is none)``."""
    manifest = cand.manifest
    assert manifest is not None
    ref = manifest.entry_points.main
    if not ref:
        return None, "the plugin has no class (entry_points.main) to migrate it"
    if runs_isolated(cand):
        return None, "migrate_config is not run for a plugin isolated in its own process"
    try:
        result = _run_hook(cand, ref, source, copy.deepcopy(stored))
    except SandboxError as err:
        return None, scrub_text(f"migrate_config failed: {err.message}", hidden)
    if result is _NO_HOOK:
        return None, f"its class has no migrate_config for config schema v{source}"
    if not isinstance(result, dict):
        return None, f"migrate_config returned {type(result).__name__}, not a JSON object"
    filled, issues = validate_config(schema, result)
    if issues:
        shown = "; ".join(str(i) for i in issues[:_SHOWN_ISSUES])
        return None, scrub_text(f"migrate_config's result does not fit either: {shown}", hidden)
    return filled, ""


_NO_HOOK = object()


def _call_hook(cand: Candidate, ref: str, source: int, data: dict[str, Any]) -> Any:
    """In the boundary's thread: import the plugin's class, then convert."""
    cls = loader.resolve(cand, ref)
    if not has_config_migration(cls):
        return _NO_HOOK
    return cls.migrate_config(source, data)


def _run_hook(cand: Candidate, ref: str, source: int, data: dict[str, Any]) -> Any:
    """:func:`_call_hook` through a boundary of its own (the plugin's serving sandbox keeps
    its circuit and metrics for serving), bounded like the sync's loads. The modules are
    read from the new files: those of an older version this process imported are dropped
    first, and the new ones again after (the next load imports them afresh)."""
    bound = float(plugin_settings.SYNC_LOAD_TIMEOUT)
    scope = budget.current()
    if scope is not None:  # a sync in a request: no plugin code past its budget
        bound = min(bound, scope.remaining())
    box = PluginSandbox(cand.name, worker_exit=plugin_registry.hooks.worker_exit)
    loader.release(cand)
    try:
        call = functools.partial(_call_hook, cand, ref, source, data)
        return box.run(OPERATION, call, code=ReasonCode.CONFIG_INVALID, timeout=bound)
    finally:
        loader.release(cand)  # a thread still running keeps the modules it holds
        box.close(join_timeout=0)
