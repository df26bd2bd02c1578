"""API list benchmark: listing 1,000 plugins through ``/api/v1/plugins/`` against a bare DRF
list view over the same rows, in the same run.

Cases, each a full request through Django's test client (middleware, URL resolution, token
authentication, rendering to JSON), timed in interleaved rounds; the median of each counts:

- ``api``          ``GET /api/v1/plugins/?page_size=N`` as a dashboard user holding only the
                   view permission: the product (permission check, filter, search and ordering
                   backends, pagination with its count query, the contract's summary plus a URL
                   per plugin);
- ``bare``         a ``ListAPIView`` with a plain ``ModelSerializer`` over the same columns
                   (name, version, type, source, state, enabled, error code and message,
                   display name, location, missing), ``Plugin.objects.all()``, no pagination,
                   the default ``IsAuthenticated`` permission;
- ``bare-only``    the same with ``.only()`` those columns (it skips loading the manifests): the
                   stricter baseline.

Target (from the issue): ``api`` within 1.3x the faster baseline.

The rows live in a temporary SQLite database created for the run (``db.sqlite3`` is never
touched). Rows carry manifests of realistic size, as ``sync`` stores them.

Run:  .venv/bin/python benchmarks/bench_api.py [--n 1000] [--repeat 25] [--check] [--json]
Exit status is 0 unless ``--check`` is given and the target is missed.
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
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

TARGET = 1.3
SUMMARY_COLUMNS = [
    "name",
    "version",
    "type",
    "source",
    "state",
    "enabled",
    "error_code",
    "error_message",
    "display_name",
    "location",
    "missing",
]


def setup_django(db_path: Path) -> None:
    # Before settings are read: a throwaway database and no shared cache or broker.
    os.environ["DATABASE_URL"] = f"sqlite:///{db_path}"
    os.environ["REDIS_URL"] = ""
    os.environ["CELERY_BROKER_URL"] = "memory://"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "stonks_overwatch.settings")
    os.environ["DEBUG"] = "false"
    import django

    django.setup()
    from django.conf import settings

    assert str(settings.DATABASES["default"]["NAME"]) == str(db_path), "refusing: wrong DB"
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


def make_rows(n: int) -> None:
    from stonks_plugins.models import Plugin

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
    from stonks_plugins.models import Plugin

    class BareSerializer(serializers.ModelSerializer):
        class Meta:
            model = Plugin
            fields = SUMMARY_COLUMNS

    class BareList(generics.ListAPIView):
        queryset = Plugin.objects.all()
        serializer_class = BareSerializer
        pagination_class = None

    class BareOnlyList(BareList):
        queryset = Plugin.objects.only(*SUMMARY_COLUMNS)

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


def measure(n: int, repeat: int) -> dict[str, Any]:
    from django.test import Client

    client = Client(HTTP_AUTHORIZATION=f"Token {dashboard_token()}")
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
        "bytes": sizes,
        "ratio": round(ratio, 3),
        "ratio_vs_bare": round(medians["api"] / medians["bare"], 3),
        "target": TARGET,
        "pass": ratio <= TARGET,
    }


def report(result: dict[str, Any]) -> None:
    ms = result["median_ms"]
    print(f"API list benchmark: {result['n']} plugins, {result['repeat']} rounds (median)")
    print(f"  {'case':<10} {'median ms':>10} {'bytes':>9}")
    for case in ("api", "bare", "bare-only"):
        print(f"  {case:<10} {ms[case]:>10.2f} {result['bytes'][case]:>9}")
    verdict = "PASS" if result["pass"] else "FAIL"
    print(
        f"  api / faster baseline = {result['ratio']:.2f}x "
        f"(api / bare = {result['ratio_vs_bare']:.2f}x); target <= {TARGET}x: {verdict}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=1000, help="plugins to list (default 1000)")
    parser.add_argument("--repeat", type=int, default=25, help="timed rounds (default 25)")
    parser.add_argument("--check", action="store_true", help="exit 1 when the target is missed")
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    args = parser.parse_args(argv)
    if not 1 <= args.n <= 1000:
        parser.error("--n must be between 1 and 1000 (the API's largest page)")

    with tempfile.TemporaryDirectory(prefix="bench-api-") as tmp:
        setup_django(Path(tmp) / "bench.sqlite3")
        make_rows(args.n)
        install_baselines()
        result = measure(args.n, max(1, args.repeat))
        from django.db import connections

        connections.close_all()
    report(result)
    if args.json:
        print(json.dumps(result, indent=2))
    return 1 if args.check and not result["pass"] else 0


if __name__ == "__main__":
    sys.exit(main())
