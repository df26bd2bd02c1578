"""How process-isolated plugins' children are started is set up explicitly - by the app's
``ready()``, and by the first start of a child where Django is not set up (tests, benchmarks,
the plugin test kit) - never by importing the code. Each test runs in a fresh interpreter, so
nothing this test session already installed can make it pass."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import FIXTURES, ROOT

HOOKED = """
import multiprocessing.spawn, _posixsubprocess
def hooked():
    return [
        getattr(multiprocessing.spawn.get_preparation_data, "_stonks_plugins_hook", False),
        getattr(_posixsubprocess.fork_exec, "_stonks_plugins_env", False),
    ]
"""

SECRET = "hunter2-secret-4713"

MAKE_A_HOST = """
import json, os, sys
from pathlib import Path
sys.path.insert(0, {root!r})
os.unlink(__file__)
from stonks_plugins.discovery.directories import scan_directory_plugin
from stonks_plugins.sandbox.process import ProcessHost
before = hooked()
host = ProcessHost(scan_directory_plugin(Path(sys.argv[1])), start_timeout=90.0)
try:
    pid = host.start()
    block = Path(f"/proc/{{pid}}/environ").read_bytes()
    total = host.call("portfolio", "get_portfolio_total").total_value
finally:
    host.close()
print(json.dumps({{
    "before": before,
    "secret": {secret!r} in block,
    "isolated": b"STONKS_PLUGIN_ISOLATION=process" in block,
    "answered": total is not None,
}}))
"""

FORKED_FROM_THE_SERVER = """
import json, os, sys
from pathlib import Path
sys.path.insert(0, {root!r})
from stonks_plugins.discovery.directories import scan_directory_plugin
from stonks_plugins.sandbox.process import ProcessHost, forkserver

def parent_of(pid):
    status = Path(f"/proc/{{pid}}/status").read_text()
    return int(next(l.split()[1] for l in status.splitlines() if l.startswith("PPid:")))

def started(candidate):
    host = ProcessHost(candidate, start_timeout=90.0)
    try:
        pid = host.start()
        return {{
            "answered": host.call("portfolio", "get_portfolio_total").total_value is not None,
            "child_of": "server" if parent_of(pid) == forkserver.server_pid() else (
                "host" if parent_of(pid) == os.getpid() else "other"),
            "child_secret": {secret!r} in Path(f"/proc/{{pid}}/environ").read_bytes(),
        }}
    finally:
        host.close()

candidate = scan_directory_plugin(Path(sys.argv[1]))
report = started(candidate)
server = forkserver.server_pid()
report["refused"] = forkserver.refused()
if server is not None:
    report["server_secret"] = {secret!r} in Path(f"/proc/{{server}}/environ").read_bytes()
    report["server_threads"] = len(os.listdir(f"/proc/{{server}}/task"))
# A forked copy of this host (gunicorn --preload, Celery prefork) starts children of its own.
read, write = os.pipe()
pid = os.fork()
if pid == 0:
    try:
        forked = started(candidate)
        forked["own_server"] = forkserver.server_pid() not in (None, server)
        os.write(write, json.dumps(forked).encode())
    finally:
        os._exit(0)
os.close(write)
with os.fdopen(read) as pipe:
    report["forked"] = json.loads(pipe.read())
