"""Background monitoring on the embedded default: the jobs Celery beat runs (health checks,
retries, retention) and the in-process scheduler that runs the same table without beat.

The same schedule on a real Celery worker and beat over Redis and PostgreSQL is
``tests/e2e/test_beat.py``.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.core.management import call_command
from django.db import OperationalError, transaction
from django.utils import timezone

from stonks_plugins import store, tasks
from stonks_plugins.discovery.candidate import Problem
from stonks_plugins.errors import ReasonCode
from stonks_plugins.manager import manager
from stonks_plugins.models import (
    EventKind,
    HealthCheck,
    MetricSample,
    Plugin,
    PluginEvent,
)
from stonks_plugins.monitoring import embedded, jobs, schedule
from stonks_plugins.monitoring.prune import prune_history
from stonks_plugins.runtime.serving import serving
from tests.conftest import ROOT

HEALTHY = "healthy-fixture"
HANGS = "fault-health-hangs"
INIT_RAISES = "fault-init-raises"


# -- helpers ------------------------------------------------------------------------------------
def _cli_json(*args: str) -> Any:
    out = io.StringIO()
    call_command("plugins", *args, "--json", stdout=out)
    return json.loads(out.getvalue())


def _listed() -> dict[str, dict[str, Any]]:
    """``plugins list --json`` by name: what an operator (or a script) sees."""
    return {row["name"]: row for row in _cli_json("list")}


def _event_reasons(name: str) -> list[str]:
    """``plugins events NAME --json``: the reasons an operator reads."""
    return [row["reason"] for row in _cli_json("events", name, "--limit", "1000")]


def _install(plugin_dirs: Any, *names: str) -> None:
    for name in names:
        plugin_dirs.add(name)
    manager.sync()


def _fail(name: str, code: ReasonCode, message: str) -> None:
    """Put a plugin in error as the runtime would (transition and event)."""
    with transaction.atomic():
        store.fail(store.locked(name), Problem(code, message))


def _plugin(name: str, state: str = "active") -> Plugin:
    return Plugin.objects.create(name=name, source="directory", state=state)


def _backdate(rows: Any, days: float) -> None:
    rows.update(created_at=timezone.now() - timedelta(days=days))


def _wait_for(condition: Callable[[], bool], timeout: float = 20.0) -> bool:
    """Poll ``condition`` until it holds or ``timeout`` seconds pass (bounded wait).

    The test database on SQLite is in memory with a shared cache, where a table written by
    the scheduler's thread is reported locked at once instead of after a wait: such a read
    counts as "not yet" (the file database of the embedded default waits for the lock).
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if condition():
                return True
        except OperationalError as exc:
            if "locked" not in str(exc):
                raise
        time.sleep(0.05)
    return condition()


# -- retention ----------------------------------------------------------------------------------
@pytest.mark.django_db
def test_prune_deletes_rows_past_retention_and_keeps_recent_ones(settings) -> None:  # type: ignore[no-untyped-def]
    settings.PLUGINS_EVENT_RETENTION_DAYS = 30
    settings.PLUGINS_HEALTH_RETENTION_DAYS = 7
    settings.PLUGINS_METRICS_RETENTION_HOURS = 24
    plugin = _plugin("quiet-broker")
    for i in range(5):
        store.record(plugin, EventKind.ACTION, f"old action {i}")
    _backdate(PluginEvent.objects.filter(plugin=plugin), days=31)
    store.record(plugin, EventKind.ACTION, "recent action")
    for status in ("healthy", "degraded", "unhealthy"):
        HealthCheck.objects.create(plugin=plugin, status=status, message=f"old {status}")
    _backdate(HealthCheck.objects.filter(plugin=plugin), days=8)
    HealthCheck.objects.create(plugin=plugin, status="healthy", message="recent")
    now = timezone.now().replace(second=0, microsecond=0)
    MetricSample.objects.create(plugin=plugin, bucket=now - timedelta(hours=25), process="a:1")
    MetricSample.objects.create(plugin=plugin, bucket=now, process="a:1", calls=3)

    counts = prune_history(batch_size=2)  # small batches: several rounds, all of them done

    assert counts == {"events": 5, "health_checks": 3, "metric_samples": 1, "log_records": 0}
    assert _event_reasons("quiet-broker") == ["recent action"]
    history = manager.health_history("quiet-broker")
    assert [h.message for h in history] == ["recent"]
    assert [s.calls for s in MetricSample.objects.filter(plugin=plugin)] == [3]
    # A second pass finds nothing more to do.
    assert prune_history() == {
        "events": 0,
        "health_checks": 0,
        "metric_samples": 0,
        "log_records": 0,
    }


