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
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import math
import os
import sys
import threading
import time
import typing
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from time import perf_counter_ns
from typing import Any

from stonks_overwatch.core.config import BaseConfig
from stonks_overwatch.core.data import PortfolioEntry
from stonks_overwatch.core.service_types import ServiceType

from .. import loader, sdk
from ..base import (
    BaseAggregatorPlugin,
    BaseBrokerPlugin,
    BaseMiddlewarePlugin,
    BasePlugin,
    BaseViewPlugin,
    ServiceCall,
)
from ..compat_adapters import accepted_interfaces
from ..config.schema import SchemaError, config_schema
from ..config.validation import fill_defaults
from ..discovery.candidate import RAW_FROM_MANIFEST, Candidate, Problem, Source
from ..discovery.catalog import apply_compatibility
from ..discovery.directories import scan_directory_plugin
from ..errors import PluginError, ReasonCode
from ..health import Health, HealthStatus
from ..manifest.validation import MANIFEST_FILENAME, ManifestError, load_manifest_file
from ..registry import LoadedPlugin, PluginRegistry
from ..sandbox import PluginSandbox, SandboxError
from ..versioning import default_checker
from .conformance import interface_methods, returns_nothing, type_problem
from .results import BenchmarkResult, MethodTiming, TestResult
from .service_checks import FAULTS as _FAULTS
from .service_checks import check_service
from .service_checks import fault_message as _message
from .versions import contract_for

TYPE_BASES: dict[str, type[BasePlugin]] = {
    "broker": BaseBrokerPlugin,
    "aggregator": BaseAggregatorPlugin,
    "view": BaseViewPlugin,
    "middleware": BaseMiddlewarePlugin,
}
KNOWN_INTERFACES = frozenset(n for n in sdk.__all__ if n.endswith("Interface"))
STANDARD_TESTS = ("interfaces", "lifecycle", "configuration")
_INVALID = (ReasonCode.MANIFEST_UNREADABLE, ReasonCode.MANIFEST_INVALID)
_SAMPLE_STR = "stonks-kit-sample"
CONFIG_SECTIONS = ("credentials", "settings")
"""Sections of a config the config system flattens for the config class."""

Target = str | os.PathLike[str] | Candidate | LoadedPlugin

SAMPLE_PORTFOLIO = (
    PortfolioEntry("Kit Sample Equity", "KITE", 10.0, 12.5, 125.0, "EUR", broker="kit-sample"),
    PortfolioEntry(
        "Kit Sample Fund", "KITF", 4.0, 50.0, 200.0, "USD", product_type="etf", broker="kit-sample"
    ),
)
"""What aggregator and middleware hooks are called with."""


