"""The config endpoints, as a dashboard uses them: read with an ETag, write with If-Match
(412 when stale, 428 without), 400 with the JSON path of every bad field, secrets never
returned, history and rollback, and read-only users refused."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import Permission, User
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from stonks_plugins.manager import manager
from stonks_plugins.models import PluginEvent

pytestmark = pytest.mark.django_db
URL = "/api/v1/plugins/config-fixture/config/"
SECRET = "correct-horse-battery"
GOOD = {"credentials": {"username": "ana", "password": SECRET}, "settings": {"currency": "USD"}}


def _client(user: User) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


@pytest.fixture
def api(plugin_dirs, settings) -> APIClient:  # type: ignore[no-untyped-def]
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    plugin_dirs.add("config-fixture")
    manager.sync()
    return _client(User.objects.create_superuser("ops", "ops@example.com", "pw"))


def _put(api: APIClient, body: object, etag: str | None, method: str = "put"):  # type: ignore[no-untyped-def]
    headers = {"HTTP_IF_MATCH": etag} if etag else {}
    return getattr(api, method)(
        URL, data=json.dumps(body), content_type="application/json", **headers
    )


def test_read_write_with_etags(api, django_capture_on_commit_callbacks) -> None:
    first = api.get(URL)
    assert first.status_code == 200 and first.json()["version"] == 0
    assert first["ETag"] == '"config-fixture-v0"'
    with django_capture_on_commit_callbacks(execute=True):
        saved = _put(api, GOOD, first["ETag"])
    assert saved.status_code == 200, saved.json()
    body = saved.json()
    assert body["version"] == 1 and saved["ETag"] == '"config-fixture-v1"'
    assert body["data"]["credentials"]["password"] == "********"
    assert SECRET not in saved.content.decode()
    assert api.get(URL).json()["status"] == "active"
    # The same old ETag again: someone saved meanwhile.
    stale = _put(api, GOOD, first["ETag"])
    assert stale.status_code == 412
    assert stale.json()["error"]["code"] == "precondition_failed"
    assert "latest is version 1" in stale.json()["error"]["message"]
    missing = _put(api, GOOD, None)
    assert missing.status_code == 428
    # PATCH merges; the masked secret is kept.
    with django_capture_on_commit_callbacks(execute=True):
        patched = _put(api, {"settings": {"currency": "GBP"}}, saved["ETag"], "patch")
    assert patched.status_code == 200 and patched.json()["version"] == 2
    assert manager.get_config("config-fixture").data["settings"]["currency"] == "GBP"
    from stonks_plugins.config.system import config_system

    assert config_system.effective_flat("config-fixture")["password"] == SECRET
    assert PluginEvent.objects.filter(actor="ops", reason__startswith="config version 2").exists()


def test_invalid_config_is_400_with_json_paths_and_saves_nothing(api) -> None:
    bad = {
        "credentials": {"username": "ana", "password": "short"},
        "settings": {"currency": "JPY", "shade": 1},
    }
    resp = _put(api, bad, '"config-fixture-v0"')
    assert resp.status_code == 400
    error = resp.json()["error"]
    assert error["code"] == "config_invalid"
    paths = {d["path"]: d["code"] for d in error["details"]}
    assert paths == {
        "$.credentials.password": "minLength",
        "$.settings.currency": "enum",
        "$.settings.shade": "additionalProperties",
    }
    assert "short" not in resp.content.decode()
    assert api.get(URL).json()["version"] == 0
    not_object = _put(api, ["a", "list"], '"config-fixture-v0"')
    assert not_object.status_code == 400
    assert not_object.json()["error"]["details"][0]["path"] == "$"


def test_schema_history_and_rollback(api, django_capture_on_commit_callbacks) -> None:
    schema = api.get(URL + "schema/").json()
    assert schema["properties"]["credentials"]["properties"]["password"]["writeOnly"] is True
    with django_capture_on_commit_callbacks(execute=True):
        _put(api, GOOD, '"config-fixture-v0"')
    with django_capture_on_commit_callbacks(execute=True):
        _put(api, {"settings": {"currency": "GBP"}}, '"config-fixture-v1"', "patch")
    history = api.get(URL + "history/").json()
    assert [h["version"] for h in history] == [2, 1]
    assert SECRET not in json.dumps(history)
    with django_capture_on_commit_callbacks(execute=True):
        back = api.post(
            URL + "rollback/", {"version": 1}, format="json", HTTP_IF_MATCH='"config-fixture-v2"'
        )
    assert back.status_code == 200, back.json()
    assert back.json()["version"] == 3
    assert manager.get_config("config-fixture").data["settings"]["currency"] == "USD"
    unknown = api.post(
        URL + "rollback/", {"version": 9}, format="json", HTTP_IF_MATCH='"config-fixture-v3"'
    )
    assert unknown.status_code == 400
    assert "no config version 9" in json.dumps(unknown.json())


def test_rollback_with_a_stale_etag_is_412_and_saves_nothing(
    api, django_capture_on_commit_callbacks
) -> None:
    # A dashboard that read v1, while someone else saved v2, must not roll back over v2.
    with django_capture_on_commit_callbacks(execute=True):
        _put(api, GOOD, '"config-fixture-v0"')
    with django_capture_on_commit_callbacks(execute=True):
        _put(api, {"settings": {"currency": "GBP"}}, '"config-fixture-v1"', "patch")

    def rollback(**headers: str):  # type: ignore[no-untyped-def]
        return api.post(URL + "rollback/", {"version": 1}, format="json", **headers)

    stale = rollback(HTTP_IF_MATCH='"config-fixture-v1"')
    assert stale.status_code == 412, stale.json()
    assert stale.json()["error"]["code"] == "precondition_failed"
    assert "latest is version 2" in stale.json()["error"]["message"]
    assert rollback().status_code == 428
    assert rollback(HTTP_IF_MATCH='W/"config-fixture-v2"').status_code == 412
    assert rollback(HTTP_IF_MATCH='"other-plugin-v2"').status_code == 412
    current = api.get(URL)
    assert current.json()["version"] == 2 and current["ETag"] == '"config-fixture-v2"'
    assert manager.get_config("config-fixture").data["settings"]["currency"] == "GBP"
    assert [h["version"] for h in api.get(URL + "history/").json()] == [2, 1]


def test_read_only_user_reads_but_cannot_write(api) -> None:
    viewer = User.objects.create_user("viewer", password="pw")
    viewer.user_permissions.add(Permission.objects.get(codename="view_plugin"))
    client = _client(viewer)
    assert client.get(URL).status_code == 200
    assert client.get(URL + "schema/").status_code == 200
    denied = client.put(
        URL,
        data=json.dumps(GOOD),
        content_type="application/json",
        HTTP_IF_MATCH='"config-fixture-v0"',
    )
    assert denied.status_code == 403
    assert client.post(URL + "rollback/", {"version": 1}, format="json").status_code == 403
    assert APIClient().get(URL).status_code == 401
    assert api.get("/api/v1/plugins/nope/config/").status_code == 404