os.waitpid(pid, 0)
report["after_fork"] = started(candidate)["answered"]
print(json.dumps(report))
"""


def _run(code: str, env: dict[str, str], *args: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, *args] if not code else [sys.executable, "-c", code, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    report: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return report


def _without_django() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}


def test_importing_process_isolation_changes_nothing_and_install_is_idempotent() -> None:
    code = HOOKED + (
        "import json\n"
        "from stonks_plugins.sandbox.process import ProcessHost, spawn\n"
        "imported = hooked()\n"
        "spawn.install()\n"
        "first = (multiprocessing.spawn.get_preparation_data, _posixsubprocess.fork_exec)\n"
        "spawn.install()\n"
        "again = (multiprocessing.spawn.get_preparation_data, _posixsubprocess.fork_exec)\n"
        "print(json.dumps({'imported': imported, 'installed': hooked(), 'same': first == again}))\n"
    )
    report = _run(code, _without_django())
    assert report == {"imported": [False, False], "installed": [True, True], "same": True}


def test_the_apps_ready_installs_the_spawn_setup(tmp_path: Path) -> None:
    (tmp_path / "plugins").mkdir()
    env = _without_django()
    env.update(
        DJANGO_SETTINGS_MODULE="stonks_overwatch.settings",
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        PLUGIN_DIRS=str(tmp_path / "plugins"),
        PLUGINS_SAFE_MODE="0",
        REDIS_URL="",
        CELERY_BROKER_URL="",
        LOG_LEVEL="WARNING",
    )
    code = HOOKED + (
        "import json, django\n"
        "before = hooked()\n"
        "django.setup()\n"
        "print(json.dumps({'before': before, 'after': hooked()}))\n"
    )
    assert _run(code, env) == {"before": [False, False], "after": [True, True]}


def test_a_host_made_without_django_starts_its_child_without_secrets_or_the_hosts_main(
    tmp_path: Path,
) -> None:
    """A script that made a host (as a plugin author's test or a benchmark does) and is gone
    from the disk: the child is spawned all the same - it does not re-run the script - and
    starts without the script's secret environment variables."""
    plugin = tmp_path / "proc-healthy"
    shutil.copytree(FIXTURES / "proc-healthy", plugin, ignore=shutil.ignore_patterns("__pycache__"))
    script = tmp_path / "make_a_host.py"
    script.write_text(HOOKED + MAKE_A_HOST.format(root=str(ROOT), secret=SECRET.encode()))
    env = _without_django()
    env["SECRET_KEY"] = SECRET
    report = _run("", env, str(script), str(plugin))
    assert report == {"before": [False, False], "secret": False, "isolated": True, "answered": True}
    assert not script.exists()


def test_a_child_is_forked_from_a_server_without_secrets_and_a_forked_host_starts_its_own(
    tmp_path: Path,
) -> None:
    """The fork server a child is forked from (its start costs no interpreter) runs with no
    secret in its environment block, one thread, and no plugin code; a copy of the host forked
    after that server started (gunicorn --preload, Celery prefork) cannot use its parent's
    and starts children from a server of its own."""
    plugin = tmp_path / "proc-healthy"
    shutil.copytree(FIXTURES / "proc-healthy", plugin, ignore=shutil.ignore_patterns("__pycache__"))
    env = _without_django()
    env["SECRET_KEY"] = SECRET
    code = FORKED_FROM_THE_SERVER.format(root=str(ROOT), secret=SECRET.encode())
    report = _run(code, env, str(plugin))
    assert report == {
        "answered": True,
        "child_of": "server",
        "child_secret": False,
        "refused": None,
        "server_secret": False,
        "server_threads": 1,
        "forked": {
            "answered": True,
            "child_of": "server",
            "child_secret": False,
            "own_server": True,
        },
        "after_fork": True,
    }


def test_children_are_spawned_when_the_fork_servers_environment_is_not_clean(
    tmp_path: Path,
) -> None:
    """Were the fork server launched with the host's environment (the launch hook not
    reached), a child forked from it would start with the host's secrets in its environment
    block: the server is checked before any child is forked from it, and refused - by the
    names it holds, never their values - and children are spawned, without the secrets."""
    plugin = tmp_path / "proc-healthy"
    shutil.copytree(FIXTURES / "proc-healthy", plugin, ignore=shutil.ignore_patterns("__pycache__"))
    env = _without_django()
    env["SECRET_KEY"] = SECRET
    code = FORKED_FROM_THE_SERVER.format(root=str(ROOT), secret=SECRET.encode()).replace(
        "candidate = scan_directory_plugin",
        "from stonks_plugins.sandbox.process import spawn\n"
        "spawn.server_environment = lambda: dict(os.environ)  # the scrub not reached\n"
        "candidate = scan_directory_plugin",
    )
    report = _run(code, env, str(plugin))
    assert report["answered"] is True
    assert report["child_of"] == "host"
    assert report["child_secret"] is False
    refused = str(report["refused"])
    assert "SECRET_KEY" in refused and SECRET not in refused
    assert report["forked"] == {
        "answered": True,
        "child_of": "host",
        "child_secret": False,
        "own_server": False,
    }