class PluginTestSuite:
    """The standard tests for one plugin.

    ``target`` is a plugin folder, its ``plugin_manifest.json`` (or a manifest file under
    another name), or a :class:`Candidate` from discovery (an installed distribution, say) or
    a :class:`LoadedPlugin`. ``config`` is the settings dict services are built with, on top
    of the defaults in the manifest's config schema; by default a plugin must work with its
    defaults alone (ship sample data they point at). ``timeouts`` overrides the sandbox's time
    limits (seconds per operation: ``import``, ``initialize``, ``health_check``, ``shutdown``).
    """

    def __init__(
        self,
        target: Target,
        *,
        config: Mapping[str, Any] | None = None,
        timeouts: Mapping[str, float | None] | None = None,
    ) -> None:
        if isinstance(target, LoadedPlugin):
            target = target.candidate
        self.target = target
        self.config_overrides: dict[str, Any] = dict(config or {})
        self.timeouts: dict[str, float | None] = dict(timeouts or {})

    def __repr__(self) -> str:
        return f"<PluginTestSuite {self.name} ({self.location})>"

    # -- the plugin under test --------------------------------------------------------------

    def candidate(self) -> Candidate:
        """The plugin as discovery sees it, compatibility verdict included (read afresh on
        every call: the files may have changed between two tests)."""
        target = self.target
        if isinstance(target, Candidate):
            return apply_compatibility(target)
        path = Path(target).expanduser().resolve()
        if path.is_dir() or path.name == MANIFEST_FILENAME:
            folder = path if path.is_dir() else path.parent
            if not folder.exists():
                return _missing(path)
            return apply_compatibility(scan_directory_plugin(folder))
        if not path.exists():
            return _missing(path)
        return apply_compatibility(_candidate_from_file(path))

    @property
    def name(self) -> str:
        return self.candidate().name

    @property
    def location(self) -> str:
        return self.candidate().location

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

    # -- interfaces ----------------------------------------------------------------------------

    def test_plugin_interfaces(self) -> TestResult:
        """Manifest valid and compatible; every declared class resolves and is of the right
        kind; every service method returns the data classes its interface declares."""
        result = TestResult("interfaces", self._safe_name())
        with _timed(result):
            cand = self._usable(result, report_ok=True)
            if cand is None:
                return result
            self._check_declared_interfaces(result, cand)
            self._check_references(result, cand)
            if not result.passed:
                return result  # loading would only repeat the problems above
            with self._loaded(result, cand) as loaded:
                if loaded is None:
                    return result
                self._check_loaded_services(result, cand, loaded)
                config = self._build_config(result, loaded)
                if config is not _FAILED:
                    self._check_service_methods(result, loaded, config)
                self._check_type_hook(result, loaded)
        return result

    def _check_type_hook(self, result: TestResult, loaded: LoadedPlugin) -> None:
        """The hook the host calls on an aggregator, view or middleware plugin, called once
        with sample data: it must answer with what its base class declares."""
        instance, box = loaded.instance, loaded.sandbox
        if instance is None or box is None:
            return
        sample = list(SAMPLE_PORTFOLIO)
        hook: tuple[str, Callable[[], Any], Any] | None = None
        if isinstance(instance, BaseAggregatorPlugin):
            hint = typing.get_type_hints(BaseAggregatorPlugin.aggregate)["return"]
            hook = ("aggregate", lambda: instance.aggregate(sample), hint)
        elif isinstance(instance, BaseViewPlugin):
            hook = ("get_urlpatterns", instance.get_urlpatterns, list[Any])
        elif isinstance(instance, BaseMiddlewarePlugin):
            call = ServiceCall("kit-sample", ServiceType.PORTFOLIO, "get_portfolio")
            hook = (
                "intercept",
                lambda: instance.intercept(call, lambda: list(sample)),
                list[PortfolioEntry],
            )
        if hook is None:
            return
        method, thunk, hint = hook
        name = f"{instance.plugin_type}.{method}"
        try:
            value = box.run(method, thunk, timeout=None)
        except SandboxError as err:
            result.fail(name, f"{method}() raised {err.message} when called with sample data")
            return
        problem = type_problem(value, hint, f"{method}()")
        if problem:
            base = TYPE_BASES[instance.plugin_type].__name__
            result.fail(name, f"{problem} (see {base}.{method} in stonks_plugins.sdk)")
        else:
            size = f"{len(value)} items" if isinstance(value, list) else type(value).__name__
            result.ok(name, f"returned {size} with sample data")

    def _check_declared_interfaces(self, result: TestResult, cand: Candidate) -> None:
        assert cand.manifest is not None
        # API versions: what the core serves (stonks_plugins.versioning.VersionChecker).
        issues = default_checker.check(cand.manifest.api.interfaces)
        if issues:
            result.fail("api.interfaces", "; ".join(i.message for i in issues))
        elif cand.manifest.api.interfaces:
            result.ok("api.interfaces", ", ".join(cand.manifest.api.interfaces))

    def _check_references(self, result: TestResult, cand: Candidate) -> None:
        """Resolve each dotted path of the manifest on its own, so every broken one is
        reported at once (loading stops at the first)."""
        manifest = cand.manifest
        assert manifest is not None
        if _isolated(cand):
            # Its code must not run in this process: loading it (in its own) checks them.
            result.ok("references", "resolved in the plugin's own process (isolation: process)")
            return
        box = PluginSandbox(cand.name, timeouts=self.timeouts)
        try:
            main = manifest.entry_points.main
            expected = TYPE_BASES.get(manifest.type, BasePlugin)
            if main:
                self._check_main(result, box, cand, main, expected)
            elif manifest.type != "broker":
                result.fail(
                    "entry_points.main",
                    f"a {manifest.type} plugin needs entry_points.main naming its "
                    f"{expected.__name__} subclass (e.g. 'mypkg.plugin:MyPlugin')",
                )
            for stype, ref in manifest.services.items():
                self._check_service_ref(result, box, cand, stype, ref)
        finally:
            box.close(join_timeout=0.5)
            loader.release(cand)

    def _check_main(
        self,
        result: TestResult,
        box: PluginSandbox,
        cand: Candidate,
        ref: str,
        expected: type[BasePlugin],
    ) -> None:
        assert cand.manifest is not None
        cls = _resolve(result, "entry_points.main", box, cand, ref)
        if cls is _FAILED:
            return
        if not (isinstance(cls, type) and issubclass(cls, BasePlugin)):
            result.fail(
                "entry_points.main",
                f"'{ref}' is {_kind(cls)}, not a subclass of stonks_plugins.sdk.BasePlugin; "
                f"point it at your {expected.__name__} subclass",
            )
        elif not issubclass(cls, expected):
            result.fail(
                "entry_points.main",
                f"'{ref}' ({cls.__name__}) is a {cls.plugin_type or 'plain'} plugin class but "
                f"plugin.type is '{cand.manifest.type}'; subclass stonks_plugins.sdk."
                f"{expected.__name__}",
            )
        elif inspect.isabstract(cls):
            missing = ", ".join(sorted(getattr(cls, "__abstractmethods__", ())))
            result.fail("entry_points.main", f"'{ref}' is abstract: implement {missing}")
        else:
            result.ok("entry_points.main", f"{cls.__name__} ({expected.__name__})")

    def _check_service_ref(
        self, result: TestResult, box: PluginSandbox, cand: Candidate, stype: ServiceType, ref: str
    ) -> None:
        name = f"service.{stype.value}"
        cls = _resolve(result, name, box, cand, ref)
        if cls is _FAILED:
            return
        problem = _service_class_problem(stype, cls)
        if problem:
            result.fail(name, f"services.{stype.value} '{ref}' {problem}")
        else:
            result.ok(name, _implements(stype, cls))

    def _check_loaded_services(
        self, result: TestResult, cand: Candidate, loaded: LoadedPlugin
    ) -> None:
        """What the host will serve: every declared capability has a class, and classes the
        plugin class supplies in code (not named in the manifest) are checked too."""
        assert cand.manifest is not None
        declared = set(cand.manifest.services)
        for stype, cls in loaded.services.items():
            if stype in declared:
                continue  # checked from the manifest above
            problem = _service_class_problem(stype, cls)
            name = f"service.{stype.value}"
            if problem:
                result.fail(name, f"{cls!r} (from get_services()) {problem}")
            else:
                result.ok(name, f"{_implements(stype, cls)} (from get_services())")
        missing = [s.value for s in cand.manifest.capabilities.services if s not in loaded.services]
        if missing:
            result.fail(
                "capabilities.services",
                f"declares {', '.join(missing)} but the plugin provides no class for "
                f"{'it' if len(missing) == 1 else 'them'}: name one in $.services or return it "
                "from get_services(), or drop it from capabilities.services",
            )
        elif cand.manifest.type == "broker" and not loaded.services:
            result.fail(
                "capabilities.services",
                "a broker plugin must provide at least one service ($.services or get_services())",
            )
        elif loaded.services:
            result.ok("capabilities.services", ", ".join(s.value for s in loaded.services))

    def _check_service_methods(self, result: TestResult, loaded: LoadedPlugin, config: Any) -> None:
        """Each service against the interface version it implements (see
        :mod:`.service_checks`)."""
        config_text = repr(self.config_data(loaded.candidate))
        for stype, cls in loaded.services.items():
            service = self._create(result, f"service.{stype.value}.create", loaded, stype, config)
            if service is not _FAILED:
                check_service(result, stype, cls, service, config_text)

    # -- lifecycle -----------------------------------------------------------------------------

    def test_plugin_lifecycle(self, cycles: int = 3) -> TestResult:
        """load → initialize → services work → health → unload, ``cycles`` times, through
        the real registry and sandbox: no leaked threads or resources, the plugin's modules
        gone from ``sys.modules`` after each unload, and fresh code on each reload."""
        result = TestResult("lifecycle", self._safe_name())
        with _timed(result):
            cand = self._usable(result)
            if cand is None:
                return result
            problems: dict[str, list[str]] = {
                k: [] for k in ("load", "services", "health", "unload", "modules", "threads")
            }
            load_ms: list[float] = []
            health: list[str] = []
            stale: list[str] = []
            previous: dict[ServiceType, type] = {}
            registry = self._registry()
            registry.register(cand)
            known_threads = set(threading.enumerate())
            done = 0
            try:
                for cycle in range(1, cycles + 1):
                    tag = f"cycle {cycle}/{cycles}"
                    start = time.perf_counter()
                    try:
                        loaded = registry.load(cand.name)
                    except PluginError as err:
                        problems["load"].append(f"{tag}: {err.code.value}: {err.message}")
                        registry.unload(cand.name)
                        break
                    load_ms.append((time.perf_counter() - start) * 1000)
                    problems["services"] += [f"{tag}: {p}" for p in self._exercise(loaded)]
                    verdict = self._health(loaded)
                    if verdict.startswith("!"):
                        problems["health"].append(f"{tag}: {verdict[1:]}")
                    else:
                        health.append(verdict)
                    if loaded.host is None:  # a process-isolated plugin is fresh each load
                        for stype, cls in loaded.services.items():
                            if previous.get(stype) is cls:
                                stale.append(f"{tag}: {stype.value} service class {cls.__name__}")
                        previous = dict(loaded.services)
                    del loaded
                    report = registry.unload(cand.name)
                    if report is None:
                        problems["unload"].append(f"{tag}: the registry had nothing to unload")
                        reported: list[str] = []
                    else:
                        reported = list(report.threads)
                        if not report.ok:
                            leaks = [f"thread '{t}' still running" for t in report.threads]
                            leaks += [f"cleanup failed: {e}" for e in report.errors]
                            problems["unload"].append(f"{tag}: {'; '.join(leaks)}")
                    left = plugin_modules(cand)
                    if left:
                        shown = ", ".join(left[:5]) + (" ..." if len(left) > 5 else "")
                        problems["modules"].append(f"{tag}: still in sys.modules: {shown}")
                    stray = _stray_threads(known_threads, reported)
                    if stray:
                        problems["threads"].append(f"{tag}: {', '.join(stray)}")
                    known_threads = set(threading.enumerate())
                    done = cycle
            finally:
                registry.clear()
            self._lifecycle_checks(result, problems, cycles, done, load_ms, health, stale)
        return result

    def _lifecycle_checks(
        self,
        result: TestResult,
        problems: dict[str, list[str]],
        cycles: int,
        done: int,
        load_ms: list[float],
        health: list[str],
        stale: list[str],
    ) -> None:
        hints = {
            "load": "import and initialize() must succeed every time the plugin is loaded",
            "services": "every service method must work after each (re)load",
            "health": "health_check() must return a stonks_plugins.sdk.HealthStatus that is "
            "not unhealthy with the kit's config",
            "unload": "create threads, files and connections through self.context "
            "(start_thread, open, track) and let threads stop when "
            "self.context.stop_event is set; shutdown() must close the rest",
            "modules": "the host could not forget the plugin's modules: import your own "
            "modules relatively (from .x import y) and do not register them elsewhere",
            "threads": "threads started outside self.context outlive the unload: start them "
            "with self.context.start_thread(...) and watch self.context.stop_event",
        }
        timing = ", ".join(f"{ms:.1f}" for ms in load_ms)
        summary = {
            "load": f"loaded and initialised {len(load_ms)} times ({timing} ms)",
            "services": "every service method answered after each load",
            "health": "; ".join(dict.fromkeys(health)) or "no plugin class: nothing to check",
            "unload": "nothing leaked",
            "modules": "released from sys.modules after each unload",
            "threads": "no thread outlived an unload",
        }
        for key, found in problems.items():
            name = f"lifecycle.{key}"
            if found:
                result.fail(name, f"{'; '.join(found)} — {hints[key]}")
            elif done:
                result.ok(name, summary[key])
        if stale:
            result.fail(
                "lifecycle.reimport",
                f"{'; '.join(stale)} is the same object after the reload: the plugin's code "
                "was not imported afresh (is a copy of the package installed, or imported by "
                "its absolute name?)",
            )
        elif done > 1:
            result.ok("lifecycle.reimport", "each reload ran the code afresh")
        if done < cycles and not problems["load"]:
            result.fail("lifecycle.cycles", f"only {done} of {cycles} cycles ran")

    def _exercise(self, loaded: LoadedPlugin) -> list[str]:
        """Call every service method once; the failures, one line each."""
        scratch = TestResult("lifecycle", loaded.name)
        config = self._build_config(scratch, loaded)
        if config is _FAILED:
            return [c.message for c in scratch.failures]
        problems = []
        for stype in loaded.services:
            service = self._create(scratch, "create", loaded, stype, config)
            if service is _FAILED:
                problems.append(f"{stype.value}: {scratch.failures[-1].message}")
                continue
            contract = contract_for(stype, loaded.services[stype])
            for method, hint in interface_methods(contract.interface):
                if returns_nothing(hint):
                    continue
                try:
                    getattr(service, method)()
                except _FAULTS as err:
                    problems.append(f"{stype.value}.{method}() raised {_message(err)}")
        return problems

    def _health(self, loaded: LoadedPlugin) -> str:
        """The health verdict as text; a problem starts with ``!``."""
        try:
            if loaded.host is not None:  # isolation: process; the check runs in the child
                status: Any = loaded.host.health_check(self.timeouts.get("health_check"))
            elif loaded.instance is None or loaded.sandbox is None:
                return "no plugin class: the host reports it healthy"
            else:
                status = loaded.sandbox.run("health_check", loaded.instance.health_check)
        except _FAULTS as err:
            return f"!health_check() failed: {_fault_text(err)}"
        if not isinstance(status, HealthStatus):
            return f"!health_check() returned {_kind(status)}, expected HealthStatus"
        if status.status is Health.UNHEALTHY:
            return f"!health_check() reported unhealthy: {status.message}"
        return f"health {status.status.value}" + (f": {status.message}" if status.message else "")

    # -- configuration -------------------------------------------------------------------------

    def test_plugin_configuration(self) -> TestResult:
        """The config class builds from an empty dict and from the schema's defaults, takes
        every setting the manifest declares, and round-trips through ``to_dict``."""
        result = TestResult("configuration", self._safe_name())
        with _timed(result):
            cand = self._usable(result)
            if cand is None:
                return result
            schema = self._schema(result, cand)
            with self._loaded(result, cand) as loaded:
                if loaded is None:
                    return result
                if loaded.host is None:
                    assert loaded.sandbox is not None
                    self._check_config(result, cand, loaded.sandbox, loaded.config_class, schema)
                else:
                    self._check_isolated_config(result, cand, schema)
                self.check_config_schema(result, cand, loaded, schema)
        return result

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

    def _check_isolated_config(
        self, result: TestResult, cand: Candidate, schema: dict[str, Any] | None
    ) -> None:
        """A process-isolated plugin's config class lives in its child; the kit imports
        just that class here (keep config modules free of side effects)."""
        assert cand.manifest is not None
        ref = cand.manifest.configuration.config_class or cand.manifest.entry_points.config
        box = PluginSandbox(cand.name, timeouts=self.timeouts)
        try:
            cls = _resolve(result, "config.class", box, cand, ref) if ref else BaseConfig
            if cls is not _FAILED:
                self._check_config(result, cand, box, cls, schema)
        finally:
            box.close(join_timeout=0.5)
            loader.release(cand)

    def _check_config(
        self,
        result: TestResult,
        cand: Candidate,
        box: PluginSandbox,
        cls: Any,
        schema: dict[str, Any] | None,
    ) -> None:
        assert cand.manifest is not None
        if not (isinstance(cls, type) and issubclass(cls, BaseConfig)):
            result.fail(
                "config.class",
                f"the config class is {_kind(cls)}; make it a dataclass subclassing "
                "stonks_plugins.sdk.BaseConfig",
            )
            return
        result.ok("config.class", f"{cls.__qualname__}")
        refs = [
            r
            for r in (cand.manifest.configuration.config_class, cand.manifest.entry_points.config)
            if r
        ]
        if len(refs) == 2:
            other = _resolve(result, "config.refs", box, cand, refs[1])
            if other is not _FAILED and other is not cls:
                result.fail(
                    "config.refs",
                    f"configuration.config_class '{refs[0]}' and entry_points.config "
                    f"'{refs[1]}' name different classes; name the same one (or drop one)",
                )
            elif other is not _FAILED:
                result.ok("config.refs", "configuration.config_class and entry_points.config agree")

        empty = _build(result, "config.empty", box, cls, {})
        if empty is _FAILED:
            return
        result.ok("config.empty", "from_dict({}) builds the defaults")
        defaults = schema_defaults(schema)
        if defaults:
            self._check_schema_defaults(result, box, cls, empty, defaults)
        self._check_declared_settings(result, box, cand, cls, empty)
        if hasattr(empty, "to_dict"):
            try:
                again = box.run(
                    "config.round_trip", lambda: cls.from_dict(empty.to_dict()), timeout=None
                )
            except SandboxError as err:
                result.fail("config.round_trip", f"from_dict(to_dict()) raised {err.message}")
            else:
                if again == empty:
                    result.ok("config.round_trip", "from_dict(to_dict()) gives the same config")
                else:
                    result.fail(
                        "config.round_trip",
                        f"from_dict(to_dict()) gives {again!r}, not {empty!r}: to_dict() and "
                        "from_dict() must agree on the keys",
                    )

    def _check_schema_defaults(
        self,
        result: TestResult,
        box: PluginSandbox,
        cls: type,
        empty: Any,
        defaults: dict[str, Any],
    ) -> None:
        built = _build(result, "config.schema_defaults", box, cls, defaults)
        if built is _FAILED:
            return
        disagree = [
            f"'{k}' defaults to {v!r} in the schema but {getattr(empty, k, '<missing>')!r} in "
            f"{cls.__name__}"
            for k, v in defaults.items()
            if getattr(empty, k, _FAILED) != v
        ]
        if disagree:
            result.fail(
                "config.schema_defaults",
                "; ".join(disagree) + ": make the schema's defaults and the class's agree",
            )
        else:
            result.ok("config.schema_defaults", f"schema defaults for {', '.join(defaults)}")

    def _check_declared_settings(
        self, result: TestResult, box: PluginSandbox, cand: Candidate, cls: type, empty: Any
    ) -> None:
        assert cand.manifest is not None
        conf = cand.manifest.configuration
        declared = [*conf.required_credentials, *conf.optional_settings]
        if not declared:
            return
        missing = [k for k in declared if not hasattr(empty, k)]
        if missing:
            result.fail(
                "config.declared_settings",
                f"the manifest declares {', '.join(missing)} but {cls.__name__} has no such "
                "field (from_dict drops unknown keys, so the setting would be ignored): add "
                "the fields or fix configuration.required_credentials/optional_settings",
            )
            return
        sample = {k: _sample_value(getattr(empty, k)) for k in declared}
        built = _build(result, "config.declared_settings", box, cls, sample)
        if built is _FAILED:
            return
        ignored = [k for k, v in sample.items() if getattr(built, k, _FAILED) != v]
        if ignored:
            result.fail(
                "config.declared_settings",
                f"from_dict({sample!r}) did not set {', '.join(ignored)}: from_dict must "
                "accept every declared setting",
            )
        else:
            result.ok("config.declared_settings", f"from_dict sets {', '.join(declared)}")

    def _schema(self, result: TestResult, cand: Candidate) -> dict[str, Any] | None:
        """The plugin's config schema as the config system reads it (inline, a file next to
        the manifest, or generated from the seed's credentials/settings lists)."""
        assert cand.manifest is not None
        declared = cand.manifest.configuration.schema
        try:
            schema = config_schema(cand.manifest, cand.root)
        except SchemaError as err:
            result.fail("config.schema", f"{err} (the path is relative to the manifest)")
            return None
        if declared is not None:
            where = "inline in the manifest" if isinstance(declared, dict) else f"from {declared}"
            result.ok("config.schema", where)
        return schema

    def config_data(self, cand: Candidate | None = None) -> dict[str, Any]:
        """The settings services are built with: the schema's defaults (flattened as the
        config system hands them to the config class), then ``config``."""
        cand = cand if cand is not None else self.candidate()
        data: dict[str, Any] = {}
        if cand.manifest is not None:
            with contextlib.suppress(SchemaError):  # reported by the configuration test
                data.update(schema_defaults(config_schema(cand.manifest, cand.root)))
        data.update(self.config_overrides)
        return data

    # -- benchmark -----------------------------------------------------------------------------

    def benchmark_plugin_performance(
        self, calls: int = 1000, *, budget_s: float = 5.0
    ) -> BenchmarkResult:
        """p50/p95 latency of every service method through the boundary, next to the same
        method called directly; each method stops after ``calls`` calls or ``budget_s``."""
        result = BenchmarkResult("benchmark", self._safe_name(), calls=calls)
        with _timed(result):
            cand = self._usable(result)
            if cand is None:
                return result
            start = time.perf_counter()
            with self._loaded(result, cand) as loaded:
                if loaded is None:
                    return result
                result.load_ms = (time.perf_counter() - start) * 1000
                config = self._build_config(result, loaded)
                if config is _FAILED:
                    return result
                for stype, cls in loaded.services.items():
                    service = self._create(
                        result, f"benchmark.{stype.value}", loaded, stype, config
                    )
                    if service is _FAILED:
                        continue
                    # The baseline: the same class built outside the boundary (none for a
                    # process-isolated plugin, whose classes live in its own process).
                    direct = cls(config=config) if loaded.host is None else None
                    contract = contract_for(stype, cls)
                    for method, hint in interface_methods(contract.interface):
                        if returns_nothing(hint):
                            continue
                        op = f"{stype.value}.{method}"
                        timing = _measure(
                            result,
                            op,
                            getattr(service, method),
                            getattr(direct, method) if direct is not None else None,
                            calls,
                            budget_s,
                        )
                        if timing is not None:
                            result.timings.append(timing)
            if result.passed:
                result.ok("benchmark", f"{len(result.timings)} methods measured")
        return result

    # -- helpers -------------------------------------------------------------------------------

    def _safe_name(self) -> str:
        try:
            return self.name
        except Exception:
            return str(self.target)

    def _usable(self, result: TestResult, report_ok: bool = False) -> Candidate | None:
        """The candidate when its manifest is valid and compatible; else record why not."""
        cand = self.candidate()
        problem = cand.problem
        if cand.manifest is None or (problem is not None and problem.code in _INVALID):
            result.fail("manifest.valid", _problem_text(problem, cand) + _MANIFEST_HINT)
            return None
        if report_ok:
            result.ok("manifest.valid", f"{cand.name} {cand.manifest.version} ({cand.location})")
        if problem is not None:
            if problem.code is ReasonCode.INCOMPATIBLE_API:  # name the interfaces at fault
                self._check_declared_interfaces(result, cand)
            result.fail("manifest.compatible", f"{problem.code.value}: {problem.message}")
            return None
        if report_ok:
            result.ok("manifest.compatible", "runs on this core")
        return cand

    def _registry(self) -> PluginRegistry:
        registry = PluginRegistry()
        registry.hooks.timeouts = dict(self.timeouts)
        # The plugin object gets the kit's config before initialize(), as in the host.
        registry.hooks.config_provider = self._provide_config
        return registry

    def _provide_config(self, name: str) -> dict[str, Any]:
        return self.config_data()

    @contextmanager
    def _loaded(self, result: TestResult, cand: Candidate) -> Iterator[LoadedPlugin | None]:
        """The plugin loaded in a registry of its own; unloaded (and released) on exit."""
        registry = self._registry()
        registry.build_config = False  # the configuration checks build it, step by step
        registry.register(cand)
        try:
            try:
                loaded = registry.load(cand.name)
            except PluginError as err:
                result.fail("load", f"{err.code.value}: {err.message}")
                yield None
                return
            result.ok("load", "imported and initialised through the registry and sandbox")
            yield loaded
        finally:
            registry.clear()

    def _build_config(self, result: TestResult, loaded: LoadedPlugin) -> Any:
        assert loaded.sandbox is not None
        data = self.config_data(loaded.candidate)
        cls = loaded.config_class
        if not callable(getattr(cls, "from_dict", None)):
            result.fail("config.build", f"config class {_kind(cls)} has no from_dict()")
            return _FAILED
        return _build(result, "config.build", loaded.sandbox, cls, data)

    def _create(
        self, result: TestResult, name: str, loaded: LoadedPlugin, stype: ServiceType, config: Any
    ) -> Any:
        try:
            return loaded.create_service(stype, config=config)
        except _FAULTS as err:
            result.fail(
                name,
                f"building the {stype.value} service with config= raised {_message(err)}; its "
                "__init__ must accept (config=None, **kwargs) like BrokerServiceInterface",
            )
            return _FAILED