@pytest.mark.django_db
def test_prune_keeps_the_event_that_explains_a_plugins_error(settings) -> None:  # type: ignore[no-untyped-def]
    settings.PLUGINS_EVENT_RETENTION_DAYS = 30
    plugin = _plugin("broken-broker")
    store.record(plugin, EventKind.ACTION, "enabled by admin")
    _fail("broken-broker", ReasonCode.INITIALIZE_FAILED, "login refused by the broker")
    # Still in error, for another reason now: that newer failure is the explanation.
    _fail("broken-broker", ReasonCode.TIMEOUT, "initialize() did not return within 10 s")
    _backdate(PluginEvent.objects.filter(plugin=plugin), days=90)
    healed = _plugin("healed-broker")
    store.record(healed, EventKind.FAILURE, "was broken once")
    _backdate(PluginEvent.objects.filter(plugin=healed), days=90)

    counts = prune_history()

    reasons = _event_reasons("broken-broker")
    # Why it is in error now, and when it went into error (the transition), stay.
    assert reasons == [
        "initialize() did not return within 10 s",
        "login refused by the broker",
    ]
    assert _listed()["broken-broker"]["error"]["code"] == "timeout"
    # A plugin that is not in error has nothing to explain: all its old events go.
    assert _event_reasons("healed-broker") == []
    assert counts["events"] == 2


@pytest.mark.django_db
def test_retention_of_zero_keeps_history(settings) -> None:  # type: ignore[no-untyped-def]
    settings.PLUGINS_EVENT_RETENTION_DAYS = 0
    settings.PLUGINS_HEALTH_RETENTION_DAYS = 0
    plugin = _plugin("kept-broker")
    store.record(plugin, EventKind.ACTION, "years ago")
    HealthCheck.objects.create(plugin=plugin, status="healthy", message="years ago")
    _backdate(PluginEvent.objects.filter(plugin=plugin), days=3650)
    _backdate(HealthCheck.objects.filter(plugin=plugin), days=3650)

    assert prune_history()["events"] == 0
    assert _event_reasons("kept-broker") == ["years ago"]
    assert [h.message for h in manager.health_history("kept-broker")] == ["years ago"]


# -- health checks ------------------------------------------------------------------------------
@pytest.mark.django_db
def test_health_check_of_every_active_plugin_survives_a_hanging_one(plugin_dirs) -> None:  # type: ignore[no-untyped-def]
    _install(plugin_dirs, HANGS, HEALTHY)

    summary = tasks.check_health_all.apply(throw=True).get()

    assert summary["statuses"] == {HANGS: "unhealthy", HEALTHY: "healthy"}
    assert summary["failed"] == {}
    for name, status in summary["statuses"].items():
        latest = manager.health_history(name)[0]
        assert (latest.status, latest.actor) == (status, "beat")
    assert manager.health_history(HANGS)[0].details["code"] == "timeout"


