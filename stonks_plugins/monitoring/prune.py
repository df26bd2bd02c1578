"""Retention: delete history older than the retention settings, so event, health and metric
rows stop growing without bound.

Rows go in bounded batches (one short ``DELETE`` of at most ``batch_size`` rows each, in
autocommit), so a first prune of a large backlog never holds long locks on tables the site
writes to. One row survives any age: the event that explains why a plugin is in error now,
because the operator who finds a plugin in ``error`` must still be able to read when it broke
and why (its event carries the traceback; the plugin row only holds code and message).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db.models import Model, Q, QuerySet
from django.utils import timezone

from .. import metrics_store
from ..conf import plugin_settings
from ..lifecycle.states import PluginState
from ..logs import store as log_store
from ..models import EventKind, HealthCheck, Plugin, PluginEvent

BATCH_SIZE = 1000
"""Rows per ``DELETE``: small enough that one statement is quick on SQLite and PostgreSQL."""


def prune_history(now: datetime | None = None, batch_size: int = BATCH_SIZE) -> dict[str, int]:
    """Delete events, health results and metric samples older than their retention, and
    log records beyond each plugin's newest ``PLUGINS_LOG_RECORDS``.

    Returns how many rows of each kind went: ``events``, ``health_checks``,
    ``metric_samples``, ``log_records``. A retention of zero or less keeps that kind forever.
    """
    now = now or timezone.now()
    return {
        "events": prune_events(now, batch_size),
        "health_checks": prune_health_checks(now, batch_size),
        "metric_samples": prune_metric_samples(now),
        # Each flush trims the plugins it wrote for; this catches a lowered setting.
        "log_records": log_store.trim_all(),
    }


def prune_events(now: datetime, batch_size: int = BATCH_SIZE) -> int:
    """Events older than ``PLUGINS_EVENT_RETENTION_DAYS``, except those that explain a
    plugin's current error (see :func:`explaining_events`)."""
    days = float(plugin_settings.EVENT_RETENTION_DAYS)
    if days <= 0:
        return 0
    old = PluginEvent.objects.filter(created_at__lt=now - timedelta(days=days))
    return _delete_in_batches(old.exclude(pk__in=explaining_events()), batch_size)


def prune_health_checks(now: datetime, batch_size: int = BATCH_SIZE) -> int:
    """Health results older than ``PLUGINS_HEALTH_RETENTION_DAYS``. The per-plugin count cap
    (``PLUGINS_HEALTH_HISTORY``) is applied by each check as it writes its row; this bounds
    the age too, for plugins that are no longer checked."""
    days = float(plugin_settings.HEALTH_RETENTION_DAYS)
    if days <= 0:
        return 0
    old = HealthCheck.objects.filter(created_at__lt=now - timedelta(days=days))
    return _delete_in_batches(old, batch_size)


def prune_metric_samples(now: datetime) -> int:
    """Metric samples older than ``PLUGINS_METRICS_RETENTION_HOURS``: the metrics store owns
    its retention rule, so this only calls it."""
    if float(plugin_settings.METRICS_RETENTION_HOURS) <= 0:
        return 0
    return metrics_store.prune(now)


def explaining_events() -> set[int]:
    """Ids of the events an operator needs to understand each plugin now in ``error``.

    The error itself (code, message, details) is stored on the plugin row, and every way
    into it writes an event whose reason is that message: the transition to ``error`` or, for
    a plugin already in error whose problem changed, a ``failure`` event. Kept per plugin:
    the newest such event carrying the current message (why, with its traceback), and the
    newest transition into ``error`` (when it broke, and from which state). Usually that is
    one event. Events of plugins not in error may all age out.
    """
    keep: set[int] = set()
    in_error = Plugin.objects.filter(state=PluginState.ERROR.value).values_list(
        "pk", "error_message"
    )
    for plugin_id, message in in_error:
        entered = Q(kind=EventKind.TRANSITION, to_state=PluginState.ERROR.value)
        candidates = PluginEvent.objects.filter(
            Q(plugin_id=plugin_id) & (entered | Q(kind=EventKind.FAILURE))
        ).order_by("-created_at", "-id")
        why = candidates.filter(reason=message).values_list("pk", flat=True).first()
        when = candidates.filter(entered).values_list("pk", flat=True).first()
        if why is None:  # the message was reworded or truncated: the newest failure it is
            why = candidates.values_list("pk", flat=True).first()
        keep.update(pk for pk in (why, when) if pk is not None)
    return keep


def _delete_in_batches(rows: QuerySet[Model], batch_size: int) -> int:
    """Delete ``rows`` at most ``batch_size`` at a time, oldest first; returns the count."""
    model = rows.model
    label = model._meta.label
    total = 0
    while True:
        batch = list(rows.order_by("created_at").values_list("pk", flat=True)[:batch_size])
        if not batch:
            return total
        _, per_model = model._default_manager.filter(pk__in=batch).delete()
        deleted = per_model.get(label, 0)
        total += deleted
        if len(batch) < batch_size or not deleted:  # the last batch, or nothing left to do
            return total
