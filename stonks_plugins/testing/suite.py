"""PluginTestSuite: the seed's testing framework (section 5.2) for plugin authors.

It runs a plugin the way the host does — discovery's manifest checks, the real
:class:`~stonks_plugins.registry.PluginRegistry` and :class:`~stonks_plugins.sandbox.PluginSandbox`
— but in a registry of its own, so it never touches the host's process-wide one, and with no
Django: a plugin's tests run with plain ``pytest`` in the plugin's folder.

Each standard test returns a :class:`TestResult` of named checks and never raises for a
plugin fault (a broken plugin is a result, not a crash of the kit); :meth:`assert_all` turns
the failed checks into one ``AssertionError`` that lists every problem and what to change.

Plugin code is imported under the same module names the host uses (``_stonks_plugin_pkgs.*``
for a folder, the package's own name for an installed distribution) and released again after
each test: do not run the kit in a process whose own registry is serving the same plugin.

This module is the facade authors import; each family of checks lives in its own module
(:mod:`.interface_checks`, :mod:`.lifecycle_checks`, :mod:`.config_checks`,
:mod:`.benchmark`) over the shared :mod:`.support`, and the names they define that authors
used from here are re-exported.
"""

from __future__ import annotations

from typing import Any

from ..discovery.candidate import Candidate
from ..registry import LoadedPlugin
from .benchmark import benchmark_plugin
from .config_checks import check_configuration
from .interface_checks import KNOWN_INTERFACES, SAMPLE_PORTFOLIO, TYPE_BASES, check_interfaces
from .lifecycle_checks import check_lifecycle, plugin_modules
from .results import BenchmarkResult, MethodTiming, TestResult, failure_report
from .support import (
    CONFIG_SECTIONS,
    PluginUnderTest,
    Target,
    schema_defaults,
)
from .support import candidate_from_file as _candidate_from_file

__all__ = [
    "CONFIG_SECTIONS",
    "KNOWN_INTERFACES",
    "SAMPLE_PORTFOLIO",
    "STANDARD_TESTS",
    "TYPE_BASES",
    "BenchmarkResult",
    "MethodTiming",
    "PluginTestSuite",
    "Target",
    "TestResult",
    "_candidate_from_file",
    "failure_report",
    "plugin_modules",
    "schema_defaults",
]

STANDARD_TESTS = ("interfaces", "lifecycle", "configuration")


class PluginTestSuite(PluginUnderTest):
    """The standard tests for one plugin.

    ``target`` is a plugin folder, its ``plugin_manifest.json`` (or a manifest file under
    another name), or a :class:`Candidate` from discovery (an installed distribution, say) or
    a :class:`LoadedPlugin`. ``config`` is the settings dict services are built with, on top
    of the defaults in the manifest's config schema; by default a plugin must work with its
    defaults alone (ship sample data they point at). ``timeouts`` overrides the sandbox's time
    limits (seconds per operation: ``import``, ``initialize``, ``health_check``, ``shutdown``).
    """

    def __repr__(self) -> str:
        return f"<PluginTestSuite {self.name} ({self.location})>"

    # -- running -------------------------------------------------------------------------------

    def run(self, test: str, **options: Any) -> TestResult:
        """One standard test by name (``interfaces``, ``lifecycle``, ``configuration`` or
        ``benchmark``)."""
        if test == "interfaces":
            return self.test_plugin_interfaces()
        if test == "lifecycle":
            return self.test_plugin_lifecycle(**options)
        if test == "configuration":
            return self.test_plugin_configuration()
        if test == "benchmark":
            return self.benchmark_plugin_performance(**options)
        raise ValueError(f"unknown kit test {test!r}; expected one of {', '.join(STANDARD_TESTS)}")

    def run_all(
        self, *, cycles: int = 3, benchmark: bool = False, calls: int = 100
    ) -> list[TestResult]:
        """The three standard tests, and the benchmark when asked."""
        results = [
            self.test_plugin_interfaces(),
            self.test_plugin_lifecycle(cycles),
            self.test_plugin_configuration(),
        ]
        if benchmark:
            results.append(self.benchmark_plugin_performance(calls))
        return results

    def assert_all(self, **options: Any) -> list[TestResult]:
        """:meth:`run_all`, raising ``AssertionError`` that lists every failed check."""
        results = self.run_all(**options)
        text = failure_report(self.name, self.location, results)
        if text:
            raise AssertionError(text)
        return results

    # -- the standard tests --------------------------------------------------------------------

    def test_plugin_interfaces(self) -> TestResult:
        """Manifest valid and compatible; every declared class resolves and is of the right
        kind; every service method returns the data classes its interface declares."""
        return check_interfaces(self)

    def test_plugin_lifecycle(self, cycles: int = 3) -> TestResult:
        """load → initialize → services work → health → unload, ``cycles`` times, through
        the real registry and sandbox: no leaked threads or resources, the plugin's modules
        gone from ``sys.modules`` after each unload, and fresh code on each reload."""
        return check_lifecycle(self, cycles)

    def test_plugin_configuration(self) -> TestResult:
        """The config class builds from an empty dict and from the schema's defaults, takes
        every setting the manifest declares, and round-trips through ``to_dict``."""
        return check_configuration(self, self.check_config_schema)

    def check_config_schema(
        self,
        result: TestResult,
        cand: Candidate,
        loaded: LoadedPlugin,
        schema: dict[str, Any] | None,
    ) -> None:
        """Hook for the detailed checks of the config schema: a no-op for now.

        TODO(config system, stonks_plugins.config): validate ``schema`` itself, the defaults
        and the kit's config against it, and that secrets (``required_credentials``, fields
        the schema marks secret) are write-only — using the config system's own validator,
        so the kit and the host never disagree.
        """

    def benchmark_plugin_performance(
        self, calls: int = 1000, *, budget_s: float = 5.0
    ) -> BenchmarkResult:
        """p50/p95 latency of every service method through the boundary, next to the same
        method called directly; each method stops after ``calls`` calls or ``budget_s``."""
        return benchmark_plugin(self, calls, budget_s)
