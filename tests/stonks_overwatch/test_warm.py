"""A web worker's start does what its first page would otherwise do with a user waiting:
import the modules a page uses and compile its templates and patterns (stonks_overwatch/warm.py,
called by wsgi.py). Seen as a fact, not a time: the first page a fresh worker serves imports
no module."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

WORKER = """
import json, os, sys
import django
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
from django.contrib.auth.models import User
from django.contrib.sessions.backends.db import SessionStore
user = User.objects.create_user("warm", password="warm-pass")
session = SessionStore()
session.update({
    "_auth_user_id": str(user.pk),
    "_auth_user_backend": "django.contrib.auth.backends.ModelBackend",
    "_auth_user_hash": user.get_session_auth_hash(),
})
session.create()
from django.conf import settings
from django.db import connections
connections.close_all()

from stonks_overwatch.wsgi import application  # the worker's start, as gunicorn's

before = set(sys.modules)
status = []
environ = {
    "REQUEST_METHOD": "GET", "PATH_INFO": "/", "SERVER_NAME": "localhost", "SERVER_PORT": "80",
    "HTTP_HOST": "localhost", "wsgi.url_scheme": "http", "wsgi.input": sys.stdin.buffer,
    "HTTP_COOKIE": f"{settings.SESSION_COOKIE_NAME}={session.session_key}",
    "HTTP_ACCEPT_LANGUAGE": "en-US,en;q=0.9",
}
body = b"".join(application(environ, lambda s, h, e=None: status.append(s)))
new = sorted(m for m in set(sys.modules) - before if not m.startswith("_stonks_plugin"))
print(json.dumps({"status": status[0], "portfolio": b'id="portfolio"' in body, "imported": new}))
os._exit(0)
"""


def test_a_fresh_workers_first_page_imports_nothing(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "stonks_overwatch.settings",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "PLUGIN_DIRS": "plugins",
        "REDIS_URL": "",
        "ALLOWED_HOSTS": "localhost",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    for name in ("CELERY_BROKER_URL", "CELERY_RESULT_BACKEND"):
        env.pop(name, None)
    out = subprocess.run(
        [sys.executable, "-c", WORKER],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["status"].startswith("200") and result["portfolio"], result
    assert result["imported"] == []
