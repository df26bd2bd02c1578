"""The manifest standard: every validation error names the JSON path of the bad field."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from stonks_overwatch.core.service_types import ServiceType
from stonks_plugins.errors import ReasonCode
from stonks_plugins.manifest import (
    ManifestError,
    PluginManifest,
    load_manifest_file,
    manifest_schema,
    parse_manifest,
    validate_manifest,
)
from stonks_plugins.manifest.texts import language_candidates, localized, translations_of
from stonks_plugins.manifest.validation import read_manifest_json

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "plugins"
BUNDLED = sorted(p.parent for p in (ROOT / "plugins").glob("*/plugin_manifest.json"))

VALID: dict[str, Any] = {
    "plugin": {"name": "acme-broker", "version": "1.2.3", "type": "broker"},
    "api": {"min_version": "1.0.0", "max_version": "2.0.0"},
    "dependencies": {"python": ">=3.11", "stonks-overwatch-core": ">=2.0.0,<3.0.0"},
    "capabilities": {"services": ["portfolio", "transaction"]},
    "services": {
        "portfolio": "acme.services.PortfolioService",
        "transaction": "acme.services.TransactionService",
    },
}


def valid(**changes: Any) -> dict[str, Any]:
    """A deep copy of VALID with dotted-path changes applied (value None deletes the key)."""
    data = copy.deepcopy(VALID)
    for dotted, value in changes.items():
        *parents, last = dotted.split("__")
        node = data
        for key in parents:
            node = node.setdefault(key, {})
        if value is None:
            node.pop(last, None)
        else:
            node[last] = value
    return data


def paths(data: Any) -> dict[str, str]:
    return {i.path: i.message for i in validate_manifest(data)}


def test_valid_manifest_builds_the_typed_model() -> None:
    assert validate_manifest(VALID) == []
    m = parse_manifest(VALID, "test")
    assert isinstance(m, PluginManifest)
    assert (m.name, m.version, m.type) == ("acme-broker", "1.2.3", "broker")
    assert m.display_name == "acme-broker"  # falls back to the name
    assert m.api.min_version == "1.0.0" and m.api.max_version == "2.0.0"
    assert m.services == {
        ServiceType.PORTFOLIO: "acme.services.PortfolioService",
        ServiceType.TRANSACTION: "acme.services.TransactionService",
    }
    assert m.capabilities.services == (ServiceType.PORTFOLIO, ServiceType.TRANSACTION)
    assert m.dependencies["stonks-overwatch-core"] == ">=2.0.0,<3.0.0"
    assert m.isolation == "in_process"


def test_plugin_dependencies_are_split_from_distributions() -> None:
    m = parse_manifest(valid(dependencies__plugins={"other-plugin": ">=1.0"}), "test")
    assert m.plugin_dependencies == {"other-plugin": ">=1.0"}
    assert "plugins" not in m.dependencies


def test_x_keys_are_free_for_tools() -> None:
    data = valid(**{"x-tool": {"anything": 1}})
    data["plugin"]["x-note"] = "kept"
    assert validate_manifest(data) == []
    assert parse_manifest(data, "test").raw["x-tool"] == {"anything": 1}


def test_corpus_schema_violation_names_every_bad_field() -> None:
    data = json.loads((FIXTURES / "schema-violation" / "plugin_manifest.json").read_text())
    found = paths(data)
    assert set(found) == {"$.plugin.version", "$.plugin.type", "$.colour"}
    assert "'one.two'" in found["$.plugin.version"]
    assert "'banana'" in found["$.plugin.type"] and "broker" in found["$.plugin.type"]
    assert "unknown key" in found["$.colour"]


def test_parse_raises_manifest_invalid_listing_every_issue() -> None:
    path = FIXTURES / "schema-violation" / "plugin_manifest.json"
    with pytest.raises(ManifestError) as err:
        load_manifest_file(path)
    assert err.value.code is ReasonCode.MANIFEST_INVALID
    assert len(err.value.issues) == 3
    summary = str(err.value)
    assert str(path) in summary
    for where in ("$.plugin.version", "$.plugin.type", "$.colour"):
        assert where in summary


def test_unreadable_json_says_where_the_syntax_error_is() -> None:
    with pytest.raises(ManifestError) as err:
        read_manifest_json(FIXTURES / "unreadable-json" / "plugin_manifest.json")
    assert err.value.code is ReasonCode.MANIFEST_UNREADABLE
    assert "invalid JSON at line 6, column 3" in str(err.value)


def test_missing_manifest_file_is_unreadable(tmp_path: Path) -> None:
    with pytest.raises(ManifestError) as err:
        read_manifest_json(tmp_path / "plugin_manifest.json")
    assert err.value.code is ReasonCode.MANIFEST_UNREADABLE
    assert "no plugin_manifest.json found" in str(err.value)


def test_non_utf8_manifest_is_unreadable(tmp_path: Path) -> None:
    path = tmp_path / "plugin_manifest.json"
    path.write_bytes(b'{"plugin": "\xff\xfe"}')
    with pytest.raises(ManifestError) as err:
        read_manifest_json(path)
    assert err.value.code is ReasonCode.MANIFEST_UNREADABLE


def test_missing_required_keys_are_named_one_by_one() -> None:
    found = paths({"plugin": {"name": "x"}})
    assert found["$.api"] == "is required but missing"
    assert found["$.plugin.version"] == "is required but missing"
    assert found["$.plugin.type"] == "is required but missing"


@pytest.mark.parametrize(
    ("data", "path", "fragment"),
    [
        (valid(plugin__name="Bad Name!"), "$.plugin.name", "does not match"),
        (valid(api__min_version=1), "$.api.min_version", "is not of type 'string'"),
        (valid(api__colour="red"), "$.api.colour", "unknown key"),
        (
            valid(capabilities__services=["portfolio", "teleport"]),
            "$.capabilities.services[1]",
            "'teleport'",
        ),
        (valid(services__portfolio="not a dotted path"), "$.services.portfolio", "does not match"),
        (valid(entry_points__main="acme.plugin.Cls"), "$.entry_points.main", "does not match"),
        (valid(isolation="container"), "$.isolation", "'container'"),
        (valid(integrity={"a.py": "abc"}), "$.integrity['a.py']", "does not match"),
        (valid(plugin__homepage="ftp://x"), "$.plugin.homepage", "does not match"),
    ],
    ids=lambda v: v if isinstance(v, str) and v.startswith("$") else "",
)
def test_schema_errors_name_their_json_path(data: Any, path: str, fragment: str) -> None:
    found = paths(data)
    assert path in found, found
    assert fragment in found[path]


def test_unknown_service_key_is_reported_under_services() -> None:
    found = paths(valid(services__teleport="acme.services.Teleport"))
    assert any(p.startswith("$.services") for p in found), found
    assert any("teleport" in m for m in found.values())


@pytest.mark.parametrize(
    ("data", "path", "fragment"),
    [
        (valid(plugin__version="1.0.0-not-pep-440"), "$.plugin.version", "is not a valid version"),
        (valid(api__max_version="0.5.0"), "$.api.max_version", "lower than min_version"),
        (
            valid(dependencies__requests="~~1"),
            "$.dependencies.requests",
            "not a valid version specifier",
        ),
        (
            valid(dependencies__plugins={"other": "bogus"}),
            "$.dependencies.plugins.other",
            "not a valid version specifier",
        ),
        (
            valid(services=None, capabilities=None),
            "$.services",
            "a broker plugin must name its service classes here "
            '(e.g. {"portfolio": "mypkg.services.PortfolioService"}) '
            "or a plugin class in entry_points.main",
        ),
        (
            valid(capabilities__services=["portfolio", "transaction", "fee"]),
            "$.capabilities.services[2]",
            "declares the 'fee' service",
        ),
    ],
    ids=lambda v: v if isinstance(v, str) and v.startswith("$") else "",
)
def test_rule_errors_name_their_json_path(data: Any, path: str, fragment: str) -> None:
    found = paths(data)
    assert path in found, found
    assert fragment in found[path]


def test_an_api_range_of_one_version_is_valid() -> None:
    # min_version == max_version pins one API version: a plugin author may do that; it is
    # not "lower than min_version". The same version written two ways is equal too.
    for high in ("1.0.0", "1.0"):
        data = valid(api__min_version="1.0.0", api__max_version=high)
        assert validate_manifest(data) == [], high
        assert parse_manifest(data, "test").api.max_version == high


def test_a_string_may_repeat_across_lists_but_not_within_one() -> None:
    data = valid(
        capabilities__features=["EUR", "real_time_data"],
        capabilities__supported_currencies=["EUR", "USD"],
    )
    assert validate_manifest(data) == []
    assert parse_manifest(data, "test").capabilities.supported_currencies == ("EUR", "USD")
    found = paths(valid(capabilities__supported_currencies=["EUR", "USD", "EUR"]))
    assert "non-unique" in found["$.capabilities.supported_currencies"]


def test_a_manifest_built_from_a_dict_keeps_that_dict_as_raw() -> None:
    data = valid()
    data["x-tool"] = {"anything": 1}  # an extension: not in the model, kept in raw
    manifest = PluginManifest.from_dict(data)
    assert manifest.name == "acme-broker"
    assert manifest.raw["x-tool"] == {"anything": 1}


def test_every_rule_broken_is_reported_and_pre_releases_are_versions() -> None:
    assert validate_manifest(valid(plugin__version="1.0rc1")) == []  # PEP 440, not plain
    found = paths(
        valid(plugin__version="1.0.0-not-pep-440", dependencies__plugins={"other": "bogus"})
    )
    assert set(found) == {"$.plugin.version", "$.dependencies.plugins.other"}
    assert "'1.0.0-not-pep-440' is not a valid version" in found["$.plugin.version"]


def test_parsing_a_manifest_that_breaks_a_rule_raises() -> None:
    with pytest.raises(ManifestError) as err:
        parse_manifest(valid(api__max_version="0.5.0"), "test")
    assert err.value.code is ReasonCode.MANIFEST_INVALID
    assert [i.path for i in err.value.issues] == ["$.api.max_version"]


def test_entry_point_main_alone_is_a_complete_broker() -> None:
    data = valid(services=None, entry_points={"main": "acme.plugin:AcmePlugin"})
    assert validate_manifest(data) == []


def test_non_object_manifest_is_invalid_not_a_crash() -> None:
    for data in ([], "plugin", 3, None):
        issues = validate_manifest(data)
        assert issues and issues[0].path == "$"


def test_issue_renders_path_and_message() -> None:
    issue = validate_manifest(valid(api__colour="red"))[0]
    assert str(issue).startswith("$.api.colour: ")
    assert issue.as_dict() == {"path": "$.api.colour", "message": issue.message}


def test_published_schema_is_a_valid_draft7_schema() -> None:
    from jsonschema import Draft7Validator

    Draft7Validator.check_schema(manifest_schema())
    assert manifest_schema()["required"] == ["plugin", "api"]


@pytest.mark.parametrize("folder", BUNDLED, ids=lambda p: p.name)
def test_bundled_plugin_manifests_are_valid(folder: Path) -> None:
    manifest = load_manifest_file(folder / "plugin_manifest.json")
    assert manifest.type in ("broker", "aggregator", "view", "middleware")


@pytest.mark.parametrize(
    "folder",
    [
        "healthy-fixture",
        "duplicate-a",
        "collide-one",
        "import-error",
        "incompatible-api",
        "incompatible-core",
        "missing-dependency",
    ],
)
def test_corpus_manifests_that_should_parse_do(folder: str) -> None:
    load_manifest_file(FIXTURES / folder / "plugin_manifest.json")


# -- display name and description in the reader's language (manifest.texts) ------------------
# ``plugin.translations``: the full language code first, then its base, each text falling
# back on its own to the manifest's English.

DEFAULTS = {"display_name": "Acme Broker", "description": "Reads Acme's exports"}
TRANSLATIONS: dict[str, Any] = {
    "nl": {"display_name": "Acme Makelaar", "description": "Leest de exports van Acme"},
    "nl-be": {"display_name": "Acme Makelaar (BE)", "description": ""},  # empty: not a text
    "pt": {"display_name": "Corretora Acme"},
    "es": "not an object",
}


@pytest.mark.parametrize(
    ("language", "keys"),
    [
        (None, []),
        ("", []),
        ("en", []),  # the manifest's own language
        ("en-GB", []),
        ("nl", ["nl"]),
        ("nl-BE", ["nl-be", "nl"]),
        ("pt_BR", ["pt-br", "pt"]),
        ("zh-Hans-CN", ["zh-hans-cn", "zh"]),
    ],
)
def test_language_candidates(language: str | None, keys: list[str]) -> None:
    assert language_candidates(language) == keys


def test_the_full_code_wins_and_each_text_falls_back_on_its_own() -> None:
    assert localized(TRANSLATIONS, "nl-BE", **DEFAULTS) == {
        "display_name": "Acme Makelaar (BE)",
        "description": "Leest de exports van Acme",  # nl-be's is empty: nl's
    }
    assert localized(TRANSLATIONS, "nl", **DEFAULTS) == TRANSLATIONS["nl"]
    assert localized(TRANSLATIONS, "pt-BR", **DEFAULTS) == {
        "display_name": "Corretora Acme",
        "description": "Reads Acme's exports",  # no Portuguese description: the English
    }


@pytest.mark.parametrize("language", ["es", "fr", "en", None])
def test_no_usable_translation_gives_the_manifests_own_texts(language: str | None) -> None:
    assert localized(TRANSLATIONS, language, **DEFAULTS) == DEFAULTS
    assert localized({}, language, **DEFAULTS) == DEFAULTS
    assert localized(None, language, **DEFAULTS) == DEFAULTS


def test_only_the_texts_asked_for_are_given() -> None:
    assert localized(TRANSLATIONS, "nl", display_name="Acme") == {"display_name": "Acme Makelaar"}


@pytest.mark.parametrize(
    ("manifest", "found"),
    [
        ({"plugin": {"name": "acme", "translations": TRANSLATIONS}}, TRANSLATIONS),
        ({"plugin": {"name": "acme"}}, {}),
        ({"plugin": {"translations": ["nl"]}}, {}),  # not the schema's shape
        ({"plugin": "acme"}, {}),
        (["plugin"], {}),
        (None, {}),
    ],
    ids=["translations", "none", "a-list", "plugin-not-object", "not-object", "nothing"],
)
def test_translations_of_a_stored_manifest(manifest: Any, found: dict[str, Any]) -> None:
    assert translations_of(manifest) == found
