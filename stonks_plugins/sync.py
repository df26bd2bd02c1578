"""Write what discovery found to the database, idempotently: one event per change, nothing
when nothing changed. A plugin that disappeared is marked (its row and config are kept).

``PLUGINS_REGISTRY_MODE`` decides what is served, so it shapes the rows too (the rules are in
:mod:`stonks_plugins.legacy.modes`): a plugin the mode does not serve is kept ``disabled``
with a warning saying so, and a plugin whose name a legacy broker keeps leaves the row to it.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any, cast

from django.db import router, transaction
from django.db.models import BooleanField, ExpressionWrapper, Q
from django.utils import timezone

from . import jsonpath, store, trust, writes
from .conf import plugin_settings
from .config import upgrade
from .config.system import config_system, env_overrides
from .dependencies import dependency_problems_in_order
from .discovery import Candidate, DiscoveryResult, Problem, Source
from .django_apps import APP_KEY, label_conflict, pending_action
from .errors import ReasonCode
from .instance_names import with_instances
from .legacy.adapter import legacy_serving
from .legacy.modes import mode_plan
from .lifecycle.states import PluginState
from .manifest.model import PluginManifest
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


def _metadata(
    cand: Candidate, m: PluginManifest | None, stored_hash: str | None = None
) -> dict[str, Any]:
    """The row's fields for ``cand``, whose manifest is ``m``. ``manifest`` (the parsed
    file) is left out when the file is the one whose hash is ``stored_hash``: it is stored
    already, and parsing every plugin's file at every sync would cost more than the rest."""
    raw_plugin: dict[str, Any] = {}
    if m is None:
        raw = cand.raw
        found = raw.get("plugin", {}) if isinstance(raw, dict) else {}
        raw_plugin = found if isinstance(found, dict) else {}

    def text(key: str) -> str:
        value = raw_plugin.get(key, "")
        return value if isinstance(value, str) else ""

    fields: dict[str, Any] = {
        "declared_name": m.name if m else cand.name.split("@", 1)[0],
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
        "manifest_hash": cand.fingerprint,
        "warnings": list(cand.warnings),
        "missing": False,
    }
    if stored_hash is None or stored_hash != fields["manifest_hash"]:
        fields["manifest"] = cand.raw if isinstance(cand.raw, dict) else {}
    return fields


def _state_change(
    state: str,
    enabled: bool,
    error_code: str,
    problem: Problem | None,
    manifest_changed: bool,
    retry: bool = False,
    hold: str | None = None,
) -> tuple[str, str] | None:
    """What reconciling a row's state does: ``("fail", "")``, ``("off", reason)``,
    ``("on", reason)``, or None (nothing). A plain function of the row's values, so a sync
    can tell the rows it leaves as they are without building them."""
    if problem is not None:
        if state == S.DISABLED:
            return None  # switched off by an operator: stays off, the problem shows on enable
        return "fail", ""  # store.fail leaves a row that says exactly that as it is
    if not enabled:
        return None if state == S.DISABLED else ("off", "disabled by an operator")
    if hold is not None:  # the registry mode does not serve it: off, until the mode does
        return None if state == S.DISABLED else ("off", hold)
    if state == S.ACTIVE and not manifest_changed:
        return None
    if state == S.ERROR and error_code in store.RUNTIME_CODES and not (manifest_changed or retry):
        return None  # a runtime failure is retried by enable/reload, not by every sync
    if manifest_changed:
        return "on", "manifest changed on disk; revalidated"
    return "on", "discovered and validated"


