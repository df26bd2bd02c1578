"""Celery tasks: the manager's asynchronous arm. They call the engine, never the manager
(which enqueues them), so the two never import each other in a circle.

On the embedded default (no broker) tasks run eagerly in the caller's process.
"""

from __future__ import annotations

import os
from typing import Any

from celery import shared_task
from celery.signals import (
    task_postrun,
    task_prerun,
    worker_process_init,
    worker_process_shutdown,
)
from django.db import transaction


@worker_process_init.connect
def _serve_plugins(**kwargs: Any) -> None:
    """A worker process serves plugins too: load them in the background from its start."""
    from .runtime.background import ensure_started

    ensure_started()


@worker_process_shutdown.connect
def _forget_live_metrics(pid: int | None = None, **kwargs: Any) -> None:
    """A pool process ends: its circuit gauges leave /metrics (its counters stay summed)."""
    from .monitoring.multiproc import mark_process_dead

    mark_process_dead(pid or os.getpid())


@task_prerun.connect
def _fresh_plugins(**kwargs: Any) -> None:
    """Each task sees the plugin states and configs committed before it started."""
    from .runtime.background import ensure_started
    from .runtime.serving import serving

    ensure_started()  # a solo or threaded worker has no worker_process_init
    serving.refresh()


@task_postrun.connect
def _settle(**kwargs: Any) -> None:
    """What the task's plugin calls found is written (by the task, if nobody else does)."""
    from .runtime import outbox

    outbox.settle()


@shared_task(name="stonks_plugins.apply_plugin_config", acks_late=True)
def apply_plugin_config(name: str, version: int) -> dict[str, Any]:
    from .config.apply import apply_version
    from .runtime.serving import check_config, serving

    # This process saw the version before it was live; it looks again after the commit.
    result = apply_version(name, version, check=check_config, on_live=serving.invalidate)
    if result.retried:
        from .runtime.trial import start_plugins

        # Waiting for the operator, it is active again: load it now, so a config that is
        # still refused puts it back in error before the caller looks.
        start_plugins([name])
    return {
        "plugin": result.plugin,
        "version": result.version,
        "applied": result.applied,
        "message": result.message,
    }


@shared_task(name="stonks_plugins.probe_config")
def probe_config(name: str) -> dict[str, Any]:
    """What this worker process sees of a plugin's config (secrets masked; None when it does
    not serve the plugin), and since when it serves the latest pushed changes
    (``(generation, time.monotonic())`` pairs): for diagnostics and for the tests and the
    benchmark that prove propagation."""
    from stonks_overwatch.core.exceptions import BrokerRegistryError
    from stonks_overwatch.core.factory import BrokerFactory

    from .config.secrets import mask
    from .config.system import config_system
    from .runtime.background import background

    # When this process began serving each of the latest pushed changes.
    served = background.served()
    try:
        config = BrokerFactory().create_config(name)
    except BrokerRegistryError:  # not served in this process (disabled, ...)
        return {"pid": os.getpid(), "config": None, "served": served}
    data = config.to_dict() if hasattr(config, "to_dict") else dict(vars(config))
    hidden = {p[-1] for p in config_system.secret_paths(name)}
    return {
        "pid": os.getpid(),
        "config": mask(data, [(k,) for k in hidden if k in data]),
        "served": served,
    }


def enqueue_apply(name: str, version: int) -> None:
    """Apply after the saving transaction commits, so the worker can read the version."""
    transaction.on_commit(lambda: apply_plugin_config.delay(name, version))


# -- background monitoring: the entries of monitoring.schedule (run by beat, or in-process) --
@shared_task(name="stonks_plugins.check_health_all")
def check_health_all() -> dict[str, Any]:
    """Health check of every active plugin; results are stored with actor ``beat``."""
    from .monitoring import jobs

    return jobs.check_health_all()


@shared_task(name="stonks_plugins.retry_failed")
def retry_failed() -> dict[str, Any]:
    """Load again the plugins whose error may pass; those that load come back active."""
    from .monitoring import jobs

    return jobs.retry_failed()


@shared_task(name="stonks_plugins.prune_history")
def prune_history() -> dict[str, int]:
    """Delete events, health results and metric samples older than their retention."""
    from .monitoring.prune import prune_history as prune

    return prune()


@shared_task(name="stonks_plugins.send_alert", ignore_result=True)
def send_alert(alert: dict[str, Any]) -> dict[str, list[str]]:
    """Mail and POST one alert that ``monitoring.notify`` admitted, here in a worker rather
    than in the process where the plugin changed (which may be serving a request)."""
    from .monitoring.alerts import Alert
    from .monitoring.delivery import deliver

    return deliver(Alert.from_dict(alert))


@shared_task(name="stonks_plugins.flush_metrics")
def flush_metrics() -> int:
    """Write this process's plugin call counts to the shared time series now. Beat's run
    reaches one worker process (each serving process also flushes its own counts from its
    background runtime)."""
    from . import metrics_store

    return metrics_store.flush(force=True)
