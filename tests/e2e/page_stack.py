"""The home page under the fault corpus, on real processes: shared by
``tests/e2e/test_page_budget.py`` and ``benchmarks/bench_page.py``.

Builds on the e2e ``Stack`` and ``Session`` (``tests/e2e/conftest.py``). What it adds:

- ``FAULT_CORPUS``: the fixture folders with a hang or a crash in every phase of a plugin;
- ``login``: a logged-in ``Session`` whose session is made in the database by ``manage.py``,
  so the first request the server sees can be the home page itself (no login requests first);
- ``timed_get``: one page load, timed, a client timeout turned into a result;
- ``rows`` / ``failures``: what the home page shows, per broker;
- ``timed_sync``: ``plugins sync`` in a subprocess, bounded and timed.
"""

from __future__ import annotations

import http.cookiejar
import json
import math
import re
import shutil
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.conftest import FIXTURES, ROOT
from tests.e2e.conftest import Session, Stack

BUNDLED = ROOT / "plugins"

# A hang or a crash in every phase of a plugin's life (tests/fixtures/plugins/README.md).
FAULT_CORPUS: tuple[str, ...] = (
    # importing its code
    "fault-folder-init-hangs",  # the plugin folder's own __init__.py sleeps forever
    "fault-package-hangs",  # its package's __init__.py sleeps forever
    "fault-service-module-hangs",  # the module of its portfolio service sleeps forever
    "fault-import-raises",  # its package raises RuntimeError
    # building its config, initialize()
    "fault-config-hangs",  # its config class's from_dict sleeps forever
    "fault-init-hangs",  # initialize() never returns
    "fault-init-raises",  # initialize() raises ConnectionError
    "fault-thread-leak",  # initialize() starts a thread that never stops
    # health check
    "fault-health-hangs",  # health_check() never returns
    # service calls, in process
    "fault-service-slow",  # get_portfolio() sleeps 60 s, then returns
    "fault-service-loop",  # get_portfolio() is an endless CPU loop
    "fault-service-raises",  # get_portfolio() raises ValueError
    "fault-memory-hog",  # get_portfolio() allocates 320 MiB, then returns
    # process isolation
    "proc-init-exit",  # initialize() ends the child with os._exit(5)
    "proc-endless-loop",  # get_portfolio() spins forever in the child
    "proc-memory-hog",  # get_portfolio() allocates until the child's memory limit
    "proc-segfault",  # get_portfolio() segfaults the child
)

# Portfolio rows: <tr data-broker="NAME"><td>name</td><td>SYMBOL</td>... (templates/home.html)
ROW = re.compile(
    r'<tr data-broker="(?P<broker>[^"]*)"><td>(?P<name>[^<]*)</td><td>(?P<symbol>[^<]*)</td>'
)
STALE = re.compile(r'<li data-stale="(?P<plugin>[^"]*)">.*?</time> \((?P<why>[^<]*)\)</li>')
FAILURE = re.compile(r'<li data-broker="(?P<broker>[^"]*)"><strong>[^<]*</strong>: (?P<msg>[^<]*)')
HOME_MARK = 'id="portfolio"'


def copy_plugins(names: list[str] | tuple[str, ...], dest: Path) -> Path:
    """Copy fixture folders (or bundled plugins, by folder name) into ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in names:
        src = FIXTURES / name if (FIXTURES / name).is_dir() else BUNDLED / name
        shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
    return dest


def bundled_plugins() -> list[str]:
    return sorted(p.parent.name for p in BUNDLED.glob("*/plugin_manifest.json"))


# -- the home page ----------------------------------------------------------------------------
def rows(html: str) -> set[tuple[str, str]]:
    """(broker, symbol) of every row of the portfolio table."""
    return {(m["broker"], m["symbol"]) for m in ROW.finditer(html)}


def failures(html: str) -> dict[str, str]:
    """Broker -> message of the page's "could not be read" list."""
    return {m["broker"]: m["msg"] for m in FAILURE.finditer(html)}


def stale(html: str) -> dict[str, str]:
    """Plugin -> why the page shows its earlier answer (the "as of" notice)."""
    return {m["plugin"]: m["why"] for m in STALE.finditer(html)}


