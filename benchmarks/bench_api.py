"""API list benchmark: listing 10, 100 and 1,000 plugins through ``/api/v1/plugins/``
against a bare DRF list view over the same rows, in the same run, with the queries each
request makes.

Cases, each a full request through Django's test client (middleware, URL resolution, token
authentication, rendering to JSON), timed in interleaved rounds; the median of each counts:

- ``api``          ``GET /api/v1/plugins/?page_size=N`` as a dashboard user holding only the
                   view permission: the product (permission check, filter, search and ordering
                   backends, pagination, the contract's summary plus a URL per plugin);
- ``bare``         a ``ListAPIView`` with a plain ``ModelSerializer`` over the same columns
                   (the API's own list, ``api.serializers.SUMMARY_FIELDS``: name, version,
                   type, source, state, enabled, error code and message, display name,
                   location, missing, requires, trust, label), ``Plugin.objects.all()``,
                   no pagination, the default ``IsAuthenticated`` permission;
- ``bare-only``    the same with ``.only()`` those columns (it skips loading the manifests): the
                   stricter baseline.

Each size is listed in full (``page_size`` = the number of plugins). The queries of one
request of each case are counted (Django's ``CaptureQueriesContext``): the product's are
the token and its user, the permission check (one query over the user's and their groups'
permissions) and the page (read one row past its end, so a page holding the last row needs
no ``COUNT``); the bare view's, the token and the rows.

Targets (from the issues): ``api`` within 1.3x the faster baseline at every size, and the
same number of queries at every size (issue 17: at 10 plugins the request's fixed costs
weigh most; the permission check is the one query the bare view does not make).

The rows live in a database created for the run: a fresh PostgreSQL database when
``--database-url`` or ``DATABASE_URL`` names a PostgreSQL server (dropped afterwards), else a
temporary SQLite file (``db.sqlite3`` is never touched). Rows carry manifests of realistic
size, as ``sync`` stores them. The process runs no background plugin runtime
(``PLUGINS_WARMUP`` off): its start-up work would run beside the first rounds.

Run:  .venv/bin/python benchmarks/bench_api.py [--sizes 10,100,1000] [--n N] [--repeat 25]
      [--database-url URL] [--check] [--json]
(``--n`` measures one size only.) Exit status is 0 unless ``--check`` is given and a target
is missed (1), or the PostgreSQL server cannot be reached (2 with ``--check``; a notice and
0 without).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import types
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from _services import Unavailable, temp_database  # noqa: E402

TARGET = 1.3


@contextmanager
def fresh_database(base: str | None, tmp: Path) -> Iterator[str]:
    """A fresh PostgreSQL database on ``base``'s server (dropped afterwards), or a new SQLite
    file in ``tmp`` when ``base`` is None."""
    if base is None:
        yield f"sqlite:///{tmp / 'bench.sqlite3'}"
        return
    with temp_database(base) as url:
        yield url
        from django.db import connections

        connections.close_all()


def setup_django(database_url: str) -> None:
    # Before settings are read: a throwaway database and no shared cache or broker.
    os.environ["DATABASE_URL"] = database_url
    os.environ["REDIS_URL"] = ""
    os.environ["CELERY_BROKER_URL"] = "memory://"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "stonks_overwatch.settings")
    os.environ["DEBUG"] = "false"
    import django

    django.setup()
    from django.conf import settings

    expected = urllib.parse.urlsplit(database_url).path.lstrip("/")
    name = str(settings.DATABASES["default"]["NAME"])
    assert name.endswith(expected) and "bench" in name, "refusing: wrong DB"
    settings.PLUGINS_WARMUP = False
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


def make_rows(n: int) -> None:
    from stonks_plugins.models import Plugin

    Plugin.objects.all().delete()
    rows = []
    for i in range(n):
        name = f"broker-{i:04d}"
        failing = i % 10 == 0
        manifest = {
            "plugin": {
                "name": name,
                "version": f"1.{i % 7}.{i % 3}",
                "type": "broker",
                "display_name": f"Broker {i}",
                "description": f"Integration number {i} for Stonks Overwatch",
                "author": "Stonks Overwatch Team",
                "license": "MIT",
            },
            "api": {"min_version": "1.0.0", "max_version": "2.0.0"},
            "dependencies": {"python": ">=3.11", "stonks-overwatch-core": ">=2.0.0,<3.0.0"},
            "capabilities": {
                "services": ["portfolio", "transaction", "deposit", "dividend", "fee"],
                "features": ["real_time_data", "historical_data"],
                "supported_markets": ["XAMS", "XNYS", "XNAS"],
                "supported_currencies": ["EUR", "USD", "GBP"],
            },
            "services": {
                s: f"{name.replace('-', '_')}.services.{s.title()}Service"
                for s in ("portfolio", "transaction", "deposit", "dividend", "fee")
            },
        }
        rows.append(
            Plugin(
                name=name,
                declared_name=name,
                version=manifest["plugin"]["version"],
                type="broker",
                source="directory" if i % 3 else "entry_point",
                location=f"/srv/stonks/plugins/{name}",
                display_name=f"Broker {i}",
                description=f"Integration number {i} for Stonks Overwatch",
                manifest=manifest,
                state="error" if failing else "active",
                enabled=True,
                error_code="import_error" if failing else "",
                error_message="ModuleNotFoundError: No module named 'requests'" if failing else "",
            )
        )
    Plugin.objects.bulk_create(rows, batch_size=500)


def install_baselines() -> None:
    """A URLconf with the project's routes plus the two bare list views."""
    from django.conf import settings
    from django.urls import clear_url_caches, path
    from rest_framework import generics, serializers

    from stonks_overwatch import urls as project_urls
    from stonks_plugins.api.serializers import SUMMARY_FIELDS
    from stonks_plugins.models import Plugin

    class BareSerializer(serializers.ModelSerializer):
        class Meta:
            model = Plugin
            fields = SUMMARY_FIELDS  # the columns the API's list reads

    class BareList(generics.ListAPIView):
        queryset = Plugin.objects.all()
        serializer_class = BareSerializer
        pagination_class = None

    class BareOnlyList(BareList):
        queryset = Plugin.objects.only(*SUMMARY_FIELDS)

    module = types.ModuleType("bench_api_urls")
    module.urlpatterns = [  # type: ignore[attr-defined]
        path("bench/bare/", BareList.as_view()),
        path("bench/bare-only/", BareOnlyList.as_view()),
        *project_urls.urlpatterns,
    ]
    sys.modules["bench_api_urls"] = module
    settings.ROOT_URLCONF = "bench_api_urls"
    clear_url_caches()


