"""The plugin list: state badges, type, version, source, latest health and last error in
columns; filters on state, type, source, enabled, missing and health; search."""

from __future__ import annotations

import shutil
from typing import Any

import pytest

from stonks_plugins.manager import manager

from .conftest import PLUGINS, page

pytestmark = pytest.mark.django_db


def row(html: str, name: str) -> str:
    """The <tr> of the plugin list that links to ``name``."""
    rows = [r for r in html.split("<tr")[1:] if f">{name}</a>" in r]
    assert len(rows) == 1, f"{name}: {len(rows)} rows"
    return rows[0].split("</tr>")[0]


def names(response: Any) -> set[str]:
    assert response.status_code == 200
    return {p.name for p in response.context["cl"].result_list}


@pytest.fixture
def varied(console) -> Any:  # type: ignore[no-untyped-def]
    """active (config-fixture), disabled (healthy-fixture), error (incompatible-api) and
    missing (dep-base: found once, then its folder removed)."""
    console.add("incompatible-api")
    console.add("dep-base")
    manager.sync(actor="setup")
    shutil.rmtree(console.path / "dep-base")
    manager.sync(actor="setup")
    manager.check_health("config-fixture", actor="ops")
    manager.disable("healthy-fixture", actor="ops")
    return console


def test_columns_show_badges_type_version_source_health_and_last_error(varied, operator) -> None:  # type: ignore[no-untyped-def]
    html = page(operator.get(PLUGINS))
    for header in ("state", "type", "version", "source", "health", "last error", "enabled"):
        assert f">{header}</a>" in html.lower() or f">{header}<" in html.lower(), header
    good = row(html, "config-fixture")
    assert '<span class="so-badge so-state-active">active</span>' in good
    assert '<span class="so-badge so-health-healthy">healthy</span>' in good
    assert ">Broker<" in good and ">1.0.0<" in good and ">directory<" in good
    off = row(html, "healthy-fixture")
    assert '<span class="so-badge so-state-disabled">disabled</span>' in off
    assert "not checked" in off
    bad = row(html, "incompatible-api")
    assert '<span class="so-badge so-state-error">error</span>' in bad
    assert "<code>incompatible_api</code>" in bad
    assert "9.0.0" in bad  # the message says what the plugin needs
    assert "so-overview-link" in html and 'data-action="sync"' in html


ALL = {"config-fixture", "healthy-fixture", "incompatible-api", "dep-base"}
FILTERS = [
    ("state__exact=active", {"config-fixture"}),
    ("state__exact=error", {"incompatible-api", "dep-base"}),  # a missing plugin is in error
    ("state__exact=disabled", {"healthy-fixture"}),
    ("type__exact=broker", ALL),
    ("type__exact=view", set()),
    ("source__exact=directory", ALL),
    ("source__exact=entry_point", set()),
    ("enabled__exact=0", {"healthy-fixture"}),
    ("enabled__exact=1", ALL - {"healthy-fixture"}),
    ("missing__exact=1", {"dep-base"}),
    ("health=healthy", {"config-fixture"}),
    ("health=none", ALL - {"config-fixture"}),
    ("q=config-fix", {"config-fixture"}),
    ("q=incompatible_api", {"incompatible-api"}),  # the error code is searchable
    ("q=Healthy+Fixture", {"healthy-fixture"}),  # and the display name
    ("state__exact=error&missing__exact=0", {"incompatible-api"}),
]


def test_filters_and_search(varied, operator) -> None:  # type: ignore[no-untyped-def]
    got = {query: names(operator.get(f"{PLUGINS}?{query}")) for query, _ in FILTERS}
    assert got == dict(FILTERS)


def test_filter_sidebar_offers_every_filter(varied, operator) -> None:  # type: ignore[no-untyped-def]
    specs = operator.get(PLUGINS).context["cl"].filter_specs
    titles = {str(spec.title) for spec in specs}
    assert titles == {"state", "type", "source", "enabled", "missing", "health"}
