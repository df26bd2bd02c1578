"""Call-path benchmark: what the whole path the application takes adds to a plugin's method.

The application reaches a broker plugin through ``BrokerFactory().create_service(name,
"portfolio")``. Outside a request - a Celery task, the CLI, where a broker's data is
imported and refreshed - the call runs straight through in the caller's thread
(``stonks_plugins/runtime/inline.py``): the front, the middleware chain (resolved once per
change, each ``intercept`` through its boundary's fast path), the plugin's boundary, the
plugin's method. In a request, each call is instead handed to the broker's lane, a worker
thread the request waits on at most until its page budget (issue 12): that hop is printed
as ``page`` for information; its cost is paid once per broker call of a page, and the page
benchmark (``bench_page.py``) judges the page.

This benchmark times the paths for an in-process plugin whose ``get_portfolio()`` returns a
prebuilt list (so the call is all overhead) against the same method called directly, on a
site as deployed (Django on a throwaway SQLite database, the plugins synced, enabled and
loaded):

- ``direct``    the plugin's own service instance, ``get_portfolio()``;
- ``boundary``  the same through the sandbox's fast path only (``LoadedPlugin.create_service``);
- ``app``       ``BrokerFactory().create_service(...).get_portfolio()``, no middleware served;
- ``app+mw``    the same with one trivial middleware served (``intercept`` returns
                ``proceed()``);
- ``page``      ``app`` inside a request's budget (informational: the bounded hop).

Each case is timed in ``--repeat`` rounds of ``--n`` calls (the cases interleaved), the
figure being the median over the rounds of the mean time per call; the overhead is that
minus ``direct`` of the same round. Targets (issue 17): <= 1 µs per call without middleware,
<= 2 µs with one trivial middleware. Checked as facts: every ``app`` call reached the plugin
and every ``app+mw`` call passed the middleware (both count their calls).

Run:  .venv/bin/python benchmarks/bench_callpath.py [--n 2000] [--repeat 5] [--check] [--json]
Exit status is 0 unless ``--check`` is given and a target is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

TARGET_US = {"app": 1.0, "app+mw": 2.0}
BROKER = "bench-callpath"
MIDDLEWARE = "bench-passthrough"

FILES: dict[str, dict[str, Any]] = {
    BROKER: {
        "manifest": {
            "plugin": {"name": BROKER, "version": "1.0.0", "type": "broker"},
            "api": {"min_version": "1.0.0", "max_version": "2.0.0"},
            "dependencies": {"python": ">=3.11", "stonks-overwatch-core": ">=2.0.0,<3.0.0"},
            "capabilities": {"services": ["portfolio"]},
            "services": {"portfolio": "benchcallpath.services.PortfolioService"},
        },
        "package": "benchcallpath",
        "module": "services",
        "source": '''
            """Three positions, built once: the benchmark measures the call, not the plugin."""

            from stonks_plugins.sdk import PortfolioEntry, PortfolioServiceInterface, TotalPortfolio

            ENTRIES = [
                PortfolioEntry(name=f"Bench Holding {i}", symbol=f"BEN{i}", shares=1.0,
                               price=10.0, value=10.0, broker="bench-callpath")
                for i in range(3)
            ]
            CALLS = [0]


            class PortfolioService(PortfolioServiceInterface):
                def get_portfolio(self):
                    CALLS[0] += 1
                    return ENTRIES

                def get_portfolio_total(self):
                    return TotalPortfolio(total_value=30.0)
        ''',
    },
    MIDDLEWARE: {
        "manifest": {
            "plugin": {"name": MIDDLEWARE, "version": "1.0.0", "type": "middleware"},
            "api": {"min_version": "1.0.0", "max_version": "2.0.0"},
            "dependencies": {"python": ">=3.11", "stonks-overwatch-core": ">=2.0.0,<3.0.0"},
            "entry_points": {"main": "benchpassthrough.plugin:Passthrough"},
        },
        "package": "benchpassthrough",
        "module": "plugin",
        "source": '''
            """The most trivial middleware: it passes every call on, and counts them."""

            from stonks_plugins.sdk import BaseMiddlewarePlugin

            CALLS = [0]


            class Passthrough(BaseMiddlewarePlugin):
                def intercept(self, call, proceed):
                    CALLS[0] += 1
                    return proceed()
        ''',
    },
}


def write_plugins(base: Path) -> None:
    for name, spec in FILES.items():
        folder = base / name
        package = folder / spec["package"]
        package.mkdir(parents=True)
        (folder / "plugin_manifest.json").write_text(json.dumps(spec["manifest"], indent=2))
        (package / "__init__.py").write_text('"""Benchmark plugin."""\n')
        (package / f"{spec['module']}.py").write_text(textwrap.dedent(spec["source"]).lstrip())


def setup_site(base: Path) -> None:
    """Django on a throwaway SQLite database, no Redis, plugins from ``base``: set before
    settings are read, so the application's own wiring (``ready()``) is used."""
    os.environ.update(
        DATABASE_URL=f"sqlite:///{base / 'bench.sqlite3'}",
        REDIS_URL="",
        CELERY_BROKER_URL="memory://",
        PLUGIN_DIRS=str(base),
        PLUGINS_SAFE_MODE="0",
        DEBUG="false",
        LOG_LEVEL="ERROR",
    )
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "stonks_overwatch.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


def _in_a_request(fn: Callable[[], Any]) -> Callable[[], Any]:
    """``fn`` as a view calls it: inside the request's budget (one scope per call, which
    costs about what ``PageBudgetMiddleware`` adds per page, not per call)."""
    from stonks_plugins.runtime import budget

    scope = budget.Scope(deadline=time.monotonic() + 3600.0, budget=2.0)

    def call() -> Any:
        with budget.inherit(scope):
            value = fn()
        scope.fanned.clear()  # each call stands for a page's first call of the method
        return value

    return call


