"""The test kit catches broken plugins: every check fails on a plugin broken in its way, with
a message naming the problem — and passes on a good one."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from stonks_plugins import loader
from stonks_plugins.discovery import scan_directory_plugin
from stonks_plugins.registry import plugin_registry
from stonks_plugins.testing import (
    BenchmarkResult,
    Check,
    PluginTestSuite,
    TestResult,
    plugin_modules,
)
from stonks_plugins.testing.conformance import type_problem
from stonks_plugins.testing.suite import _candidate_from_file

from .conftest import CONFIG, FAST, copy_plugin


def failed(result: TestResult, name: str) -> Check:
    check = result.check(name)
    assert check is not None, f"no check {name!r} in:\n{result.report()}"
    assert not check.ok, f"{name} passed unexpectedly:\n{result.report()}"
    return check


def passed(result: TestResult, name: str) -> Check:
    check = result.check(name)
    assert check is not None and check.ok, result.report()
    return check


# -- a good plugin ---------------------------------------------------------------------------------


def test_a_good_plugin_passes_every_check(tmp_path: Path) -> None:
    suite = PluginTestSuite(copy_plugin("healthy-fixture", tmp_path))
    results = suite.assert_all()
    assert [r.test for r in results] == ["interfaces", "lifecycle", "configuration"]
    assert all(r.passed and r.checks for r in results)
    interfaces = results[0]
    for name in (
        "manifest.valid",
        "manifest.compatible",
        "service.portfolio",
        "load",
        "service.portfolio.get_portfolio",
        "service.portfolio.get_portfolio_total",
    ):
        passed(interfaces, name)
    lifecycle = results[1]
    assert "3 times" in passed(lifecycle, "lifecycle.load").message
    for name in ("services", "unload", "modules", "threads", "reimport"):
        passed(lifecycle, f"lifecycle.{name}")


def test_the_kit_leaves_the_host_alone(tmp_path: Path) -> None:
    """A registry of its own: the process-wide one is untouched, and nothing of the plugin
    stays imported."""
    path = copy_plugin("healthy-fixture", tmp_path)
    suite = PluginTestSuite(path)
    suite.run_all(cycles=2)
    assert plugin_registry.known() == {} and plugin_registry.loaded() == {}
    assert plugin_modules(suite.candidate()) == []


def test_targets_a_folder_a_manifest_a_candidate_or_a_loaded_plugin(tmp_path: Path) -> None:
    path = copy_plugin("healthy-fixture", tmp_path)
    renamed = path / "other_name.json"
    renamed.write_bytes((path / "plugin_manifest.json").read_bytes())
    cand = scan_directory_plugin(path)
    plugin_registry.register(cand)
    loaded = plugin_registry.load(cand.name)
    targets: list[Any] = [path, str(path / "plugin_manifest.json"), renamed, cand, loaded]
    plugin_registry.unregister(cand.name)
    for target in targets:
        suite = PluginTestSuite(target)
        assert suite.name == "healthy-fixture"
        assert suite.test_plugin_interfaces().passed, target
    assert _candidate_from_file(renamed).manifest is not None


def test_assert_all_lists_every_failed_check_with_what_to_fix(tmp_path: Path) -> None:
    suite = PluginTestSuite(copy_plugin("fault-service-raises", tmp_path), timeouts=FAST)
    with pytest.raises(AssertionError) as info:
        suite.assert_all(cycles=1)
    text = str(info.value)
    assert text.startswith("plugin 'fault-service-raises' (")
    assert "[interfaces] service.portfolio.get_portfolio: get_portfolio() raised ValueError" in text
    assert "bad row at line 7" in text and "ship sample data" in text
    assert "[lifecycle] lifecycle.services: cycle 1/1: portfolio.get_portfolio() raised" in text


def test_results_are_data(tmp_path: Path) -> None:
    result = PluginTestSuite(copy_plugin("healthy-fixture", tmp_path)).test_plugin_interfaces()
    data = result.as_dict()
    assert data["passed"] is True and data["test"] == "interfaces"
    assert {"name", "ok", "message"} == set(data["checks"][0])
    name, ok, message = result.checks[0]  # a check is a plain (name, ok, message) triple
    assert (name, ok, bool(message)) == ("manifest.valid", True, True)
    assert "interfaces [healthy-fixture]: passed" in str(result)


# -- the fixture corpus --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fixture", "test", "check", "words"),
    [
        ("unreadable-json", "interfaces", "manifest.valid", ["manifest_unreadable", "line 6"]),
        ("schema-violation", "interfaces", "manifest.valid", ["$.plugin.version", "$.colour"]),
        ("incompatible-api", "interfaces", "manifest.compatible", ["incompatible_api", "9.0.0"]),
        ("incompatible-core", "lifecycle", "manifest.compatible", ["incompatible_core"]),
        ("missing-dependency", "configuration", "manifest.compatible", ["missing_dependency"]),
        (
            "import-error",
            "interfaces",
            "service.portfolio",
            ["import_error", "stonks_fixture_module_that_does_not_exist"],
        ),
        ("import-error", "lifecycle", "lifecycle.load", ["import_error", "cycle 1/"]),
        (
            "fault-import-raises",
            "interfaces",
            "entry_points.main",
            ["import_error", "boom at import time"],
        ),
        ("fault-init-raises", "interfaces", "load", ["initialize_failed", "refused the login"]),
        ("fault-init-raises", "lifecycle", "lifecycle.load", ["refused the login"]),
        ("fault-init-hangs", "interfaces", "load", ["timeout", "0.3 s"]),
        ("fault-service-raises", "interfaces", "service.portfolio.get_portfolio", ["line 7"]),
        ("fault-service-raises", "lifecycle", "lifecycle.services", ["get_portfolio() raised"]),
        ("fault-health-hangs", "lifecycle", "lifecycle.health", ["health_check()", "timeout"]),
        ("fault-thread-leak", "lifecycle", "lifecycle.unload", ["fault-thread-leak-poller"]),
    ],
)
def test_the_kit_catches_the_fixture_corpus(
    tmp_path: Path, fixture: str, test: str, check: str, words: list[str]
) -> None:
    suite = PluginTestSuite(copy_plugin(fixture, tmp_path), timeouts=FAST)
    result = suite.run(test, **({"cycles": 1} if test == "lifecycle" else {}))
    assert not result.passed
    message = failed(result, check).message
    for word in words:
        assert word in message, message


# -- plugins broken in one way each ---------------------------------------------------------------


def interfaces_of(plugin: Path) -> TestResult:
    return PluginTestSuite(plugin, timeouts=FAST).test_plugin_interfaces()


def test_a_method_returning_the_wrong_type(make_plugin: Callable[..., Path]) -> None:
    services = """
    from stonks_plugins.sdk import PortfolioServiceInterface, TotalPortfolio

    class PortfolioService(PortfolioServiceInterface):
        def get_portfolio(self):
            return [{"symbol": "KIT"}]

        def get_portfolio_total(self):
            return 10.0
    """
    result = interfaces_of(make_plugin("wrong-type", {"services.py": services}))
    message = failed(result, "service.portfolio.get_portfolio").message
    assert "get_portfolio()[0] is dict" in message and "expected PortfolioEntry" in message
    message = failed(result, "service.portfolio.get_portfolio_total").message
    assert "get_portfolio_total() is float 10.0, expected TotalPortfolio" in message


def test_a_data_class_field_of_the_wrong_type(make_plugin: Callable[..., Path]) -> None:
    services = """
    from stonks_plugins.sdk import PortfolioEntry, PortfolioServiceInterface, TotalPortfolio

    class PortfolioService(PortfolioServiceInterface):
        def get_portfolio(self):
            return [PortfolioEntry(name="Kit", symbol="KIT", shares="10", price=1.0, value=10.0)]

        def get_portfolio_total(self):
            return TotalPortfolio(total_value=10.0)
    """
    result = interfaces_of(make_plugin("wrong-field", {"services.py": services}))
    message = failed(result, "service.portfolio.get_portfolio").message
    assert "get_portfolio()[0].shares is str '10', expected float" in message


def test_a_service_missing_a_method(make_plugin: Callable[..., Path]) -> None:
    services = """
    from stonks_plugins.sdk import PortfolioServiceInterface

    class PortfolioService(PortfolioServiceInterface):
        def get_portfolio(self):
            return []
    """
    result = interfaces_of(make_plugin("abstract-service", {"services.py": services}))
    message = failed(result, "service.portfolio").message
    assert "does not implement get_portfolio_total" in message


def test_a_service_of_the_wrong_interface(make_plugin: Callable[..., Path]) -> None:
    services = """
    from stonks_plugins.sdk import FeeServiceInterface

    class PortfolioService(FeeServiceInterface):
        def get_fees(self):
            return []
    """
    result = interfaces_of(make_plugin("wrong-interface", {"services.py": services}))
    message = failed(result, "service.portfolio").message
    assert "does not implement PortfolioServiceInterface" in message
    assert "subclass stonks_plugins.sdk.PortfolioServiceInterface" in message


def test_a_main_that_is_not_a_plugin_class(make_plugin: Callable[..., Path]) -> None:
    plugin = make_plugin(
        "main-not-plugin",
        {"plugin.py": "class KitPlugin:\n    pass\n"},
        entry_points={"main": "kitpkg.plugin:KitPlugin"},
    )
    message = failed(interfaces_of(plugin), "entry_points.main").message
    assert "not a subclass of stonks_plugins.sdk.BasePlugin" in message


def test_a_main_of_another_plugin_type(make_plugin: Callable[..., Path]) -> None:
    source = "from stonks_plugins.sdk import BaseViewPlugin\nclass KitPlugin(BaseViewPlugin): ...\n"
    plugin = make_plugin(
        "main-wrong-type",
        {"plugin.py": source},
        entry_points={"main": "kitpkg.plugin:KitPlugin"},
    )
    message = failed(interfaces_of(plugin), "entry_points.main").message
    assert "plugin.type is 'broker'" in message and "BaseBrokerPlugin" in message


def test_a_non_broker_without_a_plugin_class(make_plugin: Callable[..., Path]) -> None:
    plugin = make_plugin(
        "view-no-main",
        plugin={"name": "view-no-main", "version": "1.0.0", "type": "view"},
        capabilities=None,
        services=None,
    )
    message = failed(interfaces_of(plugin), "entry_points.main").message
    assert "a view plugin needs entry_points.main" in message and "BaseViewPlugin" in message


def test_an_unknown_interface_name(make_plugin: Callable[..., Path]) -> None:
    plugin = make_plugin(
        "unknown-interface",
        api={"min_version": "1.0.0", "interfaces": ["PortfolioServiceInterface", "Magic"]},
    )
    message = failed(interfaces_of(plugin), "api.interfaces").message
    assert "'Magic'" in message and "PortfolioServiceInterface" in message


def test_a_capability_without_a_service(make_plugin: Callable[..., Path]) -> None:
    source = (
        "from stonks_plugins.sdk import BaseBrokerPlugin\nclass KitPlugin(BaseBrokerPlugin): ...\n"
    )
    plugin = make_plugin(
        "missing-capability",
        {"plugin.py": source},
        capabilities={"services": ["portfolio", "fee"]},
        entry_points={"main": "kitpkg.plugin:KitPlugin"},
    )
    message = failed(interfaces_of(plugin), "capabilities.services").message
    assert "declares fee but the plugin provides no class for it" in message


def test_a_thread_started_outside_the_context(make_plugin: Callable[..., Path]) -> None:
    source = """
    import threading

    from stonks_plugins.sdk import BaseBrokerPlugin

    class KitPlugin(BaseBrokerPlugin):
        def initialize(self):
            stop = threading.Event()
            threading.Thread(target=stop.wait, args=(3,), name="rogue-poller", daemon=True).start()
            return True
    """
    plugin = make_plugin(
        "rogue-thread", {"plugin.py": source}, entry_points={"main": "kitpkg.plugin:KitPlugin"}
    )
    result = PluginTestSuite(plugin, timeouts=FAST).test_plugin_lifecycle(cycles=1)
    message = failed(result, "lifecycle.threads").message
    assert "rogue-poller" in message and "self.context.start_thread" in message


def test_modules_left_behind_after_unload(
    make_plugin: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    plugin = make_plugin("sticky-modules")
    monkeypatch.setattr(loader, "release", lambda candidate: [])
    result = PluginTestSuite(plugin).test_plugin_lifecycle(cycles=1)
    message = failed(result, "lifecycle.modules").message
    assert "_stonks_plugin_pkgs.sticky_modules.kitpkg" in message
    for name in [m for m in sys.modules if m.startswith("_stonks_plugin_pkgs.sticky_modules")]:
        del sys.modules[name]


def test_code_that_survives_a_reload(make_plugin: Callable[..., Path]) -> None:
    """A class kept outside the plugin's modules is the same object after a reload: the
    plugin's code was not imported afresh."""
    services = """
    import sys

    from stonks_plugins.sdk import PortfolioServiceInterface, TotalPortfolio

    class _PortfolioService(PortfolioServiceInterface):
        def get_portfolio(self):
            return []

        def get_portfolio_total(self):
            return TotalPortfolio(total_value=0.0)

    PortfolioService = sys.__dict__.setdefault("_stonks_kit_cached_service", _PortfolioService)
    """
    plugin = make_plugin("cached-class", {"services.py": services})
    try:
        result = PluginTestSuite(plugin).test_plugin_lifecycle(cycles=2)
    finally:
        sys.__dict__.pop("_stonks_kit_cached_service", None)
    message = failed(result, "lifecycle.reimport").message
    assert "cycle 2/2: portfolio service class _PortfolioService" in message


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ('return "ok"', ["returned a str", "expected HealthStatus"]),
        ('return HealthStatus.unhealthy("no export file")', ["unhealthy: no export file"]),
        ('raise OSError("disk gone")', ["health_failed", "OSError: disk gone"]),
    ],
)
def test_a_bad_health_check(make_plugin: Callable[..., Path], body: str, words: list[str]) -> None:
    source = f"""
    from stonks_plugins.sdk import BaseBrokerPlugin, HealthStatus

    class KitPlugin(BaseBrokerPlugin):
        def health_check(self):
            {body}
    """
    plugin = make_plugin(
        "bad-health", {"plugin.py": source}, entry_points={"main": "kitpkg.plugin:KitPlugin"}
    )
    result = PluginTestSuite(plugin, timeouts=FAST).test_plugin_lifecycle(cycles=1)
    message = failed(result, "lifecycle.health").message
    for word in words:
        assert word in message, message


