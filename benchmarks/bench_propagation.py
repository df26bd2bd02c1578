"""Propagation benchmark: how long a committed change takes to be live in every process of
a production-shaped deployment - a config change, and a plugin disabled or enabled.

It starts, and stops afterwards: a fresh PostgreSQL database (on the server DATABASE_URL names,
else postgres://postgres@127.0.0.1:5432), a Redis database of its own (cache, propagation stamp
and push channel, Celery broker and results), gunicorn with two workers and one Celery worker
process (solo pool). This process is the client: ``django.setup()`` on the same database and
Redis, then, as the CLI does, ``manager.set_config()`` N times (alternating the
``config-fixture`` plugin's currency; the apply task runs on the Celery worker and commits the
new version), and ``manager.disable()`` / ``manager.enable()`` N times each (committed here).
Each commit is pushed (Redis pub/sub, ``PLUGINS_PUSH``) to every process, which refreshes at
once; the poll (``PLUGINS_REFRESH_INTERVAL``) stays as the fallback.

For each change it measures, from the call (``set_config()``, ``disable()``, ``enable()``):

- ``call``        the call itself (validate, store, commit; enqueue the apply task);
- ``committed``   the change's commit, as the push announced it (this process subscribes to
                  the channel like every serving process; with ``--no-push``, it reads the
                  generation counter every 5 ms): for a config change, the apply task's
                  commit on the worker;

then, *sampled* (what the observers saw):

- ``web <pid>``   the first home page served by that gunicorn worker showing the change (each
                  response says which worker made it);
- ``celery``      the first ``probe_config`` task run on the worker that shows it;
- ``every process``  the slowest of the above per change;

and *served* (with the push; the verdict's figures):

- ``web <pid>, served``, ``celery, served``: since when that process serves the change, by
  its own record (``background.served()``: the ``time.monotonic()`` at which its runtime had
  read the rows committed up to the change's generation - here, or in a request meanwhile -
  and finished what the change started there: the new config handed to the loaded plugin on
  its lane, the plugins it brought loaded). Each response of a web worker carries that record
  in ``X-Plugins-Served`` (only with the e2e harness's pid-header switch, which the benchmark
  turns on); ``probe_config`` returns the worker's. CLOCK_MONOTONIC is system-wide on Linux,
  the clock of this process's ``time.perf_counter()`` too (checked at start);
- ``every process, served``: the slowest of these per change. **The target applies to it.**
  A change counts only once every observer also saw it (the page or probe shows the
  expected value), so a process that records a change it does not show cannot pass.

and the same per process from the commit (``after commit``): the push's own part, without
the save and the apply.

Observers: two threads request the home page and one runs ``probe_config`` tasks, each
pausing ``--poll-gap`` (20 ms) between requests: a resolution of a few tens of ms per process,
for about a fifth of a CPU (a page costs ~6 ms of CPU), so that on a small machine the
observers do not slow down what they observe. So each sampled figure includes up to one gap,
the page's (or task's) own time and the wait for its answer; the served figures do not, and
neither do they depend on an observer reaching both web workers soon after the change. A
random pause (0 to 300 ms) precedes each change, so changes land at random phases of each
process's poll.

Target (issue 17): every process p99 <= 100 ms, for config changes and for enable/disable
(``every process, served``; with ``--no-push`` there is no record, and the verdict is taken
on the sampled ``every process``).

Run:  .venv/bin/python benchmarks/bench_propagation.py [--n 50] [--kinds config,toggle]
      [--check] [--json] [--no-push | --compare] [--refresh-interval S]
      (``--no-push`` sets PLUGINS_PUSH=0 everywhere: the poll alone, the baseline;
      ``--compare`` runs the baseline, then the push, and prints their ratios; the refresh
      interval defaults to the product's, 0.25 s)
Exit status is 0 unless ``--check`` is given and the target is missed (1), or a service it
needs (PostgreSQL, Redis) is not reachable (2 with ``--check``; a notice and 0 without).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from contextlib import ExitStack
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from _services import Unavailable, temp_database, temp_redis_db  # noqa: E402

from tests.e2e.conftest import Stack  # noqa: E402

FIXTURE = ROOT / "tests" / "fixtures" / "plugins" / "config-fixture"
PLUGIN = "config-fixture"
TARGET_S = 0.1
CURRENCIES = ("USD", "GBP", "EUR")
WEB_POLLERS = 2
CHANGE_TIMEOUT_S = 5.0
DEFAULT_PG = "postgres://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS = "redis://127.0.0.1:6379/0"
# -- observers --------------------------------------------------------------------------------
ABSENT = "absent"  # the plugin is not served (disabled): no row, no failure note


class Change:
    """One change being watched: who shows ``expected`` yet, and when (seconds from t0)."""

    def __init__(self, kind: str, expected: str, t0: float) -> None:
        self.kind = kind
        self.expected = expected
        self.t0 = t0
        self.seen: dict[str, float] = {}
        self.lock = threading.Lock()

    def saw(self, key: str, value: str, at: float) -> None:
        if value == self.expected:
            with self.lock:
                self.seen.setdefault(key, at - self.t0)


class Commits:
    """When each change was committed, wherever it was: the pushed generations as this
    process hears them (the product's own subscriber), or - with the push off, for the
    baseline - the database counter read every 5 ms."""

    def __init__(self, push: bool) -> None:
        from stonks_plugins import propagation
        from stonks_plugins.runtime.push import Receiver, Subscriber

        self.heard: list[tuple[int, float]] = []
        self.subscriber: Subscriber | None = None
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None
        if push:
            self.subscriber = Subscriber(
                os.environ["REDIS_URL"],
                propagation.channel(),
                Receiver(self._heard),
                name=f"bench-client-{os.getpid()}",
            )
        else:
            self._poller = threading.Thread(target=self._poll, daemon=True)

    def _heard(self, generation: int | None) -> None:
        if generation is not None:
            self.heard.append((generation, time.perf_counter()))

    def _poll(self) -> None:
        from django.db import connection

        from stonks_plugins import propagation

        last = 0
        try:
            while not self._stop.wait(0.005):
                value = propagation.generation() or 0
                if value > last:
                    last = value
                    self._heard(value)
        finally:
            connection.close()

    def start(self) -> None:
        if self.subscriber is not None:
            self.subscriber.start()
            if not self.subscriber.connected.wait(10):
                raise RuntimeError("the benchmark could not subscribe to the push channel")
        if self._poller is not None:
            self._poller.start()

    def stop(self) -> None:
        self._stop.set()
        if self.subscriber is not None:
            self.subscriber.stop()
        if self._poller is not None:
            self._poller.join(5)

    def after(self, generation: int, t0: float) -> float | None:
        """Seconds from t0 to the first commit of a generation above ``generation``."""
        for gen, at in list(self.heard):
            if gen > generation:
                return at - t0
        return None

    def generation_after(self, generation: int) -> int | None:
        """The first generation heard above ``generation``: the change's own commit."""
        for gen, _ in list(self.heard):
            if gen > generation:
                return gen
        return None


class Observers:
    """Background threads that keep asking every process what it serves."""

    def __init__(self, base_url: str, cookie: str, gap: float) -> None:
        self.base_url = base_url
        self.cookie = cookie
        self.gap = gap
        self.change: Change | None = None
        self.stopped = threading.Event()
        self.errors: list[str] = []
        self.pids: set[int] = set()
        # Per process: generation -> the time.monotonic() from which it serves it, as the
        # process reports it (a response header, the probe's result).
        self.served: dict[str, dict[int, float]] = {}
        self._served_lock = threading.Lock()
        self.threads = [
            threading.Thread(target=self._web, daemon=True) for _ in range(WEB_POLLERS)
        ] + [threading.Thread(target=self._celery, daemon=True)]

    def start(self) -> None:
        for t in self.threads:
            t.start()

    def stop(self) -> None:
        self.stopped.set()
        for t in self.threads:
            t.join(10)

    def note_served(self, key: str, pairs: Any) -> None:
        with self._served_lock:
            known = self.served.setdefault(key, {})
            for generation, at in pairs:
                known.setdefault(int(generation), float(at))

    def applied(self, key: str, generation: int) -> float | None:
        """When the process began serving ``generation`` (or a later one: every change
        committed up to that one), by its own record."""
        with self._served_lock:
            times = [at for g, at in self.served.get(key, {}).items() if g >= generation]
        return min(times) if times else None

    def _web(self) -> None:
        import re

        row = re.compile(r'<tr data-broker="config-fixture"><td>[^<]*</td><td>CFG-([A-Z]+)</td>')
        req = urllib.request.Request(self.base_url + "/", headers={"Cookie": self.cookie})
        while not self.stopped.is_set():
            try:
                with urllib.request.urlopen(req, timeout=10) as resp:
                    pid = int(resp.headers["X-Worker-Pid"])
                    served = resp.headers.get("X-Plugins-Served") or ""
                    page = resp.read().decode()
            except (OSError, urllib.error.HTTPError) as exc:
                self.errors.append(f"web: {exc}")
                time.sleep(0.05)
                continue
            at = time.perf_counter()
            self.pids.add(pid)
            self.note_served(f"web {pid}", (pair.split(":") for pair in served.split(",") if pair))
            found = row.search(page)
            if found:
                value = found.group(1)
            elif f'data-broker="{PLUGIN}"' not in page:
                value = ABSENT
            else:
                value = "failing"  # named on the page, without its row (a failure note)
            change = self.change
            if change is not None:
                change.saw(f"web {pid}", value, at)
            self.stopped.wait(self.gap)

    def _celery(self) -> None:
        from stonks_plugins.tasks import probe_config

        while not self.stopped.is_set():
            try:
                result = probe_config.delay(PLUGIN)
                try:
                    seen = result.get(timeout=10)
                    self.note_served("celery", seen.get("served") or [])
                    config = seen["config"]
                    value = ABSENT if config is None else str(config.get("currency"))
                except Exception as exc:  # the worker's BrokerRegistryError: not served
                    if PLUGIN not in str(exc):
                        raise
                    value = ABSENT
                finally:
                    result.forget()
            except Exception as exc:  # keep probing: a miss shows as a timeout
                self.errors.append(f"celery: {type(exc).__name__}: {exc}")
                time.sleep(0.05)
                continue
            at = time.perf_counter()
            change = self.change
            if change is not None:
                change.saw("celery", value, at)
            self.stopped.wait(self.gap)


# -- figures ----------------------------------------------------------------------------------
def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile (so p99 of 100 samples is the 99th smallest)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def summarise(samples: dict[str, list[float]]) -> dict[str, dict[str, float]]:
    return {
        key: {
            "n": len(vals),
            "p50": pct(vals, 50),
            "p90": pct(vals, 90),
            "p99": pct(vals, 99),
            "max": max(vals),
        }
        for key, vals in samples.items()
        if vals
    }


def ms(value: float) -> str:
    return "miss" if math.isinf(value) else f"{value * 1000:.0f}"


SAMPLED_KEYS = ("every process", "every process, after commit")
SERVED = "every process, served"
SERVED_AFTER_COMMIT = "every process, served after commit"
VERDICT_KEYS = (SERVED, SERVED_AFTER_COMMIT)


def print_table(res: dict[str, Any]) -> None:
    print(
        f"propagation benchmark: {res['n']} changes of each kind; gunicorn -w 2 + 1 Celery worker "
        f"(solo pool); PLUGINS_PUSH={int(res['push'])}, "
        f"PLUGINS_REFRESH_INTERVAL={res['refresh_interval']} s"
    )
    target = f"p99<={TARGET_S * 1000:.0f}"
    judged = set(res["verdicts"])
    for kind, figures in res["kinds"].items():
        print(f"\n{kind}: latency from the call, ms (after commit: from the pushed commit)")
        head = f"{'process':<36}{'samples':>8}{'p50':>8}{'p90':>8}{'p99':>8}{'max':>8}"
        print(head + f"{target:>11}")
        print("-" * (len(head) + 11))
        for key, fig in figures.items():
            if key == "web " + str(res["web_pids"][0]) and not key.endswith("served"):
                print("sampled: the first page / probe seen showing it (observers' gap included)")
            if key == f"web {res['web_pids'][0]}, served":
                print("served: since when each process serves it, by its own record")
            line = f"{key:<36}{fig['n']:>8}" + "".join(
                f"{ms(fig[q]):>8}" for q in ("p50", "p90", "p99", "max")
            )
            if key in judged:
                line += f"{_verdict(fig['p99'] <= TARGET_S):>11}"
            print(line)
    for key, ok in res["verdicts"].items():
        print(f"overall {key}: target (p99 <= {TARGET_S * 1000:.0f} ms, every kind) {_verdict(ok)}")
    if res["errors"]:
        print(f"observer errors: {res['error_count']}, first: {res['errors'][0]}")


def _since(value: float, committed: float) -> float:
    """Seconds from the commit (a process may refresh a hair before this one hears it)."""
    if math.isinf(value) or math.isinf(committed):
        return math.inf
    return max(0.0, value - committed)


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


# -- the run ----------------------------------------------------------------------------------
def run(
    n: int,
    refresh_interval: float | None,
    seed: int,
    poll_gap: float = 0.02,
    kinds: tuple[str, ...] = ("config", "toggle"),
    push: bool = True,
) -> dict[str, Any]:
    # The processes' records are time.monotonic(); this process measures with perf_counter.
    if push and abs(time.monotonic() - time.perf_counter()) > 0.001:
        raise RuntimeError("time.monotonic() and time.perf_counter() differ on this system")
    base_pg = os.environ.get("DATABASE_URL", "")
    if not base_pg.startswith(("postgres://", "postgresql://")):
        base_pg = DEFAULT_PG
    base_redis = os.environ.get("REDIS_URL") or os.environ.get(
        "STONKS_TEST_REDIS_URL", DEFAULT_REDIS
    )
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-prop-")))
        db_url = stack.enter_context(temp_database(base_pg))
        redis_url = stack.enter_context(temp_redis_db(base_redis))
        shutil.copytree(FIXTURE, tmp / "plugins" / PLUGIN)
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "stonks_overwatch.settings",
            "DATABASE_URL": db_url,
            "PLUGIN_DIRS": str(tmp / "plugins"),
            "REDIS_URL": redis_url,
            "CACHE_KEY_PREFIX": f"bench-{uuid.uuid4().hex[:10]}",
            "CELERY_BROKER_URL": redis_url,
            "CELERY_RESULT_BACKEND": redis_url,
            "PLUGINS_PUSH": "1" if push else "0",
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        for name in ("CELERY_TASK_ALWAYS_EAGER", "PLUGINS_REFRESH_INTERVAL"):
            env.pop(name, None)
            os.environ.pop(name, None)
        if refresh_interval is not None:
            env["PLUGINS_REFRESH_INTERVAL"] = str(refresh_interval)
        os.environ.update(env)  # this process is the client: same database, same Redis
        # The operator's call shares this process with the observers' threads; with the
        # switch interval the serving processes run with (runtime/background.py), their
        # page parsing does not hold the call up 5 ms at each query (a CLI has no such
        # threads, a web worker has that interval).
        sys.setswitchinterval(0.001)

        import django

        django.setup()
        from django.conf import settings
        from django.contrib.auth.models import User
        from django.core.management import call_command
        from django.db import connections
        from django.test import Client

        from stonks_overwatch.celery import app
        from stonks_plugins import propagation
        from stonks_plugins.manager import manager

        stack.callback(connections.close_all)
        stack.callback(app.pool.force_close_all)
        call_command("migrate", verbosity=0, interactive=False)
        manager.sync()
        user = User.objects.create_superuser("bench", "bench@example.com", "bench-pass")
        client = Client()
        client.force_login(user)
        cookie = (
            f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"
        )

        procs = Stack(env, tmp)  # the e2e harness: gunicorn and a Celery worker
        stack.callback(procs.stop)
        base_url = procs.start_gunicorn(workers=2, pid_header=True)
        procs.start_celery_worker()
        commits = Commits(push)
        commits.start()
        stack.callback(commits.stop)
        observers = Observers(base_url, cookie, poll_gap)
        observers.start()
        stack.callback(observers.stop)

        def measure(
            kind: str, expected: str, act: Any
        ) -> tuple[Change, float, float, dict[str, float]]:
            before = propagation.generation() or 0
            t0 = time.perf_counter()
            watch = Change(kind, expected, t0)
            observers.change = watch
            act()
            called = time.perf_counter() - t0
            deadline = t0 + CHANGE_TIMEOUT_S
            committed = None
            served: dict[str, float] = {}
            while time.perf_counter() < deadline:
                if committed is None:
                    committed = commits.after(before, t0)
                keys = [*(f"web {p}" for p in sorted(observers.pids)), "celery"]
                everyone = len(observers.pids) >= 2 and len(watch.seen) == len(keys)
                gen = commits.generation_after(before)
                if push and gen is not None:
                    for key in keys:
                        at = observers.applied(key, gen)
                        if at is not None:
                            served[key] = at - t0
                if everyone and committed is not None and (not push or len(served) == len(keys)):
                    break
                time.sleep(0.005)
            return watch, called, math.inf if committed is None else committed, served

        def set_currency(currency: str, first: bool = False) -> Any:
            data: dict[str, Any] = {"settings": {"currency": currency}}
            if first:
                data["credentials"] = {"username": "bench", "password": "bench-secret-1"}
            return lambda: manager.set_config(PLUGIN, data, actor="bench", partial=not first)

        # Warm-up, not counted: a first full config, until every process serves it.
        watch, _, _, _ = measure("config", "EUR", set_currency("EUR", first=True))
        if len(observers.pids) < 2 or len(watch.seen) < 3:
            raise RuntimeError(
                f"warm-up did not reach every process: saw {sorted(watch.seen)} "
                f"(web pids {sorted(observers.pids)}); errors: {observers.errors[:3]}\n"
                + procs.celery_log()[-4000:]
            )
        pids = sorted(observers.pids)
        web_keys = [f"web {p}" for p in pids]
        rng = random.Random(seed)
        plan: list[tuple[str, str, Any]] = []
        currency = "EUR"
        if "config" in kinds:
            for i in range(n):
                currency = CURRENCIES[i % len(CURRENCIES)]
                plan.append(("config", currency, set_currency(currency)))
        if "toggle" in kinds:
            for _ in range(n):
                plan.append(("disable", ABSENT, lambda: manager.disable(PLUGIN, actor="bench")))
                plan.append(("enable", currency, lambda: manager.enable(PLUGIN, actor="bench")))
        samples: dict[str, dict[str, list[float]]] = {}
        for kind, expected, act in plan:
            time.sleep(rng.uniform(0, 0.3))
            watch, called, committed, served = measure(kind, expected, act)
            got = samples.setdefault(
                kind,
                {
                    "call": [],
                    "committed": [],
                    **{k: [] for k in web_keys},
                    "web (both)": [],
                    "celery": [],
                    "every process": [],
                    "web, after commit": [],
                    "celery, after commit": [],
                    "every process, after commit": [],
                    **(
                        {
                            **{f"{k}, served": [] for k in web_keys},
                            "celery, served": [],
                            SERVED: [],
                            SERVED_AFTER_COMMIT: [],
                        }
                        if push
                        else {}
                    ),
                },
            )
            got["call"].append(called)
            got["committed"].append(committed)
            slowest = 0.0
            for key in [*web_keys, "celery"]:
                value = watch.seen.get(key, math.inf)
                got[key].append(value)
                after = _since(value, committed)
                if key == "celery":
                    got["celery, after commit"].append(after)
                else:
                    got["web (both)"].append(value)
                    got["web, after commit"].append(after)
                slowest = max(slowest, value)
            got["every process"].append(slowest)
            got["every process, after commit"].append(_since(slowest, committed))
            if push:
                latest = 0.0
                for key in [*web_keys, "celery"]:
                    value = served.get(key, math.inf)
                    got[f"{key}, served"].append(value)
                    latest = max(latest, value)
                got[SERVED].append(latest)
                got[SERVED_AFTER_COMMIT].append(_since(latest, committed))
        observers.change = None

    kinds_figures = {kind: summarise(s) for kind, s in samples.items()}
    verdict_keys = VERDICT_KEYS if push else SAMPLED_KEYS
    verdicts = {
        key: all(f[key]["p99"] <= TARGET_S for f in kinds_figures.values()) for key in verdict_keys
    }
    return {
        "n": n,
        "push": push,
        "refresh_interval": refresh_interval if refresh_interval is not None else 0.25,
        "web_pids": pids,
        "kinds": kinds_figures,
        "target_s": TARGET_S,
        "verdicts": verdicts,
        "passed": verdicts[verdict_keys[0]],
        "errors": observers.errors[:20],
        "error_count": len(observers.errors),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--n", type=int, default=50, help="changes measured of each kind")
    parser.add_argument(
        "--kinds",
        default="config,toggle",
        help="config (config changes), toggle (disable then enable); comma-separated",
    )
    parser.add_argument(
        "--refresh-interval",
        type=float,
        help="PLUGINS_REFRESH_INTERVAL for every process (default: the product's, 0.25 s)",
    )
    parser.add_argument(
        "--no-push", action="store_true", help="PLUGINS_PUSH=0: the poll alone (the baseline)"
    )
    parser.add_argument("--seed", type=int, default=1, help="seed of the random pauses")
    parser.add_argument(
        "--poll-gap",
        type=float,
        default=0.02,
        help="pause of each observer between two requests, s (the observers' own load)",
    )
    parser.add_argument(
        "--compare",
        action="store_true",
        help="run the poll alone (--no-push) then the push, each in a process of its own, "
        "and print the ratios of their figures",
    )
    parser.add_argument("--check", action="store_true", help="exit 1 if the target is missed")
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    args = parser.parse_args(argv)
    kinds = tuple(k.strip() for k in args.kinds.split(",") if k.strip())
    unknown = set(kinds) - {"config", "toggle"}
    if unknown or not kinds:
        parser.error(f"--kinds: unknown {sorted(unknown)}; use config and/or toggle")
    if args.compare:
        return compare(argv or sys.argv[1:], args.check)
    try:
        res = run(
            args.n, args.refresh_interval, args.seed, args.poll_gap, kinds, push=not args.no_push
        )
    except Unavailable as exc:
        print(f"propagation benchmark skipped: {exc}", file=sys.stderr)
        return 2 if args.check else 0
    print_table(res)
    if args.json:  # a miss (never seen within the timeout) is null
        kinds_json = {
            kind: {
                k: {q: (None if math.isinf(v) else v) for q, v in fig.items()}
                for k, fig in figures.items()
            }
            for kind, figures in res["kinds"].items()
        }
        print(json.dumps({**res, "kinds": kinds_json}, indent=2, default=str))
    return 1 if args.check and not res["passed"] else 0


def compare(argv: list[str], check: bool) -> int:
    """The baseline (the poll alone) and the push, one after the other on the same machine,
    each in a fresh process (Django is set up once per process), and their ratios."""
    rest = [a for a in argv if a not in ("--compare", "--check", "--json", "--no-push")]
    results: dict[str, dict[str, Any]] = {}
    for label, extra in (("poll alone", ["--no-push"]), ("push", [])):
        proc = subprocess.run(
            [sys.executable, __file__, *rest, *extra, "--json"],
            capture_output=True,
            text=True,
        )
        if "propagation benchmark skipped" in proc.stderr:
            print(proc.stderr.strip(), file=sys.stderr)
            return 2 if check else 0
        if proc.returncode != 0:
            print(proc.stdout + proc.stderr, file=sys.stderr)
            return 1
        print(proc.stdout[: proc.stdout.index("\n{")] + "\n")
        results[label] = json.loads(proc.stdout[proc.stdout.index("\n{") + 1 :])
    print("push against the poll alone, same machine, one run after the other (ms)")
    head = f"{'change':<10}{'figure':<16}{'poll p50':>10}{'push p50':>10}{'ratio':>8}"
    print(head + f"{'poll p99':>10}{'push p99':>10}{'ratio':>8}")
    for kind in results["push"]["kinds"]:
        for key in ("web (both)", "celery", "every process"):
            old = results["poll alone"]["kinds"][kind][key]
            new = results["push"]["kinds"][kind][key]
            line = f"{kind:<10}{key:<16}"
            for q in ("p50", "p99"):
                a, b = old[q], new[q]
                ratio = f"{a / b:.1f}x" if a is not None and b else "-"
                line += f"{_ms_or_miss(a):>10}{_ms_or_miss(b):>10}{ratio:>8}"
            print(line)
    passed = bool(results["push"]["passed"])
    return 1 if check and not passed else 0


def _ms_or_miss(value: float | None) -> str:
    return "miss" if value is None else f"{value * 1000:.0f}"


if __name__ == "__main__":
    sys.exit(main())
