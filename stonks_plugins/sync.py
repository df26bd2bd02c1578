"""Write what discovery found to the database, idempotently: one event per change, nothing
when nothing changed. A plugin that disappeared is marked (its row and config are kept).

``PLUGINS_REGISTRY_MODE`` decides what is served, so it shapes the rows too (the rules are in
:mod:`stonks_plugins.legacy.modes`): a plugin the mode does not serve is kept ``disabled``
with a warning saying so, and a plugin whose name a legacy broker keeps leaves the row to it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.utils import timezone

from . import store, trust
from .conf import plugin_settings
from .dependencies import dependency_problems, load_order
from .discovery import Candidate, DiscoveryResult, Problem, Source
from .django_apps import APP_KEY, label_conflict, pending_action
from .errors import ReasonCode
from .lifecycle.states import PluginState
from .models import EventKind, Plugin
from .trust import policy as trust_policy

S = PluginState
logger = logging.getLogger(__name__)


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


def _metadata(cand: Candidate) -> dict[str, Any]:
    m = cand.manifest
    raw_plugin = (cand.raw or {}).get("plugin", {}) if isinstance(cand.raw, dict) else {}
    raw_plugin = raw_plugin if isinstance(raw_plugin, dict) else {}

    def text(key: str) -> str:
        value = raw_plugin.get(key, "")
        return value if isinstance(value, str) else ""

    return {
        "declared_name": cand.declared_name,
        "version": m.version if m else text("version")[:64],
        "type": m.type
        if m
        else (
            text("type") if text("type") in ("broker", "aggregator", "view", "middleware") else ""
        ),
        "source": cand.source.value,
        "location": cand.location,
        "display_name": m.display_name if m else text("display_name")[:200],
        "description": m.plugin.description if m else text("description"),
        "manifest": cand.raw if isinstance(cand.raw, dict) else {},
        "manifest_hash": cand.fingerprint,
        "warnings": list(cand.warnings),
        "missing": False,
    }


def _reconcile_state(
    row: Plugin,
    cand: Candidate,
    manifest_changed: bool,
    report: SyncReport,
    actor: str,
    retry: bool = False,
    hold: str | None = None,
) -> None:
    problem = cand.problem
    if problem is not None:
        if row.state == S.DISABLED:
            return  # switched off by an operator: stays off, the problem shows on enable
        if store.fail(row, problem, actor):
            report.failed.append(row.name)
        return
    if not row.enabled:
        if row.state != S.DISABLED:
            store.deactivate(row, "disabled by an operator", actor)
        return
    if hold is not None:  # the registry mode does not serve it: off, until the mode does
        if row.state != S.DISABLED:
            store.deactivate(row, hold, actor)
        return
    if row.state == S.ACTIVE and not manifest_changed:
        return
    if (
        row.state == S.ERROR
        and row.error_code in store.RUNTIME_CODES
        and not (manifest_changed or retry)
    ):
        return  # a runtime failure is retried by enable/reload, not by every sync
    if row.state == S.ACTIVE:
        store.walk(row, [S.UNLOADING], "manifest changed on disk", actor)
    store.activate(
        row,
        "discovered and validated"
        if not manifest_changed
        else "manifest changed on disk; revalidated",
        actor,
    )
    report.activated.append(row.name)


def _with_dependency_problems(result: DiscoveryResult, rows: dict[str, Plugin]) -> list[Candidate]:
    """Candidates in load order (needed plugins first), each failing when a plugin it needs
    cannot run."""
    by_name = result.by_name()
    default = bool(plugin_settings.ENABLE_NEW)
    enabled = {n: rows[n].enabled if n in rows else default for n in by_name}
    problems = dependency_problems(by_name, enabled)
    return [
        by_name[n].with_problem(problems[n]) if n in problems else by_name[n]
        for n in load_order(by_name.values())
    ]


def _check_django_app(row: Plugin, cand: Candidate, actor: str) -> Candidate:
    """A plugin that is a Django app (``x-django-app``) is served only once this process has
    loaded its app (installing one needs a restart) and its migrations are applied; until
    then ``row.requires`` says which, and the plugin fails with that as its reason. An app
    whose label another app has is never installed (a restart would not help): the plugin
    fails ``manifest_invalid`` saying which app has the label."""
    action, message = "", ""
    conflict: str | None = None
    if cand.problem is None:
        try:
            conflict = label_conflict(
                cand.name, cand.raw, cand.source.value, cand.root, cand.entry_point
            )
            if conflict is None:
                action, message = pending_action(
                    cand.name, cand.raw, cand.source.value, cand.entry_point
                )
        except Exception as exc:  # never let the check break a sync
            action, message = "migrate", f"its Django app could not be checked: {exc}"
    if action != row.requires:
        row.requires = action
        row.save(update_fields=["requires", "updated_at"])
        store.record(
            row,
            EventKind.DISCOVERY,
            message or "its Django app is loaded and migrated; no restart or migrate needed",
            actor,
            {"requires": action},
        )
    if conflict is not None:
        detail = {"path": f"$.{APP_KEY}", "message": conflict}
        return cand.with_problem(Problem(ReasonCode.MANIFEST_INVALID, conflict, (detail,)))
    if not action:
        return cand
    return cand.with_problem(Problem(ReasonCode.INCOMPATIBLE_CORE, message))


def _judge_trust(cand: Candidate, fields: dict[str, Any]) -> Candidate:
    """The plugin's trust verdict goes on its row (``fields``); a plugin the signature policy
    refuses, or whose files do not match its lock or RECORD, fails ``integrity_failed``
    before any of its code runs; under ``warn`` it keeps a warning (logged once)."""
    try:
        found, decided = trust_policy.decision(cand)
    except Exception as exc:  # never break a sync; never serve what could not be checked
        logger.exception("plugin %s: its trust could not be checked", cand.name)
        found = trust.TrustVerdict(trust.TrustStatus.TAMPERED, problem=f"not verified: {exc}")
        decided = trust.Decision(refusal=f"its files could not be verified: {exc}")
    fields["trust"] = found.as_dict()
    if decided.warning is not None:
        fields["warnings"].append(f"trust: {decided.warning}")
        trust_policy.warn_once(cand.name, decided.warning)
    if decided.refusal is not None and cand.problem is None:
        return cand.with_problem(Problem(ReasonCode.INTEGRITY_FAILED, decided.refusal))
    return cand


Progress = Callable[[int, int, str], None]


def sync_plugins(
    result: DiscoveryResult,
    actor: str = "system",
    retry: frozenset[str] = frozenset(),
    progress: Progress | None = None,
) -> SyncReport:
    """Reconcile the database with ``result``. Plugins named in ``retry`` are retried even
    when they failed at run time (enable and reload do that). ``progress(done, total, name)``
    is called after each plugin (the CLI shows it on long runs)."""
    from .legacy.adapter import legacy_serving
    from .legacy.modes import mode_plan

    report = SyncReport()
    now = timezone.now()
    with transaction.atomic():
        rows = {p.name: p for p in Plugin.objects.select_for_update()}
        ordered = _with_dependency_problems(result, rows)
        plan = mode_plan((c.name for c in ordered), legacy_serving.saved_now)
        for done, cand in enumerate(ordered, 1):
            if progress is not None:
                progress(done, len(ordered), cand.name)
            row = rows.pop(cand.name, None)
            if cand.name in plan.ceded:
                continue  # the legacy broker of that name has the row (sync_legacy)
            hold = plan.held.get(cand.name)
            fields = _metadata(cand)
            if hold is not None:
                fields["warnings"].append(hold)
            cand = _judge_trust(cand, fields)
            if row is None:
                row = Plugin.objects.create(
                    name=cand.name,
                    enabled=bool(plugin_settings.ENABLE_NEW),
                    last_seen_at=now,
                    **fields,
                )
                store.record(
                    row,
                    EventKind.DISCOVERY,
                    f"discovered at {cand.location} ({cand.source.value})",
                    actor,
                    {"version": row.version},
                )
                report.added.append(row.name)
                manifest_changed = False
            else:
                changes = {k: v for k, v in fields.items() if getattr(row, k) != v}
                manifest_changed = "manifest_hash" in changes
                for key, value in changes.items():
                    setattr(row, key, value)
                row.last_seen_at = now
                row.save()
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
            cand = _check_django_app(row, cand, actor)
            before = (row.state, row.error_code, row.error_message)
            _reconcile_state(row, cand, manifest_changed, report, actor, cand.name in retry, hold)
            if (
                row.state,
                row.error_code,
                row.error_message,
            ) == before and row.name not in report.added + report.updated:
                report.unchanged.append(row.name)
        for row in rows.values():
            if row.source == Source.LEGACY or row.missing:
                continue
            row.missing = True
            row.save()
            report.missing.append(row.name)
            store.record(
                row,
                EventKind.DISCOVERY,
                f"no longer found at {row.location}; the row and its config are kept",
                actor,
            )
            if row.state != S.DISABLED:
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
