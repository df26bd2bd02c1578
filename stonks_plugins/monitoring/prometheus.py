"""``/metrics`` in the Prometheus text format: per plugin and instance, its calls, errors,
latency, circuit, state, health and its own ``get_metrics()``.

Three sources, because they live in three places:

- **Calls, errors, rejections, timeouts and latency** are counted in memory by each process's
  boundary (:mod:`stonks_plugins.sandbox.metrics`), on the service call path, which must stay
  at ~1 µs: nothing here touches it. :func:`fold` adds what each counter gained since the
  previous fold to prometheus-client Counters and a Histogram (from the boundary's own
  latency buckets, so its observations are the *timed* calls - timing is sampled - while
  ``_calls_total`` counts every call). A scrape folds its own process first; with
  ``PROMETHEUS_MULTIPROC_DIR`` every serving process also folds from its background runtime
  about once a second (:func:`fold_if_due`), into its own files, and a scrape sums the files
  of every gunicorn and Celery worker (:mod:`.multiproc`). Without it, the scraping process
  is the only one shown (the embedded default runs one process).
- **The circuit** is per process too: ``stonks_plugin_circuit_state`` (0 closed, 1 half open,
  2 open) is a gauge whose processes are combined by ``livemax``: the worst state among the
  processes alive, so one worker's open circuit shows, and a dead worker's does not linger.
- **State, enabled, error code, health** are the plugin rows, shared by every process: a
  collector reads them from the database at each scrape, so they are never summed.
- **The plugin's own numbers** come from :mod:`.plugin_values`, asked within the budget.

Instances: a row named ``NAME:LABEL`` is instance ``LABEL`` of plugin ``NAME``; the default
instance ``NAME`` has ``instance=""``.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from django.db.models import OuterRef, Subquery
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.multiprocess import MultiProcessCollector

from ..health import Health
from ..lifecycle.states import PluginState
from ..models import HealthCheck, Plugin
from ..registry import plugin_registry
from ..sandbox.circuit import CircuitState
from ..sandbox.metrics import BUCKETS_MS, PluginMetrics
from . import multiproc, plugin_values

logger = logging.getLogger(__name__)

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
"""The classic text format, which every Prometheus reads (our names need nothing newer)."""
FOLD_EVERY = 1.0
"""Seconds between two folds of a serving process's counters into its metric files."""

LABELS = ("plugin", "instance")
CALL_LABELS = (*LABELS, "operation")
BUCKETS_S = tuple(b / 1000 for b in BUCKETS_MS)
CIRCUIT_VALUES = {CircuitState.CLOSED: 0.0, CircuitState.HALF_OPEN: 1.0, CircuitState.OPEN: 2.0}


def split_name(name: str) -> tuple[str, str]:
    """``("NAME", "LABEL")`` of a row named ``NAME:LABEL``; ``("NAME", "")`` of ``NAME``."""
    plugin, _, instance = name.partition(":")
    return plugin, instance


class _FoldedHistogram(Histogram):
    """A histogram that takes a whole interval's bucket counts at once.

    The boundary already sorted its timed calls into buckets; observing them again one by one
    would need the individual latencies, which it does not keep. This writes the counts into
    the same per-bucket values ``observe`` increments (prometheus-client's ``_buckets`` and
    ``_sum``, plain in-memory values or the process's mmap file alike)."""

    def add(self, counts: Sequence[int], seconds: float) -> None:
        self._raise_if_not_observable()
        if seconds:
            self._sum.inc(seconds)
        for bucket, count in zip(self._buckets, counts, strict=True):
            if count:
                bucket.inc(count)


@dataclass
class _Metrics:
    calls: Counter
    errors: Counter
    rejected: Counter
    timeouts: Counter
    latency: _FoldedHistogram
    circuit: Gauge
    folder: str | None
    """The multiprocess folder, or None: the metrics live in ``registry`` (one process)."""
    registry: CollectorRegistry | None


@dataclass(frozen=True)
class _Seen:
    """One operation's counters at the previous fold."""

    calls: int = 0
    errors: int = 0
    rejected: int = 0
    timeouts: int = 0
    timed: int = 0
    total_ns: int = 0
    buckets: tuple[int, ...] = ()


_lock = threading.Lock()
_metrics: _Metrics | None = None
_seen: weakref.WeakKeyDictionary[PluginMetrics, dict[str, _Seen]] = weakref.WeakKeyDictionary()
_circuits: dict[tuple[str, str], float] = {}
_last_fold = 0.0


