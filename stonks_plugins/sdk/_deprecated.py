"""Names that left the SDK's public surface and still resolve, with a ``DeprecationWarning``,
for one release (SDK 1.x). Each one says what to use instead, or that it is internal.

They are looked up lazily, by the SDK package's module ``__getattr__`` (PEP 562): they are
not in ``stonks_plugins.sdk.__all__`` nor in its ``dir()``, so neither a star import nor
documentation generated from the package shows them, and the adapters' module is imported
only by a plugin that still asks for it.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Deprecated:
    """One name that left the SDK: what it is now (``load``) and what to use instead."""

    load: Callable[[], object]
    instead: str


def _compatibility_adapter() -> object:
    from ..interface_adapters import CompatibilityAdapter

    return CompatibilityAdapter


def _get_service_v2() -> object:
    from ..interface_adapters import get_service_v2

    return get_service_v2


def _versioned_interface() -> object:
    from ..versioning import VersionedInterface

    return VersionedInterface


def _core_api_version() -> object:
    from .. import CORE_API_VERSION

    return CORE_API_VERSION


_INTERNAL = "it is internal to the host; do not use it"

DEPRECATED: dict[str, Deprecated] = {
    "CompatibilityAdapter": Deprecated(
        _compatibility_adapter,
        f"{_INTERNAL} (the host adapts v1 and v2 services for every consumer itself; "
        "implement either version's interface)",
    ),
    "get_service_v2": Deprecated(
        _get_service_v2,
        f"{_INTERNAL} (a view gets the portfolio with get_portfolio(), an aggregator in "
        "aggregate(), a middleware sees call.interface_version)",
    ),
    "VersionedInterface": Deprecated(
        _versioned_interface,
        f"{_INTERNAL} (subclass the V2 service interfaces, e.g. PortfolioServiceV2)",
    ),
    "CORE_API_VERSION": Deprecated(_core_api_version, "use SDK_VERSION (the same value)"),
}
"""Every deprecated alias: removed from the SDK in its next release."""


def resolve(name: str) -> object:
    """The object a deprecated ``stonks_plugins.sdk.<name>`` stands for, after warning the
    caller's line; ``AttributeError`` for a name the SDK never had."""
    entry = DEPRECATED.get(name)
    if entry is None:
        raise AttributeError(f"module 'stonks_plugins.sdk' has no attribute {name!r}")
    if _import_system_probe():
        return entry.load()  # the import that asked warns next, once
    warnings.warn(
        f"stonks_plugins.sdk.{name} is deprecated and leaves the SDK in its next release: "
        f"{entry.instead}",
        DeprecationWarning,
        stacklevel=3,  # resolve <- sdk.__getattr__ <- the plugin's import or attribute read
    )
    return entry.load()


def _import_system_probe() -> bool:
    """Whether the caller is the import system checking, for ``from stonks_plugins.sdk import
    X``, that ``X`` is an attribute rather than a submodule (it then reads it again)."""
    caller = sys._getframe(3)  # _import_system_probe <- resolve <- sdk.__getattr__ <- caller
    return caller.f_code.co_filename.startswith("<frozen importlib")
