"""Alerts on the real parts: ``plugins sync`` in its own process puts a plugin in ``error``; its
alert goes through Redis to a real Celery worker (the compose ``worker`` service's command),
which mails it to a real SMTP server and POSTs it to a real webhook receiver.

``tests/stonks_plugins/test_alerts.py`` covers what alerts say and when, on the embedded
default (tasks run eagerly, the process that made the change sends them). Here the process
that made the change only queues the ``send_alert`` task, and the worker delivers it: the
path a deployment with Redis takes.
"""

from __future__ import annotations

import re
import shutil
import time
from typing import Any

import pytest

from tests.alert_receivers import HOOK_TOKEN, Hooks, Inbox
from tests.conftest import FIXTURES
from tests.e2e.conftest import Stack

pytestmark = pytest.mark.slow

BROKEN = "import-error"
WAIT = 30.0  # seconds: the bounded wait for the worker's delivery


def test_a_failure_is_delivered_by_the_worker_through_redis(
    redis_stack: Stack,
    smtp: tuple[Inbox, int],
    hooks: tuple[Hooks, str],
) -> None:
    inbox, port = smtp
    got, url = hooks
    env = redis_stack.env
    env["EMAIL_URL"] = f"smtp://127.0.0.1:{port}"
    env["PLUGINS_ALERT_EMAILS"] = "ops@example.com"
    env["PLUGINS_ALERT_WEBHOOKS"] = url
    env["PLUGINS_ALERT_SITE_URL"] = "https://stonks.example.com"
    shutil.copytree(FIXTURES / BROKEN, redis_stack.plugin_dir / BROKEN)  # type: ignore[attr-defined]
    redis_stack.start_celery_worker()

    sync = redis_stack.manage("plugins", "sync")
    row = redis_stack.plugins_json()[BROKEN]
    assert (row["state"], (row.get("error") or {}).get("code")) == ("error", "import_error")
    # The sync handed the alert to the worker; it did not send it itself.
    assert "sending it from this process" not in sync.stdout + sync.stderr

    assert got.arrived.wait(WAIT), redis_stack.celery_log()
    deadline = time.monotonic() + WAIT
    while not inbox.raw and time.monotonic() < deadline:
        time.sleep(0.1)
    payload: dict[str, Any] = got.payloads()[0]
    assert (payload["plugin"], payload["kind"], payload["state"], payload["reason_code"]) == (
        BROKEN,
        "failed",
        "error",
        "import_error",
    )
    assert got.requests[0]["path"].endswith(f"token={HOOK_TOKEN}")
    assert inbox.subjects() == [f"[Stonks Overwatch] {BROKEN} failed: import_error"]
    log = redis_stack.celery_log()
    assert re.search(r"Task stonks_plugins\.send_alert\[[\w-]+\] succeeded", log), log
    assert HOOK_TOKEN not in log  # a webhook is named by its number and origin only
