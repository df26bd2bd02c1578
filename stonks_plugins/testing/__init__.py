"""The plugin test kit (the seed's PluginTestSuite, section 5.2), for plugin authors.

From a plugin's own tests::

    from pathlib import Path
    from stonks_plugins.testing import PluginTestSuite

    def test_standard_kit():
        PluginTestSuite(Path(__file__).parents[1]).assert_all()

It is also a pytest plugin (``stonks_plugins.testing.pytest_plugin``, registered as a
``pytest11`` entry point): the ``plugin_suite`` fixture, ``pytest --stonks-plugin-kit PATH``
and the ``stonks_plugin_kit`` marker. Nothing here needs Django.

The names below are imported on first use, so that pytest loading the plugin module at
start-up imports nothing of the plugin system.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .results import BenchmarkResult, Check, MethodTiming, TestResult
    from .suite import (
        STANDARD_TESTS,
        PluginTestSuite,
        failure_report,
        plugin_modules,
        schema_defaults,
    )

_EXPORTS = {
    "BenchmarkResult": ".results",
    "Check": ".results",
    "MethodTiming": ".results",
    "TestResult": ".results",
    "STANDARD_TESTS": ".suite",
    "PluginTestSuite": ".suite",
    "failure_report": ".suite",
    "plugin_modules": ".suite",
    "schema_defaults": ".suite",
}

__all__ = [
    "STANDARD_TESTS",
    "BenchmarkResult",
    "Check",
    "MethodTiming",
    "PluginTestSuite",
    "TestResult",
    "failure_report",
    "plugin_modules",
    "schema_defaults",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
