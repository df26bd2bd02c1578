"""What the console's pages show, read from the manager: the plugin page's sections (manifest,
config form and history, import report, dependencies, logs, events, health, metrics and
charts) and the overview's counts. ``PluginAdmin`` renders them; nothing here changes a row.

Every text a plugin or the engine wrote is shown scrubbed with the plugin's secret values,
read once for all the sections (:mod:`stonks_plugins.config.shown`).
"""

from __future__ import annotations

import json
import logging
import os
from collections import Counter
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest
from django.urls import reverse
from django.utils.translation import get_language, gettext

from ..config.shown import ANY_PLUGIN, Scrubber, scrubber_for
from ..errors import PluginError
from ..imports import ImportReportUnavailable
from ..lifecycle.states import PluginState
from ..manager import manager
from ..manifest.texts import localized, translations_of
from ..models import Plugin
from .badges import health_badge, state_badge
from .charts import failed_calls, health_chart, history_chart, metrics_chart
from .dependents import dependencies_context
from .filters import HEALTH_STATES
from .forms import SUBMIT_FIELD, ConfigForm
from .labels import health_label

logger = logging.getLogger(__name__)

EVENTS_SHOWN = 50
LOGS_SHOWN = 50
HEALTH_SHOWN = 50
HISTORY_MINUTES = 60
STATES = [s.value for s in PluginState]
ACTIONS = ("enable", "disable", "reload", "check_health")
"""The plugin page's action buttons (``<id>/do/<verb>/``)."""


def pretty(value: Any, scrub: Scrubber = ANY_PLUGIN) -> str:
    """JSON for a ``<pre>``, scrubbed."""
    return json.dumps(scrub.json(value), indent=2, sort_keys=False, default=str)


def shown_texts(plugin: Plugin, language: str | None) -> dict[str, str]:
    """The plugin's display name and description in ``language`` when its manifest has them
    (``plugin.translations``), else as stored."""
    return localized(
        translations_of(plugin.manifest),
        language,
        display_name=plugin.display_name,
        description=plugin.description,
    )


def plugin_page(
    request: HttpRequest,
    plugin: Plugin,
    can_change: bool,
    bound: ConfigForm | None,
    action_url: Callable[[str], str],
) -> dict[str, Any]:
    """The plugin page's context beyond the model form. ``bound``: the config form as posted
    (with its errors); ``action_url(verb)``: where an action button posts."""
    scrub = scrubber_for(plugin)
    manifest = plugin.manifest if isinstance(plugin.manifest, dict) else {}
    capabilities = manifest.get("capabilities") or {}
    services = manifest.get("services") or {}
    texts = shown_texts(plugin, get_language())
    checks = list(manager.health_history(plugin.name, limit=HEALTH_SHOWN))
    # Before the import report: reading it calls the plugin, which the metrics would count.
    metrics = _metrics(plugin, scrub)
    labels = {
        "enable": gettext("Enable"),
        "disable": gettext("Disable"),
        "reload": gettext("Reload"),
        "check_health": gettext("Check health"),
    }
    return {
        "plugin": plugin,
        "plugin_display_name": texts["display_name"],
        "plugin_description": texts["description"],
        "can_change": can_change,
        "plugin_actions": [(verb, labels[verb], action_url(verb)) for verb in ACTIONS],
        "state_badge": state_badge(plugin.state),
        "health_badge": health_badge(checks[0].status if checks else None),
        "plugin_error_message": scrub.text(plugin.error_message),
        "manifest_json": pretty(manifest, scrub),
        "capability_lists": [
            (key, value if isinstance(value, list) else [value])
            for key, value in capabilities.items()
            if key != "services"
        ],
        "capability_services": capabilities.get("services") or [],
        "services": sorted(services.items()) if isinstance(services, dict) else [],
        **_config(plugin, can_change, bound, scrub),
        **_imports(plugin, scrub),
        **dependencies_context(plugin),
        **_logs(plugin, scrub),
        **_events(request, plugin, scrub),
        **_health(checks, scrub),
        **metrics,
    }


def _config(
    plugin: Plugin, can_change: bool, bound: ConfigForm | None, scrub: Scrubber
) -> dict[str, Any]:
    """The "Config" section: the form generated from the schema, and the versions saved."""
    try:
        schema = manager.config_schema(plugin.name)
        latest = manager.get_config(plugin.name)
        history = manager.config_history(plugin.name)
    except Exception as exc:  # a broken manifest or schema: say so, show the rest
        return {"config_error": scrub.text(str(exc))}
    form = bound or ConfigForm(schema, latest.data, latest.version, read_only=not can_change)
    newest = history[0] if history else None
    return {
        "config_form": form,
        "config_latest": latest,
        "config_refused": newest if newest and newest.status == "failed" else None,
        "config_refused_message": scrub.text(newest.message) if newest else "",
        "config_history": [
            {
                "version": h.version,
                "status": h.status,
                "by": h.created_by,
                "at": h.created_at,
                "changed": ", ".join(h.changed),
                "message": scrub.text(h.message),
            }
            for h in history[:20]
        ],
        "config_submit": SUBMIT_FIELD,
    }


