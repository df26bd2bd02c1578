"""Plugin metrics over time, shared by every process.

Each process counts calls into its plugins in memory (``sandbox.metrics``); those counters
are per process and since it started. :func:`flush` turns them into a small time series: the
calls, errors and latency each process saw since its previous flush are *added* to that
process's row of the current minute (:class:`~stonks_plugins.models.MetricSample`, one row per
plugin, minute and ``hostname:pid``). :func:`series` sums the rows of all processes per
minute, which is what the admin charts.

``flush`` is called on hot paths (the bridge's refresh, each Celery task), so it is cheap:
at most one flush every ``PLUGINS_METRICS_FLUSH_INTERVAL`` seconds (default 15), no query at
all when no plugin was called since the last one, otherwise two statements whatever the
number of plugins with activity (their ids, one upsert). It never raises: a database error
is logged and that interval's deltas are dropped. Samples older than
``PLUGINS_METRICS_RETENTION_HOURS`` (default 24) are deleted by a flush at most once an
hour.

Latency: timing is sampled (see ``sandbox.metrics``), so a sample keeps ``timed`` next to
``total_ms`` and the average is ``total_ms / timed``. The in-memory ``max`` is a running
maximum since the process started; a minute's ``max_ms`` is that maximum when it grew since
the previous flush, else the interval's average (a lower bound of its true maximum).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import weakref
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import connections, router, transaction
from django.db.models import Max, Sum
from django.utils import timezone

from .conf import plugin_settings
from .sandbox.metrics import TOTAL_KEY, PluginMetrics

logger = logging.getLogger(__name__)

PRUNE_EVERY = 3600.0
"""Seconds between two retention passes of one process."""


@dataclass(frozen=True)
class _Totals:
    calls: int = 0
    errors: int = 0
    timed: int = 0
    total_ms: float = 0.0
    max_ms: float = 0.0


@dataclass(frozen=True)
class _Delta:
    calls: int
    errors: int
    timed: int
    total_ms: float
    max_ms: float


_lock = threading.Lock()
_last: weakref.WeakKeyDictionary[PluginMetrics, _Totals] = weakref.WeakKeyDictionary()
_last_flush = 0.0
_last_prune: float | None = None


def process_id() -> str:
    """``hostname:pid`` of this process (read each time: a forked worker gets its own)."""
    return f"{socket.gethostname()}:{os.getpid()}"


def minute(at: datetime | None = None) -> datetime:
    return (at or timezone.now()).replace(second=0, microsecond=0)


def reset(flushed: bool = True) -> None:
    """Forget the baselines; with ``flushed`` the next unforced flush waits a full interval
    (tests start from here)."""
    global _last_flush, _last_prune
    with _lock:
        _last.clear()
        _last_flush = time.monotonic() if flushed else 0.0
        _last_prune = None


def _interval() -> float:
    return float(plugin_settings.METRICS_FLUSH_INTERVAL)


def _retention_hours() -> float:
    return float(plugin_settings.METRICS_RETENTION_HOURS)


def _totals(metrics: PluginMetrics) -> _Totals:
    t = metrics.snapshot()[TOTAL_KEY]
    timed = int(t["timed"])
    return _Totals(
        calls=int(t["calls"]),
        errors=int(t["errors"]),
        timed=timed,
        total_ms=float(t["avg_ms"]) * timed,
        max_ms=float(t["max_ms"]),
    )


def _delta(now: _Totals, before: _Totals) -> _Delta | None:
    if now.calls < before.calls or now.timed < before.timed:
        before = _Totals()  # the counters were reset in place: everything is new
    calls, timed = now.calls - before.calls, now.timed - before.timed
    if calls <= 0 and timed <= 0:
        return None
    total_ms = max(now.total_ms - before.total_ms, 0.0)
    # A grown running max happened in this interval; else the interval's average bounds it.
    grew = now.max_ms > before.max_ms
    max_ms = now.max_ms if grew else (total_ms / timed if timed else 0.0)
    return _Delta(calls, max(now.errors - before.errors, 0), timed, total_ms, max_ms)


def _collect() -> dict[str, _Delta]:
    from .registry import plugin_registry

    with plugin_registry._lock:
        boxes = list(plugin_registry._sandboxes.items())
    deltas: dict[str, _Delta] = {}
    for name, box in boxes:
        now = _totals(box.metrics)
        delta = _delta(now, _last.get(box.metrics, _Totals()))
        _last[box.metrics] = now
        if delta is not None:
            deltas[name] = delta
    return deltas


def flush(force: bool = False) -> int:
    """Add this process's calls since the last flush to the current minute's samples.

    Returns how many plugins' samples were written (0 when throttled, idle or on error).
    """
    global _last_flush
    try:
        now = time.monotonic()
        if not force and now - _last_flush < _interval():
            return 0
        if not _lock.acquire(blocking=force):
            return 0  # another thread is flushing right now
        try:
            _last_flush = now
            deltas = _collect()
            if not deltas:
                return 0
            return _write(deltas, now)
        finally:
            _lock.release()
    except Exception:
        logger.warning("could not store plugin metrics; dropping them", exc_info=True)
        return 0


def _write(deltas: dict[str, _Delta], now: float) -> int:
    """Two statements whatever the number of plugins: their ids, then one upsert adding each
    delta to its row of the minute (made if missing). Through the ORM it was an insert or an
    update per plugin: 10-30 queries and 7-25 ms of a serving process's CPU every flush."""
    from .models import MetricSample, Plugin

    global _last_prune
    bucket, process = minute(), process_id()
    connection = connections[router.db_for_write(MetricSample)]
    when = connection.ops.adapt_datetimefield_value(bucket)
    with transaction.atomic(using=connection.alias):  # a savepoint inside a transaction
        ids = dict(Plugin.objects.filter(name__in=list(deltas)).values_list("name", "id"))
        rows = [
            (ids[name], when, process, d.calls, d.errors, d.timed, d.total_ms, d.max_ms)
            for name, d in deltas.items()
            if name in ids  # not a sandbox without a plugin row (legacy broker, removed plugin)
        ]
        if rows:
            with connection.cursor() as cursor:
                cursor.executemany(_upsert(connection), rows)
        if _last_prune is None or now - _last_prune >= PRUNE_EVERY:
            _last_prune = now
            prune()
    return len(rows)


