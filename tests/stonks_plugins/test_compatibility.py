"""Compatibility: incompatible_api / incompatible_core / missing_dependency, each message
saying what was required and what was found."""

from __future__ import annotations

import copy
import platform
from importlib import metadata
from typing import Any

import pytest

from stonks_plugins import CORE_API_VERSION
from stonks_plugins.compatibility import (
    check_compatibility,
    compatibility,
    core_version,
    installed_version,
)
from stonks_plugins.discovery.catalog import apply_compatibility
from stonks_plugins.discovery.directories import scan_directory_plugin
from stonks_plugins.errors import ReasonCode
from stonks_plugins.manifest import PluginManifest, load_manifest_file, parse_manifest
from tests.conftest import FIXTURES

BASE: dict[str, Any] = {
    "plugin": {"name": "acme", "version": "1.0.0", "type": "broker"},
    "api": {"min_version": "1.0.0", "max_version": "2.0.0"},
    "services": {"portfolio": "acme.services.PortfolioService"},
}


def manifest(
    api: dict[str, str] | None = None, deps: dict[str, str] | None = None
) -> PluginManifest:
    data = copy.deepcopy(BASE)
    if api is not None:
        data["api"] = api
    if deps is not None:
        data["dependencies"] = deps
    return parse_manifest(data, "test")


def fixture(folder: str) -> PluginManifest:
    return load_manifest_file(FIXTURES / folder / "plugin_manifest.json")


def test_core_versions_are_what_the_messages_quote() -> None:
    assert CORE_API_VERSION == "1.0.0"
    assert str(core_version()) == "2.0.0"
    assert installed_version("stonks-overwatch-core") == core_version()
    assert installed_version("Stonks_Overwatch.Core") == core_version()  # canonicalised
    assert installed_version("no-such-distribution-xyz") is None


def test_compatible_plugin_has_no_issue() -> None:
    assert check_compatibility(fixture("healthy-fixture")) == []
    assert check_compatibility(manifest(deps={"python": ">=3.11"})) == []


def test_incompatible_api_says_what_was_required_and_found() -> None:
    [issue] = check_compatibility(fixture("incompatible-api"))
    assert issue.code is ReasonCode.INCOMPATIBLE_API
    assert ">=9.0.0" in issue.message  # required
    assert "serves API 1.0.0" in issue.message  # found


def test_api_above_max_version_is_incompatible() -> None:
    [issue] = check_compatibility(manifest(api={"min_version": "0.1", "max_version": "0.9"}))
    assert issue.code is ReasonCode.INCOMPATIBLE_API
    assert ">=0.1, <=0.9" in issue.message and "1.0.0" in issue.message


@pytest.mark.parametrize(
    "api",
    [
        {"min_version": "0.5", "max_version": CORE_API_VERSION},  # the core at the top
        {"min_version": CORE_API_VERSION, "max_version": CORE_API_VERSION},  # pinned
        {"min_version": CORE_API_VERSION},  # at the bottom, open above
    ],
    ids=["max", "pinned", "min"],
)
def test_api_range_bounds_are_inclusive(api: dict[str, str]) -> None:
    # A plugin saying "up to API 1.0.0" runs on a core serving 1.0.0.
    assert check_compatibility(manifest(api=api)) == []


def test_api_just_outside_the_range_is_incompatible() -> None:
    for api in ({"min_version": "0.5", "max_version": "0.999"}, {"min_version": "1.0.1"}):
        [issue] = check_compatibility(manifest(api=api))
        assert issue.code is ReasonCode.INCOMPATIBLE_API, api


def test_api_check_uses_the_given_core_api_version() -> None:
    m = fixture("incompatible-api")
    assert check_compatibility(m, api_version="9.1.0") == []


def test_incompatible_core_says_what_was_required_and_found() -> None:
    [issue] = check_compatibility(fixture("incompatible-core"))
    assert issue.code is ReasonCode.INCOMPATIBLE_CORE
    assert "stonks-overwatch-core >=3.0.0" in issue.message  # required
    assert "this core is 2.0.0" in issue.message  # found


def test_core_named_in_another_spelling_is_still_the_core() -> None:
    [issue] = check_compatibility(manifest(deps={"Stonks_Overwatch_Core": "<2"}))
    assert issue.code is ReasonCode.INCOMPATIBLE_CORE