def brokers(found: set[tuple[str, str]]) -> set[str]:
    return {broker for broker, _ in found}


class CookieSession(Session):
    """A ``Session`` logged in by a session cookie made outside the server (see ``login``)."""

    def __init__(self, base_url: str, cookie_name: str, cookie_value: str) -> None:
        self.base_url = base_url
        self.jar = http.cookiejar.CookieJar()
        host = urllib.parse.urlsplit(base_url).hostname or "127.0.0.1"
        self.jar.set_cookie(
            http.cookiejar.Cookie(
                version=0,
                name=cookie_name,
                value=cookie_value,
                port=None,
                port_specified=False,
                domain=host,
                domain_specified=False,
                domain_initial_dot=False,
                path="/",
                path_specified=True,
                secure=False,
                expires=None,
                discard=True,
                comment=None,
                comment_url=None,
                rest={},
            )
        )
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))


_LOGIN_SCRIPT = """
import json
from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client
user = User.objects.filter(username={username!r}).first() or User.objects.create_superuser(
    {username!r}, "e2e@example.com", {password!r})
client = Client()
client.force_login(user)
name = settings.SESSION_COOKIE_NAME
print(json.dumps([name, client.cookies[name].value]))
"""


def make_login(stack: Stack, username: str = "e2e", password: str = "e2e-pass") -> tuple[str, str]:
    """A superuser and a session of theirs, stored in the stack's database by ``manage.py``
    (no request to the server): ``(cookie name, session key)``. Call before the server starts."""
    out = stack.manage("shell", "-c", _LOGIN_SCRIPT.format(username=username, password=password))
    name, value = json.loads(out.stdout.strip().splitlines()[-1])
    return name, value


def login(stack: Stack, cookie: tuple[str, str]) -> CookieSession:
    """A client of the running server logged in with ``cookie`` (from ``make_login``)."""
    return CookieSession(stack.base_url, *cookie)


@dataclass
class Fetch:
    """One page load: ``seconds`` is inf when no answer came within the client timeout."""

    status: int
    seconds: float
    body: str = ""
    error: str = ""
    found: set[tuple[str, str]] = field(default_factory=set)

    @property
    def answered(self) -> bool:
        return not math.isinf(self.seconds)

    @property
    def is_home(self) -> bool:
        """The portfolio page itself (not, say, the login page a lost session redirects to)."""
        return self.status == 200 and HOME_MARK in self.body


def timed_get(session: Session, path: str = "/", timeout: float = 30.0) -> Fetch:
    start = time.perf_counter()
    try:
        status, body = session.get(path, timeout=timeout)
    except OSError as exc:  # timeout, refused, reset
        return Fetch(0, math.inf, error=f"{type(exc).__name__}: {exc}")
    return Fetch(status, time.perf_counter() - start, body, found=rows(body))


# -- plugins sync -----------------------------------------------------------------------------
@dataclass
class SyncRun:
    seconds: float  # inf: still running when the bound expired (the process was killed)
    returncode: int | None
    output: str


def timed_sync(stack: Stack, bound: float) -> SyncRun:
    """``manage.py plugins sync`` in its own process, killed after ``bound`` seconds."""
    start = time.perf_counter()
    try:
        out = subprocess.run(
            [sys.executable, "manage.py", "plugins", "sync"],
            cwd=ROOT,
            env=stack.env,
            capture_output=True,
            text=True,
            timeout=bound,
        )
    except subprocess.TimeoutExpired as exc:
        text = (exc.stdout or b"") + (exc.stderr or b"")
        output = text.decode(errors="replace") if isinstance(text, bytes) else str(text)
        return SyncRun(math.inf, None, output)
    return SyncRun(time.perf_counter() - start, out.returncode, out.stdout + out.stderr)


def states(stack: Stack) -> dict[str, dict[str, Any]]:
    """``plugins list --json`` by name: state and error code (None when not in error)."""
    return {
        name: {
            "state": row["state"],
            "code": (row.get("error") or {}).get("code"),
            "message": (row.get("error") or {}).get("message"),
        }
        for name, row in stack.plugins_json().items()
    }
