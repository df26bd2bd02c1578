"""Hostile input answers 4xx in the one error shape, never a 500, and changes nothing: bodies
too large (413), too deep, with numbers that are not finite, lone surrogates or NUL
characters (400); an endless ``search``; NUL in a plugin name or a view plugin's static path
(404); OPTIONS on the config. Also: a config the plugin refuses when it is applied is
reported as refused (422), a weak ETag does not pass If-Match, the console's sync button
redirects only within the site, and the API docs load nothing from another host.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.contrib.staticfiles import finders
from django.contrib.staticfiles.views import serve
from django.test import RequestFactory
from rest_framework.test import APIClient

from stonks_plugins.api.parsers import MAX_DEPTH
from stonks_plugins.manager import manager
from stonks_plugins.models import PluginConfig

from .helpers import API, error_of

pytestmark = pytest.mark.django_db
PLUGIN = "config-fixture"
CONFIG = f"{API}/plugins/{PLUGIN}/config/"
V0 = f'"{PLUGIN}-v0"'
GOOD = {"credentials": {"username": "ana", "password": "correct-horse"}}


@pytest.fixture
def api(plugin_dirs, operator) -> APIClient:  # type: ignore[no-untyped-def]
    """A user with the change permission, and the config fixture synced."""
    plugin_dirs.add(PLUGIN)
    manager.sync()
    return operator  # type: ignore[no-any-return]


def put(client: APIClient, raw: bytes | str, etag: str = V0, method: str = "PUT") -> Any:
    return client.generic(method, CONFIG, raw, content_type="application/json", HTTP_IF_MATCH=etag)


def nothing_saved() -> bool:
    return not PluginConfig.objects.filter(plugin__name=PLUGIN).exists()


# -- bodies -----------------------------------------------------------------------------------
def test_a_10_mb_body_is_413_in_the_error_shape(api, settings) -> None:  # type: ignore[no-untyped-def]
    raw = json.dumps({**GOOD, "padding": "x" * (10 * 1024 * 1024)})
    response = put(api, raw)
    assert response.status_code == 413
    error = error_of(response)
    assert error["code"] == "payload_too_large"
    assert str(settings.DATA_UPLOAD_MAX_MEMORY_SIZE) in error["message"]
    assert nothing_saved()
    # An endpoint that would not read the body refuses it too.
    action = api.post(f"{API}/plugins/{PLUGIN}/enable/", raw, content_type="application/json")
    assert action.status_code == 413 and error_of(action)["code"] == "payload_too_large"


def test_the_limit_is_the_setting(api, settings) -> None:  # type: ignore[no-untyped-def]
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100
    assert put(api, json.dumps(GOOD)).status_code == 200
    too_big = put(api, json.dumps({**GOOD, "x": "y" * 64}), etag=f'"{PLUGIN}-v1"')
    assert too_big.status_code == 413 and "at most 100 bytes" in error_of(too_big)["message"]


def test_a_large_form_body_on_a_session_is_413(api, client, admin_user, settings) -> None:  # type: ignore[no-untyped-def]
    """The CSRF check of a logged-in browser reads a form body (Django's own limit)."""
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    client.force_login(admin_user)
    body = "a=" + "x" * 4096
    response = client.generic(
        "POST",
        f"{API}/plugins/{PLUGIN}/enable/",
        body,
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 413, response.content
    assert error_of(response)["code"] == "payload_too_large"


def nested(levels: int) -> str:
    return '{"a":' * levels + "1" + "}" * levels


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param("[" * 100_000 + "]" * 100_000, id="arrays-100k-deep"),
        pytest.param(nested(900), id="objects-900-deep"),
        pytest.param(nested(MAX_DEPTH + 1), id="one-level-too-deep"),
    ],
)
def test_deep_nesting_is_400(api, raw: str) -> None:  # type: ignore[no-untyped-def]
    response = put(api, raw)
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "parse_error" and f"deeper than {MAX_DEPTH}" in error["message"]
    assert nothing_saved()


