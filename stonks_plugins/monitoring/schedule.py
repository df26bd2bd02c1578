"""The one table of what runs in the background and how often, built from the settings.

Celery beat gets it as ``beat_schedule`` (``stonks_overwatch/celery.py``); the embedded
default, which has no beat process, runs the very same table in a thread
(:mod:`.embedded`). Each entry names a registered Celery task, so both run the same code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..conf import plugin_settings


@dataclass(frozen=True)
class Entry:
    """One periodic job: its name in the schedule, the Celery task, its period in seconds."""

    key: str
    task: str
    interval: float


def entries() -> list[Entry]:
    """The schedule now, read from the settings. An interval of zero or less switches that
    job off (its entry is left out)."""
    table = [
        Entry(
            "plugins-check-health",
            "stonks_plugins.check_health_all",
            float(plugin_settings.HEALTH_INTERVAL),
        ),
        Entry(
            "plugins-retry-failed",
            "stonks_plugins.retry_failed",
            float(plugin_settings.RETRY_INTERVAL),
        ),
        Entry(
            "plugins-prune-history",
            "stonks_plugins.prune_history",
            float(plugin_settings.PRUNE_INTERVAL),
        ),
        Entry(
            "plugins-flush-metrics",
            "stonks_plugins.flush_metrics",
            float(plugin_settings.METRICS_FLUSH_INTERVAL),
        ),
    ]
    return [e for e in table if e.interval > 0]


def beat_schedule() -> dict[str, dict[str, Any]]:
    """The table in Celery's ``beat_schedule`` shape.

    A run that no worker picked up within its own interval expires: after an outage the
    worker does one fresh run instead of working through a backlog of stale ones.
    """
    return {
        e.key: {"task": e.task, "schedule": e.interval, "options": {"expires": e.interval}}
        for e in entries()
    }