# -- configuration -------------------------------------------------------------------------------


def config_of(plugin: Path) -> TestResult:
    return PluginTestSuite(plugin).test_plugin_configuration()


def configuration(**extra: Any) -> dict[str, Any]:
    return {"config_class": "kitpkg.config.KitConfig", **extra}


def test_a_good_config(make_plugin: Callable[..., Path]) -> None:
    schema = {
        "type": "object",
        "properties": {
            "settings": {
                "type": "object",
                "properties": {
                    "import_folder": {"type": "string", "default": ""},
                    "retries": {"type": "integer", "default": 3},
                },
            }
        },
    }
    plugin = make_plugin(
        "good-config",
        configuration=configuration(optional_settings=["import_folder", "retries"], schema=schema),
        entry_points={"config": "kitpkg.config:KitConfig"},
    )
    result = config_of(plugin)
    assert result.passed, result.report()
    for name in (
        "config.schema",
        "config.class",
        "config.refs",
        "config.empty",
        "config.schema_defaults",
        "config.declared_settings",
        "config.round_trip",
    ):
        passed(result, name)


def test_a_config_class_that_is_not_a_base_config(make_plugin: Callable[..., Path]) -> None:
    plugin = make_plugin(
        "plain-config",
        {"config.py": "class KitConfig:\n    pass\n"},
        configuration=configuration(),
    )
    message = failed(config_of(plugin), "config.class").message
    assert "subclassing stonks_plugins.sdk.BaseConfig" in message


