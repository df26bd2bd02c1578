"""Concurrent writes through the API queue instead of failing: two web worker processes
(gunicorn) on one database, hit by threads at the same moment. On the embedded default (a
SQLite file) they used to answer 500 "database is locked"; the same storm runs on PostgreSQL
when the suite does (DATABASE_URL), as its counterpart.

Two PUTs of the config with the same ETag: one wins (200), the other is told it is stale
(412), never a 500. An enable/disable storm: every answer is 200 (or 409 for a transition
the state refused), never a 500.
"""

from __future__ import annotations

import json
import shutil
import threading
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import FIXTURES
from tests.e2e.conftest import Stack, shared_database_url  # noqa: F401 - a fixture

pytestmark = pytest.mark.slow

TOKEN = "concurrency-token-0123456789abcdef0123"
CONFIG = "/api/v1/plugins/config-fixture/config/"
PAIRS = 30
STORM = 120


@pytest.fixture
def api_stack(shared_database_url: str, tmp_path: Path) -> Iterator[Stack]:  # noqa: F811
    """gunicorn with two workers on a fresh database (a SQLite file, or PostgreSQL when the
    suite runs on it), eager tasks as on the embedded default, and a superuser's token."""
    import os

    plugin_dir = tmp_path / "plugins"
    plugin_dir.mkdir()
    for name in ("config-fixture", "healthy-fixture"):
        shutil.copytree(FIXTURES / name, plugin_dir / name)
    env = {
        **os.environ,
        "DATABASE_URL": shared_database_url,
        "PLUGIN_DIRS": str(plugin_dir),
        "REDIS_URL": "",
        "CELERY_BROKER_URL": "",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PLUGINS_REFRESH_INTERVAL": "0.1",
    }
    for name in ("DJANGO_SETTINGS_MODULE", "CELERY_TASK_ALWAYS_EAGER", "CELERY_RESULT_BACKEND"):
        env.pop(name, None)
    stack = Stack(env, tmp_path)
    stack.manage("migrate", "--noinput", "-v", "0")
    stack.manage("plugins", "sync")
    stack.manage(
        "shell",
        "-c",
        "from django.contrib.auth.models import User;"
        "from rest_framework.authtoken.models import Token;"
        "u = User.objects.create_superuser('storm', 'storm@example.com', None);"
        f"Token.objects.create(user=u, key='{TOKEN}')",
    )
    try:
        stack.start_gunicorn(workers=2)
        yield stack
    finally:
        stack.stop()


def _call(
    base: str, method: str, path: str, body: Any = None, if_match: str = ""
) -> tuple[int, dict[str, Any], str]:
    """``(status, JSON body, ETag)`` of one request with the superuser's token."""
    headers = {"Authorization": f"Token {TOKEN}", "Content-Type": "application/json"}
    if if_match:
        headers["If-Match"] = if_match
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, json.loads(resp.read() or b"{}"), resp.headers.get("ETag", "")
    except urllib.error.HTTPError as err:
        raw = err.read()
        try:
            parsed = json.loads(raw)
        except ValueError:
            parsed = {"raw": raw.decode(errors="replace")[:500]}
        return err.code, parsed, err.headers.get("ETag", "")


def _config(round_: int) -> dict[str, Any]:
    return {
        "credentials": {"username": f"user{round_}", "password": "a-long-password"},
        "settings": {"refresh_minutes": round_ + 1},
    }


def test_same_etag_writes_get_one_200_and_one_412(api_stack: Stack) -> None:
    base = api_stack.base_url
    outcomes: list[list[int]] = []
    failures: list[Any] = []
    with ThreadPoolExecutor(max_workers=2) as pool:
        for round_ in range(PAIRS):
            status, _, etag = _call(base, "GET", CONFIG)
            assert status == 200 and etag, etag
            barrier = threading.Barrier(2)

            def put(
                which: int,
                etag: str = etag,
                round_: int = round_,
                barrier: threading.Barrier = barrier,
            ) -> tuple[int, Any]:
                barrier.wait()
                status, body, _ = _call(base, "PUT", CONFIG, _config(round_ * 2 + which), etag)
                return status, body

            answers = list(pool.map(put, (0, 1)))
            outcomes.append(sorted(s for s, _ in answers))
            failures += [body for s, body in answers if s >= 500]
    assert failures == [], (failures[:3], api_stack.log()[-3000:])
    assert all(pair == [200, 412] for pair in outcomes), Counter(map(tuple, outcomes))
    status, body, etag = _call(base, "GET", CONFIG)
    assert body["version"] == PAIRS and etag == f'"config-fixture-v{PAIRS}"'
    assert "database is locked" not in api_stack.log()


def test_enable_disable_storm_never_answers_500(api_stack: Stack) -> None:
    base = api_stack.base_url
    paths = [
        f"/api/v1/plugins/healthy-fixture/{'enable' if i % 2 else 'disable'}/" for i in range(STORM)
    ]
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda p: _call(base, "POST", p), paths))
    statuses = Counter(status for status, _, _ in answers)
    server_errors = [body for status, body, _ in answers if status >= 500]
    assert server_errors == [], (statuses, server_errors[:3], api_stack.log()[-3000:])
    assert set(statuses) <= {200, 409}, statuses
    assert statuses[200] > 0
    # A load withdrawn by a disable in the other worker is no failure of the plugin: the
    # storm leaves it enabled and active, or disabled - never in error.
    status, plugin, _ = _call(base, "GET", "/api/v1/plugins/healthy-fixture/")
    assert status == 200 and plugin["error"] is None, plugin
    assert (plugin["enabled"], plugin["state"]) in {(True, "active"), (False, "disabled")}, plugin
    # One enable after the storm: the plugin serves again.
    status, plugin, _ = _call(base, "POST", "/api/v1/plugins/healthy-fixture/enable/")
    assert status == 200 and plugin["state"] == "active", (plugin.get("error"), plugin)
    assert "database is locked" not in api_stack.log()