# -- module helpers ------------------------------------------------------------------------------


class _Failed:
    def __repr__(self) -> str:
        return "<failed>"


_FAILED: Any = _Failed()

_MANIFEST_HINT = (
    " — fix plugin_manifest.json (run 'manage.py plugins validate PATH' for every error "
    "with its JSON path)"
)


def failure_report(name: str, location: str, results: list[TestResult]) -> str:
    """Every failed check of ``results``, one line each; '' when all passed."""
    seen: set[tuple[str, str]] = set()
    lines = []
    total = 0
    for r in results:
        total += len(r.checks)
        for c in r.failures:
            if (c.name, c.message) in seen:
                continue
            seen.add((c.name, c.message))
            lines.append(f"  [{r.test}] {c.name}: {c.message}")
    if not lines:
        return ""
    return f"plugin '{name}' ({location}) failed {len(lines)} of {total} kit checks:\n" + "\n".join(
        lines
    )


def plugin_modules(cand: Candidate) -> list[str]:
    """Modules of the plugin's own code currently in ``sys.modules``."""
    if cand.source is Source.DIRECTORY:
        prefix = loader.package_prefix(cand.name)
        return sorted(m for m in list(sys.modules) if m == prefix or m.startswith(prefix + "."))
    top = loader.split_ref(cand.entry_point or "")[0].split(".", 1)[0]
    if not top:
        return []
    return sorted(m for m in list(sys.modules) if m == top or m.startswith(top + "."))


