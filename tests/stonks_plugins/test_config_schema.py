"""Config schemas without a database: the schema generated from the seed's
``required_credentials`` / ``optional_settings``, closing objects to unknown keys, and what an
invalid config says (stonks_plugins.config.schema and .validation)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from stonks_plugins.config.schema import (
    ANY_KEY,
    ITEM,
    SchemaError,
    close_objects,
    config_schema,
    generated_schema,
    json_path,
    path_matches,
    public_schema,
    secret_paths,
    unresolvable_refs,
)
from stonks_plugins.config.validation import ConfigInvalid, ConfigIssue, validate_config
from stonks_plugins.manifest import PluginManifest, parse_manifest

BASE: dict[str, Any] = {
    "plugin": {"name": "acme", "version": "1.0.0", "type": "broker", "display_name": "Acme"},
    "api": {"min_version": "1.0.0"},
    "services": {"portfolio": "acme.services.PortfolioService"},
}


def manifest(configuration: dict[str, Any] | None = None) -> PluginManifest:
    data = copy.deepcopy(BASE)
    if configuration is not None:
        data["configuration"] = configuration
    return parse_manifest(data, "test")


SEED = {"required_credentials": ["username", "api_secret"], "optional_settings": ["region"]}


def test_schema_generated_from_the_seeds_lists() -> None:
    schema = generated_schema(manifest(SEED))
    assert schema == {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Acme configuration",
        "type": "object",
        "properties": {
            "credentials": {
                "type": "object",
                "properties": {
                    "username": {"type": "string", "minLength": 1},
                    # A secret by its name: never shown, typed as a password.
                    "api_secret": {
                        "type": "string",
                        "minLength": 1,
                        "writeOnly": True,
                        "format": "password",
                    },
                },
                "required": ["username", "api_secret"],
                "additionalProperties": False,
            },
            "settings": {
                "type": "object",
                "properties": {"region": {"description": "optional setting 'region'"}},
                "additionalProperties": False,
            },
        },
        "additionalProperties": False,
        "required": ["credentials"],
    }
    assert config_schema(manifest(SEED), None) == schema  # already closed everywhere


def test_generated_schema_checks_a_config_as_an_operator_expects() -> None:
    schema = config_schema(manifest(SEED), None)
    data, issues = validate_config(
        schema, {"credentials": {"username": "ana", "api_secret": "s3cret"}}
    )
    assert issues == [] and data["credentials"]["username"] == "ana"
    _, issues = validate_config(
        schema, {"credentials": {"username": ""}, "settings": {"colour": "red"}}
    )
    assert {(i.path, i.rule) for i in issues} == {
        ("$.credentials.api_secret", "required"),
        ("$.credentials.username", "minLength"),
        ("$.settings.colour", "additionalProperties"),
    }
    _, issues = validate_config(schema, {})
    assert [(i.path, i.rule) for i in issues] == [("$.credentials", "required")]


def test_a_plugin_without_configuration_takes_no_config() -> None:
    schema = config_schema(manifest(), None)
    assert schema["properties"] == {} and "required" not in schema
    assert validate_config(schema, {})[1] == []
    _, issues = validate_config(schema, {"anything": 1})
    assert [(i.path, i.rule) for i in issues] == [("$.anything", "additionalProperties")]
    # Settings only: no credentials section, nothing required.
    settings_only = generated_schema(manifest({"optional_settings": ["region"]}))
    assert set(settings_only["properties"]) == {"settings"} and "required" not in settings_only


def test_close_objects_closes_plain_objects_and_composed_ones_by_what_they_see() -> None:
    closed = close_objects(
        {
            "type": "object",
            "properties": {
                "a": {"type": "object", "properties": {"b": {"type": "string"}}},
                "open": {"type": "object", "additionalProperties": True},
                "map": {"type": "object", "patternProperties": {"^x": {}}},
                "both": {"allOf": [{"properties": {"c": {}}}, {"properties": {"d": {}}}]},
                "list": {"type": "array", "items": [{"type": "object"}]},
            },
        }
    )
    props = closed["properties"]
    assert closed["additionalProperties"] is False
    assert props["a"]["additionalProperties"] is False
    assert props["open"]["additionalProperties"] is True  # said so: left open
    assert "additionalProperties" not in props["map"]
    # A composed object is closed with unevaluatedProperties; its allOf parts stay open.
    assert "additionalProperties" not in props["both"]
    assert all("additionalProperties" not in part for part in props["both"]["allOf"])
    assert props["list"]["items"][0]["additionalProperties"] is False
    assert close_objects("text") == "text"


def test_invalid_config_error_names_the_plugin_and_its_first_issues() -> None:
    issues = [ConfigIssue(f"$.k{i}", "is wrong", "type") for i in range(7)]
    err = ConfigInvalid("acme", issues)
    assert err.plugin == "acme" and err.issues == issues
    assert str(err) == (
        "plugin 'acme': invalid config: " + "; ".join(f"$.k{i}: is wrong [type]" for i in range(5))
    )
    assert issues[0].as_dict() == {"path": "$.k0", "message": "is wrong", "rule": "type"}


def test_path_matches_a_secret_pattern_and_what_is_inside_it() -> None:
    item, any_key = ITEM, ANY_KEY
    assert path_matches(("a", "b"), ("a", "b"))
    assert path_matches(("a", "b"), ("a", "b", "c"))  # inside the secret: hidden too
    assert not path_matches(("a", "b"), ("a",))  # its parent is not
    assert not path_matches(("a",), ("b",))
    assert path_matches(("accounts", item, "password"), ("accounts", 3, "password"))
    assert not path_matches(("accounts", item, "password"), ("accounts", "x", "password"))
    assert path_matches(("tokens", any_key), ("tokens", "github"))
    assert not path_matches(("tokens", any_key), ("tokens", 0))
    assert json_path(("accounts", 3, "password")) == "$.accounts[3].password"


def test_references_outside_the_schema_are_named_where_they_are() -> None:
    schema = {
        "$defs": {"inner": {"type": "string"}},
        "allOf": [{"$ref": "#/$defs/inner"}, {"$ref": "https://example.invalid/s.json"}],
        "properties": {
            "a/b~c": {"$ref": "file:///etc/passwd"},
            "d": {"default": {"$ref": "https://example.invalid/data"}},  # data, not a schema
            # A value keyword first: the references after it are still looked at.
            "e": {"default": 1, "$ref": "https://example.invalid/e.json"},
            "f": {"$dynamicRef": "https://example.invalid/f.json"},
        },
    }
    assert unresolvable_refs(schema) == [
        ("https://example.invalid/s.json", "#/allOf/1/$ref"),
        ("file:///etc/passwd", "#/properties/a~1b~0c/$ref"),
        ("https://example.invalid/e.json", "#/properties/e/$ref"),
        ("https://example.invalid/f.json", "#/properties/f/$dynamicRef"),
    ]


def test_a_recursive_schema_whose_secret_sits_behind_a_reference() -> None:
    # The secret of the recursive node is found only through a second reference, after the
    # cycle: the repeated children are secret as a whole, the direct one by its path.
    schema = {
        "$defs": {
            "secret": {"type": "string", "writeOnly": True},
            "node": {
                "type": "object",
                "properties": {
                    "children": {"type": "array", "items": {"$ref": "#/$defs/node"}},
                    "auth": {"$ref": "#/$defs/secret"},
                },
            },
        },
        "type": "object",
        "properties": {"tree": {"$ref": "#/$defs/node"}},
    }
    assert sorted(secret_paths(schema), key=str) == sorted(
        [("tree", "auth"), ("tree", "children", ITEM)], key=str
    )


def test_the_public_schema_marks_secrets_wherever_declared_and_leaves_data_alone() -> None:
    token = {"$ref": "#/$defs/token"}
    schema: dict[str, Any] = {
        "$defs": {"token": {"type": "string", "format": "password"}},
        "type": "object",
        "properties": {
            "accounts": {"type": "array", "items": {"properties": {"key": dict(token)}}},
            # A default is data: a "password" key in it is not a field to mark.
            "cfg": {"type": "object", "default": {"properties": {"password": {}}}},
        },
        "allOf": [{"properties": {"pin": dict(token)}}],
    }
    original = copy.deepcopy(schema)
    shown = public_schema(schema)
    assert schema == original  # a copy is marked, not the plugin's schema
    assert shown["properties"]["accounts"]["items"]["properties"]["key"]["writeOnly"] is True
    assert shown["allOf"][0]["properties"]["pin"]["writeOnly"] is True
    assert shown["properties"]["cfg"]["default"] == {"properties": {"password": {}}}


def _schema_file_error(root: Path | None, source: str = "config_schema.json") -> str:
    with pytest.raises(SchemaError) as info:
        config_schema(manifest({"schema": source}), root)
    return str(info.value)


def test_a_schema_file_is_read_from_the_plugins_folder(tmp_path: Path) -> None:
    (tmp_path / "config_schema.json").write_text(
        json.dumps({"type": "object", "properties": {"region": {"type": "string"}}})
    )
    schema = config_schema(manifest({"schema": "config_schema.json"}), tmp_path)
    assert schema["properties"]["region"] == {"type": "string"}
    assert schema["additionalProperties"] is False


def test_a_schema_file_that_cannot_be_used_says_why_and_where(tmp_path: Path, settings) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "config_schema.json"
    assert _schema_file_error(None) == (
        "configuration.schema names the file 'config_schema.json' but the plugin has no "
        "folder to read it from"
    )
    assert _schema_file_error(tmp_path, "../elsewhere.json") == (
        "configuration.schema '../elsewhere.json' points outside the plugin folder"
    )
    assert _schema_file_error(tmp_path).startswith(f"configuration.schema file {path} ")
    path.write_text("{not json")
    assert _schema_file_error(tmp_path).startswith(f"configuration.schema file {path}: ")
    path.write_text("[1, 2]")
    assert _schema_file_error(tmp_path) == (
        f"configuration.schema file {path} must hold a JSON object"
    )
    path.write_text(json.dumps({"type": "object", "description": "x" * 200}))
    settings.PLUGINS_MAX_SCHEMA_BYTES = 64
    assert "(PLUGINS_MAX_SCHEMA_BYTES)" in _schema_file_error(tmp_path)
    settings.PLUGINS_MAX_SCHEMA_BYTES = 1 << 20
    path.unlink()
    outside = tmp_path.parent / f"{tmp_path.name}-outside.json"
    outside.write_text(json.dumps({"type": "object"}))
    path.symlink_to(outside)  # a link out of the folder is outside it
    assert _schema_file_error(tmp_path).endswith("points outside the plugin folder")


@pytest.mark.parametrize(
    ("field", "name", "secret"),
    [
        ({"type": "string", "writeOnly": True}, "", True),
        ({"type": "string", "format": "password"}, "", True),
        ({"type": "string", "x-secret": True}, "", True),
        ({"type": "string", "format": "email"}, "", False),
        ({"type": "string"}, "api_token", True),  # named like a secret
        ({"type": "string"}, "region", False),
        ({"type": "object", "properties": {"user": {}}}, "credentials", False),  # a section
        ({"allOf": [{"properties": {"user": {}}}]}, "credentials", False),
        ({"anyOf": [{"properties": {"user": {}}}]}, "credentials", False),
        ({"oneOf": [{"properties": {"user": {}}}]}, "credentials", False),
        ({"oneOf": [{"properties": {}}]}, "token", True),  # no named fields: a value
        ({"type": "string"}, "", False),
    ],
)
def test_what_counts_as_a_secret_field(field: dict[str, Any], name: str, secret: bool) -> None:
    from stonks_plugins.config.schema import is_secret

    assert is_secret(field, name) is secret


def test_a_section_through_a_reference_is_a_section_not_a_secret() -> None:
    schema = {
        "$defs": {"login": {"type": "object", "properties": {"user": {"type": "string"}}}},
        "type": "object",
        "properties": {
            "credentials": {"oneOf": [{"$ref": "#/$defs/login"}]},
            "token": {"oneOf": [{"$ref": "#/$defs/nothing-here"}]},
        },
    }
    paths = set(secret_paths(schema))
    assert ("credentials",) not in paths and ("token",) in paths


def test_what_an_invalid_config_says() -> None:
    assert validate_config({}, [1]) == (
        [1],
        [ConfigIssue("$", "must be a JSON object, not list", "type")],
    )
    closed = {"type": "object", "additionalProperties": False}
    _, [issue] = validate_config(closed, {"a": 1})
    assert issue == ConfigIssue(
        "$.a", "unknown key; expected one of: (none)", "additionalProperties"
    )
    two = {"type": "object", "properties": {"b": {}, "a": {}}, "additionalProperties": False}
    _, [issue] = validate_config(two, {"c": 1})
    assert issue.message == "unknown key; expected one of: a, b"
    secret = {
        "type": "object",
        "properties": {"password": {"type": "string", "minLength": 8}, "n": {"maximum": 3}},
    }
    _, issues = validate_config(secret, {"password": "short", "n": 5})
    assert [(i.path, i.message) for i in issues] == [
        ("$.n", "5 is greater than the maximum of 3"),
        ("$.password", "does not satisfy minLength=8 (value hidden: secret field)"),
    ]
