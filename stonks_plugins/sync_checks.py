"""What a sync decides for each plugin before it writes: whether its state changes, whether
a plugin it needs cannot run, whether its Django app is ready, and whether its trust allows
it. Plain functions of the candidate and the stored values, so rows left as they are need
not be built.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

from . import jsonpath, store, trust
from .conf import plugin_settings
from .dependencies import dependency_problems_in_order
from .discovery import Candidate, Problem
from .django_apps import APP_KEY, label_conflict, pending_action
from .errors import ReasonCode
from .lifecycle.states import PluginState
from .models import EventKind, Plugin
from .trust import policy as trust_policy

logger = logging.getLogger(__name__)


def state_change(
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
        if state == PluginState.DISABLED:
            return None  # switched off by an operator: stays off, the problem shows on enable
        return "fail", ""  # store.fail leaves a row that says exactly that as it is
    if not enabled:
        return None if state == PluginState.DISABLED else ("off", "disabled by an operator")
    if hold is not None:  # the registry mode does not serve it: off, until the mode does
        return None if state == PluginState.DISABLED else ("off", hold)
    if state == PluginState.ACTIVE and not manifest_changed:
        return None
    if (
        state == PluginState.ERROR
        and error_code in store.RUNTIME_CODES
        and not (manifest_changed or retry)
    ):
        return None  # a runtime failure is retried by enable/reload, not by every sync
    if manifest_changed:
        return "on", "manifest changed on disk; revalidated"
    return "on", "discovered and validated"


def with_dependency_problems(
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


def check_django_app(row: Plugin, cand: Candidate, actor: str, declares_app: bool) -> Candidate:
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
    unsigned alike), and the dataclass's ``asdict`` is costly next to the rest of a sync."""
    return tuple(found.as_dict().items())


def judge_trust(cand: Candidate, fields: dict[str, Any]) -> str | None:
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
