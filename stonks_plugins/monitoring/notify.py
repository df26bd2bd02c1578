"""When alerts go out: the receivers that turn committed state changes and stored health
results into alerts (:mod:`.alerts`), and the thread that sends them without anyone waiting.

The receivers run in whatever made the change - a request, a CLI command, a Celery task,
the runtime's background thread - after its transaction commits. They only build the alert
and queue it: the shared cache's de-duplication and the sending happen on this process's
alert thread, which hands each alert to a Celery worker (the ``send_alert`` task) when
there is one, or sends it itself on the embedded default, where tasks run eagerly in the
caller. So a lifecycle change never waits for a mail server, and a dead one changes nothing.

The thread exists only while alerts are queued and is not a daemon: a ``manage.py plugins
sync`` that put a plugin in ``error`` exits once its alert is sent (each target bounded by
``PLUGINS_ALERT_TIMEOUT``), not before. One thread sends in order: a failure's alert is
decided before the recovery that answers it.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import deque
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import connections, transaction
from django.db.models.signals import post_save

from .. import tasks
from ..lifecycle.signals import plugin_state_changed
from ..models import HealthCheck
from ..redaction import scrub_text

if TYPE_CHECKING:
    from . import alerts

# The alert modules (and urllib's opener) are imported when a trigger fires, not by
# connect(): every process connects at start-up, few ever send an alert.

logger = logging.getLogger(__name__)


def connect() -> None:
    """Wire the triggers (from ``AppConfig.ready``; idempotent)."""
    plugin_state_changed.connect(_on_state_changed, dispatch_uid="stonks_plugins.alerts.state")
    post_save.connect(
        _on_health_result, sender=HealthCheck, dispatch_uid="stonks_plugins.alerts.health"
    )


def _on_state_changed(
    sender: Any,
    name: str,
    to_state: str,
    reason: str = "",
    actor: str = "",
    code: str = "",
    **kwargs: Any,
) -> None:
    from . import alerts

    if not alerts.configured():
        return
    alert = alerts.from_transition(name, to_state, code=code, reason=reason, actor=actor)
    if alert is not None:
        outbound.put(alert)


def _on_health_result(
    sender: Any, instance: HealthCheck, created: bool = False, raw: bool = False, **kwargs: Any
) -> None:
    """A stored health result; compared with the plugin's previous one, read here because
    the caller holds the plugin's row locked (results of one plugin come in order)."""
    from . import alerts

    if not created or raw or not alerts.configured():
        return
    previous = (
        HealthCheck.objects.filter(plugin_id=instance.plugin_id)
        .exclude(pk=instance.pk)
        .order_by("-created_at", "-id")
        .values_list("status", flat=True)
        .first()
    )
    plugin = instance.plugin
    code = instance.details.get("code", "") if isinstance(instance.details, dict) else ""
    alert = alerts.from_health(
        plugin.name,
        plugin.state,
        previous,
        instance.status,
        message=instance.message,
        code=str(code or ""),
        actor=instance.actor,
    )
    if alert is not None:
        transaction.on_commit(lambda: outbound.put(alert), using=kwargs.get("using"))


# -- the alert thread ---------------------------------------------------------------------
class Outbound:
    """A queue of alerts and the one thread (started on demand) that works through it."""

    def __init__(self) -> None:
        self._idle = threading.Condition(threading.Lock())
        self._queue: deque[alerts.Alert] = deque()
        self._busy = False

    def put(self, alert: alerts.Alert) -> None:
        with self._idle:
            self._queue.append(alert)
            if self._busy:
                return
            self._busy = True
        try:
            threading.Thread(target=self._run, name="stonks-plugins-alerts").start()
        except RuntimeError as exc:  # an interpreter shutting down starts no thread
            with self._idle:
                self._queue.clear()
                self._busy = False
                self._idle.notify_all()
            logger.warning("alert %s of plugin %s dropped: %s", alert.kind, alert.name, exc)

    def wait_idle(self, timeout: float) -> bool:
        """Wait until every queued alert was handled (tests; a process about to exit)."""
        with self._idle:
            return self._idle.wait_for(lambda: not self._busy, timeout)

    def _run(self) -> None:
        try:
            while True:
                with self._idle:
                    if not self._queue:
                        self._busy = False
                        self._idle.notify_all()
                        return
                    alert = self._queue.popleft()
                handle(alert)
        finally:
            connections.close_all()  # this thread's own connections (secrets, the link)

    def after_fork(self) -> None:
        """A forked child has neither the parent's thread nor its queue's alerts (the
        parent sends them)."""
        self._idle = threading.Condition(threading.Lock())
        self._queue = deque()
        self._busy = False


outbound = Outbound()
os.register_at_fork(after_in_child=outbound.after_fork)


def handle(alert: alerts.Alert) -> None:
    """Decide and hand over one alert; never raises."""
    from . import alerts, delivery

    try:
        if not alerts.admit(alert):
            return
        if not getattr(settings, "CELERY_TASK_ALWAYS_EAGER", False):
            try:
                tasks.send_alert.delay(alert.as_dict())
                return
            except Exception as exc:  # no broker now: this process sends it
                logger.warning(
                    "alert %s of plugin %s could not be queued for a worker (%s: %s); "
                    "sending it from this process",
                    alert.kind,
                    alert.name,
                    type(exc).__name__,
                    scrub_text(str(exc)),  # a broker URL's password, should it be quoted
                )
        delivery.deliver(alert)
    except Exception:
        logger.exception("alert %s of plugin %s could not be sent", alert.kind, alert.name)