def schema_defaults(schema: dict[str, Any] | None) -> dict[str, Any]:
    """The defaults a config schema fills in, flattened the way the config system hands
    them to a config class (the seed's ``credentials``/``settings`` sections merged into the
    top level; see :mod:`stonks_plugins.config.system`)."""
    if not isinstance(schema, dict):
        return {}
    filled = fill_defaults(schema, {})
    if not isinstance(filled, dict):
        return {}
    flat = {k: v for k, v in filled.items() if k not in CONFIG_SECTIONS}
    for section in CONFIG_SECTIONS:
        if isinstance(filled.get(section), dict):
            flat.update(filled[section])
    return flat


def _missing(path: Path) -> Candidate:
    return Candidate(
        path.name,
        Source.DIRECTORY,
        str(path),
        path if path.is_dir() else path.parent,
        None,
        None,
        "",
        Problem(ReasonCode.MANIFEST_UNREADABLE, f"{path}: no such plugin folder or manifest"),
    )


def _candidate_from_file(path: Path) -> Candidate:
    """A manifest under another file name than plugin_manifest.json."""
    try:
        manifest = load_manifest_file(path)
    except ManifestError as err:
        return Candidate(
            path.parent.name,
            Source.DIRECTORY,
            str(path.parent),
            path.parent,
            None,
            None,
            "",
            Problem(err.code, err.summary, tuple(i.as_dict() for i in err.issues)),
        )
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return Candidate(
        manifest.name,
        Source.DIRECTORY,
        str(path.parent),
        path.parent,
        manifest,
        RAW_FROM_MANIFEST,
        digest,
    )


