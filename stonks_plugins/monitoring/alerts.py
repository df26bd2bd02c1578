"""Alerts: what tells an operator that a plugin failed, turned unhealthy or recovered.

This module decides and words; :mod:`.delivery` sends, :mod:`.notify` decides when.

- Which changes alert (:func:`from_transition`, :func:`from_health`): a plugin entering
  ``error`` is ``failed``; an active plugin's health result turning ``unhealthy`` (from
  none, ``healthy`` or ``degraded``) is ``unhealthy`` - ``degraded`` alone never alerts (a
  broker whose last import skipped rows stays degraded for days); a plugin becoming
  ``active``, or its health leaving ``unhealthy`` (for ``healthy`` or ``degraded``: it works
  again), is ``recovered``.
- Which alerts go out (:func:`admit`), decided in the shared cache so that every process
  (web workers, Celery workers) agrees: at most one ``failed`` and one ``unhealthy`` alert
  per plugin every ``PLUGINS_ALERT_RATE_LIMIT`` seconds (``cache.add`` is atomic on Redis
  and LocMem); a ``recovered`` alert only answers a ``failed`` or ``unhealthy`` alert that
  was sent, once (``cache.delete`` says whether it was still open), so recoveries are never
  more than the failures they answer and a plugin nobody was warned about recovers quietly.
- What an alert says (:func:`render`): one subject, one plain-text body and one JSON
  payload, the same facts in each; the text goes through gettext.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import Counter
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone, translation
from django.utils.translation import gettext

from ..conf import plugin_settings
from ..health import Health
from ..lifecycle.states import PluginState

logger = logging.getLogger(__name__)

TITLE = "Stonks Overwatch"
"""The product's name at the start of every subject."""


class AlertKind(StrEnum):
    FAILED = "failed"
    UNHEALTHY = "unhealthy"
    RECOVERED = "recovered"


OPENING = frozenset({AlertKind.FAILED, AlertKind.UNHEALTHY})
"""Kinds that a later ``recovered`` alert answers."""


