"""The msgspec fast path: its Structs mirror the published schema constraint by constraint,
it hands whatever it cannot express to jsonschema, and what it builds is the same model.

The differential test (test_manifest_differential.py) checks the same thing by example."""

from __future__ import annotations

import copy
import hashlib
import json
import pickle
from pathlib import Path
from typing import Any

import msgspec
import msgspec.inspect as mi
import pytest

from stonks_overwatch.core.service_types import ServiceType
from stonks_plugins.discovery import discover
from stonks_plugins.discovery.candidate import DIGEST_FROM_MANIFEST, RAW_FROM_MANIFEST
from stonks_plugins.errors import ReasonCode
from stonks_plugins.manifest import (
    ManifestError,
    PluginManifest,
    load_manifest_file,
    manifest_schema,
    parse_manifest,
    validate_manifest,
)
from stonks_plugins.manifest.model import ManifestDocument, ecma_pattern
from stonks_plugins.manifest.validation import fast_parse_manifest

FULL: dict[str, Any] = {
    "plugin": {
        "name": "acme-broker",
        "version": "1.2.3",
        "type": "broker",
        "display_name": "Acme",
        "description": "Acme broker",
        "author": "Acme B.V.",
        "license": "MIT",
        "homepage": "https://acme.example",
    },
    "api": {"min_version": "1.0.0", "max_version": "2.0.0", "interfaces": ["A", "B"]},
    "dependencies": {
        "python": ">=3.11",
        "stonks-overwatch-core": ">=2.0.0,<3.0.0",
        "plugins": {"other-plugin": ">=1.0"},
    },
    "capabilities": {
        "services": ["portfolio", "fee"],
        "features": ["csv_import"],
        "supported_markets": ["XAMS"],
        "supported_currencies": ["EUR", "USD"],
    },
    "configuration": {
        "config_class": "acme.config.AcmeConfig",
        "required_credentials": ["username"],
        "optional_settings": ["timeout"],
        "schema": {"type": "object", "properties": {"timeout": {"type": "integer"}}},
    },
    "services": {"portfolio": "acme.services.Portfolio", "fee": "acme.services.Fee"},
    "entry_points": {"main": "acme.plugin:AcmePlugin", "config": "acme.config:AcmeConfig"},
    "isolation": "process",
    "permissions": ["network:api.acme.example:443"],
    "integrity": {"acme/__init__.py": "0" * 64},
}


def encoded(data: Any) -> bytes:
    return json.dumps(data, indent=2).encode()


# -- the Structs mirror the schema ------------------------------------------------------------


