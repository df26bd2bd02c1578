"""Real processes: a database shared by subprocesses, ``manage.py`` runs and a gunicorn
server with several workers. PostgreSQL when DATABASE_URL names it (CI), else a SQLite file."""

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
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT

BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def shared_database_url(tmp_path: Path) -> Iterator[str]:
    base = os.environ.get("DATABASE_URL", "")
    if base.startswith(("postgres://", "postgresql://")):
        import psycopg

        name = f"stonks_e2e_{uuid.uuid4().hex[:10]}"
        parts = urllib.parse.urlsplit(base)
        admin = parts._replace(path="/postgres").geturl()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        try:
            yield parts._replace(path=f"/{name}").geturl()
        finally:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    else:
        yield f"sqlite:///{tmp_path / 'shared.sqlite3'}"


class Stack:
    def __init__(self, env: dict[str, str], tmp: Path) -> None:
        self.env = env
        self.tmp = tmp
        self.procs: list[subprocess.Popen[bytes]] = []
        self.base_url = ""

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

    def start_gunicorn(self, workers: int = 2) -> str:
        port = _free_port()
        log = open(self.tmp / "gunicorn.log", "wb")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(
            [
                str(BIN / "gunicorn"),
                "stonks_overwatch.wsgi:application",
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
