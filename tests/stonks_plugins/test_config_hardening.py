"""Issue 13, reproductions 1 and 2: a config schema never makes the server fetch or read
anything outside it, and a secret is found wherever the schema puts it - in array items,
behind a ``$ref``, inside ``oneOf`` / ``anyOf`` / ``allOf``, or by its name - so it is stored
encrypted, shown masked, and kept when the mask is sent back."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from stonks_plugins.config import versions
from stonks_plugins.config.schema import SchemaError, secret_paths
from stonks_plugins.config.validation import ConfigInvalid, config_validator, validate_config
from stonks_plugins.manager import manager
from stonks_plugins.models import Plugin, PluginConfig
from stonks_plugins.redaction import MASK, forget_all
from tests.cli import cli as _cli

pytestmark = pytest.mark.django_db

FILE_MARKER = "FILE-MARKER-6a1f0c9e"
HTTP_MARKER = "HTTP-MARKER-93be71d2"


@pytest.fixture(autouse=True)
def _no_known_secrets() -> Iterator[None]:
    # Secrets remembered by an earlier test would mask this test's output for it.
    forget_all()
    yield
    forget_all()


# -- reproduction 1: no remote or file $ref ------------------------------------------------
class _Recorder(BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self) -> None:
        type(self).hits.append(self.path)
        body = json.dumps({"type": "object", "properties": {"x": {"const": HTTP_MARKER}}})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def web_server() -> Iterator[tuple[str, list[str]]]:
    """A real HTTP server on the loopback that records every request it gets."""
    hits: list[str] = []
    handler = type("Handler", (_Recorder,), {"hits": hits})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", hits
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def remote_ref_plugin(plugin_dirs, web_server, tmp_path):  # type: ignore[no-untyped-def]
    base, _ = web_server
    outside = tmp_path / "outside" / "settings.json"
    outside.parent.mkdir()
    outside.write_text(
        json.dumps({"type": "object", "properties": {"x": {"const": FILE_MARKER}}}), "utf-8"
    )
    folder = plugin_dirs.add("secret-remote-ref")
    schema_file = folder / "config_schema.json"
    text = schema_file.read_text("utf-8")
    port = base.rsplit(":", 1)[1]
    schema_file.write_text(
        text.replace("PORT", port).replace("file://FILE", outside.as_uri()), "utf-8"
    )
    manager.sync()
    return {"name": "secret-remote-ref", "http": f"{base}/credentials.json", "file": outside}


def test_remote_and_file_refs_are_refused_and_never_fetched(
    remote_ref_plugin, web_server, admin_client_logged, tmp_path
) -> None:
    name, http_ref, outside = (remote_ref_plugin[k] for k in ("name", "http", "file"))
    _, hits = web_server
    url = f"/api/v1/plugins/{name}/config/"

    got = admin_client_logged.get(url)
    assert got.status_code == 200
    put = admin_client_logged.put(
        url,
        {"credentials": {"x": "y"}, "settings": {"x": "y"}, "region": "eu"},
        content_type="application/json",
        headers={"If-Match": got.headers["ETag"]},
    )
    assert put.status_code == 400, put.content
    body = put.content.decode()
    # The error names both references, says nothing was fetched, and echoes no content.
    assert http_ref in body
    assert outside.as_uri() in body
    assert "only references inside the schema" in body
    assert FILE_MARKER not in body and HTTP_MARKER not in body
    assert not PluginConfig.objects.filter(plugin__name=name).exists()

    # The schema endpoint, the admin page and the CLI do not fetch either.
    schema = admin_client_logged.get(f"{url}schema/")
    assert schema.status_code == 200
    assert FILE_MARKER not in schema.content.decode()
    page = admin_client_logged.get(
        f"/admin/stonks_plugins/plugin/{Plugin.objects.get(name=name).pk}/change/"
    )
    assert FILE_MARKER not in page.content.decode()
    config_file = tmp_path / "config.json"
    config_file.write_text(json.dumps({"region": "eu"}), "utf-8")
    code, out, err = _cli("config", "set", name, "--file", str(config_file))
    assert code == 1
    assert http_ref in err and FILE_MARKER not in out + err

    assert hits == []  # the web server was never asked


def test_the_validator_factory_refuses_outside_references(web_server, tmp_path: Path) -> None:
    base, hits = web_server
    outside = tmp_path / "secret.json"
    outside.write_text(json.dumps({"const": FILE_MARKER}), "utf-8")
    for ref in (f"{base}/x.json", outside.as_uri(), "other.json#/a", "#/$defs/missing"):
        schema = {"type": "object", "properties": {"a": {"$ref": ref}}}
        with pytest.raises(SchemaError) as info:
            config_validator(schema)
        assert repr(ref) in str(info.value)
        assert "#/properties/a/$ref" in str(info.value)
        _, issues = validate_config(schema, {"a": "b"})
        assert [(i.path, i.rule) for i in issues] == [("$", "schema")]
        assert FILE_MARKER not in str(issues)
    assert hits == []
    # Local references still work: $defs, definitions and anchors.
    local = {
        "type": "object",
        "$defs": {"a": {"type": "integer"}},
        "definitions": {"b": {"$anchor": "bee", "type": "string"}},
        "properties": {
            "a": {"$ref": "#/$defs/a"},
            "b": {"$ref": "#/definitions/b"},
            "c": {"$ref": "#bee"},
        },
    }
    _, issues = validate_config(local, {"a": "x", "b": 1, "c": 2})
    assert sorted((i.path, i.rule) for i in issues) == [
        ("$.a", "type"),
        ("$.b", "type"),
        ("$.c", "type"),
    ]


def test_a_schema_that_is_not_json_schema_is_a_clear_error() -> None:
    _, issues = validate_config({"type": "object", "properties": {"a": {"type": "strnig"}}}, {})
    assert len(issues) == 1
    assert "not valid JSON Schema" in issues[0].message
    assert "properties.a.type" in issues[0].message


# -- reproduction 2: secrets wherever the schema puts them ---------------------------------
NAME = "secret-schema-broker"
SECRETS = {
    "array item (format: password)": (
        {"accounts": [{"id": "main", "password": "arr-pw-5d1c77"}]},
        ("accounts", 0, "password"),
    ),
    "writeOnly through $ref": ({"session": "ref-tok-8e02aa"}, ("session",)),
    "writeOnly inside oneOf": (
        {"auth": {"method": "key", "key_value": "oneof-key-3f9b20"}},
        ("auth", "key_value"),
    ),
    "writeOnly inside allOf": (
        {"login": {"user": "ana", "word": "allof-word-c4e611"}},
        ("login", "word"),
    ),
    "writeOnly inside anyOf": (
        {"fallback": {"phrase": "anyof-phrase-7a2d93"}},
        ("fallback", "phrase"),
    ),
    "named api_token, no writeOnly": ({"api_token": "named-tok-01b6fe"}, ("api_token",)),
}


def _at(data: Any, path: tuple[str | int, ...]) -> Any:
    for step in path:
        data = data[step]
    return data


@pytest.fixture
def schema_plugin(plugin_dirs) -> str:  # type: ignore[no-untyped-def]
    plugin_dirs.add("secret-schema-broker")
    manager.sync()
    return NAME


@pytest.mark.parametrize("case", list(SECRETS))
def test_secret_is_encrypted_masked_and_kept(case: str, schema_plugin, admin_client_logged) -> None:
    data, path = SECRETS[case]
    secret = _at(data, path)

    # Saved through the real save path: the row holds ciphertext.
    cfg = versions.save(NAME, data, actor="test", base_version=None)
    row = PluginConfig.objects.get(pk=cfg.pk)
    assert secret not in json.dumps(row.data)
    assert set(_at(row.data, path)) == {"$enc"}
    assert row.data.get("region") == "eu"  # not a secret: stored as it is
    plugin = Plugin.objects.get(name=NAME)
    assert _at(versions.plain_data(plugin, row, versions.schema_of(plugin)), path) == secret

    # The API shows the mask.
    url = f"/api/v1/plugins/{NAME}/config/"
    got = admin_client_logged.get(url)
    assert got.status_code == 200
    assert secret not in got.content.decode()
    shown = got.json()["data"]
    assert _at(shown, path) == MASK

    # Sent back masked (with another change), the stored secret stays.
    shown["region"] = "us"
    put = admin_client_logged.put(
        url, shown, content_type="application/json", headers={"If-Match": got.headers["ETag"]}
    )
    assert put.status_code == 200, put.content
    assert secret not in put.content.decode()
    latest = versions.latest(plugin)
    assert latest is not None and latest.version == 2
    plain = versions.plain_data(plugin, latest, versions.schema_of(plugin))
    assert _at(plain, path) == secret
    assert plain["region"] == "us"

    # The published schema marks the field writeOnly where it is declared.
    schema = admin_client_logged.get(f"{url}schema/").json()
    assert secret not in json.dumps(schema)


def test_public_schema_marks_every_secret_write_only(schema_plugin, admin_client_logged) -> None:
    schema = admin_client_logged.get(f"/api/v1/plugins/{NAME}/config/schema/").json()
    props = schema["properties"]
    assert props["accounts"]["items"]["properties"]["password"]["writeOnly"] is True
    assert props["session"]["writeOnly"] is True
    assert props["auth"]["oneOf"][0]["properties"]["key_value"]["writeOnly"] is True
    assert props["login"]["allOf"][1]["properties"]["word"]["writeOnly"] is True
    assert props["api_token"]["writeOnly"] is True
    assert "writeOnly" not in props["region"]
    paths = set(secret_paths(versions.schema_of(Plugin.objects.get(name=NAME))))
    assert paths == {
        ("accounts", "[*]", "password"),
        ("session",),
        ("auth", "key_value"),
        ("login", "word"),
        ("fallback", "phrase"),
        ("api_token",),
    }


def test_invalid_config_never_echoes_a_secret(schema_plugin, admin_client_logged) -> None:
    url = f"/api/v1/plugins/{NAME}/config/"
    etag = admin_client_logged.get(url).headers["ETag"]
    bad = {
        # oneOf fails as a whole: jsonschema's message quotes the object, secret included.
        "auth": {"method": "key", "key_value": "echo-key-51a0e7", "colour": "red"},
        "accounts": [{"id": "x", "password": 12345678}],
        "session": "abc",
    }
    put = admin_client_logged.put(
        url, bad, content_type="application/json", headers={"If-Match": etag}
    )
    assert put.status_code == 400
    body = put.content.decode()
    assert "echo-key-51a0e7" not in body and "12345678" not in body
    paths = {d["path"] for d in put.json()["error"]["details"]}
    assert {"$.auth", "$.accounts[0].password", "$.session"} <= paths
    with pytest.raises(ConfigInvalid) as info:
        manager.set_config(NAME, bad, actor="t")
    assert "echo-key-51a0e7" not in str(info.value)


def test_a_recursive_schema_keeps_its_nested_secrets() -> None:
    from stonks_plugins.config import secrets as secret_store

    schema = {
        "$defs": {
            "node": {
                "type": "object",
                "properties": {
                    "pin_code": {"type": "string", "writeOnly": True},
                    "children": {"type": "array", "items": {"$ref": "#/$defs/node"}},
                },
            }
        },
        "type": "object",
        "properties": {"tree": {"$ref": "#/$defs/node"}},
    }
    paths = list(secret_paths(schema))
    data = {"tree": {"pin_code": "top-7731", "children": [{"pin_code": "deep-9120"}]}}
    stored = secret_store.encrypt(data, paths)
    assert "top-7731" not in json.dumps(stored) and "deep-9120" not in json.dumps(stored)
    assert secret_store.decrypt(stored, paths) == data
    assert "deep-9120" not in json.dumps(secret_store.mask(stored, paths))


def test_key_rotation_reaches_secrets_in_arrays(schema_plugin, settings) -> None:
    from cryptography.fernet import Fernet

    old_key, new_key = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.PLUGINS_SECRET_KEY = old_key
    data, path = SECRETS["array item (format: password)"]
    versions.save(NAME, data, actor="test", base_version=None)
    settings.PLUGINS_SECRET_KEY, settings.PLUGINS_SECRET_KEY_FALLBACKS = new_key, [old_key]
    assert manager.rotate_secrets() == 1
    settings.PLUGINS_SECRET_KEY_FALLBACKS = []  # the old key is gone: the new one reads it
    plugin = Plugin.objects.get(name=NAME)
    latest = versions.latest(plugin)
    plain = versions.plain_data(plugin, latest, versions.schema_of(plugin))
    assert _at(plain, path) == _at(data, path)


# -- property: whatever the values, a secret never shows and always comes back ------------
_secret_text = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=4, max_size=30
).filter(lambda s: s != MASK and s.strip() == s and s.strip())


@hypothesis_settings(max_examples=60, deadline=None)
@given(
    passwords=st.lists(_secret_text, min_size=1, max_size=4),
    session=_secret_text,
    key_value=_secret_text,
    word=_secret_text,
    token=_secret_text,
)
def test_secrets_never_show_and_round_trip(
    passwords: list[str], session: str, key_value: str, word: str, token: str
) -> None:
    from stonks_plugins.config import secrets as secret_store
    from stonks_plugins.config.schema import close_objects

    schema_file = Path(__file__).parents[1] / "fixtures/plugins/secret-schema-broker"
    schema = close_objects(json.loads((schema_file / "config_schema.json").read_text("utf-8")))
    data = {
        "accounts": [{"id": f"a{i}", "password": pw} for i, pw in enumerate(passwords)],
        "session": session,
        "auth": {"method": "key", "key_value": key_value},
        "login": {"user": "ana", "word": word},
        "api_token": token,
    }
    filled, _ = validate_config(schema, data)
    paths = list(secret_paths(schema))
    where = [("accounts", i, "password") for i in range(len(passwords))] + [
        ("session",),
        ("auth", "key_value"),
        ("login", "word"),
        ("api_token",),
    ]
    stored = secret_store.encrypt(filled, paths)
    shown = secret_store.mask(stored, paths)
    for path in where:
        assert set(_at(stored, path)) == {"$enc"}
        assert _at(shown, path) == MASK
    assert shown["login"]["user"] == "ana" and shown["accounts"][0]["id"] == "a0"
    assert secret_store.decrypt(stored, paths) == filled
    back = secret_store.keep_masked(shown, stored, paths)
    assert secret_store.decrypt(back, paths) == filled