def _resolve(node: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    if ref is None:
        return node
    name = ref.rsplit("/", 1)[1]
    resolved: dict[str, Any] = manifest_schema()["definitions"][name]
    return resolved


def _check_string(node: dict[str, Any], t: Any, where: str) -> None:
    # A pattern is checked by msgspec (StrType.pattern) or deferred to the document's one
    # combined check (model.deferred: recorded as extra_json_schema); never both, never none.
    deferred = t.extra_json_schema.get("pattern") if isinstance(t, mi.Metadata) else None
    t = t.type if isinstance(t, mi.Metadata) else t
    assert isinstance(t, mi.StrType), f"{where}: {t}"
    assert t.pattern is None or deferred is None, where
    pattern = node.get("pattern")
    assert (t.pattern or deferred) == (ecma_pattern(pattern) if pattern else None), where
    assert t.min_length == node.get("minLength"), where
    assert t.max_length == node.get("maxLength"), where


def _check(node: dict[str, Any], t: Any, where: str) -> None:
    node = _resolve(node)
    if "enum" in node:
        if isinstance(t, mi.EnumType):
            assert {m.value for m in t.cls} == set(node["enum"]), where
        else:
            assert isinstance(t, mi.LiteralType), f"{where}: {t}"
            assert set(t.values) == set(node["enum"]), where
        return
    kind = node.get("type")
    if kind == "string":
        _check_string(node, t, where)
    elif kind == "boolean":
        assert isinstance(t, mi.BoolType), f"{where}: {t}"
    elif kind == "integer":
        assert isinstance(t, mi.IntType), f"{where}: {t}"
        assert t.ge == node.get("minimum"), where
        assert t.le == node.get("maximum"), where
    elif kind == "array":
        assert isinstance(t, mi.VarTupleType), f"{where}: {t}"
        _check(node["items"], t.item_type, f"{where}[]")
    elif kind == "object" and node.get("additionalProperties") is False:
        assert isinstance(t, mi.StructType), f"{where}: {t}"
        assert t.forbid_unknown_fields, where
        fields = {f.name: f for f in t.fields}
        assert set(fields) == set(node["properties"]), where
        assert {n for n, f in fields.items() if f.required} == set(node.get("required", ())), where
        for name, sub in node["properties"].items():
            _check(sub, fields[name].type, f"{where}.{name}")
    elif kind == "object":
        assert isinstance(t, mi.DictType), f"{where}: {t}"
        if "propertyNames" in node:
            _check(node["propertyNames"], t.key_type, f"{where}<key>")
        else:
            assert isinstance(t.key_type, mi.StrType) and t.key_type.pattern is None, where
        _check(node["additionalProperties"], t.value_type, f"{where}.*")
    elif kind == ["object", "string"]:
        assert isinstance(t, mi.UnionType), f"{where}: {t}"
        kinds = {type(x) for x in t.types}
        assert kinds == {mi.DictType, mi.StrType}, where
    else:
        raise AssertionError(f"{where}: the test does not know schema node {node}")


def test_structs_mirror_every_constraint_of_the_schema() -> None:
    schema = manifest_schema()
    doc = mi.type_info(ManifestDocument)
    assert isinstance(doc, mi.StructType) and doc.forbid_unknown_fields
    assert schema["additionalProperties"] is False
    fields = {f.encode_name: f for f in doc.fields}
    assert set(fields) == set(schema["properties"])
    assert {n for n, f in fields.items() if f.required} == set(schema["required"])
    for name, node in schema["properties"].items():
        if name == "dependencies":  # checked below: msgspec holds it as one union
            continue
        _check(node, fields[name].type, f"$.{name}")
    deps = schema["properties"]["dependencies"]
    assert set(deps["properties"]) == {"python", "plugins"}
    union = fields["dependencies"].type.value_type
    assert isinstance(union, mi.UnionType)
    plugins = next(t for t in union.types if isinstance(t, mi.DictType))
    _check(deps["properties"]["plugins"], plugins, "$.dependencies.plugins")


def test_service_type_enum_is_the_schema_enum() -> None:
    assert {s.value for s in ServiceType} == set(
        manifest_schema()["definitions"]["service_type"]["enum"]
    )


def test_ecma_pattern_anchors_at_the_very_end() -> None:
    assert ecma_pattern("^a$") == r"^a\Z"
    assert ecma_pattern(r"^a\$") == r"^a\$"
    assert ecma_pattern("^https?://") == "^https?://"


# -- behaviour on both paths -------------------------------------------------------------------


def test_full_manifest_takes_the_fast_path_and_equals_the_slow_one() -> None:
    fast = fast_parse_manifest(encoded(FULL), "test")
    assert fast is not None
    slow = parse_manifest(json.loads(encoded(FULL)), "test")
    assert fast == slow
    assert fast.dependencies == {"python": ">=3.11", "stonks-overwatch-core": ">=2.0.0,<3.0.0"}
    assert fast.plugin_dependencies == {"other-plugin": ">=1.0"}
    assert fast.services == {
        ServiceType.PORTFOLIO: "acme.services.Portfolio",
        ServiceType.FEE: "acme.services.Fee",
    }
    assert all(type(s) is ServiceType for s in fast.capabilities.services)
    assert fast.isolation == "process" and fast.permissions == ("network:api.acme.example:443",)
    assert fast.configuration.schema == FULL["configuration"]["schema"]
    assert fast.raw == FULL


def test_x_keys_are_dropped_where_allowed_and_build_the_same_model() -> None:
    data = copy.deepcopy(FULL)
    data["x-tool"] = {"anything": [1, 2]}
    data["plugin"]["x-note"] = "kept"
    data["capabilities"]["x-extra"] = True
    fast = fast_parse_manifest(encoded(data), "test")
    assert fast is not None  # the closed Structs refuse them; the fallback conversion does not
    assert validate_manifest(data) == []
    assert fast == parse_manifest(data, "test") == parse_manifest(FULL, "test")
    assert fast.raw == data
    assert fast.raw["plugin"]["x-note"] == "kept"


def test_x_key_where_the_schema_allows_none_is_named() -> None:
    data = {**FULL, "api": {**FULL["api"], "x-a": 1}}
    assert fast_parse_manifest(encoded(data), "test") is None
    found = {i.path: i.message for i in validate_manifest(data)}
    assert list(found) == ["$.api.x-a"]
    assert "unknown key" in found["$.api.x-a"]


@pytest.mark.parametrize(
    ("section", "key", "value"),
    [
        ("plugin", "name", "acme-broker\n"),
        ("plugin", "version", "1.2.3\n"),
        ("configuration", "config_class", "acme.config.AcmeConfig\n"),
        ("entry_points", "main", "acme.plugin:AcmePlugin\n"),
    ],
)
def test_a_trailing_newline_does_not_match_a_pattern(section: str, key: str, value: str) -> None:
    # ECMA-262 "$" (JSON Schema) does not match before a final newline; Python's "$" does.
    data = copy.deepcopy(FULL)
    data[section][key] = value
    assert fast_parse_manifest(encoded(data), "test") is None
    found = {i.path: i.message for i in validate_manifest(data)}
    assert f"$.{section}.{key}" in found
    assert "does not match the expected format" in found[f"$.{section}.{key}"]


_DEFERRED_FIELDS = [
    ("plugin", "name"),
    ("plugin", "version"),
    ("api", "min_version"),
    ("api", "max_version"),
    ("configuration", "config_class"),
    ("services", "fee"),
    ("services", "portfolio"),
    ("entry_points", "main"),
    ("entry_points", "config"),
    ("plugin", "homepage"),
]
_BAD_VALUES = [
    "",
    "\n",
    "x\ny",
    "a\x1fb",
    "Bad Value",
    "1.0\n",
    "a.b\n",
    "a.b:c\nd.e:f",
    "ftp://x",
]


@pytest.mark.parametrize(("section", "key"), _DEFERRED_FIELDS)
@pytest.mark.parametrize("value", _BAD_VALUES)
def test_every_deferred_pattern_is_enforced_on_the_fast_path(
    section: str, key: str, value: str
) -> None:
    # The patterns checked once per document (model.deferred) must reject, field by field,
    # what jsonschema rejects, including the separators the combined check joins with.
    data = copy.deepcopy(FULL)
    data[section][key] = value
    assert fast_parse_manifest(encoded(data), "test") is None
    assert f"$.{section}.{key}" in {i.path for i in validate_manifest(data)}


@pytest.mark.parametrize(
    ("change", "path"),
    [
        (lambda d: d["api"].update(max_version=None), "$.api.max_version"),
        (lambda d: d["configuration"].update(schema=None), "$.configuration.schema"),
        (lambda d: d["entry_points"].update(main=None), "$.entry_points.main"),
        (lambda d: d["capabilities"].update(features=["a", "a"]), "$.capabilities.features"),
        (lambda d: d["capabilities"].update(services=["fee", "fee"]), "$.capabilities.services"),
        (lambda d: d.update(permissions=["x", "x"]), "$.permissions"),
        (lambda d: d["api"].update(interfaces=[""]), "$.api.interfaces[0]"),
        (lambda d: d["dependencies"].update(plugins=">=1"), "$.dependencies.plugins"),
        (lambda d: d["dependencies"].update(python={"a": "1"}), "$.dependencies.python"),
        (lambda d: d["plugin"].update(display_name="x" * 201), "$.plugin.display_name"),
    ],
)
def test_fast_path_rejects_what_the_schema_rejects(change: Any, path: str) -> None:
    data = copy.deepcopy(FULL)
    change(data)
    assert fast_parse_manifest(encoded(data), "test") is None
    assert path in {i.path for i in validate_manifest(data)}


def test_lengths_count_code_points_on_both_paths() -> None:
    data = copy.deepcopy(FULL)
    data["plugin"]["display_name"] = "\U0001f600" * 200
    assert fast_parse_manifest(encoded(data), "test") is not None
    assert validate_manifest(data) == []


def test_rule_failure_on_the_fast_path_raises_every_issue() -> None:
    data = copy.deepcopy(FULL)
    data["api"]["max_version"] = "0.5.0"
    data["dependencies"]["requests"] = "~~1"
    with pytest.raises(ManifestError) as err:
        fast_parse_manifest(encoded(data), "src")
    assert err.value.code is ReasonCode.MANIFEST_INVALID
    assert [i.path for i in err.value.issues] == ["$.api.max_version", "$.dependencies.requests"]
    assert err.value.issues == validate_manifest(data)


def test_a_manifest_decoded_again_after_discovery_is_not_judged_again() -> None:
    """A discovered manifest is kept as its bytes and decoded again on use (a sync decodes
    every one); the rules judged those bytes at discovery, so the decode skips them."""
    data = copy.deepcopy(FULL)
    data["api"]["max_version"] = "0.5.0"
    again = fast_parse_manifest(encoded(data), "src", checked=True)
    assert again is not None and again.raw["api"]["max_version"] == "0.5.0"


def test_byte_order_mark_is_accepted_on_the_fast_path(tmp_path: Path) -> None:
    path = tmp_path / "plugin_manifest.json"
    path.write_bytes(b"\xef\xbb\xbf" + encoded(FULL))
    assert fast_parse_manifest(path.read_bytes(), "test") is not None
    manifest = load_manifest_file(path)
    assert manifest.raw == FULL


def test_manifest_survives_pickle_and_copy_with_its_raw() -> None:
    data = copy.deepcopy(FULL)
    data["x-tool"] = 1
    for manifest in (fast_parse_manifest(encoded(FULL), "t"), parse_manifest(data, "t")):
        assert manifest is not None
        for clone in (
            pickle.loads(pickle.dumps(manifest)),
            copy.copy(manifest),
            copy.deepcopy(manifest),
        ):
            assert clone == manifest and clone.raw == manifest.raw


def test_manifest_built_field_by_field_has_a_dict_form() -> None:
    m = parse_manifest(FULL, "t")
    built = PluginManifest(
        plugin=m.plugin, api=m.api, requires={"python": ">=3.11", "plugins": {"a": "1"}}
    )
    assert built.dependencies == {"python": ">=3.11"}
    assert built.plugin_dependencies == {"a": "1"}
    assert built.raw["plugin"]["name"] == "acme-broker"
    assert built.raw["dependencies"] == {"python": ">=3.11", "plugins": {"a": "1"}}
    assert isinstance(built.raw["api"]["interfaces"], list)


def test_discovery_leaves_raw_and_root_unbuilt_until_asked(tmp_path: Path) -> None:
    folder = tmp_path / "acme-broker"
    folder.mkdir()
    (folder / "plugin_manifest.json").write_bytes(encoded(FULL))
    cand = discover([tmp_path], entry_points=False).by_name()["acme-broker"]
    assert cand.manifest is not None
    assert cand.stored("raw") is RAW_FROM_MANIFEST
    assert cand.stored("root") == str(folder)
    assert "_raw" not in cand.manifest.__dict__
    moved = cand.evolve(rank=(9,))
    assert moved.stored("raw") is RAW_FROM_MANIFEST and moved.rank == (9,)
    assert moved != cand and moved.evolve(rank=cand.rank) == cand  # compared, not parsed
    assert cand.stored("raw") is RAW_FROM_MANIFEST and "_raw" not in cand.manifest.__dict__
    clone = pickle.loads(pickle.dumps(cand))
    assert clone.stored("raw") is RAW_FROM_MANIFEST
    assert clone.raw == FULL and clone.root == folder
    # The fingerprint too: the file's SHA-256, computed on first read, pickled or not.
    assert cand.stored("fingerprint") is DIGEST_FROM_MANIFEST
    expected = hashlib.sha256(encoded(FULL)).hexdigest()
    assert clone.fingerprint == expected and cand.fingerprint == expected
    assert cand.root == folder and isinstance(cand.root, Path)
    assert cand.raw == FULL  # parsed now, once
    assert cand.raw is cand.manifest.raw
    assert clone == cand == moved.evolve(rank=cand.rank)


def test_msgspec_and_the_model_classes_are_what_the_package_exports() -> None:
    # The public model is a frozen msgspec Struct: immutable like the dataclasses it replaces.
    m = parse_manifest(FULL, "t")
    assert isinstance(m, msgspec.Struct)
    with pytest.raises(AttributeError):
        m.isolation = "in_process"  # type: ignore[misc]


_TOKENS = ["ab", "Z_", "x0", "1", "0", ".", ".", ":", "-", "+", "\n", " ", "é", "http://"]
"""Pieces of strings: words, digits and every separator a manifest pattern names or
refuses."""
_VALID = ["acme-broker", "1.2.3", "2.0rc1", "acme.config.Cfg", "a.b:C", "a_b.c0.D", "https://x"]


@pytest.mark.parametrize(("section", "key"), _DEFERRED_FIELDS)
def test_the_combined_check_accepts_exactly_what_the_schema_does(section: str, key: str) -> None:
    # The fast path checks every patterned string in one regex call, with its own cheaper,
    # non-backtracking spelling of each pattern. Seeded random strings over the characters
    # that matter, in each patterned field: msgspec accepts exactly what jsonschema accepts.
    import random

    from stonks_plugins.manifest.validation import _fast_convert, _schema_issues

    rng = random.Random(f"{section}.{key}")
    values = {"acme.x", "a:b", "1", "http://x", "a.b.", "a..b", "a.1b", ".a", "a:b:c", "1.0a1"}
    while len(values) < 600:  # a valid value of some field, then up to three random edits
        value = rng.choice(_VALID)
        for _ in range(rng.randint(0, 3)):
            at = rng.randint(0, len(value))
            cut = at + rng.randint(0, 2)
            value = value[:at] + rng.choice(["", *_TOKENS]) + value[cut:]
        values.add(value)
    accepted = 0
    for value in sorted(values):
        data = copy.deepcopy(FULL)
        data[section][key] = value
        schema_ok = not _schema_issues(data)
        assert (_fast_convert(data) is not None) is schema_ok, (section, key, value)
        accepted += schema_ok
    assert accepted >= 5  # the strings exercise acceptance too, not only refusal


def test_version_pattern_has_an_equivalent_that_cannot_backtrack() -> None:
    # model._VERSION is the fast path's spelling of VERSION_PATTERN: equal on every string
    # of up to four characters over digits, a letter, and each separator the pattern names.
    import itertools
    import re

    from stonks_plugins.manifest import model

    published = re.compile(ecma_pattern(model.VERSION_PATTERN)).search
    fast = re.compile(model._VERSION).fullmatch
    for n in range(5):
        for chars in itertools.product("0a.+-_", repeat=n):
            text = "".join(chars)
            assert (published(text) is None) is (fast(text) is None), text