def test_python_requirement_is_checked() -> None:
    [issue] = check_compatibility(manifest(deps={"python": ">=4.0"}))
    assert issue.code is ReasonCode.INCOMPATIBLE_CORE
    assert "Python >=4.0" in issue.message
    assert platform.python_version() in issue.message


def test_missing_dependency_says_what_to_install() -> None:
    [issue] = check_compatibility(fixture("missing-dependency"))
    assert issue.code is ReasonCode.MISSING_DEPENDENCY
    assert "'no-such-distribution-xyz' (>=1.0)" in issue.message
    assert "not installed" in issue.message
    assert "pip install 'no-such-distribution-xyz>=1.0'" in issue.message


def test_installed_dependency_in_the_wrong_version_names_both() -> None:
    found = metadata.version("packaging")
    [issue] = check_compatibility(manifest(deps={"packaging": ">=9999"}))
    assert issue.code is ReasonCode.MISSING_DEPENDENCY
    assert ">=9999" in issue.message and f"version {found} is installed" in issue.message


def test_satisfied_installed_dependency_passes() -> None:
    assert check_compatibility(manifest(deps={"packaging": ">=1"})) == []


def test_a_prerelease_of_a_dependency_counts_as_its_version(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # An operator who installed acme-lib 2.0.0rc1 has a version >= 1.0: the plugin runs.
    from packaging.version import Version

    from stonks_plugins import compatibility

    def installed(name: str) -> Version | None:
        return Version("2.0.0rc1") if name == "acme-lib" else None

    monkeypatch.setattr(compatibility, "installed_version", installed)
    assert check_compatibility(manifest(deps={"acme-lib": ">=1.0"})) == []
    [issue] = check_compatibility(manifest(deps={"acme-lib": ">=2.0.0"}))
    assert issue.code is ReasonCode.MISSING_DEPENDENCY
    assert "version 2.0.0rc1 is installed" in issue.message


def test_every_issue_is_reported_first_code_wins() -> None:
    m = manifest(
        api={"min_version": "9.0.0"},
        deps={"stonks-overwatch-core": ">=3", "no-such-distribution-xyz": ">=1"},
    )
    issues = check_compatibility(m)
    assert [i.code for i in issues] == [
        ReasonCode.INCOMPATIBLE_API,
        ReasonCode.INCOMPATIBLE_CORE,
        ReasonCode.MISSING_DEPENDENCY,
    ]


@pytest.mark.parametrize(
    ("folder", "code"),
    [
        ("incompatible-api", "incompatible_api"),
        ("incompatible-core", "incompatible_core"),
        ("missing-dependency", "missing_dependency"),
    ],
)
def test_candidate_verdict_carries_code_message_and_details(folder: str, code: str) -> None:
    cand = apply_compatibility(scan_directory_plugin(FIXTURES / folder))
    assert cand.problem is not None
    assert cand.problem.code.value == code
    assert cand.problem.details == ({"code": code, "message": cand.problem.message},)


def test_candidate_with_several_issues_keeps_them_all() -> None:
    cand = scan_directory_plugin(FIXTURES / "incompatible-api")
    data = copy.deepcopy(cand.raw)
    assert data is not None
    data["dependencies"]["no-such-distribution-xyz"] = ">=1"
    from dataclasses import replace

    cand = apply_compatibility(replace(cand, manifest=parse_manifest(data, "test"), raw=data))
    assert cand.problem is not None and cand.problem.code is ReasonCode.INCOMPATIBLE_API
    assert [d["code"] for d in cand.problem.details] == ["incompatible_api", "missing_dependency"]
    assert "no-such-distribution-xyz" in cand.problem.message


def test_a_verdict_that_may_change_while_running_says_so() -> None:
    # Python and the core are fixed for the life of the process; another distribution may
    # be pip-installed meanwhile, so its verdict is looked at again.
    assert compatibility(manifest()) == ([], False)
    assert (
        compatibility(manifest(deps={"python": ">=3.11", "stonks-overwatch-core": ">=2"}))[1]
        is False
    )
    issues, live = compatibility(manifest(deps={"python": ">=3.11", "packaging": ">=1"}))
    assert (issues, live) == ([], True)
    issues, live = compatibility(manifest(deps={"no-such-distribution-xyz": ">=1"}))
    assert live is True and [i.code for i in issues] == [ReasonCode.MISSING_DEPENDENCY]
