"""One way from a manifest's bytes to a candidate (issue 16): the same bad manifest gets the
same verdict and the same message whether it sits in a plugin folder, inside an installed
distribution (entry point) or is handed to the test kit under another file name; each message
names its own file and, for bad JSON, the line and column of the fault."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from stonks_plugins.discovery import Candidate, entry_points
from stonks_plugins.discovery.directories import clear_cache, scan_directories
from stonks_plugins.errors import ReasonCode
from stonks_plugins.testing.support import candidate_from_file
from tests.conftest import FIXTURES

UNREADABLE = (FIXTURES / "unreadable-json" / "plugin_manifest.json").read_bytes()
VALID = json.loads((FIXTURES / "healthy-fixture" / "plugin_manifest.json").read_text("utf-8"))
NAME = VALID["plugin"]["name"]


def _encoded(change: dict[str, object]) -> bytes:
    data = json.loads(json.dumps(VALID))
    for dotted, value in change.items():
        *parents, last = dotted.split(".")
        node = data
        for key in parents:
            node = node[key]
        node[last] = value
    return json.dumps(data, indent=2).encode()


# id -> (the manifest's bytes, the reason code, a fragment every message holds)
BAD: dict[str, tuple[bytes, ReasonCode, str]] = {
    "json-syntax": (UNREADABLE, ReasonCode.MANIFEST_UNREADABLE, "invalid JSON at line 6, column 3"),
    "not-utf8": (b'{"plugin": "\xff\xfe"}', ReasonCode.MANIFEST_UNREADABLE, "not UTF-8"),
    "nul-character": (
        _encoded({"plugin.description": "a\u0000b"}),
        ReasonCode.MANIFEST_UNREADABLE,
        "$.plugin.description: a string holds a NUL character",
    ),
    "schema": (
        _encoded({"plugin.version": "one.two"}),
        ReasonCode.MANIFEST_INVALID,
        "$.plugin.version",
    ),
    "rule": (  # matches the schema, breaks a rule: found by the fast path
        _encoded({"api.min_version": "2.0.0", "api.max_version": "1.0.0"}),
        ReasonCode.MANIFEST_INVALID,
        "$.api.max_version",
    ),
}


@pytest.fixture(autouse=True)
def _fresh_scans() -> Iterator[None]:
    clear_cache()  # the folders' scans and the entry points' alike
    yield
    clear_cache()


def _installed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, data: bytes
) -> tuple[Candidate, Path]:
    """The entry point candidate of a distribution, installed in an import path folder of
    its own, whose package ships ``data`` as its manifest."""
    site = tmp_path / "site"
    package = site / "bytesplugin"
    package.mkdir(parents=True)
    monkeypatch.syspath_prepend(str(site))
    (package / "__init__.py").write_text("")
    manifest = package / "plugin_manifest.json"
    manifest.write_bytes(data)
    info = site / "stonks_bytes_plugin-1.0.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: stonks-bytes-plugin\nVersion: 1.0.0\n"
    )
    (info / "entry_points.txt").write_text(
        f"[stonks_overwatch.brokers]\n{NAME} = bytesplugin.plugin:Plugin\n"
    )
    everything = entry_points.scan_entry_points()
    found = [c for c in everything if c.location.startswith("stonks-bytes-plugin")]
    assert len(found) == 1, [(c.name, c.location) for c in everything]
    return found[0], manifest


def _in_folder(tmp_path: Path, data: bytes) -> tuple[Candidate, Path]:
    base = tmp_path / "plugins"
    (base / NAME).mkdir(parents=True)
    manifest = base / NAME / "plugin_manifest.json"
    manifest.write_bytes(data)
    (found,) = scan_directories([base])
    return found, manifest


def _under_another_name(tmp_path: Path, data: bytes) -> tuple[Candidate, Path]:
    manifest = tmp_path / "kit" / "candidate.json"
    manifest.parent.mkdir()
    manifest.write_bytes(data)
    return candidate_from_file(manifest), manifest


@pytest.mark.parametrize("case", list(BAD))
def test_the_same_bad_bytes_get_the_same_message_from_every_source(
    case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data, code, fragment = BAD[case]
    seen = {
        "entry point": _installed(tmp_path, monkeypatch, data),
        "directory": _in_folder(tmp_path, data),
        "test kit": _under_another_name(tmp_path, data),
    }
    said = {}
    for source, (cand, manifest) in seen.items():
        problem = cand.problem
        assert problem is not None and not cand.ok, source
        assert problem.code is code, (source, problem)
        # Each names its own file, then says the same thing.
        prefix = f"{manifest}: "
        assert problem.message.startswith(prefix), (source, problem.message)
        assert fragment in problem.message, (source, problem.message)
        said[source] = (problem.message[len(prefix) :], problem.details)
    assert said["entry point"] == said["directory"] == said["test kit"], said


def test_a_bad_json_message_names_the_file_and_the_position(tmp_path: Path) -> None:
    cand, manifest = _in_folder(tmp_path, UNREADABLE)
    assert cand.problem is not None
    message = cand.problem.message
    assert message.startswith(f"{manifest}: invalid JSON at line 6, column 3: ")
    assert [d["path"] for d in cand.problem.details] == ["$"]