def _problem_text(problem: Problem | None, cand: Candidate) -> str:
    if problem is None:
        return f"{cand.location}: no manifest"
    return f"{problem.code.value}: {problem.message}"


def _kind(value: Any) -> str:
    if isinstance(value, type):
        return f"the class {value.__module__}.{value.__qualname__}"
    return f"a {type(value).__name__} ({value!r:.60})"


def _resolve(result: TestResult, name: str, box: PluginSandbox, cand: Candidate, ref: str) -> Any:
    try:
        return box.run("import", loader.resolve, cand, ref)
    except SandboxError as err:
        result.fail(name, f"{err.code.value}: {err.message}")
        return _FAILED


def _service_class_problem(stype: ServiceType, cls: Any) -> str | None:
    accepted = accepted_interfaces(stype)
    if not (isinstance(cls, type) and issubclass(cls, accepted)):
        names = " or ".join(f"stonks_plugins.sdk.{i.__name__}" for i in accepted)
        return (
            f"is {_kind(cls)}, which does not implement "
            f"{' or '.join(i.__name__ for i in accepted)}: subclass {names}"
        )
    if inspect.isabstract(cls):
        interface = contract_for(stype, cls).interface
        missing = ", ".join(sorted(getattr(cls, "__abstractmethods__", ())))
        return f"({cls.__name__}) does not implement {missing} of {interface.__name__}"
    return None