def _reconcile_state(
    row: Plugin,
    cand: Candidate,
    manifest_changed: bool,
    report: SyncReport,
    actor: str,
    retry: bool = False,
    hold: str | None = None,
) -> None:
    change = _state_change(
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
        if row.state == S.ACTIVE:
            store.walk(row, [S.UNLOADING], "manifest changed on disk", actor)
        store.activate(row, reason, actor)
        report.activated.append(row.name)


def _with_dependency_problems(
    by_name: dict[str, Candidate],
    names: list[str],
    g: dict[str, set[str]],
    rows: dict[str, dict[str, Any]],
) -> list[Candidate]:
    """The candidates ``names`` in load order (needed plugins first), each failing when a
    plugin it needs cannot run. ``g``: the dependency graph of ``names``, completed here
    with the plugins they need; ``rows``: the stored rows read (the enabled flags of
    needed plugins whose rows were not read are read here)."""
    frontier = {dep for name in names for dep in g[name]} - g.keys()
    while frontier:  # plugins needed by those named, and by those, ...: whatever decides
        for name in frontier:
            cand = by_name.get(name)
            manifest = cand.manifest if cand is not None else None
            g[name] = set(manifest.plugin_dependencies) if manifest is not None else set()
        frontier = {dep for name in frontier for dep in g[name]} - g.keys()
    closure = {n: by_name[n] for n in g if n in by_name}
    graph = {n: g[n] for n in closure}
    stored = {n: rows[n]["enabled"] for n in closure if n in rows}
    unread = sorted(closure.keys() - rows.keys())
    if unread:  # an action on one plugin read its row only: those of what it needs too
        stored.update(Plugin.objects.filter(name__in=unread).values_list("name", "enabled"))
    default = bool(plugin_settings.ENABLE_NEW)
    enabled = {n: stored.get(n, default) for n in closure}
    problems, order = dependency_problems_in_order(closure, enabled, graph)
    wanted = set(names)
    return [
        closure[n].with_problem(problems[n]) if n in problems else closure[n]
        for n in order
        if n in wanted
    ]


def _check_django_app(row: Plugin, cand: Candidate, actor: str, declares_app: bool) -> Candidate:
    """A plugin that is a Django app (``x-django-app``) is served only once this process has
    loaded its app (installing one needs a restart) and its migrations are applied; until
    then ``row.requires`` says which, and the plugin fails with that as its reason. An app
    whose label another app has is never installed (a restart would not help): the plugin
    fails ``manifest_invalid`` saying which app has the label. ``declares_app``: whether
    its manifest has the key at all (false: nothing to check, and no manifest to read)."""
    action, message = "", ""
    conflict: str | None = None
    if cand.problem is None and declares_app:
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
        store.save(row, ["requires"])
        store.record(
            row,
            EventKind.DISCOVERY,
            message or "its Django app is loaded and migrated; no restart or migrate needed",
            actor,
            {"requires": action},
        )
    if conflict is not None:
        detail = {"path": jsonpath.child("$", APP_KEY), "message": conflict}
        return cand.with_problem(Problem(ReasonCode.MANIFEST_INVALID, conflict, (detail,)))
    if not action:
        return cand
    return cand.with_problem(Problem(ReasonCode.INCOMPATIBLE_CORE, message))


@functools.lru_cache(maxsize=256)
def _stored_form(found: trust.TrustVerdict) -> tuple[tuple[str, Any], ...]:
    """``found.as_dict()``, worked out once per verdict: verdicts repeat (most plugins are
    unsigned alike), and the dataclass's ``asdict`` is a tenth of a sync's time."""
    return tuple(found.as_dict().items())


def _judge_trust(cand: Candidate, fields: dict[str, Any]) -> str | None:
    """The plugin's trust verdict goes on its row (``fields``); returns why the signature
    policy refuses it (or why its files do not match its lock or RECORD): it then fails
    ``integrity_failed`` before any of its code runs. Under ``warn`` it keeps a warning
    (logged once)."""
    try:
        found, decided = trust_policy.decision(cand)
    except Exception as exc:  # never break a sync; never serve what could not be checked
        logger.exception("plugin %s: its trust could not be checked", cand.name)
        found = trust.TrustVerdict(trust.TrustStatus.TAMPERED, problem=f"not verified: {exc}")
        decided = trust.Decision(refusal=f"its files could not be verified: {exc}")
    fields["trust"] = dict(_stored_form(found))
    if decided.warning is not None:
        fields["warnings"].append(f"trust: {decided.warning}")
        trust_policy.warn_once(cand.name, decided.warning)
    return decided.refusal


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

    The writes are gathered and made in bulk (:func:`writes.bulk`): a sync costs the same
    few queries for 10 plugins as for 1,000, plus a few per kind of change."""
    report = SyncReport()
    now = timezone.now()
    # No savepoint of its own: inside an action's transaction, a failure here fails it.
    with transaction.atomic(savepoint=False), writes.bulk() as batch:
        # An enclosing block's other row changes are written before rows are read.
        batch.flush(events=False, keep=locked)
        rows = _locked_rows(only, locked)
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
            fields = _metadata(cand, manifest, held["manifest_hash"] if held else None)
            hold = plan.held.get(name)
            if hold is not None:
                fields["warnings"].append(hold)
            found[name] = (fields, _judge_trust(cand, fields))
        prepared: list[tuple[Candidate, dict[str, Any], str | None]] = []
        for cand in _with_dependency_problems(by_name, names, g, rows):
            if cand.name in plan.ceded:
                rows.pop(cand.name, None)  # the legacy broker of that name has the row
                continue  # (sync_legacy)
            fields, refusal = found[cand.name]
            if refusal is not None and cand.problem is None:
                cand = cand.with_problem(Problem(ReasonCode.INTEGRITY_FAILED, refusal))
            prepared.append((cand, fields, plan.held.get(cand.name)))
        upsert = writes.RowUpsert(now=now, enabled=bool(plugin_settings.ENABLE_NEW), later=_later)
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
                    _state_change(
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
                row = _build(stored)
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
            cand = _check_django_app(row, cand, actor, declares_app)
            before = (row.state, row.error_code, row.error_message)
            _reconcile_state(row, cand, manifest_changed, report, actor, cand.name in retry, hold)
            after = (row.state, row.error_code, row.error_message)
            if after == before and row.name not in reported:
                report.unchanged.append(row.name)
        upsert.finish()
        for stored in rows.values():
            if stored["source"] == Source.LEGACY or stored["missing"]:
                continue
            row = _build(stored)
            row.missing = True
            store.save(row, ["missing"])
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


_RECONCILED = (
    "name",
    "enabled",
    "state",
    "error_code",
    "error_message",
    "requires",
    "declared_name",
    "version",
    "type",
    "source",
    "location",
    "display_name",
    "description",
    "manifest_hash",
    "warnings",
    "missing",
    "trust",
)
"""The columns a sync compares and decides on; it only assigns the others it writes."""


_COLUMNS = tuple(  # in the model's order, as Model.from_db takes them
    f.attname for f in Plugin._meta.concrete_fields if f.attname in {"id", *_RECONCILED}
)


def _locked_rows(
    only: Collection[str] | None, locked: Collection[Plugin] = ()
) -> dict[str, dict[str, Any]]:
    """The rows to reconcile, locked, by name, as their stored values: a model instance is
    built only for a row the sync changes (building 1,000 of them would cost more than
    the rest of a sync that changes nothing). Each also says whether its stored manifest
    declares a Django app. Only the columns a sync reads are loaded: the manifest is most
    of a row, and is rewritten only when its file changed. Rows in ``locked`` are not read
    again: their values are taken from them."""
    rows: dict[str, dict[str, Any]] = {}
    for row in locked:
        rows[row.name] = {c: getattr(row, c) for c in _COLUMNS}
        rows[row.name].update(declares_app=APP_KEY in row.manifest, _row=row)
    if only is not None and not set(only) - rows.keys():
        return rows
    declares_app = ExpressionWrapper(Q(manifest__has_key=APP_KEY), output_field=BooleanField())
    query = (
        Plugin.objects.select_for_update()
        .annotate(declares_app=declares_app)
        .values_list(*_COLUMNS, "declares_app")
        .order_by()
    )
    if only is not None:
        query = query.filter(name__in=sorted(set(only) - rows.keys()))
    elif rows:
        query = query.exclude(name__in=sorted(rows))
    keys = (*_COLUMNS, "declares_app")
    for values in query:
        stored = dict(zip(keys, values, strict=True))
        rows[stored["name"]] = stored
    return rows


def _build(stored: dict[str, Any]) -> Plugin:
    """The model instance of a row read by :func:`_locked_rows`, as a query would build it
    (the columns not read are deferred); the caller's own for a row it holds."""
    held = stored.get("_row")
    if held is not None:
        return cast(Plugin, held)
    db = router.db_for_write(Plugin)
    row = Plugin.from_db(db, list(_COLUMNS), [stored[c] for c in _COLUMNS])
    row.declares_app = stored["declares_app"]  # type: ignore[attr-defined]
    return row


def _later(row: Plugin) -> bool:
    """Whether a new row may be inserted when the sync's writes are made (in the state the
    sync leaves it in: one INSERT, no UPDATE): it has no stored config, so with none in the
    settings or the environment either, its events are masked without a look at the
    database; the others are inserted at once (the config system reads their rows to find
    their secrets)."""
    return not (config_system.base_settings(row.name) or env_overrides(row.name))
