"""Real processes: a database shared by subprocesses, ``manage.py`` runs and a gunicorn
server with several workers. PostgreSQL when DATABASE_URL names it (CI), else a SQLite file.

``redis_stack`` is the production shape: PostgreSQL required, Redis as cache, stamp and Celery
broker (so tasks are not eager), and a real Celery worker process beside gunicorn."""

from __future__ import annotations

import http.cookiejar
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import IN_CI, ROOT

BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _is_postgres(url: str) -> bool:
    return url.startswith(("postgres://", "postgresql://"))


@contextmanager
def postgres_database(base: str, prefix: str = "stonks_e2e") -> Iterator[str]:
    """A fresh database ``PREFIX_<random>`` on the server of ``base`` (a postgres:// URL),
    dropped afterwards."""
    import psycopg

    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    parts = urllib.parse.urlsplit(base)
    admin = parts._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True, connect_timeout=3) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield parts._replace(path=f"/{name}").geturl()
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def shared_database_url(tmp_path: Path) -> Iterator[str]:
    base = os.environ.get("DATABASE_URL", "")
    if _is_postgres(base):
        with postgres_database(base) as url:
            yield url
    else:
        yield f"sqlite:///{tmp_path / 'shared.sqlite3'}"


def _missing(what: str) -> None:
    """A service the test needs is not there: a failure in CI, a skip elsewhere."""
    if IN_CI:
        pytest.fail(f"{what} (required in CI)")
    pytest.skip(what)


@pytest.fixture
def postgres_database_url() -> Iterator[str]:
    """A fresh PostgreSQL database on the server DATABASE_URL names; SQLite does not do."""
    base = os.environ.get("DATABASE_URL", "")
    if not _is_postgres(base):
        _missing(f"DATABASE_URL must name PostgreSQL for this test (got {base or 'nothing'!r})")
    import psycopg

    try:
        admin = urllib.parse.urlsplit(base)._replace(path="/postgres").geturl()
        psycopg.connect(admin, connect_timeout=3).close()
    except psycopg.Error as exc:
        _missing(f"PostgreSQL at DATABASE_URL not reachable: {exc}")
    with postgres_database(base) as url:
        yield url


REDIS_CLAIM_KEY = "stonks-e2e:claimed-by"


def claim_redis_db(base: str, run_id: str) -> str:
    """A Redis database of our own on the server of ``base``: an empty one among 14..8,
    claimed with a key so that concurrent runs (the Celery queue is not prefixed) never
    share it. Flush it with :func:`release_redis_db`."""
    import redis

    parts = urllib.parse.urlsplit(base)
    for db in range(14, 7, -1):
        url = parts._replace(path=f"/{db}").geturl()
        client = redis.Redis.from_url(url, socket_connect_timeout=1)
        try:
            if client.dbsize() == 0 and client.set(REDIS_CLAIM_KEY, run_id, nx=True, ex=3600):
                return url
        finally:
            client.close()
    raise RuntimeError(f"no free Redis database among 14..8 on {parts.netloc}")


def release_redis_db(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=1)
    try:
        client.flushdb()
    finally:
        client.close()


