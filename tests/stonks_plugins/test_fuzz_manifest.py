"""Property-based tests (Hypothesis) of manifest decoding, bytes in, as discovery reads a
plugin folder's ``plugin_manifest.json``:

- whatever the bytes (random, JSON of any shape, a valid manifest mutated in its structure or
  byte by byte, nested deeply, with NUL, lone surrogates, huge numbers, a byte order mark),
  the answer is a :class:`PluginManifest` or a :class:`ManifestError` whose issues each say
  where (a JSON path) and what; never any other exception;
- a valid manifest, built by a strategy from the published schema's rules, decodes to a
  manifest with the same fields, by the fast path and the slow path alike, and survives
  re-encoding.

Derandomized with no example database: CI runs the same examples every time.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from stonks_plugins.errors import ReasonCode
from stonks_plugins.manifest import ManifestError, PluginManifest, load_manifest_file
from stonks_plugins.manifest.validation import fast_parse_manifest, parse_manifest

FUZZ = settings(
    max_examples=120,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# -- strategies ----------------------------------------------------------------------------
_text = st.text(
    alphabet=st.characters(codec="utf-8", exclude_characters="\x00"), max_size=30
)  # text a database can store
_json: st.SearchStrategy[Any] = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | _text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_text, inner, max_size=4),
    max_leaves=15,
)
_names = st.from_regex(r"[a-z0-9][a-z0-9._-]{0,20}", fullmatch=True)
_versions = st.builds(
    lambda parts, tail: ".".join(map(str, parts)) + tail,
    st.lists(st.integers(0, 999), min_size=1, max_size=3),
    st.sampled_from(["", "rc1", "a2", "b3", ".post1", ".dev4", "+local.7"]),
)
_identifier = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True)
_dotted = st.lists(_identifier, min_size=2, max_size=4).map(".".join)
_SERVICES = ["portfolio", "transaction", "deposit", "dividend", "fee", "account"]
_SPECIFIERS = [">=1.0", ">=1.0,<2", "==2.*", "~=3.1", "!=1.5", ""]
_unique_words = st.lists(_text.filter(bool), max_size=3, unique=True)


@st.composite
def valid_manifests(draw: st.DrawFn) -> dict[str, Any]:
    """A manifest the schema and the rules accept (the sections every plugin may have)."""
    kind = draw(st.sampled_from(["broker", "aggregator", "view", "middleware"]))
    plugin: dict[str, Any] = {
        "name": draw(_names),
        "version": draw(_versions),
        "type": kind,
    }
    for key, limit in (("display_name", 200), ("description", 2000), ("author", 200)):
        if draw(st.booleans()):
            plugin[key] = draw(_text)[:limit]
    if draw(st.booleans()):
        plugin["homepage"] = "https://example.org/" + draw(_identifier)
    low = draw(st.lists(st.integers(0, 9), min_size=1, max_size=3))
    api: dict[str, Any] = {"min_version": ".".join(map(str, low))}
    if draw(st.booleans()):
        api["max_version"] = f"{low[0] + draw(st.integers(0, 3))}.99"
    if draw(st.booleans()):
        api["interfaces"] = draw(_unique_words)
    manifest: dict[str, Any] = {"plugin": plugin, "api": api}
    services = draw(st.lists(st.sampled_from(_SERVICES), unique=True, max_size=4))
    with_main = draw(st.booleans()) or (kind == "broker" and not services)
    if services or draw(st.booleans()):
        manifest["capabilities"] = {"services": services}
        if draw(st.booleans()):
            manifest["capabilities"]["features"] = draw(_unique_words)
    if with_main:
        manifest["entry_points"] = {"main": draw(_dotted) + ":" + draw(_identifier)}
    if services and (not with_main or draw(st.booleans())):
        manifest["services"] = {s: draw(_dotted) for s in services}
    if draw(st.booleans()):
        deps: dict[str, Any] = {"python": draw(st.sampled_from(_SPECIFIERS))}
        if draw(st.booleans()):
            deps["plugins"] = draw(
                st.dictionaries(_names, st.sampled_from(_SPECIFIERS), max_size=2)
            )
        manifest["dependencies"] = deps
    if draw(st.booleans()):
        manifest["isolation"] = draw(st.sampled_from(["in_process", "process"]))
    if draw(st.booleans()):
        manifest["x-" + draw(_identifier)] = draw(_json)
    if draw(st.booleans()):
        plugin["x-" + draw(_identifier)] = draw(_json)
    return manifest


def _paths(node: Any, at: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield at
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, (*at, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _paths(value, (*at, index))


@st.composite
def mutated_manifests(draw: st.DrawFn) -> dict[str, Any] | Any:
    """A valid manifest with one place replaced by any JSON, deleted, or given a stray key."""
    manifest = draw(valid_manifests())
    where = draw(st.sampled_from(list(_paths(manifest))))
    if not where:
        return draw(_json)
    parent: Any = manifest
    for step in where[:-1]:
        parent = parent[step]
    action = draw(st.sampled_from(["replace", "delete", "add"]))
    if action == "replace" or isinstance(parent, list):
        parent[where[-1]] = draw(_json)
    elif action == "delete":
        del parent[where[-1]]
    else:
        parent[draw(_text)] = draw(_json)
    return manifest


@st.composite
def mutated_bytes(draw: st.DrawFn) -> bytes:
    """A valid manifest's bytes with a few bytes inserted, deleted or replaced."""
    data = bytearray(json.dumps(draw(valid_manifests())).encode())
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data)))
        edit = draw(st.sampled_from(["insert", "delete", "replace"]))
        byte = draw(st.binary(min_size=1, max_size=3))
        if edit == "insert":
            data[at:at] = byte
        elif edit == "delete":
            del data[at : at + len(byte)]
        else:
            data[at : at + len(byte)] = byte
    return bytes(data)


