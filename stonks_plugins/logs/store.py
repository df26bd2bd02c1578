"""Storing the captured records: each plugin's newest ``PLUGINS_LOG_RECORDS`` as
:class:`~stonks_plugins.models.PluginLogRecord` rows, masked, for the console, the API and
the CLI.

Reads never write: records wait in memory (:mod:`.capture`) until :func:`flush` - called by
the background runtime of each serving process (at most once a second, no query when nothing
was logged) and when that process exits - masks them with the plugin's secrets (its
configured secret values and ``key=value`` secrets, :func:`stonks_plugins.store.mask_text`),
cuts them to size, writes them in one insert and trims each plugin that logged to its newest
rows. A flush that cannot write puts the records back for the next one. The retention job
trims every plugin too (:func:`trim_all`), in case the setting was lowered.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Mapping
from datetime import UTC, datetime

from django.db import transaction
from django.db.models import Count, QuerySet

from .. import store
from ..conf import plugin_settings
from ..models import Plugin, PluginLogRecord
from . import capture

logger = logging.getLogger(__name__)

FLUSH_EVERY = 1.0
"""Least seconds between two unforced flushes of one process."""
LOGGER_CHARS = 200  # PluginLogRecord.logger's max_length

_lock = threading.Lock()
_last_flush = 0.0


def settings() -> tuple[int, int]:
    """(``PLUGINS_LOG_LEVEL`` as a number, ``PLUGINS_LOG_RECORDS``); a level that cannot be
    read keeps the default (INFO) rather than losing every record."""
    try:
        least = capture.parse_level(plugin_settings.LOG_LEVEL)
    except ValueError:
        least = capture.DEFAULT_LEVEL
    return least, max(1, int(plugin_settings.LOG_RECORDS))


def install() -> None:
    """Capture with this host's settings (called once by the app's wiring)."""
    capture.configure(settings)


def flush(force: bool = False) -> int:
    """Store the records logged in this process since the last flush; returns how many rows
    were written. Throttled unless ``force``; never raises."""
    global _last_flush
    if not capture.pending():
        return 0
    now = time.monotonic()
    if not force and now - _last_flush < FLUSH_EVERY:
        return 0
    if not _lock.acquire(blocking=force):
        return 0  # another thread is flushing right now
    try:
        _last_flush = now
        batches = capture.take()
        try:
            return _write(batches)
        except Exception:
            capture.restore(batches)
            logger.warning("could not store plugin log records; keeping them", exc_info=True)
            return 0
    finally:
        _lock.release()


def _write(batches: Mapping[str, list[capture.Entry]]) -> int:
    keep = settings()[1]
    host = socket.gethostname()
    with transaction.atomic():  # a savepoint when the caller is in a transaction
        ids = dict(Plugin.objects.filter(name__in=list(batches)).values_list("name", "id"))
        rows = [
            _row(ids[name], name, entry, host)
            for name, entries in batches.items()
            if name in ids  # no row: a legacy broker, or a plugin removed meanwhile
            for entry in entries[-keep:]
        ]
        PluginLogRecord.objects.bulk_create(rows)
        for plugin_id in {row.plugin_id for row in rows}:
            trim(plugin_id, keep)
    return len(rows)


def _row(plugin_id: int, name: str, entry: capture.Entry, host: str) -> PluginLogRecord:
    return PluginLogRecord(
        plugin_id=plugin_id,
        at=datetime.fromtimestamp(entry.at, UTC),
        level=max(0, min(entry.level, 32767)),
        logger=capture.head(entry.logger, LOGGER_CHARS),
        # Masked before cut: a secret cut in two would no longer be recognised.
        message=capture.head(store.mask_text(name, entry.message), capture.MESSAGE_CHARS),
        exc_text=capture.tail(store.mask_text(name, entry.exc_text), capture.EXC_CHARS),
        process=f"{host}:{entry.pid}",
    )


def trim(plugin_id: int, keep: int) -> int:
    """Delete the plugin's rows but the newest ``keep``; returns how many went."""
    newest = PluginLogRecord.objects.filter(plugin_id=plugin_id).order_by("-at", "-id")
    kept = newest.values("id")[:keep]
    deleted, _ = PluginLogRecord.objects.filter(plugin_id=plugin_id).exclude(id__in=kept).delete()
    return deleted


def trim_all() -> int:
    """Trim every plugin that holds more than ``PLUGINS_LOG_RECORDS`` rows."""
    keep = settings()[1]
    over = (
        PluginLogRecord.objects.values("plugin_id")
        .annotate(n=Count("id"))
        .filter(n__gt=keep)
        .values_list("plugin_id", flat=True)
    )
    return sum(trim(plugin_id, keep) for plugin_id in list(over))


def records(plugin: Plugin, least: int | None = None) -> QuerySet[PluginLogRecord]:
    """The plugin's stored records, newest first; with ``least``, those at that level or
    above. Lazy: the caller pages or slices it."""
    qs = PluginLogRecord.objects.filter(plugin=plugin).select_related("plugin")
    if least is not None:
        qs = qs.filter(level__gte=least)
    return qs.order_by("-at", "-id")


def flush_at_exit() -> None:
    """The last records of a process that ends (its runtime flushes no more)."""
    with contextlib.suppress(Exception):  # flush never raises; an exit must not either
        flush(force=True)
