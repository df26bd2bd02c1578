"""Listing plugins costs the same number of queries for 10 plugins as for 1,000: the list
serialiser reads only the row's own columns (no per-row query), whatever the filters."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from stonks_plugins.models import Plugin

from .helpers import API, plugin_row

pytestmark = pytest.mark.django_db


def _queries(client, n: int, query: str) -> int:  # type: ignore[no-untyped-def]
    Plugin.objects.all().delete()
    Plugin.objects.bulk_create(
        plugin_row(
            f"plugin-{i:04d}",
            state="error" if i % 7 == 0 else "active",
            error_code="import_error" if i % 7 == 0 else "",
            error_message="boom" if i % 7 == 0 else "",
            manifest={"plugin": {"name": f"plugin-{i:04d}"}, "services": {}},
        )
        for i in range(n)
    )
    client.get(f"{API}/plugins/?page_size=1")  # warm the user's permission cache path
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(f"{API}/plugins/?page_size=1000&{query}")
    assert response.status_code == 200
    body = response.json()
    assert body["count"] > 0 and len(body["results"]) == min(body["count"], 1000)
    return len(ctx.captured_queries)


@pytest.mark.parametrize("query", ["", "state=active&search=plugin&ordering=-state"])
def test_listing_1000_plugins_takes_as_many_queries_as_listing_10(reader, query: str) -> None:
    few = _queries(reader, 10, query)
    many = _queries(reader, 1000, query)
    assert few == many
    # The session's user, the permission check (one query: the user's and their groups'
    # permissions), and the page (read one row past it: a page that is not full needs no
    # COUNT).
    assert many <= 3, many


def test_the_page_query_loads_only_the_summary_columns(reader) -> None:
    Plugin.objects.bulk_create([plugin_row("a", manifest={"big": "x" * 10_000})])
    with CaptureQueriesContext(connection) as ctx:
        reader.get(f"{API}/plugins/")
    page_query = [q["sql"] for q in ctx.captured_queries if "LIMIT" in q["sql"].upper()][-1]
    assert '"manifest"' not in page_query and '"error_details"' not in page_query