def _implements(stype: ServiceType, cls: type) -> str:
    """What a good service class is checked against, for the result line."""
    contract = contract_for(stype, cls)
    text = f"{cls.__name__} implements {contract.interface.__name__} (API {contract.version})"
    if contract.is_v2:
        text += "; v1 consumers get it through the compatibility adapter"
    return text


def _build(
    result: TestResult,
    name: str,
    box: PluginSandbox,
    cls: Any,
    data: dict[str, Any],
) -> Any:
    try:
        config = box.run("config.from_dict", cls.from_dict, data, timeout=None)
    except SandboxError as err:
        result.fail(name, f"{_kind(cls)}.from_dict({data!r}) raised {err.message}")
        return _FAILED
    if isinstance(cls, type) and not isinstance(config, cls):
        result.fail(name, f"from_dict({data!r}) returned {_kind(config)}, not a {cls.__name__}")
        return _FAILED
    return config


def _sample_value(default: Any) -> Any:
    """A value of the same type as ``default`` but different from it."""
    if isinstance(default, bool):
        return not default
    if isinstance(default, int):
        return default + 7
    if isinstance(default, float):
        return default + 1.5
    if isinstance(default, str):
        return default + _SAMPLE_STR
    return default


def _stray_threads(
    known: set[threading.Thread], reported: list[str], grace: float = 1.0
) -> list[str]:
    """New threads still alive after an unload, other than those the leak report named.
    Bounded-call workers end right after their call: they get ``grace`` seconds."""
    deadline = time.monotonic() + grace
    current = threading.current_thread()
    stray = []
    for thread in threading.enumerate():
        if thread in known or thread is current or _reported(thread.name, reported):
            continue
        thread.join(max(0.0, deadline - time.monotonic()))
        if thread.is_alive():
            stray.append(f"thread '{thread.name}' still running")
    return stray