@dataclass(frozen=True)
class Alert:
    """One alert, JSON-ready (:meth:`as_dict`) so a Celery task can carry it."""

    name: str
    """The plugin's full name: ``NAME``, or ``NAME:LABEL`` for a named instance."""
    kind: AlertKind
    state: str
    """The plugin's lifecycle state when it happened."""
    health: str = ""
    """The health result that caused it (health alerts only)."""
    code: str = ""
    message: str = ""
    actor: str = ""
    at: str = field(default_factory=lambda: timezone.now().isoformat())

    @property
    def plugin(self) -> str:
        return self.name.split(":", 1)[0]

    @property
    def instance(self) -> str:
        """The instance's label; "" for the default instance."""
        return self.name.split(":", 1)[1] if ":" in self.name else ""

    def as_dict(self) -> dict[str, str]:
        return {k: str(v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Alert:
        return cls(**{**data, "kind": AlertKind(data["kind"])})


def configured() -> bool:
    """Is anyone to be told? Checked first by every trigger: without targets, alerts cost
    nothing (no query, no cache access, no thread)."""
    return bool(plugin_settings.ALERT_EMAILS or plugin_settings.ALERT_WEBHOOKS)


# -- what alerts ------------------------------------------------------------------------------
def from_transition(
    name: str, to_state: str, code: str = "", reason: str = "", actor: str = ""
) -> Alert | None:
    """The alert a committed state transition may cause (a recovery is only a candidate:
    :func:`admit` sends it if a failure was announced)."""
    if to_state == PluginState.ERROR.value:
        return Alert(name, AlertKind.FAILED, to_state, code=code, message=reason, actor=actor)
    if to_state == PluginState.ACTIVE.value:
        return Alert(name, AlertKind.RECOVERED, to_state, message=reason, actor=actor)
    return None


def from_health(
    name: str,
    state: str,
    previous: str | None,
    status: str,
    message: str = "",
    code: str = "",
    actor: str = "",
) -> Alert | None:
    """The alert a stored health result may cause, given the plugin's previous result
    (``None``: its first). Only an active plugin's health alerts: a plugin in ``error`` has
    had its ``failed`` alert, and its checks only repeat why."""
    if state != PluginState.ACTIVE.value:
        return None
    unhealthy = Health.UNHEALTHY.value
    if status == unhealthy and previous != unhealthy:
        kind = AlertKind.UNHEALTHY
    elif status != unhealthy and previous == unhealthy:
        kind = AlertKind.RECOVERED
    else:
        return None
    return Alert(name, kind, state, health=status, code=code, message=message, actor=actor)


# -- which alerts go out ------------------------------------------------------------------------
_counts_lock = threading.Lock()
suppressed: Counter[tuple[str, str]] = Counter()
"""Alerts this process held back, by (plugin, kind)."""


def _key(what: str, name: str) -> str:
    # Hashed: a plugin's name may hold what a cache key must not (a duplicate's location).
    return f"stonks_plugins:alert:{what}:{hashlib.sha256(name.encode()).hexdigest()[:24]}"


def admit(alert: Alert) -> bool:
    """Should ``alert`` go out? Records the decision in the shared cache. A cache that
    cannot be reached lets failures through (a missed alert is worse than a repeated one)
    and holds recoveries back."""
    opened = _key("open", alert.name)
    try:
        if alert.kind is AlertKind.RECOVERED:
            return bool(cache.delete(opened))  # nothing announced: nothing to recover from
        window = float(plugin_settings.ALERT_RATE_LIMIT)
        sent = _key(f"sent:{alert.kind.value}", alert.name)
        if window > 0 and not cache.add(sent, alert.at, timeout=window):
            with _counts_lock:
                suppressed[(alert.name, alert.kind.value)] += 1
            logger.debug(
                "alert %s of plugin %s suppressed: one was sent less than %g s ago",
                alert.kind.value,
                alert.name,
                window,
            )
            return False
        cache.set(opened, alert.kind.value, timeout=None)
        return True
    except Exception as exc:
        logger.warning(
            "the cache that de-duplicates alerts failed for plugin %s (%s: %s); %s",
            alert.name,
            type(exc).__name__,
            exc,
            "not sending a recovery" if alert.kind is AlertKind.RECOVERED else "sending anyway",
        )
        return alert.kind is not AlertKind.RECOVERED


# -- what an alert says -----------------------------------------------------------------------
@dataclass(frozen=True)
class Rendered:
    subject: str
    body: str
    payload: dict[str, Any]


def _subject(alert: Alert) -> str:
    values = {"title": TITLE, "name": alert.name, "code": alert.code}
    if alert.kind is AlertKind.FAILED:
        if alert.code:
            return gettext("[%(title)s] %(name)s failed: %(code)s") % values
        return gettext("[%(title)s] %(name)s failed") % values
    if alert.kind is AlertKind.UNHEALTHY:
        if alert.code:
            return gettext("[%(title)s] %(name)s is unhealthy: %(code)s") % values
        return gettext("[%(title)s] %(name)s is unhealthy") % values
    return gettext("[%(title)s] %(name)s recovered") % values


def _headline(alert: Alert, site: str) -> str:
    who = alert.plugin
    if alert.instance:
        who = gettext("%(plugin)s (instance %(instance)s)") % {
            "plugin": alert.plugin,
            "instance": alert.instance,
        }
    if alert.kind is AlertKind.FAILED:
        text = gettext("Plugin %(who)s failed on %(site)s.")
    elif alert.kind is AlertKind.UNHEALTHY:
        text = gettext("Plugin %(who)s is unhealthy on %(site)s.")
    else:
        text = gettext("Plugin %(who)s recovered on %(site)s.")
    return text % {"who": who, "site": site}


def render(alert: Alert, site: str, link: str = "") -> Rendered:
    """The mail's subject and body and the webhook's JSON for ``alert``, in the site's
    language (``LANGUAGE_CODE``: an alert has no reader whose language is known)."""
    with translation.override(settings.LANGUAGE_CODE):
        subject = " ".join(_subject(alert).split())  # a header holds no line break
        lines = [_headline(alert, site), ""]
        facts = [
            (gettext("State"), alert.state),
            (gettext("Health"), alert.health),
            (gettext("Reason"), alert.code),
            (gettext("Message"), alert.message),
            (gettext("By"), alert.actor),
            (gettext("At"), alert.at),
            (gettext("Console"), link),
        ]
        lines += [f"{label}: {value}" for label, value in facts if value]
        body = "\n".join(lines) + "\n"
    payload: dict[str, Any] = {
        "plugin": alert.plugin,
        "instance": alert.instance,
        "name": alert.name,
        "kind": alert.kind.value,
        "state": alert.state,
        "health": alert.health or None,
        "reason_code": alert.code or None,
        "message": alert.message,
        "actor": alert.actor,
        "at": alert.at,
        "site": site,
        "link": link or None,
        "summary": subject,
    }
    return Rendered(subject, body, payload)
