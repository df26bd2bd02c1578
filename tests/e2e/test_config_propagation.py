"""Hot config reload on the real parts: PostgreSQL, Redis (cache, propagation stamp and push
channel, Celery broker), a Celery worker process and gunicorn with two workers, all started
here.

A config changed through the CLI (a third process) is applied by the apply task on the
Celery worker, and is then live in both web workers and in the Celery worker within 1 s of
the CLI's return; an invalid config, or one the plugin refuses, changes nothing anywhere;
disable and enable propagate the same way. No secret reaches a log.

Changes are pushed (Redis pub/sub): each serving process subscribes on a connection of its
own - gunicorn's workers forked from a ``--preload`` master too - and with the poll an hour
away every change still reaches every process within the same second; a subscription that
Redis drops comes back by itself. The latency figures (p50/p99 over many changes, against
the 100 ms target) are ``benchmarks/bench_propagation.py``'s, run by the last test here.

The embedded default (no Redis, eager tasks, one process) is covered by
``tests/stonks_plugins/test_config.py``: ``test_defaults_filled_and_hot_applied_on_the_page``
saves a config with the on-commit callbacks executed (the apply task runs eagerly) and the
very next page shows it; ``test_config_refused_by_the_plugin_keeps_the_previous_one`` and
``test_invalid_config_lists_every_path_and_changes_nothing`` do the same for the failures.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from tests.conftest import FIXTURES, IN_CI, ROOT
from tests.e2e.conftest import Session, Stack

pytestmark = pytest.mark.slow

PLUGIN = "config-fixture"
SECRET = "longsecret1"
MASK = "********"
LIMIT = 1.0  # seconds: the target for every process
PROBE = "stonks_plugins.probe_config"
ROW = re.compile(r'<tr data-broker="config-fixture"><td>([^<]*)</td><td>([^<]*)</td>')


def row(page: str) -> tuple[str, str] | None:
    """``(name, symbol)`` of the fixture's row on a home page, or None when it is absent."""
    found = ROW.findall(page)
    return found[0] if found else None


def shows(symbol: str, refresh: int = 60) -> Callable[[str], bool]:
    return lambda page: row(page) == (f"Config fixture refresh={refresh}", symbol)


def absent(page: str) -> bool:
    return 'data-broker="ibkr"' in page and row(page) is None


def probe(stack: Stack) -> dict[str, Any] | None:
    """What the Celery worker sees of the fixture's config; None when it does not serve it."""
    try:
        seen = stack.run_task(PROBE, PLUGIN, timeout=5)["config"]
        return dict(seen) if seen is not None else None
    except Exception as exc:  # the worker's BrokerRegistryError, re-raised here
        if "config-fixture" not in str(exc):
            raise
        return None


def currency(expected: str) -> Callable[[dict[str, Any] | None], bool]:
    return lambda seen: seen is not None and seen.get("currency") == expected