def dashboard_token() -> str:
    from django.contrib.auth.models import Permission, User
    from rest_framework.authtoken.models import Token

    user = User.objects.create_user("dashboard", "dash@example.com", None)
    user.user_permissions.add(
        Permission.objects.get(content_type__app_label="stonks_plugins", codename="view_plugin")
    )
    return str(Token.objects.create(user=user).key)


def measure(n: int, repeat: int, token: str) -> dict[str, Any]:
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client(HTTP_AUTHORIZATION=f"Token {token}")
    cases = {
        "api": f"/api/v1/plugins/?page_size={n}",
        "bare": "/bench/bare/",
        "bare-only": "/bench/bare-only/",
    }
    sizes: dict[str, int] = {}
    for case, url in cases.items():  # warm up, and check each returns every row
        response = client.get(url)
        assert response.status_code == 200, (case, response.status_code, response.content[:300])
        body = response.json()
        rows = body["results"] if isinstance(body, dict) else body
        assert len(rows) == n, (case, len(rows))
        sizes[case] = len(response.content)
    queries: dict[str, int] = {}
    for case, url in cases.items():
        with CaptureQueriesContext(connection) as ctx:
            client.get(url)
        queries[case] = len(ctx.captured_queries)
    times: dict[str, list[float]] = {case: [] for case in cases}
    for _ in range(repeat):
        for case, url in cases.items():
            start = time.perf_counter()
            response = client.get(url)
            times[case].append(time.perf_counter() - start)
            assert response.status_code == 200
    medians = {case: statistics.median(values) for case, values in times.items()}
    baseline = min(medians["bare"], medians["bare-only"])
    ratio = medians["api"] / baseline
    return {
        "n": n,
        "repeat": repeat,
        "median_ms": {case: round(value * 1000, 3) for case, value in medians.items()},
        "queries": queries,
        "bytes": sizes,
        "ratio": round(ratio, 3),
        "ratio_vs_bare": round(medians["api"] / medians["bare"], 3),
        "target": TARGET,
        "pass": ratio <= TARGET,
    }