@pytest.mark.django_db
def test_health_check_goes_on_after_one_plugin_breaks_the_check(
    plugin_dirs, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    _install(plugin_dirs, HANGS, HEALTHY)
    real = jobs.run_check

    def breaks_for_one(plugin: Plugin, actor: str = "system") -> Any:
        if plugin.name == HANGS:  # first in name order
            raise RuntimeError("database went away, password=hunter2")
        return real(plugin, actor)

    monkeypatch.setattr(jobs, "run_check", breaks_for_one)

    summary = jobs.check_health_all()

    assert summary["checked"] == 2
    assert summary["statuses"] == {HEALTHY: "healthy"}
    assert summary["failed"][HANGS].startswith("RuntimeError: database went away")
    assert "hunter2" not in summary["failed"][HANGS]
    assert manager.health_history(HEALTHY)[0].actor == "beat"


@pytest.mark.django_db
def test_health_check_skips_disabled_and_failed_plugins(plugin_dirs) -> None:  # type: ignore[no-untyped-def]
    _install(plugin_dirs, HANGS, HEALTHY)
    manager.disable(HANGS)

    summary = jobs.check_health_all()

    assert summary["statuses"] == {HEALTHY: "healthy"}
    assert not HealthCheck.objects.filter(plugin__name=HANGS).exists()


# -- retries ------------------------------------------------------------------------------------
@pytest.mark.django_db
def test_retry_brings_back_plugins_whose_error_passed(plugin_dirs) -> None:  # type: ignore[no-untyped-def]
    _install(plugin_dirs, HEALTHY, INIT_RAISES, HANGS)
    # The healthy plugin failed for a passing reason (its broker was down at start); the
    # other one still fails; an import error is not something a retry can fix.
    _fail(HEALTHY, ReasonCode.INITIALIZE_FAILED, "broker unreachable at start")
    _fail(INIT_RAISES, ReasonCode.INITIALIZE_FAILED, "broker unreachable at start")
    _fail(HANGS, ReasonCode.IMPORT_ERROR, "No module named 'healthhang.missing'")

    summary = tasks.retry_failed.apply(throw=True).get()

    assert summary["tried"] == 2
    assert summary["recovered"] == [HEALTHY]
    assert summary["still_failing"] == [INIT_RAISES]
    listed = _listed()
    assert (listed[HEALTHY]["state"], listed[HEALTHY]["error"]) == ("active", None)
    assert listed[INIT_RAISES]["state"] == "error"
    assert listed[INIT_RAISES]["error"]["code"] == "initialize_failed"
    assert listed[HANGS]["error"]["code"] == "import_error"


@pytest.mark.django_db
def test_a_round_of_retries_reads_the_plugins_rows_once(plugin_dirs, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Each retry refreshed the served set, reading every plugin's row: a round over a dozen
    failing plugins read them a dozen times, every 30 s in every web process of the
    embedded default (its scheduler runs there)."""
    _install(plugin_dirs, HEALTHY, INIT_RAISES)
    _fail(HEALTHY, ReasonCode.INITIALIZE_FAILED, "broker unreachable at start")
    _fail(INIT_RAISES, ReasonCode.INITIALIZE_FAILED, "broker unreachable at start")
    reads: list[bool] = []
    refresh = serving.refresh

    def counted(*args: Any, **kwargs: Any) -> Any:
        reads.append(True)
        return refresh(*args, **kwargs)

    monkeypatch.setattr(serving, "refresh", counted)
    summary = jobs.retry_failed()
    assert summary["tried"] == 2 and summary["recovered"] == [HEALTHY]
    assert len(reads) == 1


@pytest.mark.django_db
def test_retry_leaves_disabled_plugins_alone(plugin_dirs, settings) -> None:  # type: ignore[no-untyped-def]
    _install(plugin_dirs, HEALTHY)
    _fail(HEALTHY, ReasonCode.TIMEOUT, "initialize() did not return")
    manager.disable(HEALTHY)

    assert jobs.retry_failed()["tried"] == 0
    assert _listed()[HEALTHY]["state"] == "disabled"


@pytest.mark.django_db
def test_safe_mode_runs_no_plugin_code_in_the_background(plugin_dirs, settings) -> None:  # type: ignore[no-untyped-def]
    _install(plugin_dirs, HEALTHY)
    _fail(HEALTHY, ReasonCode.TIMEOUT, "initialize() did not return")
    settings.PLUGINS_SAFE_MODE = True

    assert jobs.retry_failed()["skipped"] == "safe mode"
    assert jobs.check_health_all()["skipped"] == "safe mode"
    assert _listed()[HEALTHY]["error"]["code"] == "timeout"


# -- the schedule -------------------------------------------------------------------------------
def test_celery_beat_gets_the_table_without_touching_the_database() -> None:
    """What ``celery -A stonks_overwatch.celery beat`` schedules, read in a fresh process
    whose database does not exist: every job, each on a task the worker registers."""
    script = (
        "import json, django; django.setup();"
        "from stonks_overwatch.celery import app;"
        "print(json.dumps({e['task']: [e['schedule'], e['task'] in app.tasks]"
        " for e in app.conf.beat_schedule.values()}))"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PLUGINS_", "CELERY_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="stonks_overwatch.settings",
        DATABASE_URL="postgres://nobody@127.0.0.1:1/no_such_database",
    )
    out = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )

    assert json.loads(out.stdout.strip().splitlines()[-1]) == {
        "stonks_plugins.check_health_all": [60.0, True],
        "stonks_plugins.retry_failed": [30.0, True],
        "stonks_plugins.prune_history": [3600.0, True],
        "stonks_plugins.flush_metrics": [15.0, True],
    }


def test_schedule_follows_the_settings_and_zero_switches_a_job_off(settings) -> None:  # type: ignore[no-untyped-def]
    settings.PLUGINS_HEALTH_INTERVAL = 5
    settings.PLUGINS_PRUNE_INTERVAL = 0

    table = schedule.beat_schedule()

    tasks_by_interval = {e["task"]: e["schedule"] for e in table.values()}
    assert tasks_by_interval["stonks_plugins.check_health_all"] == 5.0
    assert "stonks_plugins.prune_history" not in tasks_by_interval
    # A run that waited a whole interval for a worker is dropped, not piled up.
    assert all(e["options"]["expires"] == e["schedule"] for e in table.values())


# -- the embedded scheduler ---------------------------------------------------------------------
@pytest.fixture
def embedded_schedule(settings) -> Iterator[None]:  # type: ignore[no-untyped-def]
    """The embedded default (eager tasks, so no beat) with every job every 0.1 s."""
    assert embedded.stop_embedded_scheduler()  # whoever started one before, it is not ours
    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.PLUGINS_HEALTH_INTERVAL = 0.1
    settings.PLUGINS_RETRY_INTERVAL = 0.1
    settings.PLUGINS_PRUNE_INTERVAL = 0.1
    settings.PLUGINS_METRICS_FLUSH_INTERVAL = 0.1
    settings.PLUGINS_EVENT_RETENTION_DAYS = 1
    settings.PLUGINS_HEALTH_RETENTION_DAYS = 1
    yield
    assert embedded.stop_embedded_scheduler()


@pytest.mark.django_db(transaction=True)
def test_embedded_scheduler_retries_checks_and_prunes_without_beat(
    plugin_dirs, embedded_schedule
) -> None:  # type: ignore[no-untyped-def]
    _install(plugin_dirs, HEALTHY)
    _fail(HEALTHY, ReasonCode.TIMEOUT, "initialize() did not return")  # passes on retry
    store.record(Plugin.objects.get(name=HEALTHY), EventKind.ACTION, "ancient history")
    _backdate(PluginEvent.objects.filter(reason="ancient history"), days=2)

    assert embedded.start_embedded_scheduler() is True
    assert embedded.start_embedded_scheduler() is False  # one per process
    assert embedded.embedded_scheduler_running()

    # Retried back to active, then health-checked in the background, old history pruned.
    assert _wait_for(lambda: _listed()[HEALTHY]["state"] == "active")
    assert _wait_for(
        lambda: HealthCheck.objects.filter(plugin__name=HEALTHY, actor="beat").exists()
    )
    assert _wait_for(lambda: "ancient history" not in _event_reasons(HEALTHY))
    assert "initialize() did not return" in _event_reasons(HEALTHY)  # recent: kept

    assert embedded.stop_embedded_scheduler() is True
    assert not embedded.embedded_scheduler_running()


@pytest.mark.django_db(transaction=True)
def test_embedded_scheduler_survives_a_job_that_raises(
    plugin_dirs, embedded_schedule, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    _install(plugin_dirs, HEALTHY)
    calls: list[str] = []

    def broken_prune(*args: Any, **kwargs: Any) -> dict[str, int]:
        calls.append("prune")
        raise RuntimeError("prune broke")

    monkeypatch.setattr("stonks_plugins.monitoring.prune.prune_history", broken_prune)
    assert embedded.start_embedded_scheduler()

    # The prune fails on every run, yet the scheduler goes on and health checks keep coming.
    assert _wait_for(lambda: len(calls) >= 3)
    assert _wait_for(
        lambda: HealthCheck.objects.filter(plugin__name=HEALTHY, actor="beat").count() >= 2
    )
    assert embedded.embedded_scheduler_running()


def test_no_embedded_scheduler_when_a_worker_and_beat_exist(settings) -> None:  # type: ignore[no-untyped-def]
    settings.CELERY_TASK_ALWAYS_EAGER = False

    assert embedded.start_embedded_scheduler() is False
    assert not embedded.embedded_scheduler_running()


def test_a_forked_process_starts_its_own_scheduler(embedded_schedule, settings) -> None:  # type: ignore[no-untyped-def]
    # Long intervals: no job runs (and no database is touched) in either process.
    settings.PLUGINS_HEALTH_INTERVAL = settings.PLUGINS_RETRY_INTERVAL = 3600
    settings.PLUGINS_PRUNE_INTERVAL = settings.PLUGINS_METRICS_FLUSH_INTERVAL = 3600
    assert embedded.start_embedded_scheduler()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child, like a pre-fork server's worker
        try:
            seen = [
                embedded.embedded_scheduler_running(),  # the parent's thread is not here
                embedded.start_embedded_scheduler(),
                embedded.embedded_scheduler_running(),
                embedded.stop_embedded_scheduler(),
            ]
            os.write(write_end, json.dumps(seen).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        seen = json.loads(pipe.read() or "null")
    os.waitpid(pid, 0)

    assert seen == [False, True, True, True]
    assert embedded.embedded_scheduler_running()  # the parent's own is untouched