def _reported(name: str, reported: list[str]) -> bool:
    """Named by the leak report (abandoned calls appear as 'NAME (abandoned ...)')."""
    return any(r == name or r.startswith(name + " (") for r in reported)


def _percentile(samples: list[int], q: float) -> float:
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))
    return ordered[index] / 1000.0


def _time_calls(func: Callable[[], Any], calls: int, budget_s: float) -> list[int]:
    samples: list[int] = []
    deadline = time.perf_counter() + budget_s
    for _ in range(max(1, calls)):
        t0 = perf_counter_ns()
        func()
        samples.append(perf_counter_ns() - t0)
        if time.perf_counter() > deadline:
            break
    return samples


def _measure(
    result: BenchmarkResult,
    op: str,
    boundary: Callable[[], Any],
    direct: Callable[[], Any] | None,
    calls: int,
    budget_s: float,
) -> MethodTiming | None:
    try:
        for _ in range(min(5, calls)):  # warm up caches on both paths
            boundary()
            if direct is not None:
                direct()
        through = _time_calls(boundary, calls, budget_s / 2)
        baseline = _time_calls(direct, calls, budget_s / 2) if direct is not None else []
    except Exception as exc:
        message = _message(exc) if isinstance(exc, _FAULTS) else f"{type(exc).__name__}: {exc}"
        result.fail(f"benchmark.{op}", f"{op}() raised {message}")
        return None
    return MethodTiming(
        operation=op,
        calls=len(through),
        p50_us=_percentile(through, 0.50),
        p95_us=_percentile(through, 0.95),
        mean_us=sum(through) / len(through) / 1000.0,
        direct_p50_us=_percentile(baseline, 0.50) if baseline else None,
    )


@contextmanager
def _timed(result: TestResult) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    finally:
        result.duration_s = time.perf_counter() - start


def _fault_text(err: Exception) -> str:
    code = getattr(err, "code", None)
    return f"{code.value}: {_message(err)}" if isinstance(code, ReasonCode) else _message(err)


def _isolated(cand: Candidate) -> bool:
    """The plugin asks to run in a process of its own (``isolation: process``)."""
    return cand.manifest is not None and cand.manifest.isolation == "process"
