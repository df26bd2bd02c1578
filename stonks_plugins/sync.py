"""Write what discovery found to the database, idempotently: one event per change, nothing
when nothing changed. A plugin that disappeared is marked (its row and config are kept).

``PLUGINS_REGISTRY_MODE`` decides what is served, so it shapes the rows too (the rules are in
:mod:`stonks_plugins.legacy.modes`): a plugin the mode does not serve is kept ``disabled``
with a warning saying so, and a plugin whose name a legacy broker keeps leaves the row to it.
How rows are read and built is in :mod:`.sync_rows`; what is decided for each plugin before
writing, in :mod:`.sync_checks`.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.utils import timezone

from . import store, trust, writes
from .conf import plugin_settings
from .config import upgrade
from .discovery import Candidate, DiscoveryResult, Problem, Source
from .django_apps import APP_KEY
from .errors import ReasonCode
from .instance_names import with_instances
from .legacy.adapter import legacy_serving
from .legacy.modes import mode_plan
from .lifecycle.states import PluginState
from .models import EventKind, Plugin
from .sync_checks import check_django_app, judge_trust, state_change, with_dependency_problems
from .sync_rows import build, insert_later, locked_rows, row_fields


@dataclass
class SyncReport:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    activated: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.missing or self.activated or self.failed)

    def as_dict(self) -> dict[str, Any]:
        return {k: list(v) for k, v in self.__dict__.items()}


def _reconcile_state(
    row: Plugin,
    cand: Candidate,
    manifest_changed: bool,
    report: SyncReport,
    actor: str,
    retry: bool = False,
    hold: str | None = None,
) -> None:
    change = state_change(
        row.state, row.enabled, row.error_code, cand.problem, manifest_changed, retry, hold
    )
    if change is None:
        return
    action, reason = change
    if action == "fail":
        assert cand.problem is not None
        if store.fail(row, cand.problem, actor):
            report.failed.append(row.name)
    elif action == "off":
        store.deactivate(row, reason, actor)
    else:
        if row.state == PluginState.ACTIVE:
            store.walk(row, [PluginState.UNLOADING], "manifest changed on disk", actor)
        store.activate(row, reason, actor)
        report.activated.append(row.name)


Progress = Callable[[int, int, str], None]


def sync_plugins(
    result: DiscoveryResult,
    actor: str = "system",
    retry: frozenset[str] = frozenset(),
    progress: Progress | None = None,
    only: Collection[str] | None = None,
    locked: Collection[Plugin] = (),
) -> SyncReport:
    """Reconcile the database with ``result``. Plugins named in ``retry`` are retried even
    when they failed at run time (enable and reload do that). ``progress(done, total, name)``
    is called after each plugin (the CLI shows it on long runs). With ``only``, just those
    plugins' rows are reconciled (an action on one plugin and the plugins that need it);
    the others' are left as they are. ``locked``: whole rows the caller has locked (and may
    have changed in its :func:`writes.bulk` block): the sync works on them, not on copies.

    The writes are gathered and made in bulk (:func:`writes.bulk`), so a sync's query count
    does not grow with the number of plugins, only with the kinds of change."""
    report = SyncReport()
    now = timezone.now()
    # No savepoint of its own: inside an action's transaction, a failure here fails it.
    with transaction.atomic(savepoint=False), writes.bulk() as batch:
        # An enclosing block's other row changes are written before rows are read.
        batch.flush(events=False, keep=locked)
        rows = locked_rows(only, locked)
        # Instances are not discovered: each mirrors its base's candidate, under its own name.
        by_name = with_instances(result.by_name(), rows)
        names = [n for n in by_name if only is None or n in only]
        plan = mode_plan(names, legacy_serving.saved_now)
        # Each manifest is read once here, for everything (a candidate decodes its manifest
        # again at each read): its dependencies, the row's fields and the trust verdict.
        g: dict[str, set[str]] = {}
        found: dict[str, tuple[dict[str, Any], str | None]] = {}
        for name in names:
            cand = by_name[name]
            manifest = cand.manifest
            g[name] = set(manifest.plugin_dependencies) if manifest is not None else set()
            if name in plan.ceded:
                continue
            held = rows.get(name)
            fields = row_fields(cand, manifest, held["manifest_hash"] if held else None)
            hold = plan.held.get(name)
            if hold is not None:
                fields["warnings"].append(hold)
            found[name] = (fields, judge_trust(cand, fields))
        prepared: list[tuple[Candidate, dict[str, Any], str | None]] = []
        for cand in with_dependency_problems(by_name, names, g, rows):
            if cand.name in plan.ceded:
                rows.pop(cand.name, None)  # the legacy broker of that name has the row
                continue  # (sync_legacy)
            fields, refusal = found[cand.name]
            if refusal is not None and cand.problem is None:
                cand = cand.with_problem(Problem(ReasonCode.INTEGRITY_FAILED, refusal))
            prepared.append((cand, fields, plan.held.get(cand.name)))
        upsert = writes.RowUpsert(
            now=now, enabled=bool(plugin_settings.ENABLE_NEW), later=insert_later
        )
        created = upsert.create([(c.name, f) for c, f, _ in prepared if c.name not in rows])
        reported = set()
        for done, (cand, fields, hold) in enumerate(prepared, 1):
            if progress is not None:
                progress(done, len(prepared), cand.name)
            stored = rows.pop(cand.name, None)
            manifest_changed = False
            if stored is None:
                row = created[cand.name]
                store.record(
                    row,
                    EventKind.DISCOVERY,
                    f"discovered at {cand.location} ({cand.source.value})",
                    actor,
                    {"version": row.version},
                )
                report.added.append(row.name)
                reported.add(row.name)
                declares_app = APP_KEY in fields["manifest"]
            else:
                # The manifest is at hand only when its file changed.
                declares_app = (
                    APP_KEY in fields["manifest"]
                    if "manifest" in fields
                    else bool(stored["declares_app"])
                )
                changes = upsert.changes(stored, fields)
                manifest_changed = "manifest_hash" in changes
                if not (changes or declares_app or stored["requires"]) and (
                    state_change(
                        stored["state"],
                        stored["enabled"],
                        stored["error_code"],
                        cand.problem,
                        manifest_changed,
                        cand.name in retry,
                        hold,
                    )
                    is None
                ):
                    report.unchanged.append(cand.name)  # the usual case: no row to build
                    upsert.seen(stored["id"])
                    continue
                row = build(stored)
                # A new version under a stored config: migrate it, or refuse (config.upgrade).
                cand, changes = upgrade.reconcile(row, cand, changes, actor)
                upsert.update(row, changes)
                if "trust" in changes:
                    store.record(
                        row,
                        EventKind.DISCOVERY,
                        f"trust: {trust.describe(row.trust)}",
                        actor,
                        {"trust": row.trust},
                    )
                if changes.keys() - {"warnings", "trust"}:
                    described = ", ".join(sorted(changes.keys() - {"trust"}))
                    store.record(
                        row,
                        EventKind.DISCOVERY,
                        f"changed on disk: {described}",
                        actor,
                        {"fields": sorted(changes)},
                    )
                    report.updated.append(row.name)
                    reported.add(row.name)
            cand = check_django_app(row, cand, actor, declares_app)
            before = (row.state, row.error_code, row.error_message)
            _reconcile_state(row, cand, manifest_changed, report, actor, cand.name in retry, hold)
            after = (row.state, row.error_code, row.error_message)
            if after == before and row.name not in reported:
                report.unchanged.append(row.name)
        upsert.finish()
        for stored in rows.values():
            if stored["source"] == Source.LEGACY or stored["missing"]:
                continue
            row = build(stored)
            row.missing = True
            store.save(row, ["missing"])
            report.missing.append(row.name)
            store.record(
                row,
                EventKind.DISCOVERY,
                f"no longer found at {row.location}; the row and its config are kept",
                actor,
            )
            if row.state != PluginState.DISABLED:
                store.fail(
                    row,
                    Problem(
                        ReasonCode.MANIFEST_UNREADABLE,
                        f"not found by the last sync: {row.location} no longer holds this plugin. "
                        "Reinstall it, or leave it disabled; its config is kept.",
                    ),
                    actor,
                )
    return report