def propagation(
    stack: Stack,
    session: Session,
    pids: set[int],
    page_ok: Callable[[str], bool],
    task_ok: Callable[[dict[str, Any] | None], bool],
    t0: float,
    timeout: float = 5.0,
) -> dict[str, float]:
    """Seconds from ``t0`` until each web worker (by pid) served a page satisfying
    ``page_ok`` and the Celery worker ran a task satisfying ``task_ok``; asked concurrently.
    A worker that goes back to the old state after showing the new one fails the test."""
    seen: dict[str, float] = {}
    last: dict[str, object] = {}  # what each process showed last, for the failure message
    problems: list[str] = []
    deadline = t0 + timeout

    def watch_web() -> None:
        from concurrent.futures import ThreadPoolExecutor

        def one(_: int) -> tuple[int, int, str, float]:
            pid, status, page = session.get_pid("/", timeout=10)
            return pid, status, page, time.monotonic()

        with ThreadPoolExecutor(max_workers=6) as pool:
            while time.monotonic() < deadline:
                for pid, status, page, at in pool.map(one, range(6)):
                    key = f"web:{pid}"
                    last[key] = (status, row(page), re.findall(r"<li data-broker=.*?</li>", page))
                    if status != 200:
                        problems.append(f"{key} answered {status}")
                    elif page_ok(page):
                        seen.setdefault(key, at - t0)
                    elif key in seen:
                        problems.append(f"{key} went back to the old state: {row(page)}")
                if {f"web:{p}" for p in pids} <= seen.keys() or problems:
                    return

    def watch_task() -> None:
        while time.monotonic() < deadline:
            try:
                last["celery"] = found = probe(stack)
                ok = task_ok(found)
            except Exception as exc:  # reported below, with the worker's log
                problems.append(f"probe_config failed: {exc!r}\n{stack.celery_log()[-3000:]}")
                return
            if ok:
                seen["celery"] = time.monotonic() - t0
                return

    threads = [threading.Thread(target=watch_web), threading.Thread(target=watch_task)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not problems, problems
    missing = {f"web:{p}" for p in pids} | {"celery"}
    assert missing <= seen.keys(), (
        f"not propagated within {timeout} s to {missing - seen.keys()}; last seen: {last}"
    )
    return seen


def unchanged_for(
    stack: Stack,
    session: Session,
    pids: set[int],
    page_ok: Callable[[str], bool],
    task_ok: Callable[[dict[str, Any] | None], bool],
    seconds: float = 0.8,
) -> None:
    """For longer than the refresh interval (0.25 s), every process keeps the live state."""
    end = time.monotonic() + seconds
    answered: set[int] = set()
    while time.monotonic() < end:
        for pid, status, page in session.get_many_pid("/", 6):
            assert status == 200 and page_ok(page), (pid, row(page))
            answered.add(pid)
        assert task_ok(probe(stack))
    assert answered == pids


def generation(stack: Stack) -> tuple[int, bytes | None]:
    """The database counter and the Redis token of the propagation stamp."""
    import redis

    with psycopg.connect(stack.env["DATABASE_URL"]) as conn:
        found = conn.execute(
            "SELECT value FROM stonks_plugins_generation WHERE key = 'plugins'"
        ).fetchone()
    client = redis.Redis.from_url(stack.env["REDIS_URL"])
    try:
        token = client.get(f"{stack.env['CACHE_KEY_PREFIX']}:1:stonks_plugins:generation")
    finally:
        client.close()
    return (found[0] if found else 0), token  # the token as stored (pickled)


def version_status(stack: Stack, version: int) -> tuple[str, str] | None:
    with psycopg.connect(stack.env["DATABASE_URL"]) as conn:
        found = conn.execute(
            "SELECT c.status, c.message FROM stonks_plugins_pluginconfig c "
            "JOIN stonks_plugins_plugin p ON p.id = c.plugin_id "
            "WHERE p.name = %s AND c.version = %s",
            (PLUGIN, version),
        ).fetchone()
    return (found[0], found[1]) if found else None


def config_get(stack: Stack) -> dict[str, Any]:
    return json.loads(stack.manage("plugins", "config", "get", PLUGIN, "--json").stdout)


def report(capsys: pytest.CaptureFixture[str], what: str, lat: dict[str, float]) -> None:
    figures = ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in sorted(lat.items()))
    with capsys.disabled():
        print(f"\n  propagation of {what}: {figures}")


def subscriptions(stack: Stack) -> dict[int, int]:
    """``{pid: Redis client id}`` of the push subscriptions of serving processes (by the name
    each gives its connection) on the stack's Redis server."""
    import redis

    client = redis.Redis.from_url(stack.env["REDIS_URL"])
    try:
        found: dict[int, int] = {}
        for conn in client.client_list(_type="pubsub"):
            name = str(conn.get("name", ""))
            if name.startswith("stonks-plugins-push:"):
                found[int(name.rsplit(":", 1)[1])] = int(conn["id"])
        return found
    finally:
        client.close()


def subscribed(stack: Stack, pids: set[int], timeout: float = 15.0) -> dict[int, int]:
    """Waits until every process in ``pids`` has its own subscription; returns them all."""
    deadline = time.monotonic() + timeout
    while not pids <= (found := subscriptions(stack)).keys():
        assert time.monotonic() < deadline, f"not subscribed: {pids - found.keys()}"
        time.sleep(0.1)
    return found


def start_gunicorn_preload(stack: Stack, workers: int = 2) -> int:
    """gunicorn with ``--preload``: the master imports the application (and starts its
    runtime and subscription) before it forks the workers. Returns the master's pid."""
    stack.start_gunicorn(workers, pid_header=True, preload=True)
    return stack.gunicorn_pid


