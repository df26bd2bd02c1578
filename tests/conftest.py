"""Shared fixtures. Each test starts with no plugin registered in this process and with the
discovery cache empty, so tests never see each other's plugins."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings as hypothesis_settings

# Property-based tests run the same examples on every machine (no example database, no
# random seed, no per-example deadline on a shared 2-CPU runner): a failure reproduces.
hypothesis_settings.register_profile("stonks", derandomize=True, database=None, deadline=None)
hypothesis_settings.load_profile("stonks")

# The alert tests' real SMTP server and webhook receiver (``smtp``, ``hooks``): the eager
# tests in tests/stonks_plugins and the worker's in tests/e2e share them.
pytest_plugins = ["tests.alert_receivers"]

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "plugins"
BUNDLED = ROOT / "plugins"
# The Foundation's broken-plugin corpus; the engine's fault fixtures (fault-*, dep-*, proc-*)
# misbehave at run time and are exercised by their own tests; the hostile ones (hostile-*)
# by the tests of the hardening they check, the permission ones (perm-) by the sandbox's
# permission tests, the import report ones (imports-) by its tests, the per-plugin log ones
# (logs-) by theirs, the error-family ones (err-) by test_error_family.py (see the fixtures
# README).
CORPUS = sorted(
    p.name
    for p in FIXTURES.iterdir()
    if p.is_dir()
    and not p.name.startswith(
        (
            "fault-",
            "dep-",
            "proc-",
            "config-",
            "app-",
            "v2-",
            "hostile-",
            "perm-",
            "secret-",
            "trust-",
            "imports-",
            "logs-",
            "err-",
        )
    )
)
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

# Tests that need the real services (PostgreSQL, Redis, a Celery worker on Redis) carry the
# `services` marker: `pytest -m services` runs them, `-m "not services"` leaves them out. A
# test gets it by asking for one of these fixtures (or by saying so, e.g. a PostgreSQL-only
# test); each one skips without the service, and fails in CI.
SERVICE_FIXTURES = frozenset({"redis_url", "e2e_redis_url", "redis_stack", "postgres_database_url"})

# STONKS_TEST_CACHE_REDIS (a redis:// URL; .ci/run sets it): the whole suite's cache is that
# Redis instead of the per-process LocMem, each xdist worker on a database of its own (1, 2,
# ...: a cache.clear() in one worker's test flushes only its own; 8-14 are the e2e stacks',
# 15 the redis_url fixture's).
SUITE_CACHE_ENV = "STONKS_TEST_CACHE_REDIS"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if SERVICE_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.services)


def suite_cache_url() -> str | None:
    """This worker's Redis database for the suite's cache, or None (LocMem)."""
    import urllib.parse

    base = os.environ.get(SUITE_CACHE_ENV, "")
    if not base:
        return None
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    number = int(worker[2:]) if worker[2:].isdigit() else 0
    if number > 6:
        raise pytest.UsageError(f"{SUITE_CACHE_ENV}: at most 7 xdist workers (got {worker})")
    return urllib.parse.urlsplit(base)._replace(path=f"/{number + 1}").geturl()


@pytest.fixture(scope="session", autouse=True)
def _suite_cache() -> Iterator[None]:
    """With STONKS_TEST_CACHE_REDIS, Django's default cache is the real Redis for every test
    (CI); else it stays the LocMem of settings. A missing Redis then fails the run."""
    url = suite_cache_url()
    if url is None:
        yield
        return
    import redis
    from django.core.cache import caches
    from django.test.utils import override_settings

    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        pytest.fail(f"{SUITE_CACHE_ENV}: Redis at {url} is not reachable: {exc}")
    backend = "django.core.cache.backends.redis.RedisCache"
    override = override_settings(
        CACHES={"default": {"BACKEND": backend, "LOCATION": url, "KEY_PREFIX": "suite"}}
    )
    override.enable()
    caches["default"].clear()  # this worker's database: what an earlier run left
    try:
        yield
    finally:
        caches["default"].clear()
        override.disable()


@pytest.fixture(autouse=True)
def _fresh_plugin_runtime(settings: pytest.FixtureRequest) -> Iterator[None]:
    from stonks_plugins.discovery.directories import clear_cache
    from stonks_plugins.registry import plugin_registry
    from stonks_plugins.runtime.serving import serving

    settings.PLUGINS_REFRESH_INTERVAL = 0  # type: ignore[attr-defined]
    # Legacy brokers get plugin rows only in the tests that ask (test_legacy_adapter.py).
    settings.PLUGINS_LEGACY_AS_PLUGINS = False  # type: ignore[attr-defined]
    # Short limits so the fault corpus runs quickly; tests that need others set their own.
    settings.PLUGINS_TIMEOUTS = {  # type: ignore[attr-defined]
        "import": 5.0,
        "initialize": 0.5,
        "health_check": 0.5,
        "shutdown": 0.5,
    }
    # No background runtime in the test process: loads start on the first use (on a
    # background thread, waited for within the budget) and outcomes are written by the
    # caller, inside the test's transaction. Tests of the background runtime turn it on.
    settings.PLUGINS_WARMUP = False  # type: ignore[attr-defined]
    settings.PLUGINS_SYNC_LOAD_TIMEOUT = 3.0  # type: ignore[attr-defined]
    # A loaded CI machine may take a while on a first call: serving brokers from their last
    # answer because they seem slow would make pages depend on timing (tested on its own).
    settings.PLUGINS_SLOW_CALL = 60.0  # type: ignore[attr-defined]
    settings.PLUGINS_BACKOFF_BASE = 0.2  # type: ignore[attr-defined]
    settings.PLUGINS_LOAD_RETRY_BASE = 0.2  # type: ignore[attr-defined]
    settings.PLUGINS_BACKOFF_MAX = 1.0  # type: ignore[attr-defined]
    from stonks_plugins import reporting

    reporting.configure(plugin_registry)
    # No automatic flush of metrics inside a test (tests that want one force it).
    from stonks_plugins import metrics_store

    metrics_store.reset()
    from stonks_plugins.logs import capture

    capture.clear()  # no log record of an earlier test is stored by this one's flush
    from stonks_plugins.runtime import lanes, outbox, reaper
    from stonks_plugins.runtime.background import background

    background.stop()
    outbox.clear()
    lanes.reset()
    reaper.reset()
    serving.reset()
    plugin_registry.clear()
    clear_cache()
    yield
    background.stop()
    outbox.clear()
    reaper.reset()
    serving.reset()
    plugin_registry.clear()
    clear_cache()


@pytest.fixture
def plugin_dirs(settings: pytest.FixtureRequest, tmp_path: Path):  # type: ignore[no-untyped-def]
    """Point PLUGIN_DIRS at a fresh folder; ``add(src, as_name)`` copies a plugin into it."""

    base = tmp_path / "plugins"
    base.mkdir()
    settings.PLUGIN_DIRS = [base]  # type: ignore[attr-defined]

    class Dirs:
        path = base

        @staticmethod
        def add(src: Path | str, as_name: str | None = None) -> Path:
            src = Path(src)
            if not src.is_absolute():
                src = FIXTURES / src if (FIXTURES / src).exists() else BUNDLED / src
            dest = base / (as_name or src.name)
            shutil.copytree(src, dest, ignore=shutil.ignore_patterns("__pycache__"))
            return dest

    return Dirs


@pytest.fixture
def admin_client_logged(client, django_user_model):  # type: ignore[no-untyped-def]
    user = django_user_model.objects.create_superuser("admin", "admin@example.com", "pw")
    client.force_login(user)
    return client


@pytest.fixture
def redis_url(settings):  # type: ignore[no-untyped-def]
    """The real Redis, used as the shared cache. Missing Redis fails in CI, skips elsewhere."""
    import redis

    url = os.environ.get("STONKS_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except redis.RedisError as exc:
        if IN_CI:
            pytest.fail(f"Redis at {url} is required in CI: {exc}")
        pytest.skip(f"Redis at {url} not reachable: {exc}")
    from django.core.cache import caches

    settings.REDIS_URL = url
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": url,
            "KEY_PREFIX": f"test-{os.getpid()}",
        }
    }
    caches["default"].clear()
    yield url
    caches["default"].clear()


def fast_process_plugins(settings, call_timeout: float) -> None:  # type: ignore[no-untyped-def]
    """Settings for tests of process-isolated plugins: cheap logins, and small limits so a
    misbehaving child is caught in seconds."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.PLUGINS_PROCESS_LIMITS = {
        "memory_mb": 256,
        "cpu_seconds": 5,
        "call_timeout": call_timeout,
        "start_timeout": 20.0,
    }


