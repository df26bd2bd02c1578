"""``/metrics`` on real gunicorn workers in multiprocess mode (PROMETHEUS_MULTIPROC_DIR): a
scrape, answered by either worker, counts the calls both workers made; a worker that dies
leaves its counts in the sums and its circuit gauges out (the project's gunicorn.conf.py)."""

from __future__ import annotations

import json
import os
import signal
import time
import urllib.request
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from stonks_plugins.monitoring.multiproc import identity

pytestmark = pytest.mark.slow

NAME = "prom-view"
OPERATION = "view.pid"

MANIFEST = {
    "plugin": {
        "name": NAME,
        "version": "1.0.0",
        "type": "view",
        "display_name": "Prometheus probe",
        "description": "Test plugin: a page that says which process answered",
    },
    "api": {"min_version": "1.0.0", "max_version": "2.0.0"},
    "dependencies": {"python": ">=3.11", "stonks-overwatch-core": ">=2.0.0,<3.0.0"},
    "entry_points": {"main": "promview.plugin:PromView"},
}

CODE = """
import os

from django.http import HttpResponse
from django.urls import path

from stonks_plugins.sdk import BaseViewPlugin


def pid(request):
    return HttpResponse(str(os.getpid()), content_type="text/plain")


class PromView(BaseViewPlugin):
    def get_urlpatterns(self):
        return [path("", pid, name="pid")]

    def get_metrics(self):
        return {"pid": os.getpid()}
"""


def _write_plugin(base: Path) -> None:
    folder = base / NAME
    (folder / "promview").mkdir(parents=True)
    (folder / "plugin_manifest.json").write_text(json.dumps(MANIFEST))
    (folder / "promview" / "__init__.py").write_text("")
    (folder / "promview" / "plugin.py").write_text(CODE)


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=30) as resp:
        assert resp.status == 200
        return str(resp.read().decode())


def _wait_for(predicate: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"condition not met within {timeout} s")


def test_a_scrape_sums_the_calls_of_both_workers(stack, tmp_path) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "prometheus"
    folder.mkdir()
    stack.env["PROMETHEUS_MULTIPROC_DIR"] = str(folder)
    _write_plugin(stack.plugin_dir)
    stack.manage("plugins", "sync")
    stack.start_gunicorn(workers=2)  # reads ROOT/gunicorn.conf.py (its child_exit hook)
    workers = stack.worker_pids(2)
    assert len(workers) == 2

    # Concurrent requests, until both workers have answered some: each body is its pid.
    page = f"{stack.base_url}/plugins/{NAME}/"
    answered: Counter[int] = Counter()
    with ThreadPoolExecutor(max_workers=8) as pool:
        deadline = time.monotonic() + 30
        while (len(answered) < 2 or answered.total() < 40) and time.monotonic() < deadline:
            answered.update(int(body) for body in pool.map(lambda _: _get(page), range(16)))
    assert set(answered) == workers, answered
    made = answered.total()

    scraped: dict[str, float] = {}

    def scrape() -> None:
        families = {
            f.name: f for f in text_string_to_metric_families(_get(f"{stack.base_url}/metrics"))
        }
        calls = [
            s.value
            for s in families["stonks_plugin_calls"].samples
            if s.name == "stonks_plugin_calls_total"
            and s.labels == {"plugin": NAME, "instance": "", "operation": OPERATION}
        ]
        scraped["calls"] = sum(calls)
        scraped["custom_pid"] = next(
            s.value
            for s in families["stonks_plugin_custom"].samples
            if s.labels["plugin"] == NAME and s.labels["metric"] == "pid"
        )
        scraped["active"] = next(
            s.value
            for s in families["stonks_plugin_state"].samples
            if s.labels["plugin"] == NAME and s.labels["state"] == "active"
        )

    def summed() -> bool:
        scrape()
        return scraped["calls"] == made

    # Each worker folds its counts into its files about once a second; whichever worker
    # answers the scrape sums both.
    _wait_for(summed)
    assert int(scraped["custom_pid"]) in workers  # the scraping worker's plugin answered
    assert scraped["active"] == 1

    # A worker dies: gunicorn replaces it, its circuit gauges go, its calls stay counted.
    victim = sorted(workers)[0]
    live_gauges = folder / f"gauge_livemax_{identity(victim)}.db"
    assert live_gauges.exists()
    assert (folder / f"counter_{identity(victim)}.db").exists()
    os.kill(victim, signal.SIGKILL)
    _wait_for(lambda: not live_gauges.exists())
    _wait_for(lambda: len(stack.worker_pids(2) - {victim}) == 2)
    scrape()
    assert scraped["calls"] == made
    assert "Traceback" not in stack.log()


def test_a_celery_worker_counts_in_the_same_sums(redis_stack, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The production shape: the health checks beat sends run in the Celery worker, and the
    web's /metrics counts them (the worker writes into the same folder)."""
    folder = tmp_path / "prometheus"
    folder.mkdir()
    redis_stack.env["PROMETHEUS_MULTIPROC_DIR"] = str(folder)
    _write_plugin(redis_stack.plugin_dir)
    redis_stack.manage("plugins", "sync")
    redis_stack.start_gunicorn(workers=2)
    redis_stack.start_celery_worker()
    runs = 3
    for _ in range(runs):
        result = redis_stack.run_task("stonks_plugins.check_health_all", timeout=30)
        assert result["statuses"][NAME] == "healthy", result

    checks: list[float] = []

    def counted() -> bool:
        text = _get(f"{redis_stack.base_url}/metrics")
        checks[:] = [
            s.value
            for f in text_string_to_metric_families(text)
            for s in f.samples
            if s.name == "stonks_plugin_calls_total"
            and s.labels == {"plugin": NAME, "instance": "", "operation": "health_check"}
        ]
        return checks == [runs]

    _wait_for(counted)  # no web worker ran a health check: these are the Celery worker's
    assert (folder / f"counter_{identity(redis_stack.celery_pid)}.db").exists()
