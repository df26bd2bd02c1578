"""Compatibility of a manifest with this running core: the API range, the Python version,
the core distribution and every other required distribution (the seed's VersionChecker).

Pure data in, verdict out: nothing here imports plugin code.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import metadata

from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

from . import CORE_API_VERSION, versioning
from .errors import ReasonCode
from .installed.metadata_files import distribution_version
from .manifest.model import PluginManifest
from .versioning import check_interfaces

CORE_DISTRIBUTION = "stonks-overwatch-core"


@dataclass(frozen=True)
class CompatIssue:
    code: ReasonCode
    message: str


@cache
def core_version() -> Version:
    try:
        # Discovery asks at start-up; the Version field alone, not the e-mail parser's
        # reading of the whole METADATA.
        dist = metadata.distribution(CORE_DISTRIBUTION)
        return Version(distribution_version(dist) or dist.version)
    except metadata.PackageNotFoundError:
        # Running from a checkout that was not pip-installed: the package knows its version.
        from stonks_overwatch import __version__

        return Version(__version__)


def installed_version(distribution: str) -> Version | None:
    if canonicalize_name(distribution) == CORE_DISTRIBUTION:
        return core_version()
    try:
        return Version(metadata.version(distribution))
    except metadata.PackageNotFoundError:
        return None


# Verdicts that depend only on strings and on facts fixed for the life of the process (the
# core's API and version, the running Python) are memoised: a scan of many plugins repeats
# the same few ranges, and re-parsing them dominated a warm re-scan. Other distributions
# are looked up live every time, since one may be installed while the process runs.


@lru_cache(maxsize=512)
def _specifier(text: str) -> SpecifierSet:
    return SpecifierSet(text)


@lru_cache(maxsize=256)
def _api_issue(api_version: str, min_version: str, max_version: str | None) -> CompatIssue | None:
    api = Version(api_version)
    lo = Version(min_version)
    hi = Version(max_version) if max_version else None
    if lo <= api and (hi is None or api <= hi):
        return None
    wanted = f">={lo}" + (f", <={hi}" if hi else "")
    return CompatIssue(
        ReasonCode.INCOMPATIBLE_API,
        f"needs plugin API {wanted} (api.min_version/max_version) but this core serves API {api}",
    )


_LIVE = CompatIssue(ReasonCode.MISSING_DEPENDENCY, "looked up live")
"""What ``_fixed_dependency_issue`` says of a distribution other than Python and the core:
its verdict can change while the process runs."""


@lru_cache(maxsize=512)
def _fixed_dependency_issue(name: str, spec_text: str) -> CompatIssue | None:
    """The verdict on one ``dependencies`` entry when it depends only on the running Python
    or the core, else ``_LIVE``. Memoised: plugins repeat the same few entries."""
    if name == "python":
        found = Version(platform.python_version())
        if _specifier(spec_text).contains(found, prereleases=True):
            return None
        return CompatIssue(
            ReasonCode.INCOMPATIBLE_CORE, f"needs Python {spec_text} but this is Python {found}"
        )
    if canonicalize_name(name) == CORE_DISTRIBUTION:
        version = core_version()
        if _specifier(spec_text).contains(version, prereleases=True):
            return None
        return CompatIssue(
            ReasonCode.INCOMPATIBLE_CORE,
            f"needs {CORE_DISTRIBUTION} {spec_text} but this core is {version}",
        )
    return _LIVE


def _dependency_issue(name: str, spec_text: str) -> CompatIssue | None:
    version = installed_version(name)
    if version is None:
        return CompatIssue(
            ReasonCode.MISSING_DEPENDENCY,
            f"needs the distribution '{name}' ({spec_text}) which is not installed; "
            f"install it with: pip install '{name}{spec_text}'",
        )
    if _specifier(spec_text).contains(version, prereleases=True):
        return None
    return CompatIssue(
        ReasonCode.MISSING_DEPENDENCY,
        f"needs '{name}' {spec_text} but version {version} is installed",
    )


def clear_memos() -> None:
    """Forget the memoised verdicts (a cold discovery measures them too)."""
    for fn in (_specifier, _api_issue, _fixed_dependency_issue):
        fn.cache_clear()
    versioning.clear_memos()


def check_compatibility(
    manifest: PluginManifest, api_version: str = CORE_API_VERSION
) -> list[CompatIssue]:
    """Every reason this plugin cannot run here; empty when it can."""
    return compatibility(manifest, api_version)[0]


def compatibility(
    manifest: PluginManifest, api_version: str = CORE_API_VERSION
) -> tuple[list[CompatIssue], bool]:
    """:func:`check_compatibility`, and whether the verdict can change while the process
    runs: the manifest names a distribution other than Python and the core, which may be
    installed meanwhile. One pass over the dependencies for both."""
    api = manifest.api
    issues: list[CompatIssue] = []
    issue = _api_issue(api_version, api.min_version, api.max_version)
    if issue is not None:
        issues.append(issue)
    # Each declared interface (api.interfaces) against the versions the core serves.
    for found in check_interfaces(api.interfaces):
        issues.append(CompatIssue(found.code, found.message))
    live = False
    for name, spec_text in manifest.dependencies.items():
        issue = _fixed_dependency_issue(name, spec_text)
        if issue is _LIVE:  # another distribution: may be installed while the process runs
            live = True
            issue = _dependency_issue(name, spec_text)
        if issue is not None:
            issues.append(issue)
    return issues, live
