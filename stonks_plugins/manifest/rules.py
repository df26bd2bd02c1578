"""Rules a schema cannot express, run on the typed model of a schema-valid manifest:
parseable versions and specifiers, an API range in order, a broker that names its code.
Their parsing is memoised per string."""

from __future__ import annotations

import re
from functools import lru_cache

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from .issues import ManifestIssue
from .model import PluginManifest


@lru_cache(maxsize=4096)
def _version(text: str) -> Version | None:
    """Memoised: plugins repeat the same versions, and the cache is cleared with the scan's."""
    try:
        return Version(text)
    except InvalidVersion:
        return None


@lru_cache(maxsize=1024)
def _valid_specifier(spec: str) -> bool:
    """Memoised: plugins repeat the same few ranges, and parsing one costs microseconds."""
    try:
        SpecifierSet(spec)
    except InvalidSpecifier:
        return False
    return True


def clear_memos() -> None:
    """Forget memoised checks (so a cold discovery pays for them again)."""
    _version.cache_clear()
    _valid_specifier.cache_clear()
    _api_range_issues.cache_clear()


_plain_release = re.compile(r"[0-9]+(?:\.[0-9]+)*\Z").match
"""Versions such as "1.0.0": valid PEP 440 without building a ``Version`` (every plugin has
its own version, so a memo rarely helps with ``plugin.version``)."""


def _version_issue(path: str, value: str) -> ManifestIssue:
    return ManifestIssue(path, f"{value!r} is not a valid version (PEP 440, e.g. '1.0.0')")


@lru_cache(maxsize=1024)
def _api_range_issues(low: str, high: str | None) -> tuple[ManifestIssue, ...]:
    """Memoised: plugins repeat the same few API ranges, and comparing two ``Version``s runs
    Python code."""
    lowest = _version(low)
    issues = [] if lowest is not None else [_version_issue("$.api.min_version", low)]
    if high is not None:
        highest = _version(high)
        if highest is None:
            issues.append(_version_issue("$.api.max_version", high))
        elif lowest is not None and highest < lowest:
            issues.append(
                ManifestIssue("$.api.max_version", f"{high!r} is lower than min_version {low!r}")
            )
    return tuple(issues)


def _specifier_issues(prefix: str, deps: dict[str, str]) -> list[ManifestIssue]:
    return [
        ManifestIssue(prefix + key, f"{spec!r} is not a valid version specifier (e.g. '>=1.0,<2')")
        for key, spec in deps.items()
        if not _valid_specifier(spec)
    ]


def rule_issues(manifest: PluginManifest) -> list[ManifestIssue]:
    """Rules beyond the schema, on a schema-valid manifest. Each rule is one cheap test on
    the usual, valid manifest; the messages are built only for a rule that fails."""
    plugin, api = manifest.plugin, manifest.api
    issues: list[ManifestIssue] = []
    version = plugin.version
    if _plain_release(version) is None and _version(version) is None:
        issues.append(_version_issue("$.plugin.version", version))
    issues += _api_range_issues(api.min_version, api.max_version)
    deps = manifest.dependencies
    if not all(map(_valid_specifier, deps.values())):
        issues += _specifier_issues("$.dependencies.", deps)
    deps = manifest.plugin_dependencies
    if deps and not all(map(_valid_specifier, deps.values())):
        issues += _specifier_issues("$.dependencies.plugins.", deps)
    if manifest.entry_points.main is None:
        issues += _service_issues(manifest)
    return issues


def _service_issues(manifest: PluginManifest) -> list[ManifestIssue]:
    """With no plugin class (entry_points.main), the services map is the plugin: a broker
    must have one, and it must name a class for every declared service."""
    services = manifest.services
    if not services:
        if manifest.plugin.type != "broker":
            return []
        return [
            ManifestIssue(
                "$.services",
                "a broker plugin must name its service classes here "
                '(e.g. {"portfolio": "mypkg.services.PortfolioService"}) '
                "or a plugin class in entry_points.main",
            )
        ]
    return [
        ManifestIssue(
            f"$.capabilities.services[{i}]",
            f"declares the '{svc.value}' service but $.services names no class for it",
        )
        for i, svc in enumerate(manifest.capabilities.services)
        if svc not in services
    ]