def _make() -> _Metrics:
    folder = multiproc.configure()
    # One process: a registry of our own (never prometheus-client's global one, which other
    # code may fill). Multiprocess: values go to files and a scrape reads the files.
    registry = None if folder else CollectorRegistry(auto_describe=True)
    kw: dict[str, Any] = {"registry": registry}
    return _Metrics(
        calls=Counter(
            "stonks_plugin_calls",
            "Calls into the plugin's code that ran (failed ones included)",
            CALL_LABELS,
            **kw,
        ),
        errors=Counter("stonks_plugin_errors", "Calls that raised or timed out", CALL_LABELS, **kw),
        rejected=Counter(
            "stonks_plugin_rejected",
            "Calls refused by the open circuit (no plugin code ran)",
            CALL_LABELS,
            **kw,
        ),
        timeouts=Counter(
            "stonks_plugin_timeouts",
            "Calls abandoned for overrunning their time limit (also counted as errors)",
            CALL_LABELS,
            **kw,
        ),
        latency=_FoldedHistogram(
            "stonks_plugin_call_duration_seconds",
            "Latency of the timed calls (sampled: fast calls are timed one in 16)",
            CALL_LABELS,
            buckets=BUCKETS_S,
            **kw,
        ),
        circuit=Gauge(
            "stonks_plugin_circuit_state",
            "Circuit breaker: 0 closed, 1 half open, 2 open (worst among live processes)",
            LABELS,
            multiprocess_mode="livemax",
            **kw,
        ),
        folder=folder,
        registry=registry,
    )


def _get() -> _Metrics:
    global _metrics
    if _metrics is None:
        _metrics = _make()
    return _metrics


# -- folding the in-process counters -----------------------------------------------------------
def fold() -> None:
    """Add what this process's call counters gained since the last fold to its metrics, and
    set its circuit gauges. Never raises (a scrape or the background loop calls it)."""
    global _last_fold
    try:
        with _lock:
            _last_fold = time.monotonic()
            m = _get()
            with plugin_registry._lock:
                boxes = list(plugin_registry._sandboxes.items())
            circuits: dict[tuple[str, str], float] = {}
            for name, box in boxes:
                labels = split_name(name)
                _fold_plugin(m, labels, box.metrics)
                circuits[labels] = CIRCUIT_VALUES.get(box.circuit.state, 0.0)
            # A plugin no longer served here has no circuit here: closed, not its last state.
            for labels in _circuits.keys() - circuits.keys():
                m.circuit.labels(*labels).set(0.0)
            for labels, value in circuits.items():
                if _circuits.get(labels) != value:
                    m.circuit.labels(*labels).set(value)
            _circuits.clear()
            _circuits.update(circuits)
    except Exception:
        logger.exception("could not fold plugin call counts into the Prometheus metrics")


def _fold_plugin(m: _Metrics, labels: tuple[str, str], metrics: PluginMetrics) -> None:
    seen = _seen.setdefault(metrics, {})
    for operation, stats in metrics.items():
        now = _Seen(
            stats.calls,
            stats.errors,
            stats.rejected,
            stats.timeouts,
            stats.timed,
            stats.total_ns,
            tuple(stats.buckets),
        )
        key = (*labels, operation)
        before = seen.get(operation)
        if before is None:
            # Every series of a new operation exists from the start, at 0: a rate of errors
            # over calls needs both, and a counter that appears late loses its first rise.
            for metric in (m.calls, m.errors, m.rejected, m.timeouts, m.latency):
                metric.labels(*key)
            before = _Seen(buckets=(0,) * len(now.buckets))
        elif now.calls < before.calls or now.timed < before.timed:
            before = _Seen(buckets=(0,) * len(now.buckets))  # reset in place: all is new
        seen[operation] = now
        if now == before:
            continue
        for counter, gained in (
            (m.calls, now.calls - before.calls),
            (m.errors, now.errors - before.errors),
            (m.rejected, now.rejected - before.rejected),
            (m.timeouts, now.timeouts - before.timeouts),
        ):
            if gained > 0:
                counter.labels(*key).inc(gained)
        if now.timed > before.timed:
            counts = [max(a - b, 0) for a, b in zip(now.buckets, before.buckets, strict=True)]
            seconds = max(now.total_ns - before.total_ns, 0) / 1e9
            m.latency.labels(*key).add(counts, seconds)


def fold_if_due() -> None:
    """The background runtime's tick: with ``PROMETHEUS_MULTIPROC_DIR`` fold at most every
    ``FOLD_EVERY`` seconds, so other processes' scrapes see this one's calls. Without it,
    only a scrape of this very process reads them, and it folds first: nothing to do."""
    if multiproc.directory() is None or time.monotonic() - _last_fold < FOLD_EVERY:
        return
    fold()


def reset() -> None:
    """For tests: new, empty metrics (made again on the next fold, for the environment as it
    is then) and no baselines."""
    global _metrics, _last_fold
    with _lock:
        _metrics = None
        _seen.clear()
        _circuits.clear()
        _last_fold = 0.0
        multiproc.forget()


def _after_fork_in_child() -> None:
    # The lock may have been held by the parent's background thread at the fork.
    global _lock
    _lock = threading.Lock()


