"""Reading plugins: what a dashboard's plugin table and plugin page show."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from stonks_plugins.api.serializers import PluginDetailSerializer, PluginSerializer

from .helpers import API, error_of, plugin_row

pytestmark = pytest.mark.django_db


@pytest.fixture
def catalog(rows):  # type: ignore[no-untyped-def]
    return rows(
        plugin_row("degiro-broker", display_name="DeGiro", description="Dutch broker"),
        plugin_row("bitvavo-broker", description="Crypto exchange in euros"),
        plugin_row(
            "broken-one",
            state="error",
            error_code="import_error",
            error_message="ModuleNotFoundError: no module named 'requests'",
        ),
        plugin_row("off-one", state="disabled", enabled=False, type="aggregator"),
        plugin_row("legacy-ibkr", source="legacy", display_name="Interactive Brokers"),
        plugin_row("pkg-view", source="entry_point", type="view", location="pkg-view==2.0"),
    )


def names(response) -> list[str]:  # type: ignore[no-untyped-def]
    assert response.status_code == 200, response.content
    return [p["name"] for p in response.json()["results"]]


def test_list_is_the_contract_summary_sorted_by_name(reader, catalog) -> None:
    response = reader.get(f"{API}/plugins/")
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 6 and body["next"] is None and body["previous"] is None
    assert names(response) == sorted(p.name for p in catalog)
    broken = next(p for p in body["results"] if p["name"] == "broken-one")
    assert broken == {
        "name": "broken-one",
        "version": "1.0.0",
        "type": "broker",
        "source": "directory",
        "state": "error",
        "enabled": True,
        "error": {
            "code": "import_error",
            "message": "ModuleNotFoundError: no module named 'requests'",
        },
        "display_name": "Broken One",
        "location": "/srv/plugins/broken-one",
        "missing": False,
        "restart_required": False,
        "migrate_required": False,
        "instance_of": None,
        "label": "",
        "trust": None,  # made by hand, never synced: not checked yet
        "url": "http://testserver/api/v1/plugins/broken-one/",
    }
    ok = next(p for p in body["results"] if p["name"] == "degiro-broker")
    assert ok["error"] is None
    # The shape is what the schema declares, no more, no less.
    assert set(ok) == set(PluginSerializer().fields)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("state=error", ["broken-one"]),
        ("state=disabled", ["off-one"]),
        ("type=aggregator", ["off-one"]),
        ("source=legacy", ["legacy-ibkr"]),
        ("source=entry_point", ["pkg-view"]),
        ("enabled=false", ["off-one"]),
        ("error_code=import_error", ["broken-one"]),
        ("state=active&type=broker", ["bitvavo-broker", "degiro-broker", "legacy-ibkr"]),
        ("search=DUTCH", ["degiro-broker"]),  # description, case-insensitive
        ("search=interactive", ["legacy-ibkr"]),  # display name
        ("search=broker", ["bitvavo-broker", "degiro-broker", "legacy-ibkr"]),
        ("search=euros&state=active", ["bitvavo-broker"]),
        ("search=nothing-like-it", []),
    ],
)
def test_filters_and_search(reader, catalog, query: str, expected: list[str]) -> None:
    assert names(reader.get(f"{API}/plugins/?{query}")) == expected


def test_enabled_true_excludes_disabled(reader, catalog) -> None:
    assert "off-one" not in names(reader.get(f"{API}/plugins/?enabled=true"))
    assert len(names(reader.get(f"{API}/plugins/?enabled=true"))) == 5


def test_bad_filter_value_is_a_400_naming_the_parameter(reader, catalog) -> None:
    response = reader.get(f"{API}/plugins/?state=sleeping&type=robot")
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "validation_error"
    assert {d["path"] for d in error["details"]} == {"state", "type"}
    assert all(d["location"] == "query" for d in error["details"])
    assert "sleeping" in " ".join(d["message"] for d in error["details"])


def test_pagination_walks_every_plugin_once_in_a_stable_order(reader, rows) -> None:
    rows(*(plugin_row(f"p{i:03d}") for i in range(25)))
    seen: list[str] = []
    url: str | None = f"{API}/plugins/?page_size=10"
    pages = 0
    while url:
        body = reader.get(url).json()
        assert body["count"] == 25
        seen += [p["name"] for p in body["results"]]
        url = body["next"]
        pages += 1
    assert pages == 3 and seen == [f"p{i:03d}" for i in range(25)]
    second = reader.get(f"{API}/plugins/?page_size=10&page=2").json()
    assert second["previous"].endswith("page_size=10")
    assert [p["name"] for p in second["results"]] == [f"p{i:03d}" for i in range(10, 20)]


def test_page_beyond_the_last_is_a_404_in_the_error_shape(reader, catalog) -> None:
    response = reader.get(f"{API}/plugins/?page=99")
    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"


def test_page_size_is_capped_at_1000(reader, rows) -> None:
    rows(*(plugin_row(f"p{i:04d}") for i in range(1005)))
    body = reader.get(f"{API}/plugins/?page_size=5000").json()
    assert body["count"] == 1005 and len(body["results"]) == 1000


def test_ordering_is_stable_with_name_breaking_ties(reader, catalog) -> None:
    by_state = names(reader.get(f"{API}/plugins/?ordering=state"))
    assert by_state == [
        "bitvavo-broker",
        "degiro-broker",
        "legacy-ibkr",
        "pkg-view",  # active, by name
        "off-one",  # disabled
        "broken-one",  # error
    ]
    assert names(reader.get(f"{API}/plugins/?ordering=-name"))[0] == "pkg-view"
    # An unknown field is ignored: the default order stands.
    assert names(reader.get(f"{API}/plugins/?ordering=secret")) == sorted(p.name for p in catalog)


def test_detail_has_everything_and_links_to_its_actions(reader, rows) -> None:
    manifest = {
        "plugin": {"name": "degiro-broker", "version": "1.0.0", "type": "broker"},
        "capabilities": {"services": ["portfolio"], "features": ["real_time_data"]},
        "services": {"portfolio": "degiro.services.PortfolioService"},
    }
    rows(
        plugin_row(
            "degiro-broker",
            declared_name="degiro-broker",
            description="Dutch broker",
            manifest=manifest,
            warnings=["also found at /elsewhere (kept as 'degiro-broker@elsewhere')"],
            revision=3,
        )
    )
    response = reader.get(f"{API}/plugins/degiro-broker/")
    assert response.status_code == 200
    data = response.json()
    assert set(data) == set(PluginDetailSerializer().fields)
    assert data["manifest"] == manifest
    assert data["capabilities"] == manifest["capabilities"]
    assert data["services"] == {"portfolio": "degiro.services.PortfolioService"}
    assert data["revision"] == 3 and data["description"] == "Dutch broker"
    assert data["warnings"][0].startswith("also found at")
    assert data["error"] is None and data["error_details"] == []
    assert data["state_changed_at"].endswith("Z")
    base = "http://testserver/api/v1/plugins/degiro-broker/"
    assert data["links"] == {
        "self": base,
        "enable": base + "enable/",
        "disable": base + "disable/",
        "reload": base + "reload/",
        "health": base + "health/",
        "metrics": base + "metrics/",
        "events": base + "events/",
        "config": base + "config/",
        "instances": base + "instances/",
    }
    for link in ("self", "health", "metrics", "events", "instances"):
        assert reader.get(data["links"][link]).status_code == 200, link


def test_detail_of_a_plugin_with_a_broken_manifest(reader, rows) -> None:
    rows(
        plugin_row(
            "bad-one",
            type="",
            version="",
            state="error",
            manifest={"plugin": "not an object", "services": ["a", "list"]},
            error_code="manifest_invalid",
            error_message="plugin_manifest.json is invalid",
            error_details=[{"path": "$.plugin", "message": "must be an object"}],
        )
    )
    data = reader.get(f"{API}/plugins/bad-one/").json()
    assert data["type"] == "" and data["services"] == {} and data["capabilities"] == {}
    assert data["error"]["code"] == "manifest_invalid"
    assert data["error_details"] == [{"path": "$.plugin", "message": "must be an object"}]


@pytest.mark.parametrize(
    "name",
    [
        "acme.broker-v2",
        "degiro-broker@my-folder",
        "degiro-broker@my-folder-2",
        "degiro-broker@degiro_pkg",
        "x@dist==1.0",
        "odd name with spaces",
        "ünïcode",
    ],
)
def test_detail_and_actions_accept_odd_names(reader, rows, name: str) -> None:
    rows(plugin_row(name))
    url = f"{API}/plugins/{quote(name, safe='@')}/"
    response = reader.get(url)
    assert response.status_code == 200, response.content
    assert response.json()["name"] == name
    listed = reader.get(f"{API}/plugins/").json()["results"][0]
    assert listed["url"] == f"http://testserver{url}"
    assert reader.get(listed["url"]).json()["name"] == name
    assert reader.get(f"{url}events/").status_code == 200


def test_a_plugin_named_sync_is_reachable_beside_the_sync_action(reader, operator, rows) -> None:
    rows(plugin_row("sync"))
    assert reader.get(f"{API}/plugins/sync/").json()["name"] == "sync"
    assert reader.get(f"{API}/plugins/sync/health/").json()["plugin"] == "sync"
    assert reader.post(f"{API}/plugins/sync/").status_code == 403  # POST is still the action
    assert set(operator.post(f"{API}/plugins/sync/").json()) >= {"added", "missing"}


def test_unknown_plugin_is_a_404_naming_it(reader, catalog) -> None:
    for suffix in ("", "health/", "metrics/", "events/"):
        response = reader.get(f"{API}/plugins/nope/{suffix}")
        assert response.status_code == 404, suffix
        error = error_of(response)
        assert error["code"] == "not_found" and "'nope'" in error["message"]
