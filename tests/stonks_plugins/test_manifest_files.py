"""From a manifest file to its verdict, error by error: which file, which JSON path, which
words (stonks_plugins.manifest: reading the file, its JSON text, the slow path's safety
net). What an operator reads in ``plugins list`` is exactly what is asserted here."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from stonks_plugins.errors import ReasonCode
from stonks_plugins.manifest import (
    ManifestError,
    ManifestIssue,
    load_manifest_file,
    parse_manifest,
    validate_manifest,
)
from stonks_plugins.manifest.json_text import json_from_bytes, text_fault
from stonks_plugins.manifest.validation import read_manifest_json
from tests.conftest import FIXTURES

VALID: dict[str, Any] = json.loads(
    (FIXTURES / "healthy-fixture" / "plugin_manifest.json").read_text("utf-8")
)
SURROGATE = "\ud800"


def _write(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "plugin_manifest.json"
    path.write_bytes(data)
    return path


def _refused(call: Any, path: Path) -> ManifestError:
    with pytest.raises(ManifestError) as info:
        call(path)
    err = info.value
    assert err.source == str(path)
    return err


@pytest.mark.parametrize("read", [read_manifest_json, load_manifest_file])
def test_a_missing_file_is_unreadable_and_named(read: Any, tmp_path: Path) -> None:
    path = tmp_path / "plugin_manifest.json"
    err = _refused(read, path)
    assert err.code is ReasonCode.MANIFEST_UNREADABLE
    assert err.issues == [ManifestIssue("$", "no plugin_manifest.json found")]
    assert str(err) == f"{path}: no plugin_manifest.json found"


@pytest.mark.parametrize("read", [read_manifest_json, load_manifest_file])
def test_a_file_over_the_limit_names_the_setting(read: Any, tmp_path: Path, settings) -> None:  # type: ignore[no-untyped-def]
    settings.PLUGINS_MAX_MANIFEST_BYTES = 64
    path = _write(tmp_path, json.dumps(VALID).encode())
    err = _refused(read, path)
    assert err.code is ReasonCode.MANIFEST_UNREADABLE
    [issue] = err.issues
    assert issue.path == "$"
    assert issue.message.startswith("the file is ")
    assert "more than the limit of 64 bytes (PLUGINS_MAX_MANIFEST_BYTES)" in issue.message


def test_a_folder_in_the_manifests_place_is_unreadable(tmp_path: Path) -> None:
    path = tmp_path / "plugin_manifest.json"
    path.mkdir()
    err = _refused(load_manifest_file, path)
    assert err.code is ReasonCode.MANIFEST_UNREADABLE
    [issue] = err.issues
    assert issue.path == "$" and issue.message.startswith("the file is a directory")


@pytest.mark.parametrize("read", [read_manifest_json, load_manifest_file])
def test_bad_json_says_where_in_which_file(read: Any, tmp_path: Path) -> None:
    path = _write(tmp_path, b'{\n  "plugin": {,}\n}')
    err = _refused(read, path)
    assert err.code is ReasonCode.MANIFEST_UNREADABLE
    [issue] = err.issues
    assert issue.path == "$" and issue.message.startswith("invalid JSON at line 2, column 14")
    assert str(err) == f"{path}: {issue.message}"


def test_json_nested_too_deeply_is_unreadable_not_a_crash() -> None:
    with pytest.raises(ManifestError) as info:
        json_from_bytes(b"[" * 100_000 + b"]" * 100_000, "deep.json")
    err = info.value
    assert err.code is ReasonCode.MANIFEST_UNREADABLE and err.source == "deep.json"
    assert err.issues == [
        ManifestIssue("$", "invalid JSON: arrays or objects nested too deeply to parse")
    ]


def test_a_byte_order_mark_is_read_past() -> None:
    data = b"\xef\xbb\xbf" + json.dumps(VALID).encode()
    assert json_from_bytes(data, "bom.json") == VALID


@pytest.mark.parametrize(
    ("data", "path", "message"),
    [
        (
            {"plugin": {"na\x00me": "x"}},
            "$.plugin",
            "a key of $.plugin holds a NUL character (\\u0000); it cannot be stored: "
            "remove it from the manifest",
        ),
        (
            {"capabilities": {"features": ["fine", "half" + SURROGATE]}},
            "$.capabilities.features[1]",
            "a string holds a lone surrogate escape (\\ud800 to \\udfff, half of a pair), "
            "which is not text; it cannot be stored: remove it from the manifest",
        ),
        (
            {"x-" + SURROGATE: 1},
            "$",
            "a key of $ holds a lone surrogate escape (\\ud800 to \\udfff, half of a pair), "
            "which is not text; it cannot be stored: remove it from the manifest",
        ),
        ({"plugin": {"description": "a\x00b"}}, "$.plugin.description", "a string holds a NUL"),
        ({"plugin": {"description": "caf\u00e9 \x00"}}, "$.plugin.description", "a NUL"),
    ],
    ids=["nul-in-key", "surrogate-in-list", "surrogate-in-key", "nul", "nul-after-non-ascii"],
)
def test_text_no_database_can_store_is_named_by_its_path(
    data: Any, path: str, message: str
) -> None:
    issue = text_fault(data)
    assert issue is not None and issue.path == path, issue
    assert message in issue.message


def test_text_a_database_can_store_passes() -> None:
    text = {"a": ["caf\u00e9", "\u00fc\u00f1\u00ee", "\U0001f4c8 stonks", {"k\u00e9y": "v"}]}
    assert text_fault(text) is None
    assert text_fault(VALID) is None
    raw = json.dumps({"x-escaped": "\\ud800"}).encode()  # an escaped backslash: plain text
    assert json_from_bytes(raw, "ok.json") == {"x-escaped": "\\ud800"}


def test_a_manifest_with_a_lone_surrogate_is_unreadable_with_its_path(tmp_path: Path) -> None:
    text = json.dumps(VALID).replace('"Healthy Fixture"', '"Healthy \\ud800"', 1)
    path = _write(tmp_path, text.encode())
    err = _refused(load_manifest_file, path)
    assert err.code is ReasonCode.MANIFEST_UNREADABLE
    assert [i.path for i in err.issues] == ["$.plugin.display_name"]


def test_json_only_python_reads_takes_the_slow_path_to_the_same_model(tmp_path: Path) -> None:
    # NaN is not JSON to msgspec (the fast path) but is to json: an 'x-' key may hold it.
    text = json.dumps(VALID)[:-1] + ', "x-tool": {"ratio": NaN}}'
    manifest = load_manifest_file(_write(tmp_path, text.encode()))
    plain = parse_manifest(VALID, "plain")
    assert (manifest.name, manifest.version, manifest.services) == (
        plain.name,
        plain.version,
        plain.services,
    )


def test_a_schema_the_model_disagrees_with_is_refused_with_the_models_words(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The slow path's safety net: were the published schema to accept what the typed model
    cannot hold, the manifest is refused at the path msgspec names, not half-loaded."""
    from stonks_plugins.manifest import schema_check

    monkeypatch.setattr(schema_check, "schema_issues", lambda data: [])
    data = json.loads(json.dumps(VALID))
    data["plugin"]["version"] = 1
    [issue] = validate_manifest(data)
    assert issue.path == "$.plugin.version"
    assert issue.message == "not accepted by the manifest model: Expected `str`, got `int`"


def test_a_schema_valid_manifest_breaking_a_rule_names_its_file(tmp_path: Path) -> None:
    data = json.loads(json.dumps(VALID))
    data["api"] = {"min_version": "2.0.0", "max_version": "1.0.0"}
    path = _write(tmp_path, json.dumps(data).encode())
    err = _refused(load_manifest_file, path)
    assert err.code is ReasonCode.MANIFEST_INVALID
    assert [i.path for i in err.issues] == ["$.api.max_version"]


def test_a_disagreement_at_the_root_is_said_at_the_root(monkeypatch: pytest.MonkeyPatch) -> None:
    from stonks_plugins.manifest import schema_check

    monkeypatch.setattr(schema_check, "schema_issues", lambda data: [])
    [issue] = validate_manifest({"api": {"min_version": "1.0.0"}})
    assert issue.path == "$"
    assert (
        issue.message
        == "not accepted by the manifest model: Object missing required field `plugin`"
    )