os.register_at_fork(
    before=lambda: _lock.acquire(),
    after_in_parent=lambda: _lock.release(),
    after_in_child=_after_fork_in_child,
)


# -- what a scrape reads besides the folded counters ---------------------------------------------
class StateCollector:
    """The plugin rows, read at scrape time: one truth for every process, never summed."""

    def collect(self) -> Iterator[Metric]:
        try:
            rows = list(_rows())
        except Exception:
            logger.exception("/metrics: could not read the plugin rows; states left out")
            return
        info = GaugeMetricFamily(
            "stonks_plugin_info",
            "Always 1: the plugin's version, type and source",
            labels=[*LABELS, "version", "type", "source"],
        )
        state = GaugeMetricFamily(
            "stonks_plugin_state",
            "1 for the plugin's state, 0 for the others",
            labels=[*LABELS, "state"],
        )
        enabled = GaugeMetricFamily(
            "stonks_plugin_enabled", "1 when enabled by the operator", labels=list(LABELS)
        )
        error = GaugeMetricFamily(
            "stonks_plugin_error",
            "1 while the plugin is in error, with its reason code (0 and code='' otherwise)",
            labels=[*LABELS, "code"],
        )
        health = GaugeMetricFamily(
            "stonks_plugin_health",
            "1 for the status of the last health check ('unknown' before any), 0 for others",
            labels=[*LABELS, "status"],
        )
        checked = GaugeMetricFamily(
            "stonks_plugin_health_checked_timestamp_seconds",
            "When the last health check ran (Unix time)",
            labels=list(LABELS),
        )
        unhealthy = GaugeMetricFamily(
            "stonks_plugin_consecutive_unhealthy",
            "Unhealthy health checks in a row",
            labels=list(LABELS),
        )
        statuses = [h.value for h in Health] + ["unknown"]
        for row in rows:
            labels = list(split_name(row["name"]))
            info.add_metric([*labels, row["version"], row["type"], row["source"]], 1.0)
            for st in PluginState:
                state.add_metric([*labels, st.value], 1.0 if row["state"] == st.value else 0.0)
            enabled.add_metric(labels, 1.0 if row["enabled"] else 0.0)
            code = (row["error_code"] or "") if row["state"] == PluginState.ERROR else ""
            error.add_metric([*labels, code], 1.0 if code else 0.0)
            last = row["last_health"] or "unknown"
            for status in statuses:
                health.add_metric([*labels, status], 1.0 if last == status else 0.0)
            if row["last_health_at"] is not None:
                checked.add_metric(labels, row["last_health_at"].timestamp())
            unhealthy.add_metric(labels, float(row["consecutive_unhealthy"]))
        yield from (info, state, enabled, error, health, checked, unhealthy)


def _rows() -> Iterable[dict[str, Any]]:
    last = HealthCheck.objects.filter(plugin=OuterRef("pk")).order_by("-created_at", "-id")
    return (
        Plugin.objects.annotate(
            last_health=Subquery(last.values("status")[:1]),
            last_health_at=Subquery(last.values("created_at")[:1]),
        )
        .values(
            "name",
            "version",
            "type",
            "source",
            "state",
            "enabled",
            "error_code",
            "consecutive_unhealthy",
            "last_health",
            "last_health_at",
        )
        .order_by("name")
    )


class ReportedCollector:
    """The plugins' own ``get_metrics()`` numbers, as this process's plugins answered now."""

    def __init__(self, reported: list[plugin_values.Reported]) -> None:
        self.reported = reported

    def collect(self) -> Iterator[Metric]:
        custom = GaugeMetricFamily(
            "stonks_plugin_custom",
            "A number the plugin reports itself (get_metrics), as the scraped process saw it",
            labels=[*LABELS, "metric"],
        )
        answered = GaugeMetricFamily(
            "stonks_plugin_custom_answered",
            "1 when the plugin's get_metrics() answered within the scrape's budget",
            labels=list(LABELS),
        )
        for item in self.reported:
            labels = list(split_name(item.name))
            answered.add_metric(labels, 1.0 if item.answered else 0.0)
            for metric, value in item.values.items():
                custom.add_metric([*labels, metric], value)
        yield custom
        yield answered


def render() -> bytes:
    """The scrape: this process's counters folded first, then every source rendered in the
    text format. Waits on plugin code (``get_metrics``) at most ``PLUGINS_PAGE_BUDGET``."""
    fold()
    reported = plugin_values.collect()
    m = _get()
    registry = CollectorRegistry(auto_describe=False)
    if m.folder is not None:
        MultiProcessCollector(registry, m.folder)
    else:
        assert m.registry is not None
        registry.register(m.registry)  # one process: its own metrics, as they are
    registry.register(StateCollector())
    registry.register(ReportedCollector(reported))
    return generate_latest(registry)