def test_config_change_reaches_both_web_workers_and_the_celery_worker(
    redis_stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    stack = redis_stack
    shutil.copytree(FIXTURES / PLUGIN, stack.plugin_dir / PLUGIN)  # type: ignore[attr-defined]
    stack.manage("plugins", "sync")
    stack.start_gunicorn(workers=2, pid_header=True)
    stack.start_celery_worker()
    pids = stack.worker_pids(2)
    assert len(pids) == 2
    session = stack.session()
    cli_output: list[str] = []

    # Before any config: the config class's defaults, everywhere.
    propagation(stack, session, pids, shows("CFG-EUR"), currency("EUR"), time.monotonic())
    # Each serving process listens for pushed changes on a connection of its own.
    assert stack.celery_pid is not None
    subscribed(stack, pids | {stack.celery_pid})

    # (a) A valid config through the CLI; the apply task runs on the Celery worker.
    out = stack.manage(
        "plugins",
        "config",
        "set",
        PLUGIN,
        "credentials.username=ana",
        f"credentials.password={SECRET}",
        "settings.currency=USD",
    )
    t0 = time.monotonic()
    cli_output += [out.stdout, out.stderr]
    assert "saved config version 1" in out.stdout
    lat = propagation(stack, session, pids, shows("CFG-USD"), currency("USD"), t0)
    report(capsys, "a config change (CLI return -> live)", lat)
    assert max(lat.values()) <= LIMIT, lat
    seen = probe(stack)
    assert seen is not None
    assert (seen["username"], seen["password"], seen["refresh_minutes"]) == ("ana", MASK, 60)
    live = config_get(stack)
    assert (live["version"], live["status"]) == (1, "active")
    assert live["data"]["credentials"]["password"] == MASK
    with psycopg.connect(stack.env["DATABASE_URL"]) as conn:
        stored = conn.execute("SELECT data::text FROM stonks_plugins_pluginconfig").fetchall()
    assert stored and all(SECRET not in text for (text,) in stored)  # encrypted at rest
    stamp = generation(stack)

    # (b) An invalid config: refused with JSON paths, and nothing changes anywhere.
    bad = stack.manage(
        "plugins",
        "config",
        "set",
        PLUGIN,
        "settings.refresh_minutes=0",
        "credentials.password=tiny7",
        check=False,
    )
    cli_output += [bad.stdout, bad.stderr]
    assert bad.returncode == 1, bad
    assert "nothing was changed" in bad.stderr
    assert "$.settings.refresh_minutes: " in bad.stderr and "[minimum]" in bad.stderr
    assert "$.credentials.password: " in bad.stderr and "[minLength]" in bad.stderr
    assert "tiny7" not in bad.stdout + bad.stderr
    assert config_get(stack)["version"] == 1
    assert version_status(stack, 2) is None  # no version stored
    unchanged_for(stack, session, pids, shows("CFG-USD"), currency("USD"))
    assert generation(stack) == stamp  # no process was told to refresh

    # (c) A config the plugin refuses (on the worker): marked failed, the previous one stays.
    refused = stack.manage("plugins", "config", "set", PLUGIN, "settings.currency=XXX")
    cli_output += [refused.stdout, refused.stderr]
    deadline = time.monotonic() + 10
    while (status := version_status(stack, 2)) is None or status[0] == "pending":
        assert time.monotonic() < deadline, f"version 2 still {status}:\n{stack.celery_log()}"
        time.sleep(0.05)
    assert status[0] == "failed" and "unsupported currency XXX" in status[1], status
    history = json.loads(stack.manage("plugins", "config", "history", PLUGIN, "--json").stdout)
    assert [(h["version"], h["status"]) for h in history] == [(2, "failed"), (1, "active")]
    assert config_get(stack)["version"] == 1
    unchanged_for(stack, session, pids, shows("CFG-USD"), currency("USD"))
    assert generation(stack) == stamp

    # (d) Disable and enable propagate the same way.
    stack.manage("plugins", "disable", PLUGIN)
    lat = propagation(stack, session, pids, absent, lambda seen: seen is None, time.monotonic())
    report(capsys, "disable", lat)
    assert max(lat.values()) <= LIMIT, lat
    stack.manage("plugins", "enable", PLUGIN)
    lat = propagation(stack, session, pids, shows("CFG-USD"), currency("USD"), time.monotonic())
    report(capsys, "enable", lat)
    assert max(lat.values()) <= LIMIT, lat

    # The worker applied the config (its log names the task), and no secret is anywhere.
    assert "stonks_plugins.apply_plugin_config" in stack.celery_log()
    for name, text in [
        ("gunicorn log", stack.log()),
        ("celery log", stack.celery_log()),
        ("CLI output", "\n".join(cli_output)),
    ]:
        assert SECRET not in text, f"the secret appears in the {name}"
    assert "Traceback" not in stack.log()


def test_changes_are_pushed_to_every_process_with_the_poll_an_hour_away(
    redis_stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    """Only the push can bring a change within the second here: every process checks for
    changes once an hour. gunicorn preloads the application, so its workers are forked
    from a master that already listens: each must subscribe on its own."""
    stack = redis_stack
    stack.env["PLUGINS_REFRESH_INTERVAL"] = "3600"
    shutil.copytree(FIXTURES / PLUGIN, stack.plugin_dir / PLUGIN)  # type: ignore[attr-defined]
    stack.manage("plugins", "sync")
    master = start_gunicorn_preload(stack, workers=2)
    stack.start_celery_worker()
    pids = stack.worker_pids(2)
    assert len(pids) == 2 and master not in pids, stack.log()
    session = stack.session()
    propagation(stack, session, pids, shows("CFG-EUR"), currency("EUR"), time.monotonic())
    assert stack.celery_pid is not None
    serving_pids = pids | {stack.celery_pid}
    first = subscribed(stack, serving_pids)
    assert len({first[p] for p in serving_pids}) == 3  # three connections, none shared

    out = stack.manage(
        "plugins",
        "config",
        "set",
        PLUGIN,
        "credentials.username=ana",
        f"credentials.password={SECRET}",
        "settings.currency=USD",
    )
    t0 = time.monotonic()
    assert "saved config version 1" in out.stdout
    lat = propagation(stack, session, pids, shows("CFG-USD"), currency("USD"), t0)
    report(capsys, "a config change, pushed (CLI return -> live)", lat)
    assert max(lat.values()) <= LIMIT, lat

    stack.manage("plugins", "disable", PLUGIN)
    lat = propagation(stack, session, pids, absent, lambda seen: seen is None, time.monotonic())
    report(capsys, "disable, pushed", lat)
    assert max(lat.values()) <= LIMIT, lat

    # Redis drops every subscription of this deployment: each process subscribes again by
    # itself (with backoff), and changes are pushed as before.
    import redis

    client = redis.Redis.from_url(stack.env["REDIS_URL"])
    try:
        for pid in serving_pids:
            client.client_kill_filter(_id=first[pid])
    finally:
        client.close()
    deadline = time.monotonic() + 15
    while True:
        again = subscriptions(stack)
        if all(again.get(p, first[p]) != first[p] for p in serving_pids):
            break
        assert time.monotonic() < deadline, f"not subscribed again: {again} (was {first})"
        time.sleep(0.1)
    stack.manage("plugins", "enable", PLUGIN)
    lat = propagation(stack, session, pids, shows("CFG-USD"), currency("USD"), time.monotonic())
    report(capsys, "enable, pushed after Redis dropped the subscriptions", lat)
    assert max(lat.values()) <= LIMIT, lat
    log = stack.log()
    assert "Traceback" not in log
    assert log.count("Booting worker") == 2, log  # no forked worker hung or was replaced


def test_propagation_benchmark_runs_and_prints_its_table() -> None:
    """``benchmarks/bench_propagation.py`` still works (5 changes of each kind): it starts and
    stops its own stack. Checks the figures are there, never how fast they are."""
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_propagation.py"), "--n", "5", "--json"],
        cwd=ROOT,
        env={**os.environ, "PYTHONIOENCODING": "utf-8"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    if "propagation benchmark skipped" in proc.stderr:  # PostgreSQL or Redis not reachable
        if IN_CI:
            pytest.fail(proc.stderr)
        pytest.skip(proc.stderr.strip())
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "propagation benchmark: 5 changes of each kind" in out
    lines = out.splitlines()
    for label in ("call", "committed", "web (both)", "celery", "every process", "overall "):
        assert any(line.startswith(label) for line in lines), label
    # Sampled (what the observers saw) and served (each process's own record), both shown;
    # the verdict is on the served figures.
    assert "sampled:" in out and "served:" in out
    assert "overall every process, served:" in out
    figures = json.loads(out[out.index("\n{") + 1 :])
    assert len(figures["web_pids"]) == 2
    assert set(figures["kinds"]) == {"config", "disable", "enable"}
    assert set(figures["verdicts"]) == {
        "every process, served",
        "every process, served after commit",
    }
    served_keys = {f"web {pid}, served" for pid in figures["web_pids"]} | {"celery, served"}
    for kind in figures["kinds"].values():
        assert kind["every process"]["n"] == 5
        assert set(kind) >= {"call", "committed", "web (both)", "celery", "every process"}
        assert kind["every process, after commit"]["n"] == 5
        assert set(kind) >= served_keys
        # Every process recorded every change (a miss would be null).
        assert kind["every process, served"]["n"] == 5
        assert kind["every process, served"]["max"] is not None