def report(results: list[dict[str, Any]], where: str) -> None:
    repeat = results[0]["repeat"]
    print(f"API list benchmark: {where}, {repeat} rounds (median)")
    print(f"  {'plugins':>7} {'case':<10} {'median ms':>10} {'queries':>8} {'bytes':>9}")
    for result in results:
        ms = result["median_ms"]
        for case in ("api", "bare", "bare-only"):
            print(
                f"  {result['n']:>7} {case:<10} {ms[case]:>10.2f} "
                f"{result['queries'][case]:>8} {result['bytes'][case]:>9}"
            )
    for result in results:
        verdict = "PASS" if result["pass"] else "FAIL"
        extra = result["queries"]["api"] - result["queries"]["bare"]
        print(
            f"  {result['n']:>5} plugins: api / faster baseline = {result['ratio']:.2f}x "
            f"(api / bare = {result['ratio_vs_bare']:.2f}x; {extra:+d} queries); "
            f"target <= {TARGET}x: {verdict}"
        )
    counts = {r["queries"]["api"] for r in results}
    sizes = ", ".join(str(r["n"]) for r in results)
    print(
        f"  api queries the same at {sizes} plugins ({', '.join(map(str, sorted(counts)))}): "
        f"{'PASS' if len(counts) == 1 else 'FAIL'}"
    )
    ok = all(r["pass"] for r in results) and len(counts) == 1
    print(f"Verdict: {'PASS' if ok else 'FAIL'}")


def passed(results: list[dict[str, Any]]) -> bool:
    return all(r["pass"] for r in results) and len({r["queries"]["api"] for r in results}) == 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", default="10,100,1000", help="plugin counts (10,100,1000)")
    parser.add_argument("--n", type=int, help="one plugin count only (instead of --sizes)")
    parser.add_argument("--repeat", type=int, default=25, help="timed rounds (default 25)")
    parser.add_argument("--database-url", help="a PostgreSQL server (default: DATABASE_URL)")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    args = parser.parse_args(argv)
    sizes = [args.n] if args.n is not None else [int(x) for x in args.sizes.split(",") if x]
    if not sizes or not all(1 <= n <= 1000 for n in sizes):
        parser.error("plugin counts must be between 1 and 1000 (the API's largest page)")
    base = args.database_url or os.environ.get("DATABASE_URL") or None
    if base is not None and not base.startswith(("postgres://", "postgresql://")):
        base = None  # SQLite: a temporary file, never the project's database
    where = (
        f"PostgreSQL ({urllib.parse.urlsplit(base).netloc}, a fresh database)"
        if base
        else "SQLite (a temporary file)"
    )
    results = []
    try:
        with (
            tempfile.TemporaryDirectory(prefix="bench-api-") as tmp,
            fresh_database(base, Path(tmp)) as url,
        ):
            setup_django(url)
            token = dashboard_token()
            install_baselines()
            for n in sorted(set(sizes)):
                make_rows(n)
                results.append(measure(n, max(1, args.repeat), token))
            from django.db import connections

            connections.close_all()
    except Unavailable as exc:
        print(f"bench_api: skipped, {exc}")
        return 2 if args.check else 0
    report(results, where)
    if args.json:
        # The largest size's figures at the top level (as before), every size's beside them.
        print(json.dumps({**results[-1], "database": where, "sizes": results}, indent=2))
    return 1 if args.check and not passed(results) else 0


if __name__ == "__main__":
    sys.exit(main())
