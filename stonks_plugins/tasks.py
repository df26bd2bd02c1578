"""Celery tasks: the manager's asynchronous arm. They call the engine, never the manager
(which enqueues them), so the two never import each other in a circle.

On the embedded default (no broker) tasks run eagerly in the caller's process.
"""

from __future__ import annotations

import os
from typing import Any

from celery import shared_task
from celery.signals import task_prerun
from django.db import transaction


@task_prerun.connect
def _fresh_plugins(**kwargs: Any) -> None:
    """Each task sees the plugin states and configs committed before it started."""
    from . import metrics_store
    from .legacy.bridge import bridge

    bridge.refresh()
    metrics_store.flush()  # this worker's calls join the shared time series


@shared_task(name="stonks_plugins.apply_plugin_config", acks_late=True)
def apply_plugin_config(name: str, version: int) -> dict[str, Any]:
    from .config.apply import apply_version

    result = apply_version(name, version)
    return {
        "plugin": result.plugin,
        "version": result.version,
        "applied": result.applied,
        "message": result.message,
    }


@shared_task(name="stonks_plugins.probe_config")
def probe_config(name: str) -> dict[str, Any]:
    """What this worker process sees of a plugin's config (secrets masked): for diagnostics
    and for the tests that prove propagation."""
    from stonks_overwatch.core.factory import BrokerFactory

    from .config.secrets import mask
    from .config.system import config_system

    config = BrokerFactory().create_config(name)
    data = config.to_dict() if hasattr(config, "to_dict") else dict(vars(config))
    hidden = {p[-1] for p in config_system.secret_paths(name)}
    return {"pid": os.getpid(), "config": mask(data, [(k,) for k in hidden if k in data])}


def enqueue_apply(name: str, version: int) -> None:
    """Apply after the saving transaction commits, so the worker can read the version."""
    transaction.on_commit(lambda: apply_plugin_config.delay(name, version))