def test_a_declared_setting_the_class_lacks(make_plugin: Callable[..., Path]) -> None:
    plugin = make_plugin(
        "undeclared-field",
        configuration=configuration(
            required_credentials=["api_key"], optional_settings=["retries"]
        ),
    )
    message = failed(config_of(plugin), "config.declared_settings").message
    assert "declares api_key but KitConfig has no such field" in message


def test_a_from_dict_that_ignores_a_setting(make_plugin: Callable[..., Path]) -> None:
    source = (
        CONFIG
        + """

def _from(cls, data):
    return cls()


KitConfig.from_dict = classmethod(_from)
"""
    )
    plugin = make_plugin(
        "deaf-config",
        {"config.py": source},
        configuration=configuration(optional_settings=["retries"]),
    )
    message = failed(config_of(plugin), "config.declared_settings").message
    assert "did not set retries" in message


def test_schema_defaults_that_disagree_with_the_class(make_plugin: Callable[..., Path]) -> None:
    schema = {"type": "object", "properties": {"retries": {"type": "integer", "default": 5}}}
    plugin = make_plugin("drifting-defaults", configuration=configuration(schema=schema))
    message = failed(config_of(plugin), "config.schema_defaults").message
    assert "'retries' defaults to 5 in the schema but 3 in KitConfig" in message


