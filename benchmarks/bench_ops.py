"""Operator actions benchmark: what enabling, disabling, reloading, configuring and syncing
cost as the number of installed plugins grows.

For each size (10, 100 and 1,000 plugins by default) a fresh process gets a fresh database
and N generated directory plugins (trivial brokers: a manifest and a package whose service
returns nothing; ``op-0000`` also has a config schema), then:

- ``first sync``   ``manager.sync()`` on the empty database, timed whole and split into the
                   project's own work (discovery, the rows, events and states written in bulk,
                   the legacy brokers) and the plugins' start (``start_plugins``: each new
                   plugin imported and initialised, its outcome recorded), which is the plugins'
                   code and the runtime's, and grows with them by nature; its queries too,
                   all and the project's own;
- ``sync``         ``manager.sync()`` again, with nothing changed on disk;
- ``disable``      ``manager.disable("op-0005")``;
- ``enable``       ``manager.enable("op-0005")`` (it is loaded again: a trivial plugin);
- ``reload``       ``manager.reload("op-0005")``;
- ``config set``   ``manager.set_config("op-0000", ...)``: validate, store the version, enqueue
                   the apply task (what the caller waits for when a worker applies it);
- ``config apply`` the ``apply_plugin_config`` task run in this process as a worker runs it
                   (on the embedded default it runs in the caller right after the save: then
                   the caller pays both).

The actions run in that order, once with their queries counted (Django's
``CaptureQueriesContext``, as ``tests/stonks_plugins/test_query_counts_ops.py`` counts them),
then ``--repeat`` times timed; the median counts. The baseline is the same action at the
smallest size, in the same run: the ``x`` column is how much slower it is at the largest.

Targets (issue 17), at the largest size:

- every action's queries do not grow with the number of plugins (the same at every size), and
  are at most 20;
- every action takes at most 100 ms at 1,000 plugins (on PostgreSQL: the target's database);
- the first sync spends at most 2 s in the project's own work at 1,000 plugins.

The process runs no background runtime (``PLUGINS_WARMUP`` off, as in a ``manage.py``
command), so that no action is timed beside the refresh the one before it pushed to the
process (``bench_propagation.py`` measures that).

Database: a fresh PostgreSQL database per size, on the server ``--database-url`` or
``DATABASE_URL`` names (dropped afterwards), else a temporary SQLite file (the embedded
default). No Redis: tasks are queued in memory and the apply is run here.

Run:  .venv/bin/python benchmarks/bench_ops.py [--sizes 10,100,1000] [--repeat 9]
      [--database-url postgres://postgres@127.0.0.1:5432/postgres] [--check] [--json]
Exit status is 0 unless ``--check`` is given and a target is missed (1), or the PostgreSQL
server cannot be reached (2 with ``--check``; a notice and 0 without).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from _services import Unavailable, temp_database  # noqa: E402

MAX_QUERIES = 20
MAX_MS = 100.0
MAX_FIRST_SYNC_S = 2.0
TARGET_SIZE = 1000
ACTIONS = ("sync", "disable", "enable", "reload", "config set", "config apply")
TARGET = "op-0005"
CONFIGURED = "op-0000"
SERVICES = '''"""A trivial broker: the benchmark measures the plugin system, not the plugin."""

from stonks_plugins.sdk import PortfolioServiceInterface, TotalPortfolio


class PortfolioService(PortfolioServiceInterface):
    def get_portfolio(self):
        return []

    def get_portfolio_total(self):
        return TotalPortfolio(total_value=0.0)
'''


def generate_plugins(base: Path, n: int) -> None:
    """``n`` trivial directory plugins ``op-0000`` ... under ``base``."""
    for i in range(n):
        name, package = f"op-{i:04d}", f"op_{i:04d}"
        folder = base / name / package
        folder.mkdir(parents=True)
        manifest: dict[str, Any] = {
            "plugin": {
                "name": name,
                "version": f"1.{i % 7}.0",
                "type": "broker",
                "display_name": f"Operator benchmark {i}",
                "description": "A generated plugin of the operator actions benchmark",
            },
            "api": {"min_version": "1.0.0", "max_version": "2.0.0"},
            "dependencies": {"python": ">=3.11", "stonks-overwatch-core": ">=2.0.0,<3.0.0"},
            "capabilities": {"services": ["portfolio"]},
            "services": {"portfolio": f"{package}.services.PortfolioService"},
        }
        if name == CONFIGURED:
            manifest["configuration"] = {
                "schema": {
                    "type": "object",
                    "properties": {
                        "currency": {"enum": ["EUR", "USD", "GBP"], "default": "EUR"},
                        "api_key": {"type": "string", "writeOnly": True},
                    },
                }
            }
        (base / name / "plugin_manifest.json").write_text(json.dumps(manifest, indent=2), "utf-8")
        (folder / "__init__.py").write_text("", "utf-8")
        (folder / "services.py").write_text(SERVICES, "utf-8")


# -- the child: one size, one fresh process and database ------------------------------------
def measure(n: int, repeat: int) -> dict[str, Any]:
    import django

    django.setup()
    from django.conf import settings

    # No background runtime, as in a ``manage.py plugins ...`` command: each action is timed
    # alone, not beside the refresh that the one before it pushed to this process.
    settings.PLUGINS_WARMUP = False
    from django.core.management import call_command
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from stonks_plugins import manager as manager_module
    from stonks_plugins.manager import manager
    from stonks_plugins.tasks import apply_plugin_config

    call_command("migrate", verbosity=0, interactive=False)
    # Django keeps the last 9,000 queries: a first sync of 1,000 plugins makes more.
    connection.queries_limit = 10_000_000
    connection.queries_log = deque(maxlen=connection.queries_limit)

    starting = [0.0]
    start_plugins = manager_module.start_plugins

    start_queries = [0]

    def timed_start(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            with CaptureQueriesContext(connection) as ctx:
                return start_plugins(*args, **kwargs)
        finally:
            starting[0] += time.perf_counter() - t0
            start_queries[0] += len(ctx.captured_queries)

    manager_module.start_plugins = timed_start  # type: ignore[assignment]
    gc.collect()
    with CaptureQueriesContext(connection) as first:
        t0 = time.perf_counter()
        report = manager.sync("bench")
        first_s = time.perf_counter() - t0
    manager_module.start_plugins = start_plugins  # type: ignore[assignment]
    added = [name for name in report.added if name.startswith("op-")]
    assert len(added) == n, f"the first sync added {len(added)} of {n} plugins"
    assert not report.failed, f"plugins failed at the first sync: {report.failed[:5]}"

    currencies = iter(["USD", "GBP", "EUR"] * (repeat + 2))
    saved: list[int] = []

    def set_config() -> None:
        saved.append(manager.set_config(CONFIGURED, {"currency": next(currencies)}).version)

    def apply_config() -> None:
        result = apply_plugin_config.apply(args=(CONFIGURED, saved[-1])).get()
        assert result["applied"], result

    def sync() -> None:
        assert not manager.sync("bench").changed, "a sync with nothing changed changed something"

    def disable() -> None:
        assert not manager.disable(TARGET, "bench").enabled

    def enable() -> None:
        assert manager.enable(TARGET, "bench").state == "active"

    def reload() -> None:
        assert manager.reload(TARGET, "bench").state == "active"

    act: dict[str, Callable[[], None]] = {
        "sync": sync,
        "disable": disable,
        "enable": enable,
        "reload": reload,
        "config set": set_config,
        "config apply": apply_config,
    }
    queries: dict[str, int] = {}
    for action in ACTIONS:  # once, counted (this also warms every path up)
        with CaptureQueriesContext(connection) as ctx:
            act[action]()
        queries[action] = len(ctx.captured_queries)
    times: dict[str, list[float]] = {action: [] for action in ACTIONS}
    for _ in range(repeat):
        for action in ACTIONS:
            gc.collect()
            t0 = time.perf_counter()
            act[action]()
            times[action].append(time.perf_counter() - t0)
    return {
        "n": n,
        "vendor": connection.vendor,
        "first_sync": {
            "total_s": round(first_s, 3),
            "start_s": round(starting[0], 3),
            "own_s": round(first_s - starting[0], 3),
            "queries": len(first.captured_queries),
            "own_queries": len(first.captured_queries) - start_queries[0],
        },
        "queries": queries,
        "median_ms": {a: round(statistics.median(t) * 1000, 2) for a, t in times.items()},
        "max_ms": {a: round(max(t) * 1000, 2) for a, t in times.items()},
    }


def child_main(n: int, repeat: int) -> int:
    with tempfile.TemporaryDirectory(prefix="bench-ops-plugins-") as tmp:
        plugins = Path(tmp) / "plugins"
        plugins.mkdir()
        generate_plugins(plugins, n)
        os.environ["PLUGIN_DIRS"] = str(plugins)
        result = measure(n, repeat)
        from django.db import connections

        connections.close_all()
    print(json.dumps(result))
    return 0


# -- the parent: one child per size ---------------------------------------------------------
@contextmanager
def fresh_database(base: str | None, tmp: Path, n: int) -> Iterator[str]:
    """A fresh PostgreSQL database on ``base``'s server (dropped afterwards), or a new SQLite
    file when ``base`` is None."""
    if base is None:
        yield f"sqlite:///{tmp / f'ops-{n}.sqlite3'}"
        return
    with temp_database(base) as url:
        yield url


def run_size(n: int, repeat: int, database: str | None, tmp: Path) -> dict[str, Any]:
    with fresh_database(database, tmp, n) as url:
        env = dict(os.environ)
        env.update(
            DJANGO_SETTINGS_MODULE="stonks_overwatch.settings",
            DATABASE_URL=url,
            REDIS_URL="",  # no shared cache, no push: the embedded default's propagation
            CELERY_BROKER_URL="memory://",
            CELERY_TASK_ALWAYS_EAGER="false",  # the apply is run (and timed) on its own
            DEBUG="false",
            LOG_LEVEL="ERROR",
            PYTHONDONTWRITEBYTECODE="1",
        )
        script = str(Path(__file__).resolve())
        args = [sys.executable, script, "--child", str(n), "--repeat", str(repeat)]
        proc = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"the run with {n} plugins failed:\n{proc.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def verdicts(results: list[dict[str, Any]]) -> dict[str, bool]:
    largest = results[-1]
    counts = {a: {r["queries"][a] for r in results} for a in ACTIONS}
    return {
        "queries": all(len(c) == 1 and max(c) <= MAX_QUERIES for c in counts.values()),
        "time": largest["n"] < TARGET_SIZE
        or all(largest["median_ms"][a] <= MAX_MS for a in ACTIONS),
        "first_sync": largest["n"] < TARGET_SIZE
        or largest["first_sync"]["own_s"] <= MAX_FIRST_SYNC_S,
    }


def report(results: list[dict[str, Any]], repeat: int, where: str) -> None:
    sizes = [r["n"] for r in results]
    print(f"Operator actions benchmark: {where}, {repeat} rounds (median)")
    head = "".join(f"{f'{n} plugins':>18}" for n in sizes)
    print(f"  {'':<26}{head}{'x smallest':>12}")
    for action in ACTIONS:
        cells = "".join(
            f"{r['median_ms'][action]:>8.1f} ms {r['queries'][action]:>3} q  " for r in results
        )
        base = results[0]["median_ms"][action]
        ratio = results[-1]["median_ms"][action] / base if base else float("nan")
        print(f"  {action:<26}{cells}{ratio:>11.1f}x")
    rows = (
        ("own_s", "first sync, own work"),
        ("start_s", "first sync, plugins' start"),
        ("total_s", "first sync, total"),
    )
    for key, label in rows:
        cells = "".join(f"{r['first_sync'][key]:>14.3f} s  " for r in results)
        print(f"  {label:<26}{cells}")
    for key, label in (
        ("own_queries", "first sync, own queries"),
        ("queries", "first sync, queries"),
    ):
        cells = "".join(f"{r['first_sync'][key]:>14} q  " for r in results)
        print(f"  {label:<26}{cells}")
    ok = verdicts(results)
    largest = sizes[-1]
    verdict = {True: "PASS", False: "FAIL"}
    print(
        f"  target: each action's queries the same at {', '.join(map(str, sizes))} plugins "
        f"and <= {MAX_QUERIES}: {verdict[ok['queries']]}"
    )
    if largest >= TARGET_SIZE:
        slowest = max(ACTIONS, key=lambda a: results[-1]["median_ms"][a])
        print(
            f"  target: each action <= {MAX_MS:.0f} ms at {largest} plugins "
            f"(slowest: {slowest}, {results[-1]['median_ms'][slowest]:.1f} ms): "
            f"{verdict[ok['time']]}"
        )
        print(
            f"  target: the first sync's own work <= {MAX_FIRST_SYNC_S:.0f} s at {largest} "
            f"plugins ({results[-1]['first_sync']['own_s']:.2f} s): {verdict[ok['first_sync']]}"
        )
    else:
        print(f"  (the time targets are for {TARGET_SIZE} plugins; the largest size was {largest})")
    print(f"Verdict: {verdict[all(ok.values())]}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--sizes", default="10,100,1000", help="plugin counts (default 10,100,1000)"
    )
    parser.add_argument("--repeat", type=int, default=9, help="timed rounds (default 9)")
    parser.add_argument("--database-url", help="a PostgreSQL server (default: DATABASE_URL)")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    repeat = max(1, args.repeat)
    if args.child is not None:
        return child_main(args.child, repeat)
    sizes = sorted({int(s) for s in args.sizes.split(",") if s.strip()})
    if not sizes or sizes[0] < 10:
        parser.error("--sizes: plugin counts of at least 10 (the actions use op-0005)")
    base = args.database_url or os.environ.get("DATABASE_URL") or None
    if base is not None and not base.startswith(("postgres://", "postgresql://")):
        base = None  # SQLite: a temporary file per size, never the project's database
    where = (
        f"PostgreSQL ({urllib.parse.urlsplit(base).netloc}, a fresh database per size)"
        if base
        else "SQLite (a temporary file per size)"
    )
    results = []
    try:
        with tempfile.TemporaryDirectory(prefix="bench-ops-") as tmp:
            for n in sizes:
                results.append(run_size(n, repeat, base, Path(tmp)))
    except Unavailable as exc:
        print(f"bench_ops: skipped, {exc}")
        return 2 if args.check else 0
    report(results, repeat, where)
    if args.json:
        print(json.dumps({"repeat": repeat, "database": where, "results": results}, indent=2))
    return 1 if args.check and not all(verdicts(results).values()) else 0


if __name__ == "__main__":
    sys.exit(main())
