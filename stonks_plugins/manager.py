"""PluginManager: the one facade the admin, the API, the CLI and the Celery tasks call.

It composes the small parts — discovery, validation, the store, the per-process registry and
the legacy bridge — and holds no state of its own beyond them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.db import transaction
from django.db.models import QuerySet

from . import dependents, imports, instances, metrics_store, store, tasks, writes
from . import install as plugin_install
from .compatibility import check_compatibility
from .config import upgrade, versions
from .config.versions import ConfigView
from .dependencies import dependents_of
from .discovery import Candidate, DiscoveryResult, Source, discover, scan_directory_plugin
from .discovery.catalog import apply_compatibility
from .errors import IllegalTransition, PluginNotFound
from .health_checks import CheckOutcome, run_check
from .instance_names import base_of, candidate_for, check_label, instance_name
from .legacy import adapter as legacy_adapter
from .lifecycle.states import PluginState
from .logs import store as log_store
from .manifest.validation import MANIFEST_FILENAME, ManifestError, load_manifest_file
from .models import EventKind, HealthCheck, Plugin, PluginConfig, PluginEvent, PluginLogRecord
from .registry import LoadedPlugin, plugin_registry
from .runtime import loads
from .runtime.serving import serving
from .runtime.trial import start_plugins
from .sandbox import LeakReport
from .sync import Progress, SyncReport, sync_plugins


@dataclass
class ValidationResult:
    """The verdict on one plugin folder or manifest: valid, or every problem with a path."""

    target: str
    name: str | None = None
    version: str | None = None
    errors: list[dict[str, str]] = field(default_factory=list)
    code: str | None = None

    @property
    def valid(self) -> bool:
        return not self.errors

    def as_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "name": self.name,
            "version": self.version,
            "valid": self.valid,
            "code": self.code,
            "errors": self.errors,
        }


def _after_commit() -> None:
    transaction.on_commit(serving.invalidate)


def _affected(name: str, result: DiscoveryResult) -> set[str]:
    """What an action on plugin ``name`` may change: its row, and those of the plugins
    that need it (which fail, or come back, with it)."""
    return {name, *dependents_of(name, result.plugins)}


class PluginManager:
    # -- discovery and persistence ---------------------------------------------------------
    def discover_plugins(self) -> DiscoveryResult:
        return discover()

    def sync(
        self,
        actor: str = "system",
        progress: Progress | None = None,
        allow_downgrade: bool = False,
    ) -> SyncReport:
        """Bring the rows in line with what discovery finds. A plugin older than its stored
        row is refused (``incompatible_core``) unless ``allow_downgrade``; a newer one has
        its stored config migrated or checked (see ``config.upgrade``)."""
        result = self.discover_plugins()
        with upgrade.downgrades_allowed(allow_downgrade):
            report = sync_plugins(result, actor, progress=progress)
        # Brokers registered by registry_setup, which discovery never sees.
        legacy = legacy_adapter.sync_legacy(actor, result.by_name())
        report.added.extend(legacy.added)
        report.updated.extend(legacy.updated)
        report.missing.extend(legacy.missing)
        serving.invalidate()
        # New or changed plugins start now, so a broken one is in error before any request;
        # with none, this process takes the changes at its next look at the registry.
        changed = [*report.added, *report.updated, *report.activated]
        started = start_plugins(changed, actor) if changed else {}
        for name, error in sorted(started.items()):
            if error is not None and name not in report.failed:
                report.failed.append(name)
        return report

    def get_available_plugins(self) -> QuerySet[Plugin]:
        return Plugin.objects.all()

    def get(self, name: str) -> Plugin:
        try:
            return Plugin.objects.get(name=name)
        except Plugin.DoesNotExist:
            raise PluginNotFound(name) from None

    def dependencies(self, name: str) -> tuple[list[dependents.Link], list[dependents.Link]]:
        """``(the plugins it needs, the plugins that need it)``, each with its state; the
        second list counts direct dependents (``dependents.enabled_dependents`` is what a
        disable would fail, through others too)."""
        plugin = self.get(name)
        return dependents.depends_on(plugin), dependents.dependents(plugin.name)

    def events(self, name: str | None = None, limit: int | None = 50) -> QuerySet[PluginEvent]:
        """Newest first; ``limit=None`` gives the whole lazy history (to filter or page)."""
        qs = PluginEvent.objects.select_related("plugin")
        if name is not None:
            qs = qs.filter(plugin=self.get(name))
        return qs if limit is None else qs[:limit]

    def logs(self, name: str, least: int | None = None) -> QuerySet[PluginLogRecord]:
        """The plugin's log records as stored, newest first; with ``least`` (a level number),
        those at that level or above. Lazy (to page or slice); writes nothing: records still
        in a process's memory are stored by its runtime within a second or so."""
        return log_store.records(self.get(name), least)

    # -- operator actions ------------------------------------------------------------------
    def enable(self, name: str, actor: str = "system") -> Plugin:
        """Switch a plugin on, or retry one in error: revalidate it, then activate it. Plugins
        that were failing because they need this one are brought back too."""
        result = self.discover_plugins()
        with transaction.atomic(), writes.bulk():
            plugin = store.locked(name)
            was_on = plugin.enabled and plugin.state == PluginState.ACTIVE
            plugin.enabled = True
            store.save(plugin, ["enabled"])
            if not was_on:
                store.record(plugin, EventKind.ACTION, "enabled", actor)
            if plugin.state == PluginState.DISABLED:
                store.transition(plugin, PluginState.DISCOVERED, "enabled", actor)
            only = _affected(name, result)
            sync_plugins(result, actor, retry=frozenset({name}), only=only, locked=[plugin])
            legacy_adapter.reconcile(plugin, actor, result.by_name())  # not discovered
            _after_commit()
        if not was_on:
            # An operator's enable is a retry now, whatever backoff an earlier failure set;
            # the state it leaves says whether the code imports and initialises.
            plugin_registry.forgive(name)
            loads.forget(name)
            plugin = self.get(name)
            if plugin.state != PluginState.ACTIVE:
                return plugin
            start_plugins([name], actor)
        return self.get(name)

    def disable(self, name: str, actor: str = "system", force: bool = False) -> Plugin:
        """Switch a plugin off; plugins that need it fail with ``missing_dependency``. Raises
        ``HasDependents`` (nothing changes) when enabled plugins need it, unless ``force``."""
        result = self.discover_plugins()
        with transaction.atomic(), writes.bulk():
            plugin = store.locked(name)
            if plugin.enabled or plugin.state != PluginState.DISABLED:
                dependents.check_disable(name, force)
                plugin.enabled = False
                store.save(plugin, ["enabled"])
                store.record(plugin, EventKind.ACTION, "disabled", actor)
                if plugin.source == Source.LEGACY:
                    # The registry mode has a say: 'legacy' serves it whatever its row says.
                    legacy_adapter.reconcile(plugin, actor, result.by_name())
                else:
                    store.deactivate(plugin, "disabled", actor)
                sync_plugins(result, actor, only=_affected(name, result), locked=[plugin])
            _after_commit()
        return self.get(name)

    def reload(self, name: str, actor: str = "system") -> Plugin:
        """Unload a plugin and load it again from its files, in every process: the row's
        revision changes, so each process drops its modules and imports them afresh. Here
        the plugin is loaded at once, so a broken edit is reported to the caller."""
        result = self.discover_plugins()
        with transaction.atomic(), writes.bulk():
            plugin = store.locked(name)
            if not plugin.enabled:
                raise IllegalTransition(
                    name, plugin.state, PluginState.LOADING.value, [PluginState.DISCOVERED.value]
                )
            plugin.revision += 1
            store.save(plugin, ["revision"])
            store.record(plugin, EventKind.ACTION, f"reload (revision {plugin.revision})", actor)
            if plugin.state == PluginState.ACTIVE:
                store.walk(
                    plugin, [PluginState.UNLOADING, PluginState.DISCOVERED], "reloading", actor
                )
            only = _affected(name, result)
            sync_plugins(result, actor, retry=frozenset({name}), only=only, locked=[plugin])
            legacy_adapter.reconcile(plugin, actor, result.by_name())
        plugin_registry.unregister(name)
        loads.forget(name)
        plugin = self.get(name)
        if plugin.state != PluginState.ACTIVE:
            serving.refresh(force=True)  # start_plugins refreshes first thing
            return plugin
        start_plugins([name], actor)
        return self.get(name)

    # -- instances (NAME:LABEL) --------------------------------------------------------------
    def add_instance(self, name: str, label: str, actor: str = "system") -> Plugin:
        """Configure plugin ``name`` once more, as ``NAME:LABEL``: a row of its own with its
        own config, secrets, state and history, served like any plugin (started here when
        enabled). Raises ``PluginNotFound``, ``InvalidLabel`` or ``InstanceRefused`` (a
        plugin that supports a single instance, an existing label...)."""
        result = self.discover_plugins()
        with transaction.atomic(), writes.bulk():
            row = instances.create(name, label, actor)
            sync_plugins(result, actor, only={row.name}, locked=[row])
            _after_commit()
        plugin = self.get(row.name)
        if plugin.state == PluginState.ACTIVE:
            start_plugins([plugin.name], actor)
        return self.get(row.name)

    def remove_instance(self, name: str, label: str, actor: str = "system") -> Plugin:
        """Delete plugin ``name``'s instance ``label`` (``NAME:LABEL``) with its config,
        secrets and history; every process stops serving it. Returns the plugin. The default
        instance cannot be removed."""
        target = instance_name(base_of(name), check_label(name, label))
        with transaction.atomic():
            base = instances.delete(target, actor)
            _after_commit()
        plugin_registry.unregister(target)
        loads.forget(target)
        serving.refresh(force=True)
        return self.get(base.name)

    def list_instances(self, name: str) -> list[Plugin]:
        """Plugin ``name``'s default instance and its other instances (by label); ``name``
        may be any of them."""
        return instances.of(base_of(name))

    # -- install, uninstall, purge (stonks_plugins.install) --------------------------------
    def install(
        self, target: str, actor: str = "system", *, upgrade: bool = False
    ) -> plugin_install.InstallResult:
        """pip install a wheel, a source folder or a requirement into this site's environment,
        verify the plugins it provides, and sync (they are active without a restart). Raises
        ``InstallError`` (with pip's output) when refused or failed; nothing refused stays
        installed."""
        return plugin_install.install(
            target, actor=actor, upgrade=upgrade, sync=self.sync, reload=self.reload
        )

    def install_upload(
        self,
        filename: str,
        chunks: Iterable[bytes],
        size: int | None,
        actor: str = "system",
        *,
        upgrade: bool = False,
    ) -> plugin_install.InstallResult:
        """:meth:`install` of an uploaded wheel (saved to a private temporary folder first)."""
        return plugin_install.install_upload(
            filename, chunks, size, actor=actor, upgrade=upgrade, sync=self.sync, reload=self.reload
        )

    def uninstall(self, name: str, actor: str = "system") -> plugin_install.UninstallResult:
        """pip uninstall the distribution that provides plugin ``name``, then sync: its rows
        are marked missing, their config kept."""
        return plugin_install.uninstall(name, actor=actor, sync=self.sync)

    def purge(
        self, name: str, actor: str = "system", *, keep_config: bool = False
    ) -> plugin_install.PurgeResult:
        """Delete the rows of a plugin that is gone or never ran (its config too, unless
        ``keep_config``)."""
        return plugin_install.purge(name, actor=actor, keep_config=keep_config)

    # -- code in this process ---------------------------------------------------------------
    def load_plugin(self, name: str) -> LoadedPlugin:
        """Import and initialise a registered plugin in this process now, not on first use
        (waiting for it within the caller's budget)."""
        return loads.acquire(name)

    def unload_plugin(self, name: str) -> LeakReport | None:
        """Shut the plugin down in this process and release its modules and resources;
        returns what leaked (None when it was not loaded here)."""
        return plugin_registry.unload(name)

    def get_active_plugins(self) -> list[LoadedPlugin]:
        return list(plugin_registry.loaded().values())

    # -- configuration -----------------------------------------------------------------------
    def get_config(self, name: str) -> ConfigView:
        """The latest saved version (secrets masked); version 0 when none was ever saved."""
        plugin = self.get(name)
        schema = versions.schema_of(plugin)
        return versions.view(plugin, versions.latest(plugin), schema)

    def config_schema(self, name: str) -> dict[str, Any]:
        return versions.public_schema_of(self.get(name))

    def config_history(self, name: str) -> list[ConfigView]:
        return versions.history(self.get(name))

    def set_config(
        self,
        name: str,
        data: Any,
        *,
        actor: str = "system",
        base_version: int | None = None,
        partial: bool = False,
    ) -> ConfigView:
        """Validate and save a new version, then have it applied in every process. Raises
        ``ConfigInvalid`` (nothing changes) or ``StaleConfig`` (``base_version`` is not the
        latest version)."""
        cfg = versions.save(name, data, actor=actor, base_version=base_version, partial=partial)
        tasks.enqueue_apply(name, cfg.version)
        return self._view(name, cfg.version)

    def rollback_config(
        self, name: str, version: int, *, actor: str = "system", base_version: int | None = None
    ) -> ConfigView:
        cfg = versions.rollback(name, version, actor=actor, base_version=base_version)
        tasks.enqueue_apply(name, cfg.version)
        return self._view(name, cfg.version)

    def rotate_secrets(self) -> int:
        """Re-encrypt every stored secret with the primary key; returns versions rewritten."""
        return versions.rotate_all()

    def _view(self, name: str, version: int) -> ConfigView:
        cfg = PluginConfig.objects.select_related("plugin").get(plugin__name=name, version=version)
        return versions.view(cfg.plugin, cfg, versions.schema_of(cfg.plugin))

    # -- health and metrics ------------------------------------------------------------------
    def check_health(self, name: str | None = None, actor: str = "system") -> list[CheckOutcome]:
        """Run health checks now (one plugin, or every enabled plugin) and store them."""
        serving.refresh(force=True)
        plugins = [self.get(name)] if name else list(Plugin.objects.filter(enabled=True))
        outcomes = [run_check(p, actor) for p in plugins]
        # What the checks logged here (a CLI has no runtime to flush it later).
        log_store.flush(force=True)
        return outcomes

    def health_history(self, name: str, limit: int = 50) -> QuerySet[HealthCheck]:
        return HealthCheck.objects.filter(plugin=self.get(name)).select_related("plugin")[:limit]

    def metrics(self, name: str) -> dict[str, Any]:
        """Calls, errors and latency per operation in this process, and the circuit."""
        self.get(name)
        metrics_store.flush(force=True)
        return plugin_registry.sandbox(name).snapshot()

    def metrics_history(self, name: str, minutes: int = 60) -> list[dict[str, Any]]:
        """Calls, errors and latency per minute over the last ``minutes``, summed over
        every process (this one's latest calls flushed first)."""
        self.get(name)
        metrics_store.flush(force=True)
        return metrics_store.series(name, minutes)

    # -- imports ---------------------------------------------------------------------------
    def import_report(self, name: str, *, fresh: bool = False) -> dict[str, Any]:
        """What the broker's import made of every row of its files (understood, skipped by a
        rule, reported), read from its running services now - of the files as they are now
        with ``fresh``, else of what its services read last. Raises ``PluginNotFound``,
        ``imports.NoImportReport`` (not a broker, or it keeps none),
        ``imports.ImportReportUnavailable`` or the plugin's failure."""
        return imports.import_report(name, fresh=fresh)

    # -- validation --------------------------------------------------------------------------
    def validate_plugin(self, name: str) -> ValidationResult:
        cand = candidate_for(self.discover_plugins().by_name(), name)
        if cand is None:
            raise PluginNotFound(name)
        return _result_from_candidate(cand)

    def validate_path(self, path: Path) -> ValidationResult:
        """Check a plugin folder or a manifest file: schema, rules and compatibility."""
        folder = path if path.is_dir() else path.parent
        if path.is_dir() or path.name == MANIFEST_FILENAME:
            cand = apply_compatibility(scan_directory_plugin(folder))
            return _result_from_candidate(cand, target=str(path))
        try:  # a manifest file under another name
            manifest = load_manifest_file(path)
        except ManifestError as err:
            return ValidationResult(
                str(path), code=err.code.value, errors=[i.as_dict() for i in err.issues]
            )
        issues = check_compatibility(manifest)
        return ValidationResult(
            str(path),
            manifest.name,
            manifest.version,
            code=issues[0].code if issues else None,
            errors=[{"path": "$", "message": i.message} for i in issues],
        )


def _result_from_candidate(cand: Candidate, target: str | None = None) -> ValidationResult:
    result = ValidationResult(
        target or cand.location,
        cand.declared_name,
        cand.manifest.version if cand.manifest else None,
    )
    if cand.problem is not None:
        result.code = cand.problem.code.value
        details = list(cand.problem.details)
        result.errors = [
            {"path": d.get("path", "$"), "message": d["message"]} for d in details
        ] or [{"path": "$", "message": cand.problem.message}]
    return result


manager = PluginManager()