def test_a_schema_file_that_is_missing(make_plugin: Callable[..., Path]) -> None:
    plugin = make_plugin("lost-schema", configuration=configuration(schema="config_schema.json"))
    message = failed(config_of(plugin), "config.schema").message
    assert "config_schema.json" in message


def test_a_from_dict_that_raises(make_plugin: Callable[..., Path]) -> None:
    source = (
        CONFIG
        + """

def _boom(data):
    raise KeyError("username")


KitConfig.from_dict = _boom
"""
    )
    plugin = make_plugin("raising-config", {"config.py": source}, configuration=configuration())
    message = failed(config_of(plugin), "config.empty").message
    assert "from_dict({}) raised KeyError" in message


def test_two_config_references_that_disagree(make_plugin: Callable[..., Path]) -> None:
    source = CONFIG + "\n\nclass OtherConfig(KitConfig):\n    pass\n"
    plugin = make_plugin(
        "split-config",
        {"config.py": source},
        configuration=configuration(),
        entry_points={"config": "kitpkg.config:OtherConfig"},
    )
    message = failed(config_of(plugin), "config.refs").message
    assert "name different classes" in message


def test_the_config_schema_hook_is_called(tmp_path: Path) -> None:
    calls: list[Any] = []

    class StrictSuite(PluginTestSuite):
        def check_config_schema(self, result, cand, loaded, schema):  # type: ignore[no-untyped-def]
            calls.append(schema)
            result.fail("config.secrets", "example of a check added by the config system")

    result = StrictSuite(copy_plugin("config-fixture", tmp_path)).test_plugin_configuration()
    assert calls and isinstance(calls[0], dict)
    failed(result, "config.secrets")


