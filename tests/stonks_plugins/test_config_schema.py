"""Config schemas without a database: the schema generated from the seed's
``required_credentials`` / ``optional_settings``, closing objects to unknown keys, and what an
invalid config says (stonks_plugins.config.schema and .validation)."""

from __future__ import annotations

import copy
from typing import Any

from stonks_plugins.config.schema import (
    ANY_KEY,
    ITEM,
    close_objects,
    config_schema,
    generated_schema,
    json_path,
    path_matches,
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