def test_nesting_within_the_limit_reaches_validation(api) -> None:  # type: ignore[no-untyped-def]
    response = put(api, nested(MAX_DEPTH))
    assert response.status_code == 400
    assert error_of(response)["code"] == "config_invalid"  # the schema's turn, not the parser's


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        ('{"settings": {"refresh_minutes": 1e400}}', "too large for a float"),
        ('{"settings": {"refresh_minutes": -1e400}}', "too large for a float"),
        ('{"settings": {"refresh_minutes": NaN}}', "NaN is not a JSON number"),
        ('{"settings": {"refresh_minutes": Infinity}}', "Infinity is not a JSON number"),
        ('{"settings": {"refresh_minutes": ' + "9" * 5000 + "}}", "integer"),
        ('{"credentials": {"username": "\\ud800"}}', "$.credentials.username"),
        ('{"credentials": {"\\udfff": "x"}}', "lone surrogate"),
        ('{"credentials": {"username": "a\\u0000b"}}', "$.credentials.username"),
        ('{"credentials\\u0000": {}}', "NUL character"),
        ('{"unterminated": ', "invalid JSON body"),
    ],
)
def test_unstorable_json_is_400_naming_the_problem(api, raw: str, says: str) -> None:  # type: ignore[no-untyped-def]
    response = put(api, raw)
    assert response.status_code == 400, response.content
    error = error_of(response)
    assert error["code"] == "parse_error"
    assert says in error["message"]
    assert nothing_saved()


def test_bytes_that_are_not_utf8_are_400(api) -> None:  # type: ignore[no-untyped-def]
    response = put(api, b'{"credentials": {"username": "\xff\xfe"}}')
    assert response.status_code == 400 and error_of(response)["code"] == "parse_error"


def test_rollback_to_an_enormous_version_is_400(api) -> None:  # type: ignore[no-untyped-def]
    response = api.post(
        f"{CONFIG}rollback/",
        json.dumps({"version": 10**30}),
        content_type="application/json",
        HTTP_IF_MATCH=V0,
    )
    assert response.status_code == 400
    assert error_of(response)["details"][0]["path"] == "$.version"


# -- query and path ---------------------------------------------------------------------------
def test_a_5000_word_search_is_400_naming_the_parameter(api) -> None:  # type: ignore[no-untyped-def]
    words = " ".join(f"word{i}" for i in range(5000))
    response = api.get(f"{API}/plugins/", {"search": words})
    assert response.status_code == 400
    error = error_of(response)
    assert error["details"][0]["path"] == "search"
    assert error["details"][0]["location"] == "query"
    # Within the limit: a real query, answered.
    fine = api.get(f"{API}/plugins/", {"search": " ".join(["config"] * 25)})
    assert fine.status_code == 200 and [p["name"] for p in fine.json()["results"]] == [PLUGIN]


def test_nul_in_search_is_400(api) -> None:  # type: ignore[no-untyped-def]
    response = api.get(f"{API}/plugins/?search=config%00")
    assert response.status_code == 400
    assert error_of(response)["details"][0]["path"] == "search"


def test_a_long_ordering_is_answered(api) -> None:  # type: ignore[no-untyped-def]
    response = api.get(f"{API}/plugins/", {"ordering": ",".join(["-name", "state"] * 2500)})
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "plugins/config%00fixture/"),
        ("get", "plugins/%00/config/"),
        ("put", "plugins/config-fixture%00/config/"),
        ("post", "plugins/config-fixture%00/enable/"),
        ("get", "plugins/config-fixture%00/events/"),
    ],
)
def test_nul_in_a_plugin_name_is_404(api, method: str, path: str) -> None:  # type: ignore[no-untyped-def]
    response = getattr(api, method)(f"{API}/{path}")
    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"


def test_nul_in_a_view_plugins_static_path_is_404(plugin_dirs, admin_client_logged) -> None:  # type: ignore[no-untyped-def]
    plugin_dirs.add("insights-view")
    manager.sync()
    base = "/plugins/insights-view/static/"
    assert admin_client_logged.get(f"{base}insights.css").status_code == 200
    for path in ("insights.css%00", "%00", "insights%00.css", "a%00/../insights.css"):
        assert admin_client_logged.get(base + path).status_code == 404, path
    assert (
        admin_client_logged.get("/plugins/insights%00view/static/insights.css").status_code == 404
    )


def test_options_on_the_config_for_an_operator(api) -> None:  # type: ignore[no-untyped-def]
    response = api.options(CONFIG)
    assert response.status_code == 200
    body = response.json()
    assert body["schema"] == f"{API}/schema/"
    assert "application/json" in body["parses"]
    assert {"GET", "PUT", "PATCH"} <= set(response["Allow"].replace(" ", "").split(","))
    assert api.options(f"{API}/plugins/{PLUGIN}/enable/").status_code == 200