def test_services_get_the_schema_defaults_and_the_given_config(
    make_plugin: Callable[..., Path],
) -> None:
    """Defaults of the seed's credentials/settings sections, flattened as the config system
    hands them to the config class, then the kit's own config on top."""
    schema = {
        "type": "object",
        "properties": {
            "credentials": {"type": "object", "properties": {"user": {"default": "demo"}}},
            "settings": {"type": "object", "properties": {"retries": {"default": 3}}},
            "import_folder": {"type": "string", "default": ""},
        },
    }
    plugin = make_plugin("defaults", configuration=configuration(schema=schema))
    suite = PluginTestSuite(plugin, config={"retries": 9})
    assert suite.config_data() == {"user": "demo", "retries": 9, "import_folder": ""}


# -- benchmark and conformance -------------------------------------------------------------------


def test_the_benchmark_measures_every_method_through_the_boundary(tmp_path: Path) -> None:
    result = PluginTestSuite(copy_plugin("healthy-fixture", tmp_path)).benchmark_plugin_performance(
        calls=50
    )
    assert isinstance(result, BenchmarkResult) and result.passed, result.report()
    ops = {t.operation: t for t in result.timings}
    assert set(ops) == {"portfolio.get_portfolio", "portfolio.get_portfolio_total"}
    for timing in ops.values():
        assert timing.calls == 50
        assert 0 < timing.p50_us <= timing.p95_us
        assert timing.direct_p50_us > 0
    assert result.load_ms > 0
    assert "p50" in result.report() and result.as_dict()["timings"]


