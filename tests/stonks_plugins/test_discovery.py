"""Discovery: every plugin folder is listed — broken ones under the best name that can be
read — the same name found twice has one winner by the documented rule, and nothing here
imports plugin code."""

from __future__ import annotations

import dataclasses
import json
import pickle
import shutil
import sys
from pathlib import Path

import pytest

from stonks_plugins.discovery import Candidate, Problem, Source, catalog, discover
from stonks_plugins.discovery.directories import clear_cache, iter_plugin_folders
from stonks_plugins.errors import ReasonCode
from stonks_plugins.loader import PKG_ROOT
from stonks_plugins.manifest import parse_manifest
from tests.conftest import FIXTURES


def copy(src: str, dest_dir: Path, as_name: str | None = None) -> Path:
    dest = dest_dir / (as_name or src)
    shutil.copytree(FIXTURES / src, dest, ignore=shutil.ignore_patterns("__pycache__"))
    return dest


def set_name(folder: Path, name: str) -> None:
    path = folder / "plugin_manifest.json"
    data = json.loads(path.read_text())
    data["plugin"]["name"] = name
    path.write_text(json.dumps(data, indent=2))


def run(*dirs: Path) -> dict[str, Candidate]:
    return discover(list(dirs), entry_points=False).by_name()


def test_healthy_plugin_is_found_with_its_manifest(tmp_path: Path) -> None:
    copy("healthy-fixture", tmp_path)
    found = run(tmp_path)
    cand = found["healthy-fixture"]
    assert cand.ok and cand.problem is None
    assert cand.source is Source.DIRECTORY
    assert cand.root == tmp_path / "healthy-fixture"
    assert cand.location == str(tmp_path / "healthy-fixture")
    assert cand.manifest is not None and cand.manifest.version == "1.0.0"
    assert len(cand.fingerprint) == 64


def test_unreadable_manifest_is_listed_under_its_folder_name(tmp_path: Path) -> None:
    copy("unreadable-json", tmp_path, as_name="some-folder")
    found = run(tmp_path)
    assert list(found) == ["some-folder"]  # the name inside the file cannot be read
    cand = found["some-folder"]
    assert cand.problem is not None
    assert cand.problem.code is ReasonCode.MANIFEST_UNREADABLE
    assert "invalid JSON at line 6, column 3" in cand.problem.message


def test_invalid_manifest_is_listed_under_its_readable_name(tmp_path: Path) -> None:
    copy("schema-violation", tmp_path, as_name="other-folder")
    cand = run(tmp_path)["schema-violation"]
    assert cand.problem is not None and cand.problem.code is ReasonCode.MANIFEST_INVALID
    assert {d["path"] for d in cand.problem.details} == {
        "$.plugin.version",
        "$.plugin.type",
        "$.colour",
    }
    assert cand.raw is not None and cand.raw["colour"] == "red"


def test_invalid_manifest_with_an_unusable_name_falls_back_to_the_folder(tmp_path: Path) -> None:
    folder = copy("schema-violation", tmp_path, as_name="fallback-folder")
    set_name(folder, "Not A Valid Name!")
    cand = run(tmp_path)["fallback-folder"]
    assert cand.problem is not None and cand.problem.code is ReasonCode.MANIFEST_INVALID
    assert "$.plugin.name" in {d["path"] for d in cand.problem.details}


def test_manifest_that_is_not_an_object_falls_back_to_the_folder(tmp_path: Path) -> None:
    (tmp_path / "listy").mkdir()
    (tmp_path / "listy" / "plugin_manifest.json").write_text("[1, 2, 3]")
    cand = run(tmp_path)["listy"]
    assert cand.problem is not None and cand.problem.code is ReasonCode.MANIFEST_INVALID


def test_folders_without_manifest_hidden_or_private_are_ignored(tmp_path: Path) -> None:
    copy("healthy-fixture", tmp_path)
    copy("healthy-fixture", tmp_path, as_name=".hidden")
    copy("healthy-fixture", tmp_path, as_name="_private")
    (tmp_path / "no-manifest").mkdir()
    (tmp_path / "a-file.txt").write_text("not a plugin")
    assert [p.name for p in iter_plugin_folders(tmp_path)] == ["healthy-fixture"]