@pytest.fixture
def e2e_redis_url() -> Iterator[str]:
    """A dedicated, empty Redis database (flushed afterwards); like ``redis_url``, a missing
    Redis fails in CI and skips elsewhere."""
    import redis

    base = os.environ.get("STONKS_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    try:
        redis.Redis.from_url(base, socket_connect_timeout=1).ping()
    except redis.RedisError as exc:
        _missing(f"Redis at {base} not reachable: {exc}")
    url = claim_redis_db(base, uuid.uuid4().hex)
    try:
        yield url
    finally:
        release_redis_db(url)


# Loaded by gunicorn with ``-c``: every response says which worker made it, and since when
# (``time.monotonic()``) that worker serves each of the latest pushed changes, as
# ``generation:since`` pairs (the propagation benchmark's measure; never a secret).
PID_HEADER_CONF = """
import os


def post_worker_init(worker):
    inner = worker.wsgi
    pid = str(os.getpid())

    def app(environ, start_response):
        def start(status, headers, exc_info=None):
            from stonks_plugins.runtime.background import background

            served = ",".join(f"{g}:{at!r}" for g, at in background.served())
            extra = [("X-Worker-Pid", pid), ("X-Plugins-Served", served)]
            return start_response(status, [*headers, *extra], exc_info)

        return inner(environ, start)

    worker.wsgi = app
"""


class Stack:
    def __init__(self, env: dict[str, str], tmp: Path) -> None:
        self.env = env
        self.tmp = tmp
        self.procs: list[subprocess.Popen[bytes]] = []
        self.base_url = ""
        self.gunicorn_pid = 0
        self.celery_pid: int | None = None
        self._client_app: Any = None

    def manage(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        out = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if check and out.returncode != 0:
            raise AssertionError(
                f"manage.py {' '.join(args)} exited {out.returncode}:\n{out.stdout}\n{out.stderr}"
            )
        return out

    def plugins_json(self) -> dict[str, dict[str, Any]]:
        rows = json.loads(self.manage("plugins", "list", "--json").stdout)
        return {r["name"]: r for r in rows}

    def start_gunicorn(
        self, workers: int = 2, pid_header: bool = False, preload: bool = False
    ) -> str:
        """``pid_header``: each response carries ``X-Worker-Pid`` (see ``Session.get_pid``);
        ``preload``: the master imports the application (and starts its runtime) before it
        forks the workers. The master's pid is ``gunicorn_pid``."""
        port = _free_port()
        log = open(self.tmp / "gunicorn.log", "wb")  # noqa: SIM115 - closed with the process
        extra: list[str] = ["--preload"] if preload else []
        if pid_header:
            conf = self.tmp / "gunicorn_pid_header.py"
            conf.write_text(PID_HEADER_CONF)
            extra += ["-c", str(conf)]
        proc = subprocess.Popen(
            [
                str(BIN / "gunicorn"),
                "stonks_overwatch.wsgi:application",
                *extra,
                "-b",
                f"127.0.0.1:{port}",
                "-w",
                str(workers),
                "--timeout",
                "30",
                "--graceful-timeout",
                "5",
            ],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.procs.append(proc)
        self.gunicorn_pid = proc.pid
        self.base_url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise AssertionError("gunicorn exited:\n" + self.log())
            try:
                urllib.request.urlopen(self.base_url + "/healthz", timeout=1).read()
                return self.base_url
            except OSError:
                time.sleep(0.2)
        raise AssertionError("gunicorn did not answer within 30 s:\n" + self.log())

    def worker_pids(self, expected: int, timeout: float = 15.0) -> set[int]:
        """Pids of the workers answering, asked concurrently so every worker gets a turn."""
        from concurrent.futures import ThreadPoolExecutor

        def ask(_: int) -> int:
            with urllib.request.urlopen(self.base_url + "/healthz", timeout=5) as resp:
                return int(json.loads(resp.read())["pid"])

        seen: set[int] = set()
        deadline = time.monotonic() + timeout
        with ThreadPoolExecutor(max_workers=8) as pool:
            while len(seen) < expected and time.monotonic() < deadline:
                seen.update(pool.map(ask, range(16)))
        return seen

    def log(self) -> str:
        path = self.tmp / "gunicorn.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def celery_log(self) -> str:
        path = self.tmp / "celery.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def celery_client(self) -> Any:
        """A Celery app of this (test) process on the stack's broker and result backend, to
        send tasks by name to the worker."""
        if self._client_app is None:
            from celery import Celery

            url = self.env["REDIS_URL"]
            app = Celery(f"e2e-client-{uuid.uuid4().hex[:6]}", broker=url, backend=url)
            app.conf.update(
                task_serializer="json",
                result_serializer="json",
                accept_content=["json"],
                broker_connection_retry_on_startup=True,
            )
            self._client_app = app
        return self._client_app

    def start_celery_worker(self, timeout: float = 30.0) -> int:
        """One Celery worker process (solo pool: tasks run in the process that answers
        ``ping``), logging to ``celery.log``; returns its pid once it answers a ping."""
        assert self.env.get("REDIS_URL"), "a Celery worker needs REDIS_URL (the broker)"
        node = f"e2e-{uuid.uuid4().hex[:8]}@localhost"
        log = open(self.tmp / "celery.log", "wb")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(
            [
                str(BIN / "celery"),
                "-A",
                "stonks_overwatch.celery",
                "worker",
                "--pool=solo",
                "-l",
                "info",
                "-n",
                node,
                "--without-mingle",
                "--without-gossip",
            ],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.procs.append(proc)
        app = self.celery_client()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise AssertionError("celery worker exited:\n" + self.celery_log())
            if app.control.ping(destination=[node], timeout=0.5):
                self.celery_pid = proc.pid
                return proc.pid
        raise AssertionError(
            f"celery worker did not answer a ping within {timeout} s:\n" + self.celery_log()
        )

    def run_task(self, name: str, *args: Any, timeout: float = 10.0) -> Any:
        """Run a task on the worker and return its result (its exception is raised here)."""
        result = self.celery_client().send_task(name, args=list(args))
        try:
            return result.get(timeout=timeout)
        finally:
            result.forget()

    def session(self, username: str = "e2e", password: str = "e2e-pass") -> Session:
        self.manage(
            "shell",
            "-c",
            "from django.contrib.auth.models import User;"
            f"User.objects.filter(username='{username}').exists() or "
            f"User.objects.create_superuser('{username}', 'e2e@example.com', '{password}')",
        )
        return Session(self.base_url, username, password)

    def stop(self) -> None:
        if self._client_app is not None:
            from kombu import pools

            # kombu keeps one pool per broker URL for the whole process: close it and drop
            # it, or the next stack on the same Redis database gets a closed pool.
            pools.reset()
            self._client_app = None
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)


class Session:
    """A logged-in browser-like client (cookies, CSRF) over plain HTTP."""

    def __init__(self, base_url: str, username: str, password: str) -> None:
        self.base_url = base_url
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))
        self.opener.open(base_url + "/admin/login/", timeout=10).read()
        token = next(c.value for c in self.jar if c.name == "csrftoken")
        data = urllib.parse.urlencode(
            {
                "csrfmiddlewaretoken": token,
                "username": username,
                "password": password,
                "next": "/",
            }
        ).encode()
        req = urllib.request.Request(
            base_url + "/admin/login/", data=data, headers={"Referer": base_url + "/admin/login/"}
        )
        self.opener.open(req, timeout=10).read()
        assert any(c.name == "sessionid" for c in self.jar), "login failed"

    def get_many(self, path: str, n: int) -> list[tuple[int, str]]:
        """``n`` concurrent GETs, so that every worker of a pre-fork server answers some."""
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=n) as pool:
            return list(pool.map(lambda _: self.get(path), range(n)))

    def get(self, path: str, timeout: float = 30) -> tuple[int, str]:
        try:
            with self.opener.open(self.base_url + path, timeout=timeout) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode(errors="replace")

    def get_pid(self, path: str, timeout: float = 30) -> tuple[int, int, str]:
        """``(worker pid, status, body)``: needs ``start_gunicorn(pid_header=True)``."""
        try:
            with self.opener.open(self.base_url + path, timeout=timeout) as resp:
                return int(resp.headers["X-Worker-Pid"]), resp.status, resp.read().decode()
        except urllib.error.HTTPError as err:
            return int(err.headers["X-Worker-Pid"]), err.code, err.read().decode("utf-8", "replace")

    def get_many_pid(self, path: str, n: int) -> list[tuple[int, int, str]]:
        """``n`` concurrent ``get_pid``s, so that every worker answers some."""
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=n) as pool:
            return list(pool.map(lambda _: self.get_pid(path), range(n)))