def test_the_benchmark_reports_a_failing_method(tmp_path: Path) -> None:
    suite = PluginTestSuite(copy_plugin("fault-service-raises", tmp_path))
    result = suite.benchmark_plugin_performance(calls=10)
    assert "bad row at line 7" in failed(result, "benchmark.portfolio.get_portfolio").message


@pytest.mark.parametrize(
    ("value", "hint", "problem"),
    [
        (1, float, None),
        (True, float, "x is bool True, expected float"),
        ([1.0, "2"], list[float], "x[1] is str '2', expected float"),
        ((1, 2), tuple[int, ...], None),
        ({"a": 1}, dict[str, str], "x['a'] is int 1, expected str"),
        (None, int | None, None),
        ("a", int | None, "x is str 'a', expected int | None"),
        ({}, list[int], "x is dict {}, expected list[int]"),
    ],
)
def test_type_problem(value: Any, hint: Any, problem: str | None) -> None:
    assert type_problem(value, hint, "x") == problem


# -- process-isolated plugins (each load starts a child process: slow) ---------------------------


@pytest.mark.slow
def test_a_process_isolated_plugin_passes_without_running_in_this_process(tmp_path: Path) -> None:
    suite = PluginTestSuite(copy_plugin("proc-healthy", tmp_path))
    results = suite.assert_all(cycles=2)
    assert "isolation: process" in passed(results[0], "references").message
    assert plugin_modules(suite.candidate()) == []
    bench = suite.benchmark_plugin_performance(calls=10)
    assert bench.passed and bench.timings
    assert all(t.direct_p50_us is None and t.overhead_us is None for t in bench.timings)


@pytest.mark.slow
def test_a_crash_in_the_plugins_process_is_a_failed_check_not_a_crash(tmp_path: Path) -> None:
    suite = PluginTestSuite(copy_plugin("proc-segfault", tmp_path))
    result = suite.test_plugin_interfaces()
    assert "SIGSEGV" in failed(result, "service.portfolio.get_portfolio").message


# -- the other plugin types' hooks ---------------------------------------------------------------


def typed_plugin(
    make_plugin: Callable[..., Path], name: str, plugin_type: str, source: str
) -> Path:
    return make_plugin(
        name,
        {"plugin.py": source},
        plugin={"name": name, "version": "1.0.0", "type": plugin_type},
        capabilities=None,
        services=None,
        entry_points={"main": "kitpkg.plugin:KitPlugin"},
    )


def test_an_aggregator_returning_no_panels(make_plugin: Callable[..., Path]) -> None:
    source = """
    from stonks_plugins.sdk import BaseAggregatorPlugin

    class KitPlugin(BaseAggregatorPlugin):
        def aggregate(self, portfolio):
            return {"EUR": 125.0}
    """
    result = interfaces_of(typed_plugin(make_plugin, "dict-aggregator", "aggregator", source))
    message = failed(result, "aggregator.aggregate").message
    assert "aggregate() is dict" in message and "list[Panel]" in message


def test_a_middleware_that_raises(make_plugin: Callable[..., Path]) -> None:
    source = """
    from stonks_plugins.sdk import BaseMiddlewarePlugin

    class KitPlugin(BaseMiddlewarePlugin):
        def intercept(self, call, proceed):
            raise LookupError("no rate for " + call.method)
    """
    result = interfaces_of(typed_plugin(make_plugin, "raising-middleware", "middleware", source))
    message = failed(result, "middleware.intercept").message
    assert "LookupError: no rate for get_portfolio" in message


def test_a_view_with_urlpatterns_that_are_not_a_list(make_plugin: Callable[..., Path]) -> None:
    source = """
    from stonks_plugins.sdk import BaseViewPlugin

    class KitPlugin(BaseViewPlugin):
        def get_urlpatterns(self):
            return None
    """
    result = interfaces_of(typed_plugin(make_plugin, "empty-view", "view", source))
    assert "get_urlpatterns() is NoneType None" in failed(result, "view.get_urlpatterns").message