def _imports(plugin: Plugin, scrub: Scrubber) -> dict[str, Any]:
    """The "Import" section: rows per file and outcome, and the reported rows; none for a
    plugin that keeps no report or cannot be read now (off, in error)."""
    if plugin.type != "broker":
        return {}
    try:
        report = manager.import_report(plugin.name)
    except ImportReportUnavailable:
        return {}
    except PluginError as exc:  # the plugin failed or hung while it was read
        return {"imports_error": scrub.text(str(exc))}

    def count(value: int | None) -> int | str:
        return "?" if value is None else value

    return {
        "imports": report,
        "import_files": [
            {
                "name": name,
                "rows": count(c["rows"]),
                "understood": count(c["understood"]),
                "skipped": sum(c["skipped"].values()),
                "reported": c["reported"],
                "rules": sorted(c["skipped"].items()),
            }
            for name, c in report["files"].items()
        ],
        "import_totals": {k: count(v) for k, v in report["totals"].items()},
    }


def _logs(plugin: Plugin, scrub: Scrubber) -> dict[str, Any]:
    """The "Logs" section: the newest records the plugin's code logged (stored masked;
    scrubbed again like every text on the page)."""
    return {
        "logs": [
            {
                "at": r.at,
                "level": r.level_name,
                "logger": r.logger,
                "message": scrub.text(r.message),
                "exc_text": scrub.text(r.exc_text),
                "process": r.process,
            }
            for r in manager.logs(plugin.name)[:LOGS_SHOWN]
        ],
        "logs_shown": LOGS_SHOWN,
    }


def _events(request: HttpRequest, plugin: Plugin, scrub: Scrubber) -> dict[str, Any]:
    """The "Events" section, and a link to the whole trail for who may read it."""
    events = manager.events(plugin.name, limit=EVENTS_SHOWN)
    may_read_all = request.user.has_perm("stonks_plugins.view_pluginevent")
    changelist = reverse("admin:stonks_plugins_pluginevent_changelist")
    return {
        "events": [
            {
                "at": e.created_at,
                "kind": e.kind,
                "from": e.from_state,
                "to": e.to_state,
                "reason": scrub.text(e.reason),
                "actor": e.actor,
            }
            for e in events
        ],
        "events_url": f"{changelist}?plugin__id__exact={plugin.pk}" if may_read_all else "",
    }


def _health(checks: list[Any], scrub: Scrubber) -> dict[str, Any]:
    """The "Health" section: the latest checks, newest first, and their chart."""
    return {
        "checks": [
            {
                "at": c.created_at,
                "status": c.status,
                "badge": health_badge(c.status),
                "message": scrub.text(c.message),
                "ms": round(c.duration_ms, 2),
                "actor": c.actor,
            }
            for c in checks
        ],
        "health_chart": health_chart(checks),
    }


def _metrics(plugin: Plugin, scrub: Scrubber) -> dict[str, Any]:
    """The "Metrics" section: this process's counters per operation and the circuit, and
    every process's calls per minute over the last hour."""
    try:
        snapshot = manager.metrics(plugin.name)
    except Exception as exc:
        snapshot = {"error": str(exc)}
    stats = snapshot.get("metrics") or {}
    operations = [(op, s) for op, s in stats.items() if op != "__total__"]
    try:
        history = manager.metrics_history(plugin.name, minutes=HISTORY_MINUTES)
    except Exception:
        logger.warning("no metrics history for %s", plugin.name, exc_info=True)
        history = []
    return {
        "metrics_error": scrub.text(snapshot.get("error", "")),
        "metrics_rows": [{"op": op, **s, "errors_all": failed_calls(s)} for op, s in operations],
        "metrics_total": stats.get("__total__"),
        "metrics_chart": metrics_chart(operations),
        "history_chart": history_chart(history),
        "history_minutes": HISTORY_MINUTES,
        "circuit": snapshot.get("circuit"),
        "metrics_pid": os.getpid(),
    }


def overview(plugins: list[Plugin], changelist: str) -> dict[str, Any]:
    """The overview page's plugins (each with its name, state badge and health label in the
    active language; the codes stay in the classes) and counts by state and by health.
    ``plugins`` carry ``latest_health`` (``filters.with_latest_health``)."""
    language = get_language()
    for p in plugins:
        p.shown_name = shown_texts(p, language)["display_name"]  # type: ignore[attr-defined]
        p.state_badge = state_badge(p.state)  # type: ignore[attr-defined]
        p.health_label = health_label(getattr(p, "latest_health", None))  # type: ignore[attr-defined]
    by_state = Counter(p.state for p in plugins)
    by_health = Counter(getattr(p, "latest_health", None) or "none" for p in plugins)
    return {
        "plugins": plugins,
        "total": len(plugins),
        "enabled": sum(1 for p in plugins if p.enabled),
        "states": [
            {
                "state": s,
                "count": by_state.get(s, 0),
                "badge": state_badge(s),
                "url": f"{changelist}?state__exact={s}",
            }
            for s in STATES
        ],
        "healths": [
            {
                "status": h,
                "count": by_health.get(h, 0),
                "badge": health_badge(None if h == "none" else h),
                "url": f"{changelist}?health={h}",
            }
            for h in [*HEALTH_STATES, "none"]
        ],
    }