_HOSTILE = [
    b"",
    b"\xef\xbb\xbf{}",
    b"[" * 50_000 + b"]" * 50_000,
    b'{"plugin":' * 2_000 + b"1" + b"}" * 2_000,
    b'{"plugin": {"name": "a", "version": "1", "type": "broker"}, "api": {"min_version": 1e400}}',
    b'{"plugin": {"name": "\\ud800", "version": "1", "type": "broker"}, "api": {}}',
    b'{"plugin": {"name": "a\\u0000", "version": "1", "type": "broker"}, "api": {}}',
    b'{"x-\\u0000": 1, "plugin": {}, "api": {}}',
    b'{"plugin": NaN}',
    b'{"plugin": {"name": "' + b"a" * 100_000 + b'"}}',
    '{"plugin": {"name": "é"}}'.encode("utf-16"),
    b"\xff\xfe\x00",
]
any_bytes = st.one_of(
    st.binary(max_size=300),
    _json.map(lambda v: json.dumps(v).encode()),
    mutated_manifests().map(lambda v: json.dumps(v).encode()),
    mutated_bytes(),
    st.sampled_from(_HOSTILE),
)


# -- properties ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def manifest_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz-manifest") / "plugin_manifest.json"


def _load(path: Path, data: bytes) -> PluginManifest:
    path.write_bytes(data)
    return load_manifest_file(path)


@FUZZ
@given(data=any_bytes)
def test_any_bytes_decode_to_a_manifest_or_an_error_that_says_where(
    manifest_file: Path, data: bytes
) -> None:
    try:
        manifest = _load(manifest_file, data)
    except ManifestError as exc:
        event(f"refused: {exc.code.value}")
        assert exc.code in (ReasonCode.MANIFEST_UNREADABLE, ReasonCode.MANIFEST_INVALID)
        assert exc.issues, exc
        for issue in exc.issues:
            assert issue.path.startswith("$"), issue
            assert isinstance(issue.message, str) and issue.message.strip(), issue
        assert str(manifest_file) in str(exc)
        return
    event("decoded")
    assert isinstance(manifest, PluginManifest)
    assert manifest.name and manifest.version and manifest.type
    # What decoded is storable: the stored manifest is its raw form.
    json.dumps(manifest.raw, ensure_ascii=False).encode("utf-8")
    assert "\x00" not in json.dumps(manifest.raw, ensure_ascii=False)


@FUZZ
@given(manifest=valid_manifests())
def test_valid_manifests_round_trip(manifest_file: Path, manifest: dict[str, Any]) -> None:
    data = json.dumps(manifest, ensure_ascii=False, indent=1).encode()
    loaded = _load(manifest_file, data)
    plugin = manifest["plugin"]
    assert (loaded.name, loaded.version, loaded.type) == (
        plugin["name"],
        plugin["version"],
        plugin["type"],
    )
    assert loaded.raw == manifest
    assert loaded.display_name == (plugin.get("display_name") or plugin["name"])
    assert dict(loaded.plugin_dependencies) == manifest.get("dependencies", {}).get("plugins", {})
    assert [s.value if hasattr(s, "value") else s for s in loaded.capabilities.services] == (
        manifest.get("capabilities", {}).get("services", [])
    )
    # The fast path (msgspec, bytes) and the slow path (json + jsonschema) agree.
    fast = fast_parse_manifest(data, "fast")
    slow = parse_manifest(json.loads(data), "slow")
    assert fast == slow == loaded
    # Re-encoding the model gives the same manifest (without the 'x-' keys it drops).
    again = parse_manifest(json.loads(msgspec.json.encode(loaded)), "again")
    assert again == loaded