@pytest.fixture
def stack(shared_database_url: str, tmp_path: Path) -> Iterator[Stack]:
    plugin_dir = tmp_path / "plugins"
    plugin_dir.mkdir()
    env = {
        **os.environ,
        "DATABASE_URL": shared_database_url,
        "PLUGIN_DIRS": str(plugin_dir),
        "REDIS_URL": "",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PLUGINS_REFRESH_INTERVAL": "0.1",
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)
    s = Stack(env, tmp_path)
    s.plugin_dir = plugin_dir  # type: ignore[attr-defined]
    s.manage("migrate", "--noinput", "-v", "0")
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture
def redis_stack(postgres_database_url: str, e2e_redis_url: str, tmp_path: Path) -> Iterator[Stack]:
    """The production shape: PostgreSQL, Redis (cache with a prefix of its own, propagation
    stamp, Celery broker and results: tasks are not eager) and the product's default
    PLUGINS_REFRESH_INTERVAL. Start gunicorn and ``start_celery_worker()`` as needed."""
    plugin_dir = tmp_path / "plugins"
    plugin_dir.mkdir()
    env = {
        **os.environ,
        "DATABASE_URL": postgres_database_url,
        "PLUGIN_DIRS": str(plugin_dir),
        "REDIS_URL": e2e_redis_url,
        "CACHE_KEY_PREFIX": f"e2e-{uuid.uuid4().hex[:10]}",
        "CELERY_BROKER_URL": e2e_redis_url,
        "CELERY_RESULT_BACKEND": e2e_redis_url,
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    for name in ("DJANGO_SETTINGS_MODULE", "CELERY_TASK_ALWAYS_EAGER", "PLUGINS_REFRESH_INTERVAL"):
        env.pop(name, None)
    s = Stack(env, tmp_path)
    s.plugin_dir = plugin_dir  # type: ignore[attr-defined]
    s.manage("migrate", "--noinput", "-v", "0")
    try:
        yield s
    finally:
        s.stop()
