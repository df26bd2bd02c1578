"""Background monitoring on the real parts: the compose deployment's ``worker`` and ``beat``
services (``celery ... worker`` and ``celery ... beat``, started here as processes) on
PostgreSQL and Redis, with the schedule's intervals and retentions set short through the
environment.

Beat's schedule checks the health of every active plugin (rows with actor ``beat``), brings
back a plugin whose error has passed, and prunes events, health results and metric samples
past their retention, while recent rows stay. The same table run in-process on the embedded
default (no beat) is ``tests/stonks_plugins/test_monitoring.py``.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable
from contextlib import closing
from typing import Any

import psycopg
import pytest

from tests.conftest import FIXTURES, ROOT
from tests.e2e.conftest import BIN, Stack

pytestmark = pytest.mark.slow

HEALTHY = "healthy-fixture"
RETRIED = "collide-one"
WAIT = 30.0  # seconds: the bounded wait, all of it, for what beat's runs must show
SHORT = {
    "PLUGINS_HEALTH_INTERVAL": "1",
    "PLUGINS_RETRY_INTERVAL": "1",
    "PLUGINS_PRUNE_INTERVAL": "1",
    "PLUGINS_METRICS_FLUSH_INTERVAL": "1",
    "PLUGINS_EVENT_RETENTION_DAYS": "1",
    "PLUGINS_HEALTH_RETENTION_DAYS": "1",
    "PLUGINS_METRICS_RETENTION_HOURS": "1",
}

# Run by ``manage.py shell``: rows from before the retention, recent ones, and a plugin in
# an error that has passed (its broker is back).
SEED = f"""
from datetime import timedelta
from django.db import transaction
from django.utils import timezone
from stonks_plugins import store
from stonks_plugins.discovery.candidate import Problem
from stonks_plugins.errors import ReasonCode
from stonks_plugins.models import HealthCheck, MetricSample, Plugin, PluginEvent

now = timezone.now()
plugin = Plugin.objects.get(name={HEALTHY!r})
for i in range(3):
    PluginEvent.objects.create(
        plugin=plugin, kind="action", reason=f"old action {{i}}", created_at=now - timedelta(days=3)
    )
    HealthCheck.objects.create(
        plugin=plugin, status="healthy", message="old check", created_at=now - timedelta(days=3)
    )
PluginEvent.objects.create(plugin=plugin, kind="action", reason="recent action")
minute = now.replace(second=0, microsecond=0)
MetricSample.objects.create(plugin=plugin, bucket=minute - timedelta(hours=3), process="x:1")
MetricSample.objects.create(plugin=plugin, bucket=minute, process="x:1", calls=7)
with transaction.atomic():
    store.fail(
        store.locked({RETRIED!r}),
        Problem(ReasonCode.TIMEOUT, "initialize() did not return within 10 s"),
    )
"""


def start_beat(stack: Stack) -> subprocess.Popen[bytes]:
    """``celery beat`` as the compose ``beat`` service runs it, logging to ``beat.log``."""
    log = open(stack.tmp / "beat.log", "wb")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen(
        [
            str(BIN / "celery"),
            "-A",
            "stonks_overwatch.celery",
            "beat",
            "-l",
            "info",
            "-s",
            str(stack.tmp / "celerybeat-schedule"),
        ],
        cwd=ROOT,
        env=stack.env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    stack.procs.append(proc)  # stopped with the stack
    return proc


class Database:
    """Reads of the shared PostgreSQL database, as a dashboard would make them."""

    def __init__(self, url: str) -> None:
        self.conn = psycopg.connect(url, autocommit=True)

    def close(self) -> None:
        self.conn.close()

    def value(self, sql: str, *params: Any) -> Any:
        row = self.conn.execute(sql, params).fetchone()
        return row[0] if row else None

    def beat_checks(self, plugin: str) -> int:
        return int(
            self.value(
                "SELECT count(*) FROM stonks_plugins_healthcheck h "
                "JOIN stonks_plugins_plugin p ON p.id = h.plugin_id "
                "WHERE p.name = %s AND h.actor = 'beat'",
                plugin,
            )
        )

    def older_than(self, table: str, column: str, interval: str) -> int:
        return int(
            self.value(
                f"SELECT count(*) FROM {table} WHERE {column} < now() - interval '{interval}'"
            )
        )

    def state(self, plugin: str) -> tuple[str, str]:
        row = self.conn.execute(
            "SELECT state, error_code FROM stonks_plugins_plugin WHERE name = %s", (plugin,)
        ).fetchone()
        assert row is not None, plugin
        return str(row[0]), str(row[1])

    def reasons(self, plugin: str) -> list[str]:
        rows = self.conn.execute(
            "SELECT e.reason FROM stonks_plugins_pluginevent e "
            "JOIN stonks_plugins_plugin p ON p.id = e.plugin_id WHERE p.name = %s",
            (plugin,),
        ).fetchall()
        return [str(r[0]) for r in rows]


def wait_for(condition: Callable[[], bool], stack: Stack, deadline: float, what: str) -> None:
    """Poll ``condition`` until ``deadline`` (``time.monotonic()``); fail with both logs."""
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.25)
    if condition():
        return
    beat_log = (stack.tmp / "beat.log").read_text(errors="replace")
    raise AssertionError(
        f"{what} within {WAIT} s\n--- worker ---\n{stack.celery_log()}\n--- beat ---\n{beat_log}"
    )


def test_beat_checks_health_retries_and_prunes_on_a_real_worker(redis_stack: Stack) -> None:
    stack = redis_stack
    stack.env.update(SHORT)
    for name in (HEALTHY, RETRIED):
        shutil.copytree(FIXTURES / name, stack.plugin_dir / name)  # type: ignore[attr-defined]
    stack.manage("plugins", "sync")
    stack.manage("shell", "-c", SEED)
    with closing(Database(stack.env["DATABASE_URL"])) as db:
        assert db.older_than("stonks_plugins_pluginevent", "created_at", "2 days") == 3
        assert db.state(RETRIED) == ("error", "timeout")

        stack.start_celery_worker()
        beat = start_beat(stack)
        deadline = time.monotonic() + WAIT  # one bounded wait for everything below

        wait_for(lambda: db.beat_checks(HEALTHY) > 0, stack, deadline, "no health check by beat")
        back = f"{RETRIED} not back to active"
        wait_for(lambda: db.state(RETRIED) == ("active", ""), stack, deadline, back)
        wait_for(lambda: db.beat_checks(RETRIED) > 0, stack, deadline, f"{RETRIED} never checked")
        wait_for(
            lambda: (
                db.older_than("stonks_plugins_pluginevent", "created_at", "1 day") == 0
                and db.older_than("stonks_plugins_healthcheck", "created_at", "1 day") == 0
                and db.older_than("stonks_plugins_metricsample", "bucket", "1 hour") == 0
            ),
            stack,
            deadline,
            "old rows not pruned",
        )
        assert beat.poll() is None, "beat exited"
        # Recent history stays: the recent event, this minute's calls, beat's own results.
        assert "recent action" in db.reasons(HEALTHY)
        assert not any(r.startswith("old action") for r in db.reasons(HEALTHY))
        assert db.value("SELECT calls FROM stonks_plugins_metricsample WHERE process = 'x:1'") == 7
        statuses = db.conn.execute(
            "SELECT DISTINCT h.status FROM stonks_plugins_healthcheck h "
            "JOIN stonks_plugins_plugin p ON p.id = h.plugin_id WHERE p.name = %s",
            (HEALTHY,),
        ).fetchall()
        assert statuses == [("healthy",)]