def _upsert(connection: Any) -> str:
    """``INSERT ... ON CONFLICT DO UPDATE`` adding to the row of the minute (SQLite and
    PostgreSQL, the two databases the project runs on)."""
    from .models import MetricSample

    q = connection.ops.quote_name
    table = q(MetricSample._meta.db_table)
    greatest = "GREATEST" if connection.vendor == "postgresql" else "MAX"
    added = ", ".join(f"{q(c)} = {table}.{q(c)} + excluded.{q(c)}" for c in _SUMMED)
    return (
        f"INSERT INTO {table} ({q('plugin_id')}, {q('bucket')}, {q('process')}, "
        f"{', '.join(q(c) for c in _SUMMED)}, {q('max_ms')}) "
        f"VALUES (%s, %s, %s, %s, %s, %s, %s, %s) "
        f"ON CONFLICT ({q('plugin_id')}, {q('bucket')}, {q('process')}) DO UPDATE SET "
        f"{added}, {q('max_ms')} = {greatest}({table}.{q('max_ms')}, excluded.{q('max_ms')})"
    )


_SUMMED = ("calls", "errors", "timed", "total_ms")


def prune(now: datetime | None = None) -> int:
    """Delete samples older than the retention; returns how many rows went."""
    from .models import MetricSample

    cutoff = (now or timezone.now()) - timedelta(hours=_retention_hours())
    deleted, _ = MetricSample.objects.filter(bucket__lt=cutoff).delete()
    return deleted


def series(name: str, minutes: int = 60, now: datetime | None = None) -> list[dict[str, Any]]:
    """One point per minute, oldest first, the last one being the current minute: calls,
    errors, average and max latency summed over every process (zeros where nothing ran)."""
    from .models import MetricSample

    minutes = max(1, int(minutes))
    end = minute(now)
    start = end - timedelta(minutes=minutes - 1)
    rows = (
        MetricSample.objects.filter(plugin__name=name, bucket__gte=start, bucket__lte=end)
        .values("bucket")
        .annotate(
            s_calls=Sum("calls"),
            s_errors=Sum("errors"),
            s_timed=Sum("timed"),
            s_total=Sum("total_ms"),
            s_max=Max("max_ms"),
        )
        .order_by("bucket")
    )
    by_minute = {r["bucket"]: r for r in rows}
    points = []
    for i in range(minutes):
        at = start + timedelta(minutes=i)
        r = by_minute.get(at)
        timed = int(r["s_timed"] or 0) if r else 0
        points.append(
            {
                "minute": at,
                "calls": int(r["s_calls"] or 0) if r else 0,
                "errors": int(r["s_errors"] or 0) if r else 0,
                "avg_ms": round(float(r["s_total"] or 0.0) / timed, 6) if r and timed else 0.0,
                "max_ms": round(float(r["s_max"] or 0.0), 6) if r else 0.0,
            }
        )
    return points
