"""Versions of the service interfaces: what the core serves, what a plugin declares, and
whether the two fit (the seed's ``InterfaceVersion`` / ``VersionedInterface`` /
``VersionChecker``).

Compatibility rule (semantic versioning, seen from the side that *serves* an interface):
a served version ``S`` satisfies a required version ``R`` when ``S.major == R.major`` and
``R.minor <= S.minor``. The patch level never matters. A new major is a break (v1 and v2 are
different interfaces, bridged by :mod:`stonks_plugins.interface_adapters`); a new minor only
adds, so a plugin written against 2.0 runs on a core serving 2.3, not the other way round.

A manifest's ``api.interfaces`` lists what the plugin implements or uses:

* a plain v1 name (``"PortfolioServiceInterface"``) means version 1.0.0;
* a v2 class name (``"PortfolioServiceV2"``) means version 2.0.0;
* either name with an ``@`` suffix names the version explicitly: ``"PortfolioServiceV2@2"``,
  ``"PortfolioServiceInterface@2.0.0"`` (the same v2 interface), ``"...@1.0"``.

A name the core does not know, or a version it does not serve, is ``incompatible_api``.
Pure data: nothing here imports plugin code, and the core (``stonks_overwatch``) imports
nothing from here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar

from .errors import ReasonCode

_VERSION_RE = re.compile(r"^\s*v?(\d+)(?:\.(\d+))?(?:\.(\d+))?\s*$")


@dataclass(frozen=True, order=True)
class InterfaceVersion:
    major: int
    minor: int = 0
    patch: int = 0

    @classmethod
    def parse(cls, text: str | int | InterfaceVersion) -> InterfaceVersion:
        """``"2"``, ``"2.1"``, ``"2.1.3"`` (an optional leading ``v``) or an int major."""
        if isinstance(text, InterfaceVersion):
            return text
        if isinstance(text, int):
            return cls(text)
        m = _VERSION_RE.match(text)
        if m is None:
            raise ValueError(f"not an interface version: {text!r}")
        major, minor, patch = m.groups()
        return cls(int(major), int(minor or 0), int(patch or 0))

    def is_compatible_with(self, other: InterfaceVersion) -> bool:
        """Whether this (served) version satisfies ``other`` (a required version): same
        major, and ``other.minor <= self.minor``. Patch levels are ignored."""
        return self.major == other.major and other.minor <= self.minor

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"


V1 = InterfaceVersion(1, 0, 0)
V2 = InterfaceVersion(2, 0, 0)


class VersionedInterface:
    """Mixin of an interface that states its version (the v2 interfaces use it; the v1
    interfaces live in the core, which knows nothing of this, and count as 1.0.0)."""

    interface_version: ClassVar[InterfaceVersion] = V1

    @classmethod
    def get_supported_versions(cls) -> tuple[InterfaceVersion, ...]:
        """Versions a consumer may ask this service for: its own, plus those the
        compatibility adapters reach (v1 <-> v2 for every data service)."""
        own = cls.interface_version
        return (own,) if own.major not in (1, 2) else tuple(sorted({own, V1, V2}))


def interface_version_of(cls: type) -> InterfaceVersion:
    """The version a service class implements (1.0.0 unless it says otherwise)."""
    version = getattr(cls, "interface_version", None)
    return version if isinstance(version, InterfaceVersion) else V1


# Interface families: a family is one service contract, served in one or more majors.
# name -> (family, implied version)
_V1_NAMES = (
    "BrokerServiceInterface",
    "PortfolioServiceInterface",
    "TransactionServiceInterface",
    "DepositServiceInterface",
    "DividendServiceInterface",
    "FeeServiceInterface",
    "AccountServiceInterface",
    "AuthenticationServiceInterface",
    "UpdateServiceInterface",
)
_V2_NAMES = {
    "BrokerServiceV2": "BrokerServiceInterface",
    "PortfolioServiceV2": "PortfolioServiceInterface",
    "TransactionServiceV2": "TransactionServiceInterface",
    "DepositServiceV2": "DepositServiceInterface",
    "DividendServiceV2": "DividendServiceInterface",
    "FeeServiceV2": "FeeServiceInterface",
    "AccountServiceV2": "AccountServiceInterface",
}
"""Every data service has a v2 (:mod:`stonks_plugins.interfaces_v2`); the authentication
and update services carry no money or dates and stay v1-only."""


@dataclass(frozen=True)
class InterfaceIssue:
    code: ReasonCode
    message: str


class VersionChecker:
    """Checks what a plugin declares against what the core serves.

    ``served`` maps an interface family (its v1 name) to the versions the core serves of it.
    """

    DEFAULT_SERVED: ClassVar[dict[str, tuple[InterfaceVersion, ...]]] = {
        **{name: (V1,) for name in _V1_NAMES},
        **{family: (V1, V2) for family in _V2_NAMES.values()},
    }

    def __init__(self, served: dict[str, tuple[InterfaceVersion, ...]] | None = None) -> None:
        self.served = dict(self.DEFAULT_SERVED if served is None else served)

    def served_versions(self) -> dict[str, list[str]]:
        """What the core publishes: interface name -> versions (as strings)."""
        out: dict[str, list[str]] = {}
        for family, versions in self.served.items():
            for v in versions:
                name = family if v.major == 1 else _v2_name(family)
                out.setdefault(name, []).append(str(v))
        return out

    @staticmethod
    def parse_entry(entry: str) -> tuple[str, InterfaceVersion]:
        """``(family, required version)`` of one ``api.interfaces`` entry; the family is
        the name itself when unknown. Raises ValueError on a malformed ``@`` version."""
        name, sep, version = entry.partition("@")
        name = name.strip()
        family = _V2_NAMES.get(name, name)
        if sep:
            return family, InterfaceVersion.parse(version)
        return family, (V2 if name in _V2_NAMES else V1)

    def check_entry(self, entry: str) -> InterfaceIssue | None:
        try:
            family, required = self.parse_entry(entry)
        except ValueError:
            return InterfaceIssue(
                ReasonCode.INCOMPATIBLE_API,
                f"api.interfaces entry '{entry}' has no valid version after '@'",
            )
        served = self.served.get(family)
        if not served:
            return InterfaceIssue(
                ReasonCode.INCOMPATIBLE_API,
                f"needs interface '{entry}' (version {required}) which this core does not "
                f"serve; known: {', '.join(sorted(self.served_versions()))}",
            )
        if any(s.is_compatible_with(required) for s in served):
            return None
        return InterfaceIssue(
            ReasonCode.INCOMPATIBLE_API,
            f"needs interface {family} version {required} but this core serves "
            f"{', '.join(str(s) for s in served)}",
        )

    def check(self, interfaces: tuple[str, ...] | list[str]) -> list[InterfaceIssue]:
        return [i for e in interfaces if (i := self.check_entry(e)) is not None]


def _v2_name(family: str) -> str:
    for v2, fam in _V2_NAMES.items():
        if fam == family:
            return v2
    return f"{family}@2"


default_checker = VersionChecker()


_accepted: set[str] = set()
"""``api.interfaces`` entries the core was found to serve: plugins name the same few
interfaces in many orders and combinations, and one set test clears them all."""


def check_interfaces(interfaces: tuple[str, ...]) -> tuple[InterfaceIssue, ...]:
    """:meth:`VersionChecker.check` with the core's served versions, memoised per entry
    served."""
    if _accepted.issuperset(interfaces):
        return ()
    issues = []
    for entry in interfaces:
        issue = default_checker.check_entry(entry)
        if issue is None:
            _accepted.add(entry)
        else:
            issues.append(issue)
    return tuple(issues)


def clear_memos() -> None:
    _accepted.clear()