def manage_in_subprocess(tmp_path: Path, plugin_dir: Path):  # type: ignore[no-untyped-def]
    """``manage(*args)`` running ``manage.py`` in a fresh process on its own SQLite file and
    plugin folder, with no Redis or broker from the environment: real exit codes."""
    import subprocess
    import sys

    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("REDIS_URL", "CELERY_BROKER_URL", "DJANGO_SETTINGS_MODULE")
    }
    env.update(
        {
            "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
            "PLUGIN_DIRS": str(plugin_dir),
            "PYTHONDONTWRITEBYTECODE": "1",
        }
    )

    def manage(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    return manage


@pytest.fixture(scope="session")
def bundled_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled DeGiro and Bitvavo plugins pip-installed (each from its own pyproject.toml)
    into a target folder, once per session: read it, or copy it before damaging it."""
    target = tmp_path_factory.mktemp("site")
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation"]
    for name in ("degiro-broker", "bitvavo-broker"):
        subprocess.run(
            [*pip, "--target", str(target), str(BUNDLED / name)],
            check=True,
            cwd=ROOT,
            capture_output=True,
        )
    return target


@pytest.fixture
def applied(django_capture_on_commit_callbacks) -> Callable[..., Any]:  # type: ignore[no-untyped-def]
    """Run what is queued on commit (the eager apply task) as a real commit would."""

    def run(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        with django_capture_on_commit_callbacks(execute=True):
            return fn(*args, **kwargs)

    return run