def per_call_ns(fn: Callable[[], Any], n: int) -> float:
    """Mean wall time of one call over ``n`` calls (the loop included, as for every case)."""
    rng = range(n)
    start = time.perf_counter_ns()
    for _ in rng:
        fn()
    return (time.perf_counter_ns() - start) / n


def _counter(name: str) -> list[int]:
    # Plugins are imported under the loader's own package prefix.
    suffix = f"{FILES[name]['package']}.{FILES[name]['module']}"
    module = next(m for key, m in list(sys.modules.items()) if key.endswith(suffix))
    calls: list[int] = module.CALLS
    return calls


def run(n: int, repeat: int, warmup: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-callpath-") as tmp:
        base = Path(tmp)
        write_plugins(base)
        setup_site(base)

        from stonks_overwatch.core.factory import BrokerFactory
        from stonks_overwatch.core.service_types import ServiceType
        from stonks_plugins.manager import manager
        from stonks_plugins.models import Plugin
        from stonks_plugins.registry import plugin_registry
        from stonks_plugins.runtime import loads
        from stonks_plugins.runtime.serving import serving

        manager.sync()
        for name in FILES:
            row = Plugin.objects.get(name=name)
            if row.state != "active":
                raise SystemExit(f"{name} not active after sync: {row.state} {row.error_message}")

        def served(with_middleware: bool) -> Any:
            if with_middleware:
                manager.enable(MIDDLEWARE)
            else:
                manager.disable(MIDDLEWARE)
            serving.refresh(force=True)
            loads.wait_all([BROKER] + ([MIDDLEWARE] if with_middleware else []), 30.0)
            return BrokerFactory().create_service(BROKER, ServiceType.PORTFOLIO)

        loaded = plugin_registry.load(BROKER)
        direct = loaded.services[ServiceType.PORTFOLIO]()
        boundary = loaded.create_service(ServiceType.PORTFOLIO)
        samples: dict[str, list[float]] = {
            "direct": [],
            "boundary": [],
            "app": [],
            "app+mw": [],
            "page": [],
        }
        reached = {"app": [0, 0], "app+mw": [0, 0]}  # [calls made, calls counted]
        for _ in range(repeat):
            for case in samples:
                if case in ("app", "app+mw", "page"):
                    service = served(case == "app+mw")
                    fn = service.get_portfolio
                    if case == "page":
                        fn = _in_a_request(fn)
                    if fn() != direct.get_portfolio():
                        raise SystemExit(f"{case}: the application got another answer")
                else:
                    fn = (direct if case == "direct" else boundary).get_portfolio
                for _ in range(warmup):
                    fn()
                counter = _counter(MIDDLEWARE if case == "app+mw" else BROKER)
                before = counter[0]
                samples[case].append(per_call_ns(fn, n))
                if case in reached:
                    reached[case][0] += n
                    reached[case][1] += counter[0] - before
        plugin_registry.clear()

    figures: dict[str, dict[str, Any]] = {}
    for case, rounds in samples.items():
        overheads = [t - d for t, d in zip(rounds, samples["direct"], strict=True)]
        figures[case] = {
            "per_call_us": statistics.median(rounds) / 1000,
            "overhead_us": statistics.median(overheads) / 1000,
            "rounds_us": [round(t / 1000, 3) for t in rounds],
        }
    verdicts = {
        case: figures[case]["overhead_us"] <= target and reached[case][0] == reached[case][1]
        for case, target in TARGET_US.items()
    }
    return {
        "n": n,
        "repeat": repeat,
        "figures": figures,
        "reached": reached,
        "targets_us": TARGET_US,
        "verdicts": verdicts,
        "passed": all(verdicts.values()),
    }


def report(res: dict[str, Any]) -> None:
    figs = res["figures"]
    print(
        f"call-path benchmark: {res['repeat']} rounds of {res['n']} calls per case "
        "(interleaved); medians over the rounds of the mean time per call"
    )
    print()
    header = f"{'case':<10}{'per call µs':>13}{'overhead µs':>13}   each round (µs per call)"
    print(header)
    print("-" * len(header))
    for case, f in figs.items():
        over = f"{f['overhead_us']:>13.3f}" if case != "direct" else f"{'':>13}"
        rounds = " ".join(f"{r:.2f}" for r in f["rounds_us"])
        print(f"{case:<10}{f['per_call_us']:>13.3f}{over}   {rounds}")
    print()
    for case, (made, counted) in res["reached"].items():
        what = "the middleware" if case == "app+mw" else "the plugin"
        ok = "PASS" if made == counted else "FAIL"
        print(f"{case}: calls that reached {what}: {counted} of {made}  {ok}")
    for case, target in res["targets_us"].items():
        verdict = "PASS" if res["verdicts"][case] else "FAIL"
        print(
            f"target: {case} overhead <= {target:g} µs per call -> "
            f"{figs[case]['overhead_us']:.2f} µs: {verdict}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--n", type=int, default=2000, help="calls per case and round")
    parser.add_argument("--repeat", type=int, default=5, help="rounds; medians are reported")
    parser.add_argument("--warmup", type=int, default=200, help="calls before each round")
    parser.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    args = parser.parse_args(argv)
    res = run(max(1, args.n), max(1, args.repeat), max(0, args.warmup))
    report(res)
    if args.json:
        print(json.dumps(res, indent=2))
    return 1 if args.check and not res["passed"] else 0


if __name__ == "__main__":
    sys.exit(main())
