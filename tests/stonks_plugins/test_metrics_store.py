"""Plugin metrics over time: each process flushes its call counts into per-minute samples,
the samples of every process add up, old ones are pruned, and the admin plugin page charts
them."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from stonks_plugins import metrics_store
from stonks_plugins.admin.charts import history_chart
from stonks_plugins.manager import manager
from stonks_plugins.models import MetricSample, Plugin
from stonks_plugins.registry import plugin_registry

pytestmark = pytest.mark.django_db
NAME = "healthy-fixture"


def _calls() -> int:
    return int(plugin_registry.sandbox(NAME).metrics.snapshot()["__total__"]["calls"])


def _home(client) -> None:  # type: ignore[no-untyped-def]
    assert "HLTH" in client.get("/").content.decode()  # served by the plugin


@pytest.fixture
def served(plugin_dirs, admin_client_logged):  # type: ignore[no-untyped-def]
    plugin_dirs.add(NAME)
    manager.sync()
    metrics_store.flush(force=True)  # whatever sync did is not part of the test
    MetricSample.objects.all().delete()
    return admin_client_logged


def _sums() -> dict[str, float]:
    rows = MetricSample.objects.filter(plugin__name=NAME)
    return {
        "rows": rows.count(),
        "calls": sum(r.calls for r in rows),
        "errors": sum(r.errors for r in rows),
        "timed": sum(r.timed for r in rows),
    }


def test_calls_through_a_service_are_flushed_into_samples(served) -> None:  # type: ignore[no-untyped-def]
    before = _calls()
    _home(served)
    made = _calls() - before
    assert made > 0
    assert metrics_store.flush(force=True) == 1
    sample = MetricSample.objects.get(plugin__name=NAME)
    assert sample.calls == made and sample.errors == 0
    assert sample.process == metrics_store.process_id()
    assert sample.bucket == metrics_store.minute(sample.bucket)
    assert sample.timed > 0 and sample.total_ms > 0 and sample.max_ms > 0
    assert metrics_store.flush(force=True) == 0  # nothing new: no write


def test_unforced_flush_is_throttled(served, settings) -> None:  # type: ignore[no-untyped-def]
    _home(served)
    settings.PLUGINS_METRICS_FLUSH_INTERVAL = 3600
    assert metrics_store.flush() == 0  # the fixture flushed a moment ago
    assert MetricSample.objects.count() == 0
    settings.PLUGINS_METRICS_FLUSH_INTERVAL = 0
    assert metrics_store.flush() == 1


def test_two_flushes_in_the_same_minute_add_up(served, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    fixed = timezone.now().replace(second=30, microsecond=0)
    monkeypatch.setattr(metrics_store, "minute", lambda at=None: fixed.replace(second=0))
    start = _calls()
    _home(served)
    metrics_store.flush(force=True)
    first = _calls() - start
    _home(served)
    _home(served)
    metrics_store.flush(force=True)
    sums = _sums()
    assert sums["rows"] == 1 and sums["calls"] == _calls() - start > first


def test_another_process_adds_to_the_same_minute(served, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    fixed = timezone.now().replace(second=0, microsecond=0)
    monkeypatch.setattr(metrics_store, "minute", lambda at=None: fixed)
    start = _calls()
    _home(served)
    metrics_store.flush(force=True)
    mine = _calls() - start
    # A second process: its own process id, its own counters since it started.
    monkeypatch.setattr(metrics_store, "process_id", lambda: "other-host:4242")
    plugin_registry.sandbox(NAME).metrics.reset()
    metrics_store.reset(flushed=False)
    _home(served)
    theirs = _calls()
    metrics_store.flush(force=True)
    rows = {r.process: r.calls for r in MetricSample.objects.filter(plugin__name=NAME)}
    assert len(rows) == 2 and rows["other-host:4242"] == theirs
    point = metrics_store.series(NAME, minutes=5, now=fixed)[-1]
    assert point["minute"] == fixed
    assert point["calls"] == mine + theirs and point["errors"] == 0
    assert point["avg_ms"] > 0 and point["max_ms"] >= point["avg_ms"]


def test_series_has_one_point_per_minute_summed_over_processes(db, plugin_dirs) -> None:  # type: ignore[no-untyped-def]
    plugin_dirs.add(NAME)
    manager.sync()
    plugin_registry.sandbox(NAME).metrics.reset()  # sync's own load: count only the rows below
    plugin = Plugin.objects.get(name=NAME)
    now = timezone.now().replace(second=0, microsecond=0)
    for minutes_ago, process, calls, errors, timed, total, mx in (
        (0, "a:1", 4, 1, 4, 8.0, 5.0),
        (0, "b:2", 6, 0, 2, 2.0, 1.5),
        (2, "a:1", 3, 3, 3, 30.0, 20.0),
        (90, "a:1", 100, 0, 1, 1.0, 1.0),  # outside the window
    ):
        MetricSample.objects.create(
            plugin=plugin,
            bucket=now - timedelta(minutes=minutes_ago),
            process=process,
            calls=calls,
            errors=errors,
            timed=timed,
            total_ms=total,
            max_ms=mx,
        )
    points = metrics_store.series(NAME, minutes=5, now=now + timedelta(seconds=20))
    assert [p["minute"] for p in points] == [now - timedelta(minutes=i) for i in (4, 3, 2, 1, 0)]
    assert [(p["calls"], p["errors"]) for p in points] == [(0, 0), (0, 0), (3, 3), (0, 0), (10, 1)]
    assert points[2]["avg_ms"] == 10.0 and points[2]["max_ms"] == 20.0
    assert points[4]["avg_ms"] == round(10.0 / 6, 6) and points[4]["max_ms"] == 5.0
    assert points[0]["avg_ms"] == 0.0
    history = manager.metrics_history(NAME, minutes=60)
    assert len(history) == 60 and sum(p["calls"] for p in history) == 13


def test_retention_deletes_old_samples_once_an_hour(served, settings) -> None:  # type: ignore[no-untyped-def]
    settings.PLUGINS_METRICS_RETENTION_HOURS = 2
    plugin = Plugin.objects.get(name=NAME)
    now = timezone.now()
    for hours, process in ((3, "old"), (1, "recent")):
        MetricSample.objects.create(
            plugin=plugin,
            bucket=metrics_store.minute(now - timedelta(hours=hours)),
            process=process,
        )
    metrics_store.reset(flushed=False)  # this process has not pruned yet
    _home(served)
    metrics_store.flush(force=True)
    assert set(MetricSample.objects.values_list("process", flat=True)) == {
        "recent",
        metrics_store.process_id(),
    }
    MetricSample.objects.create(
        plugin=plugin, bucket=metrics_store.minute(now - timedelta(hours=5)), process="old"
    )
    _home(served)
    metrics_store.flush(force=True)  # pruned less than an hour ago: not again
    assert MetricSample.objects.filter(process="old").exists()
    assert metrics_store.prune() == 1


def test_database_error_is_logged_and_dropped(served, monkeypatch, caplog) -> None:  # type: ignore[no-untyped-def]
    from django.db import DatabaseError

    def broken(*args: object, **kwargs: object) -> None:
        raise DatabaseError("boom")

    _home(served)
    monkeypatch.setattr(metrics_store, "_write", broken)
    assert metrics_store.flush(force=True) == 0  # no exception
    assert "could not store plugin metrics" in caplog.text
    monkeypatch.undo()
    assert metrics_store.flush(force=True) == 0  # those deltas were dropped
    assert MetricSample.objects.count() == 0


def test_admin_page_shows_the_chart_over_time(served) -> None:  # type: ignore[no-untyped-def]
    start = _calls()
    _home(served)
    _home(served)
    made = _calls() - start
    pk = Plugin.objects.get(name=NAME).pk
    html = served.get(f"/admin/stonks_plugins/plugin/{pk}/change/").content.decode()
    metrics = html.split('id="metrics"')[1].split("</section>")[0]
    assert '<svg class="so-chart so-history-chart"' in metrics
    assert '<svg class="so-chart so-metrics-chart"' in metrics  # per operation, still there
    assert f"Last 60 minutes, all processes: {made} calls, 0 errors</title>" in metrics
    assert re.search(rf"<title>\d\d:\d\d: {made} calls, 0 errors, avg [0-9.]+ ms", metrics)
    assert '<polyline class="so-line-avg" points="' in metrics


def test_admin_page_without_history_says_so(served) -> None:  # type: ignore[no-untyped-def]
    pk = Plugin.objects.get(name=NAME).pk
    html = served.get(f"/admin/stonks_plugins/plugin/{pk}/change/").content.decode()
    assert "so-history-chart" not in html
    assert "No calls into this plugin recorded by any process" in html


def test_history_chart_geometry() -> None:
    now = timezone.now().replace(second=0, microsecond=0)
    points = [
        {
            "minute": now - timedelta(minutes=2 - i),
            "calls": c,
            "errors": e,
            "avg_ms": a,
            "max_ms": a,
        }
        for i, (c, e, a) in enumerate(((0, 0, 0.0), (10, 5, 2.0), (5, 0, 4.0)))
    ]
    chart = history_chart(points)
    assert chart is not None
    assert chart["max_calls"] == 10 and chart["max_ms"] == 4.0
    assert [b["calls_h"] for b in chart["bars"]] == [0.0, 110.0, 55.0]
    assert chart["bars"][1]["errors_h"] == 55.0
    assert len(chart["line"].split()) == 2  # no latency point where nothing ran
    assert history_chart([{**p, "calls": 0, "errors": 0} for p in points]) is None


def test_a_flush_writes_every_plugins_sample_in_one_statement(db) -> None:  # type: ignore[no-untyped-def]
    """Thirty plugins' deltas, flushed twice in one minute: one upsert each time (not a query
    per plugin beside the pages), and the second adds to the first's rows."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    names = [f"metrics-{i:02d}" for i in range(30)]
    Plugin.objects.bulk_create(Plugin(name=n, display_name=n) for n in names)
    deltas = {
        n: metrics_store._Delta(calls=i + 1, errors=i % 2, timed=1, total_ms=2.0, max_ms=float(i))
        for i, n in enumerate(names)
    }
    metrics_store.reset()
    with CaptureQueriesContext(connection) as first:
        assert metrics_store._write(deltas, 0.0) == 30
    later = dict(deltas, **{names[0]: metrics_store._Delta(1, 0, 1, 2.0, 99.0)})
    with CaptureQueriesContext(connection) as second:
        assert metrics_store._write(later, 0.0) == 30
    writes = [q for q in second.captured_queries if "metricsample" in q["sql"].lower()]
    assert len(writes) == 1, writes
    assert len(second.captured_queries) <= len(first.captured_queries)
    rows = {r.plugin.name: r for r in MetricSample.objects.select_related("plugin")}
    assert len(rows) == 30
    assert (rows[names[5]].calls, rows[names[5]].errors, rows[names[5]].timed) == (12, 2, 2)
    assert rows[names[5]].total_ms == 4.0 and rows[names[5]].max_ms == 5.0
    assert (rows[names[0]].calls, rows[names[0]].max_ms) == (2, 99.0)  # the larger max kept
