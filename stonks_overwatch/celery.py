"""The Celery application. Settings come from Django's, prefixed CELERY_.

The beat schedule (plugin health checks, retries, retention, metrics) is the one table of
``stonks_plugins.monitoring.schedule``; it is installed once the app's configuration is
read, so importing this module needs neither the database nor the plugin system.
"""

from __future__ import annotations

import os
from typing import Any

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "stonks_overwatch.settings")

app = Celery("stonks_overwatch")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.on_after_configure.connect
def _install_beat_schedule(sender: Celery, **kwargs: Any) -> None:
    """Beat's schedule from the plugin settings (entries set in CELERY_BEAT_SCHEDULE win)."""
    from stonks_plugins.monitoring.schedule import beat_schedule

    sender.conf.beat_schedule = {**beat_schedule(), **(sender.conf.beat_schedule or {})}