def test_missing_plugin_dir_is_not_an_error(tmp_path: Path) -> None:
    assert run(tmp_path / "does-not-exist") == {}
    (tmp_path / "file").write_text("x")
    assert run(tmp_path / "file") == {}


# -- duplicates: the rule documented in stonks_plugins/discovery/catalog.py -------------------


def test_duplicate_in_one_directory_first_folder_name_wins(tmp_path: Path) -> None:
    copy("duplicate-b", tmp_path)
    copy("duplicate-a", tmp_path)
    found = run(tmp_path)
    assert set(found) == {"dup-broker", "dup-broker@duplicate-b"}
    winner, loser = found["dup-broker"], found["dup-broker@duplicate-b"]
    assert winner.ok and winner.root == tmp_path / "duplicate-a"
    assert loser.problem is not None and loser.problem.code is ReasonCode.DUPLICATE
    assert loser.declared_name == "dup-broker"
    # The message names both places and how to fix it.
    assert str(tmp_path / "duplicate-a") in loser.problem.message
    assert str(tmp_path / "duplicate-b") in loser.problem.message
    assert "rename" in loser.problem.message
    # The winner carries a warning about the copy.
    assert any("dup-broker@duplicate-b" in w for w in winner.warnings)


def test_duplicate_across_directories_earlier_plugin_dir_wins(tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    copy("duplicate-b", first)  # sorts later by folder name, but its directory is listed first
    copy("duplicate-a", second)
    found = run(first, second)
    assert found["dup-broker"].root == first / "duplicate-b"
    assert found["dup-broker@duplicate-a"].problem.code is ReasonCode.DUPLICATE  # type: ignore[union-attr]


def test_duplicate_valid_manifest_beats_a_broken_one(tmp_path: Path) -> None:
    broken = copy("schema-violation", tmp_path, as_name="aaa-broken")
    set_name(broken, "dup-broker")
    copy("duplicate-b", tmp_path)
    found = run(tmp_path)
    assert found["dup-broker"].ok
    assert found["dup-broker"].root == tmp_path / "duplicate-b"
    assert found["dup-broker@aaa-broken"].problem is not None


def test_installed_distribution_beats_a_plugin_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    copy("duplicate-a", tmp_path)
    raw = json.loads((FIXTURES / "duplicate-b" / "plugin_manifest.json").read_text())
    installed = Candidate(
        name="dup-broker",
        source=Source.ENTRY_POINT,
        location="dup-broker-dist==1.0.0",
        root=None,
        manifest=parse_manifest(raw, "dist"),
        raw=raw,
        fingerprint="f" * 64,
        entry_point="dup.plugin:Plugin",
        group="stonks_overwatch.brokers",
        rank=(0, 0, "dup"),
    )
    monkeypatch.setattr(catalog, "scan_entry_points", lambda: [installed])
    found = discover([tmp_path]).by_name()
    assert found["dup-broker"].source is Source.ENTRY_POINT
    loser = found["dup-broker@duplicate-a"]
    assert loser.source is Source.DIRECTORY and loser.problem.code is ReasonCode.DUPLICATE  # type: ignore[union-attr]


def test_three_copies_get_distinct_names(tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    copy("duplicate-a", first)
    copy("duplicate-b", first)
    copy("duplicate-b", second)  # same folder name as a loser in the first directory
    found = run(first, second)
    names = sorted(found)
    assert len(names) == 3 and names[0] == "dup-broker"
    assert all(found[n].problem.code is ReasonCode.DUPLICATE for n in names[1:])  # type: ignore[union-attr]


def test_duplicate_rule_is_documented_where_it_is_applied() -> None:
    doc = catalog.__doc__ or ""
    assert "Duplicate rule" in doc
    for phrase in ("entry point", "PLUGIN_DIRS", "sorts first", "NAME@LOCATION"):
        assert phrase in doc


# -- compatibility verdicts and the cache -------------------------------------------------


@pytest.mark.parametrize(
    ("folder", "code"),
    [
        ("incompatible-api", ReasonCode.INCOMPATIBLE_API),
        ("incompatible-core", ReasonCode.INCOMPATIBLE_CORE),
        ("missing-dependency", ReasonCode.MISSING_DEPENDENCY),
    ],
)
def test_incompatible_plugins_carry_their_verdict(
    tmp_path: Path, folder: str, code: ReasonCode
) -> None:
    copy(folder, tmp_path)
    cand = run(tmp_path)[folder]
    assert cand.manifest is not None  # the manifest itself is fine
    assert cand.problem is not None and cand.problem.code is code
    assert not cand.ok


def test_discovery_imports_no_plugin_code(tmp_path: Path) -> None:
    for p in FIXTURES.iterdir():
        if p.is_dir():
            copy(p.name, tmp_path)
    before = set(sys.modules)
    found = run(tmp_path)
    assert len(found) == len([p for p in FIXTURES.iterdir() if p.is_dir()])
    new = {m for m in set(sys.modules) - before if m.startswith(PKG_ROOT)}
    assert new == set()


def test_rescan_sees_an_edited_manifest(tmp_path: Path) -> None:
    folder = copy("healthy-fixture", tmp_path)
    assert "healthy-fixture" in run(tmp_path)
    set_name(folder, "renamed-on-disk")
    assert list(run(tmp_path)) == ["renamed-on-disk"]


def test_rescan_reads_again_only_what_changed(tmp_path: Path) -> None:
    # The per-directory cache: an unchanged plugin keeps its very candidate, an edited
    # manifest, a new folder and a removed one are all seen, and a plain file is no plugin.
    for name in ("one", "two", "three"):
        set_name(copy("healthy-fixture", tmp_path, name), name)
    (tmp_path / "notes.txt").write_text("not a plugin")
    first = run(tmp_path)
    assert sorted(first) == ["one", "three", "two"]
    manifest = tmp_path / "two" / "plugin_manifest.json"
    data = json.loads(manifest.read_text())
    data["plugin"]["version"] = "9.9.9"
    manifest.write_text(json.dumps(data))  # in place: the folder's listing is unchanged
    again = run(tmp_path)
    assert again["one"] is first["one"] and again["three"] is first["three"]
    assert again["two"].manifest is not None and again["two"].manifest.version == "9.9.9"
    set_name(copy("healthy-fixture", tmp_path, "four"), "four")
    shutil.rmtree(tmp_path / "one")
    later = run(tmp_path)
    assert sorted(later) == ["four", "three", "two"]
    assert later["three"] is first["three"] and later["two"] is again["two"]


def test_rescan_sees_a_fixed_manifest(tmp_path: Path) -> None:
    folder = copy("unreadable-json", tmp_path)
    assert run(tmp_path)["unreadable-json"].problem is not None
    shutil.copy(FIXTURES / "healthy-fixture" / "plugin_manifest.json", folder)
    clear_cache()
    assert run(tmp_path)["healthy-fixture"].ok


def test_problem_as_dict_is_the_api_shape() -> None:
    p = Problem(ReasonCode.DUPLICATE, "msg", ({"path": "$", "message": "m"},))
    assert p.as_dict() == {
        "code": "duplicate",
        "message": "msg",
        "details": [{"path": "$", "message": "m"}],
    }


def test_quick_candidate_is_the_dataclass_instance() -> None:
    problem = Problem(ReasonCode.DUPLICATE, "msg")
    args = ("n", Source.DIRECTORY, "/x", Path("/x"), None, None, "", problem)
    slow, quick = Candidate(*args, rank=(1, 0, "n")), Candidate.quick(*args, rank=(1, 0, "n"))
    assert quick == slow and slow == quick and repr(quick) == repr(slow)
    assert hash(quick) == hash(slow)
    # Fields quick leaves at their defaults read the same, and survive a copy to a sandbox.
    for f in dataclasses.fields(Candidate):
        assert getattr(quick, f.name) == getattr(slow, f.name), f.name
    assert pickle.loads(pickle.dumps(quick)) == slow
    assert quick.evolve(warnings=("w",)).warnings == ("w",)
