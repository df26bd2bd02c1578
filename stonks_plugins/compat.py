"""Compatibility of a manifest with this running core: the API range, the Python version,
the core distribution and every other required distribution (the seed's VersionChecker).

Pure data in, verdict out: nothing here imports plugin code.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass
from functools import cache
from importlib import metadata

from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

from . import CORE_API_VERSION
from .errors import ReasonCode
from .manifest.model import PluginManifest

CORE_DISTRIBUTION = "stonks-overwatch-core"


@dataclass(frozen=True)
class CompatIssue:
    code: ReasonCode
    message: str


@cache
def core_version() -> Version:
    try:
        return Version(metadata.version(CORE_DISTRIBUTION))
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


def check_compatibility(
    manifest: PluginManifest, api_version: str = CORE_API_VERSION
) -> list[CompatIssue]:
    """Every reason this plugin cannot run here; empty when it can."""
    issues: list[CompatIssue] = []
    api = Version(api_version)
    lo = Version(manifest.api.min_version)
    hi = Version(manifest.api.max_version) if manifest.api.max_version else None
    if api < lo or (hi is not None and api > hi):
        wanted = f">={lo}" + (f", <={hi}" if hi else "")
        issues.append(
            CompatIssue(
                ReasonCode.INCOMPATIBLE_API,
                f"needs plugin API {wanted} (api.min_version/max_version) but this core serves "
                f"API {api}",
            )
        )
    for name, spec_text in manifest.dependencies.items():
        spec = SpecifierSet(spec_text)
        if name == "python":
            found = Version(platform.python_version())
            if not spec.contains(found, prereleases=True):
                issues.append(
                    CompatIssue(
                        ReasonCode.INCOMPATIBLE_CORE,
                        f"needs Python {spec_text} but this is Python {found}",
                    )
                )
            continue
        version = installed_version(name)
        is_core = canonicalize_name(name) == CORE_DISTRIBUTION
        if version is not None and spec.contains(version, prereleases=True):
            continue
        if is_core:
            issues.append(
                CompatIssue(
                    ReasonCode.INCOMPATIBLE_CORE,
                    f"needs {CORE_DISTRIBUTION} {spec_text} but this core is {version}",
                )
            )
        elif version is None:
            issues.append(
                CompatIssue(
                    ReasonCode.MISSING_DEPENDENCY,
                    f"needs the distribution '{name}' ({spec_text}) which is not installed; "
                    f"install it with: pip install '{name}{spec_text}'",
                )
            )
        else:
            issues.append(
                CompatIssue(
                    ReasonCode.MISSING_DEPENDENCY,
                    f"needs '{name}' {spec_text} but version {version} is installed",
                )
            )
    return issues
