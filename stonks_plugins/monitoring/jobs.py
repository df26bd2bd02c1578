"""The periodic jobs that watch plugins: health checks of every active plugin, and retries of
plugins whose failure may pass.

Without them a plugin's health is known only when someone asks (the console, the API, the
CLI), and a plugin that failed for a passing reason (a broker down at start, a slow
``initialize``) stays in ``error`` until a user's request happens to retry it. Both jobs
treat plugins one at a time and independently: one plugin that raises, hangs (bounded by the
isolation boundary's limits) or breaks a query is reported in the summary and the others are
still checked. The summaries are JSON-ready, since they are Celery task results.
"""

from __future__ import annotations

import logging
from typing import Any

from .. import store
from ..conf import plugin_settings
from ..health_checks import run_check
from ..lifecycle.states import PluginState
from ..models import Plugin
from ..redaction import scrub_text
from ..runtime.retry import retry_plugin
from ..runtime.serving import serving

logger = logging.getLogger(__name__)

ACTOR = "beat"
"""Who the rows written by the schedule name as their actor (events, health results)."""


def check_health_all(actor: str = ACTOR) -> dict[str, Any]:
    """Run the health check of every enabled, active plugin and store each result.

    Returns ``{"checked": n, "statuses": {name: status}, "failed": {name: why}}``:
    ``statuses`` holds the result of each check that ran (a hanging or raising
    ``health_check`` is an ``unhealthy`` result, as in ``plugins health``), ``failed`` the
    plugins whose check could not run at all.
    """
    if plugin_settings.SAFE_MODE:
        return {"checked": 0, "statuses": {}, "failed": {}, "skipped": "safe mode"}
    _refresh_serving()
    plugins = Plugin.objects.filter(
        state=PluginState.ACTIVE.value, enabled=True, missing=False
    ).order_by("name")
    statuses: dict[str, str] = {}
    failed: dict[str, str] = {}
    for plugin in plugins:
        try:
            outcome = run_check(plugin, actor)
        except Exception as exc:
            failed[plugin.name] = _describe(exc)
            logger.warning("health check of plugin %s failed: %s", plugin.name, failed[plugin.name])
            continue
        statuses[plugin.name] = outcome.status.status.value
    return {"checked": len(statuses) + len(failed), "statuses": statuses, "failed": failed}


def retryable_plugins() -> list[str]:
    """Enabled plugins in ``error`` for a reason that may pass (``store.RETRYABLE_CODES``;
    for a process-isolated plugin also ``health_failed``: its crashed child is restarted).
    The same rule as ``store.recover``, which brings such a plugin back to ``active``."""
    rows = Plugin.objects.filter(store.may_recover(), enabled=True, missing=False).order_by("name")
    return list(rows.values_list("name", flat=True))


def retry_failed() -> dict[str, Any]:
    """Try to load again, in this process, every plugin :func:`retryable_plugins` lists.

    Returns ``{"tried": n, "recovered": [...], "still_failing": [...], "failed": {name:
    why}}``. A plugin whose code loads comes back to ``active``; one still failing keeps (or
    updates) its error, and is tried again at its backoff; one whose retry could not run at
    all is in ``failed``.
    """
    if plugin_settings.SAFE_MODE:
        return {
            "tried": 0,
            "recovered": [],
            "still_failing": [],
            "failed": {},
            "skipped": "safe mode",
        }
    names = retryable_plugins()
    recovered: list[str] = []
    still_failing: list[str] = []
    failed: dict[str, str] = {}
    if names:
        codes = dict(Plugin.objects.filter(name__in=names).values_list("name", "error_code"))
        _refresh_serving()
        for name in names:
            try:
                if retry_plugin(name, codes.get(name, "")):
                    # The registry's recovery hook fires only after a failure seen by this
                    # process; a worker that never tried the plugin before must say it too.
                    # A no-op unless the row is still in a retryable error.
                    store.recover(name, "recovered: loaded again by the background retry")
                    recovered.append(name)
                else:
                    still_failing.append(name)
            except Exception as exc:
                failed[name] = _describe(exc)
                logger.warning("retry of plugin %s failed: %s", name, failed[name])
    return {
        "tried": len(names),
        "recovered": recovered,
        "still_failing": still_failing,
        "failed": failed,
    }


def _refresh_serving() -> None:
    """Bring this process's served set up to date first: a health check of an active plugin
    this process does not serve yet would only say "no code loaded here"."""
    serving.refresh(force=True)


def _describe(exc: BaseException) -> str:
    """One line for the summary and the log; secrets in the text are masked."""
    return scrub_text(f"{type(exc).__name__}: {exc}")[:500]