# -- a config the plugin refuses (reproduction 12) ---------------------------------------------
@pytest.mark.django_db(transaction=True)
def test_a_config_the_plugin_refuses_is_422_and_the_previous_stays_live(  # type: ignore[no-untyped-def]
    plugin_dirs, make_client
) -> None:
    """Applied in the request (eager tasks, autocommit): the answer says what happened."""
    plugin_dirs.add(PLUGIN)
    manager.sync()
    client = make_client("olivia", "view_plugin", "change_plugin")
    saved = put(client, json.dumps(GOOD))
    assert saved.status_code == 200 and saved.json()["status"] == "active"

    refused = put(client, json.dumps({**GOOD, "settings": {"currency": "XXX"}}), saved["ETag"])
    assert refused.status_code == 422
    error = error_of(refused)
    assert error["code"] == "config_refused"
    assert "unsupported currency XXX" in error["message"]
    assert "version 2" in error["message"] and "Version 1 stays live" in error["message"]
    assert refused["ETag"] == f'"{PLUGIN}-v1"'  # the base of the next write

    live = client.get(CONFIG)
    assert live.json()["version"] == 1 and live.json()["status"] == "active"
    assert live.json()["data"]["settings"]["currency"] == "EUR"
    history = {v["version"]: v for v in client.get(f"{CONFIG}history/").json()}
    assert history[2]["status"] == "failed" and "XXX" in history[2]["message"]
    # The next write is based on the live version, as the ETag said.
    retry = put(client, json.dumps({**GOOD, "settings": {"currency": "USD"}}), refused["ETag"])
    assert retry.status_code == 200 and retry.json()["version"] == 3
    assert retry.json()["status"] == "active"


# -- If-Match, redirects, docs (reproduction 14) ----------------------------------------------
@pytest.mark.parametrize("header", [f'W/"{PLUGIN}-v0"', f'w/"{PLUGIN}-v0"', f' W/"{PLUGIN}-v0"'])
def test_a_weak_etag_does_not_pass_if_match(api, header: str) -> None:  # type: ignore[no-untyped-def]
    for method in ("PUT", "PATCH"):
        response = put(api, json.dumps(GOOD), header, method)
        assert response.status_code == 412
        error = error_of(response)
        assert error["code"] == "precondition_failed"
        assert f'"{PLUGIN}-v0"' in error["message"]
    assert nothing_saved()
    assert put(api, json.dumps(GOOD), V0).status_code == 200  # the strong one passes


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/phish",
        "//evil.example/",
        "/\\evil.example/",
        "http:evil.example",
        "javascript:alert(1)",
    ],
)
def test_the_sync_button_never_redirects_off_site(admin_client_logged, plugin_dirs, target) -> None:  # type: ignore[no-untyped-def]
    response = admin_client_logged.post("/admin/stonks_plugins/plugin/sync-now/", {"next": target})
    assert response.status_code == 302
    assert response["Location"] == "/admin/stonks_plugins/plugin/"


def test_the_sync_button_returns_to_the_page_it_came_from(admin_client_logged, plugin_dirs) -> None:  # type: ignore[no-untyped-def]
    back = "/admin/stonks_plugins/plugin/overview/?x=1"
    response = admin_client_logged.post("/admin/stonks_plugins/plugin/sync-now/", {"next": back})
    assert response.status_code == 302 and response["Location"] == back


def test_the_api_docs_load_nothing_from_another_host(client, settings) -> None:  # type: ignore[no-untyped-def]
    response = client.get(f"{API}/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    urls = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", html)
    assert urls, html
    assert not re.search(r"(?i)(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}", html), re.findall(
        r"(?i)(?:https?:)?//[^\s\"'<>]+", html
    )
    factory = RequestFactory()
    assets = [u for u in urls if u.startswith(settings.STATIC_URL)]
    assert any(u.endswith(".js") for u in assets) and any(u.endswith(".css") for u in assets)
    for url in assets:
        path = urlsplit(url).path[len(settings.STATIC_URL) :]
        assert finders.find(path), f"{url} is not a static file of this site"
        served = serve(factory.get(url), path, insecure=True)
        assert served.status_code == 200, url
