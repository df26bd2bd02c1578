"""Sending an admitted alert: one mail to ``PLUGINS_ALERT_EMAILS`` through Django's mail
(``EMAIL_URL``), and one JSON POST to each ``PLUGINS_ALERT_WEBHOOKS`` URL, each bounded by
``PLUGINS_ALERT_TIMEOUT``.

It runs in a Celery worker or on :mod:`.notify`'s thread, never on a request, and never
raises: a target that fails is logged with the plugin's name and the target, and the others
still get the alert. A webhook is named by its number and origin only: a token in its path
or query, or a password in its address, never reaches the log; nor does the SMTP password.
The message is masked once more with the plugin's secrets (it was masked where it was
stored; an alert is one more place where a leak would be read by many).
"""

from __future__ import annotations

import base64
import json
import logging
import socket
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit, urlunsplit

from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.db import OperationalError
from django.urls import NoReverseMatch, reverse

from .. import store
from ..conf import plugin_settings
from ..models import Plugin
from ..redaction import scrub_text
from .alerts import Alert, Rendered, render

logger = logging.getLogger(__name__)

USER_AGENT = "stonks-overwatch-alerts"
DB_TRIES = 25
"""Reads of the plugin's secrets and page, tried this often (about 6 s in all) while the
database is locked."""
T = TypeVar("T")


@dataclass
class Outcome:
    """What one delivery reached: targets by their safe description."""

    sent: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, list[str]]:
        return {"sent": self.sent, "failed": self.failed}


def deliver(alert: Alert) -> dict[str, list[str]]:
    """Send ``alert`` to every configured target; JSON-ready (a Celery task's result)."""
    outcome = Outcome()
    try:
        # Without the database (busy, down), the text is still scrubbed of every secret this
        # process knows and of key=value secrets - and the alert still goes out.
        name = alert.name
        message = _read(
            name, lambda: store.mask_text(name, alert.message), scrub_text(alert.message)
        )
        alert = replace(alert, message=message)
        rendered = render(alert, site(), _read(name, lambda: console_link(name), ""))
    except Exception:  # nothing to send: say so, and never into the caller
        logger.exception("alert %s of plugin %s could not be written", alert.kind, alert.name)
        return outcome.as_dict()
    timeout = float(plugin_settings.ALERT_TIMEOUT)
    emails = [str(a) for a in plugin_settings.ALERT_EMAILS if str(a).strip()]
    if emails:
        target = f"mail to {len(emails)} address(es) via {_mail_server()}"
        try:
            send_mail(rendered, emails, timeout)
            outcome.sent.append(target)
        except Exception as exc:
            _failed(outcome, alert, target, _safe_error(exc, _mail_secrets()))
    for number, url in enumerate(plugin_settings.ALERT_WEBHOOKS, start=1):
        target = f"webhook {number} ({describe_url(str(url))})"
        try:
            post_webhook(str(url), rendered.payload, timeout)
            outcome.sent.append(target)
        except Exception as exc:
            _failed(outcome, alert, target, _safe_error(exc, _url_secrets(str(url))))
    if outcome.sent:
        logger.info(
            "alert %s of plugin %s sent: %s", alert.kind, alert.name, ", ".join(outcome.sent)
        )
    return outcome.as_dict()


def _read(name: str, read: Callable[[], T], fallback: T) -> T:
    """``read()`` from the database, tried again while SQLite says a table is locked (a
    writer in another thread); ``fallback`` if it cannot be read."""
    for attempt in range(DB_TRIES):
        try:
            return read()
        except OperationalError as exc:
            if "locked" not in str(exc) or attempt == DB_TRIES - 1:
                logger.warning("alert of plugin %s: the database could not be read (%s)", name, exc)
                break
            time.sleep(0.02 * (attempt + 1))
        except Exception:
            logger.exception("alert of plugin %s: the database could not be read", name)
            break
    return fallback


def _failed(outcome: Outcome, alert: Alert, target: str, why: str) -> None:
    outcome.failed.append(target)
    logger.warning(
        "alert %s of plugin %s could not be sent by %s: %s", alert.kind, alert.name, target, why
    )


# -- where the site is ---------------------------------------------------------------------
def site() -> str:
    """The site an alert comes from: the host of ``PLUGINS_ALERT_SITE_URL``, else this
    machine's name (many sites may tell one team)."""
    base = str(plugin_settings.ALERT_SITE_URL or "")
    return urlsplit(base).netloc or socket.gethostname()


def console_link(name: str) -> str:
    """The plugin's page in the console, when the console's public address is set."""
    base = str(plugin_settings.ALERT_SITE_URL or "").rstrip("/")
    if not base:
        return ""
    pk = Plugin.objects.filter(name=name).values_list("pk", flat=True).first()
    if pk is None:
        return ""
    try:
        return base + reverse("admin:stonks_plugins_plugin_change", args=[pk])
    except NoReverseMatch:  # a host project without the console
        return ""


# -- mail -------------------------------------------------------------------------------------
def send_mail(rendered: Rendered, recipients: list[str], timeout: float) -> None:
    """One message to every address (they are one team's), through ``EMAIL_URL``."""
    connection = get_connection(timeout=timeout)
    EmailMessage(rendered.subject, rendered.body, to=recipients, connection=connection).send()


def _mail_server() -> str:
    backend = str(getattr(settings, "EMAIL_BACKEND", ""))
    if backend.endswith("smtp.EmailBackend"):
        return f"{settings.EMAIL_HOST}:{settings.EMAIL_PORT}"
    return backend.rsplit(".", 2)[-2] if "." in backend else backend


def _mail_secrets() -> list[str]:
    return [str(getattr(settings, "EMAIL_HOST_PASSWORD", "") or "")]


# -- webhooks -------------------------------------------------------------------------------
class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirected POST would arrive as a GET without its body: a failure, said so."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_opener = urllib.request.build_opener(_NoRedirects)


def post_webhook(url: str, payload: dict[str, Any], timeout: float) -> None:
    """POST ``payload`` as JSON to ``url``; raises unless the answer is 2xx. A user and
    password in the URL are sent as HTTP basic authentication."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("not an http(s) URL")
    headers = {"Content-Type": "application/json; charset=utf-8", "User-Agent": USER_AGENT}
    if parts.username is not None:
        pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        host = parts.hostname + (f":{parts.port}" if parts.port else "")
        url = urlunsplit(parts._replace(netloc=host))
    body = json.dumps(payload).encode("utf-8")
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    with _opener.open(request, timeout=timeout) as response:
        response.read(65536)


def describe_url(url: str) -> str:
    """``https://hooks.example.com/...``: enough to tell targets apart in a log, and no part
    that may hold a token (user, password, path, query)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "an unreadable URL"
    if not parts.scheme or not host:
        return "an unreadable URL"
    return f"{parts.scheme}://{host}{port}/..."


def _url_secrets(url: str) -> list[str]:
    try:
        parts = urlsplit(url)
        password = parts.password or ""
    except ValueError:
        return [url]
    path = parts.path if len(parts.path) > 1 else ""
    return [url, parts.netloc.rpartition("@")[0], password, parts.query, path]


def _safe_error(exc: BaseException, secrets: list[str]) -> str:
    text = f"{type(exc).__name__}: {exc}"
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, "...")
    return scrub_text(text)[:500]
