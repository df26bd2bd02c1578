"""The legacy core the plugins plug into: the broker registry, the factory, the aggregators.

Each test gets its own registry and factory (the singletons are swapped out and put back), so
nothing here sees the plugin bridge or the brokers the running project registered."""

from __future__ import annotations

import ast
import dataclasses
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from stonks_overwatch.core.aggregators import PortfolioAggregator
from stonks_overwatch.core.config import BaseConfig
from stonks_overwatch.core.data import PortfolioEntry, TotalPortfolio
from stonks_overwatch.core.exceptions import BrokerRegistryError, BrokerUnavailableError
from stonks_overwatch.core.factory import BrokerFactory
from stonks_overwatch.core.interfaces import PortfolioServiceInterface
from stonks_overwatch.core.registry import BrokerRegistry, RegistrySnapshot
from stonks_overwatch.core.registry_setup import register_legacy_brokers
from stonks_overwatch.core.service_types import ServiceType
from tests.conftest import ROOT


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> Iterator[BrokerRegistry]:
    monkeypatch.setattr(BrokerRegistry, "_instance", None)
    monkeypatch.setattr(BrokerFactory, "_instance", None)
    yield BrokerRegistry()


class Portfolio(PortfolioServiceInterface):
    symbols: tuple[str, ...] = ("AAA",)

    def get_portfolio(self) -> list[PortfolioEntry]:
        return [PortfolioEntry(name=s, symbol=s, shares=1, price=2, value=2) for s in self.symbols]

    def get_portfolio_total(self) -> TotalPortfolio:
        return TotalPortfolio(total_value=2.0 * len(self.symbols))


class OtherPortfolio(Portfolio):
    symbols = ("BBB", "CCC")


class Failing(Portfolio):
    def get_portfolio(self) -> list[PortfolioEntry]:
        raise BrokerUnavailableError("bad", "export file missing")


# -- registry ---------------------------------------------------------------------------------


def test_singleton(registry: BrokerRegistry) -> None:
    assert BrokerRegistry() is registry
    assert BrokerFactory().registry is registry


def test_register_and_look_up(registry: BrokerRegistry) -> None:
    registry.register_complete_broker(
        "acme", BaseConfig, portfolio=Portfolio, transaction=Portfolio
    )
    assert registry.get_registered_brokers() == ["acme"]
    assert registry.get_config_class("acme") is BaseConfig
    assert registry.get_service_class("acme", "portfolio") is Portfolio
    assert registry.get_service_class("acme", ServiceType.PORTFOLIO) is Portfolio
    assert registry.broker_supports_service("acme", ServiceType.TRANSACTION)
    assert not registry.broker_supports_service("acme", ServiceType.FEE)
    assert registry.get_broker_capabilities("acme") == [
        ServiceType.PORTFOLIO,
        ServiceType.TRANSACTION,
    ]
    assert registry.is_registered("acme") and registry.has_config("acme")


def test_names_are_plain_strings_and_trimmed(registry: BrokerRegistry) -> None:
    registry.register_broker_services("  brand-new-broker ", portfolio=Portfolio)
    assert registry.get_registered_brokers() == ["brand-new-broker"]
    assert not registry.has_config("brand-new-broker")


def test_unregister(registry: BrokerRegistry) -> None:
    registry.register_complete_broker("acme", BaseConfig, portfolio=Portfolio)
    assert registry.unregister_broker("acme") is True
    assert registry.unregister_broker("acme") is False
    assert registry.get_registered_brokers() == []
    with pytest.raises(BrokerRegistryError, match="'acme' has no registered config"):
        registry.get_config_class("acme")


def test_unknown_service_type_lists_the_valid_ones(registry: BrokerRegistry) -> None:
    with pytest.raises(BrokerRegistryError) as err:
        registry.register_broker_services("acme", teleport=Portfolio)
    assert "unknown service type 'teleport'" in str(err.value)
    assert "portfolio" in str(err.value) and "update" in str(err.value)
    assert not registry.is_registered("acme")  # nothing half-registered


def test_unknown_service_type_on_lookup(registry: BrokerRegistry) -> None:
    registry.register_broker_services("acme", portfolio=Portfolio)
    with pytest.raises(ValueError):
        registry.get_service_class("acme", "teleport")
    with pytest.raises(BrokerRegistryError, match="does not provide the 'fee' service"):
        registry.get_service_class("acme", "fee")
    with pytest.raises(BrokerRegistryError, match="'nobody' does not provide"):
        registry.get_service_class("nobody", "portfolio")


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda r: r.register_broker_services("acme"), "at least one service"),
        (lambda r: r.register_broker_services("", portfolio=Portfolio), "non-empty string"),
        (lambda r: r.register_broker_services("acme", portfolio="nope"), "class or callable"),
        (lambda r: r.register_broker_config("acme", object()), "from_dict"),
        (lambda r: r.register_broker_config("acme", None), "from_dict"),
    ],
)
def test_bad_registrations_are_refused(registry: BrokerRegistry, call: Any, match: str) -> None:
    with pytest.raises(BrokerRegistryError, match=match):
        call(registry)
    assert registry.get_registered_brokers() == []


def test_thread_safety(registry: BrokerRegistry) -> None:
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)

    def worker(n: int) -> None:
        try:
            barrier.wait()
            for i in range(100):
                name = f"b{n}-{i}"
                registry.register_complete_broker(name, BaseConfig, portfolio=Portfolio)
                assert registry.get_service_class(name, "portfolio") is Portfolio
                registry.get_registered_brokers()
                if i % 2:
                    assert registry.unregister_broker(name)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(registry.get_registered_brokers()) == 8 * 50


def test_singleton_is_one_instance_across_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(BrokerRegistry, "_instance", None)
    seen: list[BrokerRegistry] = []
    barrier = threading.Barrier(8)

    def make() -> None:
        barrier.wait()
        seen.append(BrokerRegistry())

    threads = [threading.Thread(target=make) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({id(r) for r in seen}) == 1


def test_refresh_hooks_run_before_reads_without_recursion(registry: BrokerRegistry) -> None:
    calls: list[str] = []

    def hook() -> None:
        calls.append("hook")
        # A hook that reads (or registers) must not re-enter the hooks.
        registry.register_broker_services("from-hook", portfolio=Portfolio)
        registry.get_registered_brokers()

    registry.add_refresh_hook(hook)
    registry.add_refresh_hook(hook)  # added once
    assert registry.get_registered_brokers() == ["from-hook"]
    assert calls == ["hook"]
    registry.remove_refresh_hook(hook)
    registry.get_registered_brokers()
    assert calls == ["hook"]


def test_a_run_of_lookups_refreshes_once(registry: BrokerRegistry) -> None:
    """An aggregate over every broker makes a few lookups per broker: inside ``reading()``
    the hooks run once, when it begins, and again before the next read after it."""
    calls: list[str] = []
    registry.register_complete_broker("acme", BaseConfig, portfolio=Portfolio)
    registry.add_refresh_hook(lambda: calls.append("hook"))
    with registry.reading():
        assert calls == ["hook"]
        for name in registry.get_registered_brokers():
            assert registry.broker_supports_service(name, ServiceType.PORTFOLIO)
            assert registry.get_service_class(name, "portfolio") is Portfolio
            with registry.reading():  # a nested run (the page's fan-out) refreshes nothing
                registry.get_broker_capabilities(name)
        assert calls == ["hook"]
    registry.get_registered_brokers()
    assert calls == ["hook", "hook"]


# -- snapshot ---------------------------------------------------------------------------------


def test_snapshot_shows_every_broker_as_registered(registry: BrokerRegistry) -> None:
    def factory(**kwargs: Any) -> Portfolio:
        return Portfolio()

    registry.register_complete_broker("acme", BaseConfig, portfolio=Portfolio, fee=factory)
    registry.register_broker_services("bare", transaction=OtherPortfolio)
    registry.register_broker_config("config-only", BaseConfig)
    snap = registry.snapshot()
    assert isinstance(snap, RegistrySnapshot)
    assert snap.names() == registry.get_registered_brokers() == ["acme", "bare", "config-only"]
    assert list(snap.brokers) == snap.names() and len(snap) == 3
    acme = snap.brokers["acme"]
    assert acme.config_class is BaseConfig
    assert dict(acme.services) == {ServiceType.PORTFOLIO: Portfolio, ServiceType.FEE: factory}
    assert acme.capabilities == registry.get_broker_capabilities("acme")
    assert acme.capabilities == [ServiceType.FEE, ServiceType.PORTFOLIO]
    bare = snap.get("bare")
    assert bare is not None and bare.config_class is None
    assert bare.capabilities == [ServiceType.TRANSACTION]
    assert snap.brokers["config-only"].services == {}
    assert "nobody" not in snap and snap.get("nobody") is None


def test_snapshot_is_a_read_only_copy(registry: BrokerRegistry) -> None:
    registry.register_complete_broker("acme", BaseConfig, portfolio=Portfolio)
    snap = registry.snapshot()
    registry.register_broker_services("acme", portfolio=OtherPortfolio)
    registry.register_broker_services("later", portfolio=Portfolio)
    registry.unregister_broker("acme")
    # The snapshot still says what the registry held when it was taken...
    assert snap.names() == ["acme"]
    assert snap.brokers["acme"].services[ServiceType.PORTFOLIO] is Portfolio
    # ...and nothing that holds it can change the registry or the snapshot.
    with pytest.raises(dataclasses.FrozenInstanceError):
        snap.brokers["acme"].config_class = None  # type: ignore[misc]
    with pytest.raises(TypeError):
        snap.brokers["acme"].services[ServiceType.FEE] = Portfolio  # type: ignore[index]
    with pytest.raises(TypeError):
        snap.brokers["x"] = snap.brokers["acme"]  # type: ignore[index]
    assert registry.get_registered_brokers() == ["later"]


def test_snapshot_does_not_run_the_refresh_hooks(registry: BrokerRegistry) -> None:
    """An observer reads the snapshot from inside its own hook (the legacy adapter does)."""
    seen: list[list[str]] = []

    def hook() -> None:
        registry.register_broker_services("from-hook", portfolio=Portfolio)
        seen.append(registry.snapshot().names())

    registry.register_broker_services("acme", portfolio=Portfolio)
    registry.add_refresh_hook(hook)
    assert registry.snapshot().names() == ["acme"]
    assert seen == []
    registry.get_registered_brokers()
    assert seen == [["acme", "from-hook"]]


def test_snapshot_never_shows_a_half_registered_broker(registry: BrokerRegistry) -> None:
    stop = threading.Event()
    halves: list[str] = []

    def register() -> None:
        for i in range(300):
            registry.register_complete_broker(f"b{i}", BaseConfig, portfolio=Portfolio)
        stop.set()

    writer = threading.Thread(target=register)
    writer.start()
    while not stop.is_set():
        for entry in registry.snapshot().brokers.values():
            if entry.config_class is None or not entry.services:
                halves.append(entry.name)
    writer.join()
    assert halves == []
    assert len(registry.snapshot()) == 300


# -- factory ----------------------------------------------------------------------------------


def test_factory_caches_services_until_cleared(registry: BrokerRegistry) -> None:
    registry.register_complete_broker("acme", BaseConfig, portfolio=Portfolio)
    factory = BrokerFactory()
    first = factory.create_service("acme", ServiceType.PORTFOLIO)
    assert isinstance(first, Portfolio)
    assert factory.create_service("acme", "portfolio") is first
    assert isinstance(first.config, BaseConfig)

    factory.clear_cache("acme")
    second = factory.create_service("acme", "portfolio")
    assert second is not first
    factory.clear_cache()
    assert factory.create_service("acme", "portfolio") is not second


def test_a_config_changed_while_a_service_was_being_built_is_not_lost(
    registry: BrokerRegistry,
) -> None:
    """A page builds a broker's service from its old config while the operator's change
    clears the cache: that page may use the old one, but the cache must not keep it - the
    change would have been lost until the next one."""
    registry.register_complete_broker("acme", BaseConfig, portfolio=Portfolio)
    factory = BrokerFactory()
    data = {"offline_mode": False}
    reading, release = threading.Event(), threading.Event()

    def source(name: str) -> dict[str, Any] | None:
        read = dict(data)
        if not release.is_set():
            reading.set()
            release.wait(5)
        return read

    factory.add_config_source(source)
    built: list[Any] = []
    page = threading.Thread(
        target=lambda: built.append(factory.create_service("acme", "portfolio"))
    )
    page.start()
    assert reading.wait(5)
    data["offline_mode"] = True  # the operator's change, made meanwhile
    factory.clear_cache("acme")
    release.set()
    page.join(5)
    assert built[0].config.offline_mode is False  # that page read the old config
    assert factory.create_service("acme", "portfolio").config.offline_mode is True


def test_factory_clear_cache_of_one_broker_keeps_the_others(registry: BrokerRegistry) -> None:
    registry.register_complete_broker("a", BaseConfig, portfolio=Portfolio)
    registry.register_complete_broker("b", BaseConfig, portfolio=Portfolio)
    factory = BrokerFactory()
    a, b = factory.create_service("a", "portfolio"), factory.create_service("b", "portfolio")
    factory.clear_cache("a")
    assert factory.create_service("a", "portfolio") is not a
    assert factory.create_service("b", "portfolio") is b


def test_factory_notices_a_replaced_service_class(registry: BrokerRegistry) -> None:
    registry.register_complete_broker("acme", BaseConfig, portfolio=Portfolio)
    factory = BrokerFactory()
    factory.create_service("acme", "portfolio")
    registry.register_broker_services("acme", portfolio=OtherPortfolio)
    assert isinstance(factory.create_service("acme", "portfolio"), OtherPortfolio)


def test_factory_service_without_config(registry: BrokerRegistry) -> None:
    registry.register_broker_services("acme", portfolio=Portfolio)
    assert BrokerFactory().create_service("acme", "portfolio").config is None


def test_factory_config_from_settings_and_sources(registry: BrokerRegistry, settings) -> None:
    settings.BROKER_CONFIGS = {"acme": {"offline_mode": True, "unknown_key": 1}}
    registry.register_complete_broker("acme", BaseConfig, portfolio=Portfolio)
    factory = BrokerFactory()
    config = factory.create_config("acme")
    assert config.offline_mode is True and not hasattr(config, "unknown_key")
    assert factory.create_config("acme") is config  # cached

    factory.add_config_source(lambda name: {"update_frequency_minutes": 42})
    factory.clear_cache("acme")
    config = factory.create_config("acme")
    assert config.update_frequency_minutes == 42 and config.offline_mode is False


def test_factory_unknown_broker(registry: BrokerRegistry) -> None:
    with pytest.raises(BrokerRegistryError):
        BrokerFactory().create_service("nobody", "portfolio")


# -- legacy wiring and aggregators -----------------------------------------------------------


def test_legacy_setup_registers_ibkr_the_old_way(registry: BrokerRegistry) -> None:
    assert register_legacy_brokers(registry) == ["ibkr"]
    assert registry.get_broker_capabilities("ibkr") == [
        ServiceType.ACCOUNT,
        ServiceType.PORTFOLIO,
        ServiceType.TRANSACTION,
    ]
    entries = BrokerFactory().create_service("ibkr", "portfolio").get_portfolio()
    assert {e.symbol for e in entries} == {"EXSC", "SMTB"}


def test_aggregator_combines_brokers_and_skips_a_failing_one(registry: BrokerRegistry) -> None:
    registry.register_complete_broker("one", BaseConfig, portfolio=Portfolio)
    registry.register_complete_broker("two", BaseConfig, portfolio=OtherPortfolio)
    registry.register_complete_broker("bad", BaseConfig, portfolio=Failing)
    registry.register_broker_services("no-portfolio", transaction=Portfolio)
    agg = PortfolioAggregator(registry).get_portfolio()
    assert sorted(agg.brokers) == ["one", "two"]
    assert {(e.broker, e.symbol) for e in agg.items} == {
        ("one", "AAA"),
        ("two", "BBB"),
        ("two", "CCC"),
    }
    assert set(agg.failures) == {"bad"} and "export file missing" in agg.failures["bad"]
    total = PortfolioAggregator(registry).get_portfolio_total()
    assert total.total_value == 6.0 and sorted(total.brokers) == ["one", "two"]


# -- the plugin system reads the core through its public API only ----------------------------

CORE_CLASSES = ("BrokerRegistry", "BrokerFactory")


def _core_instance(node: ast.expr, bound: set[str]) -> bool:
    """``BrokerRegistry()``, an expression bound to one, or a factory's ``.registry``."""
    if isinstance(node, ast.Call):
        func = node.func
        return (isinstance(func, ast.Name) and func.id in CORE_CLASSES) or (
            isinstance(func, ast.Attribute) and func.attr in CORE_CLASSES
        )
    if isinstance(node, ast.Attribute) and node.attr == "registry":
        return _core_instance(node.value, bound)
    return ast.unparse(node) in bound


def _core_bindings(tree: ast.Module) -> set[str]:
    """What a module binds to the core's singletons: assigned (also in tuples, or from
    another such name), annotated with their classes, or used as a context manager."""
    bound: set[str] = set()
    while True:
        before = len(bound)
        for node in ast.walk(tree):
            pairs: list[tuple[ast.expr, ast.expr | None]] = []
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    if isinstance(target, ast.Tuple) and isinstance(node.value, ast.Tuple):
                        pairs.extend(zip(target.elts, node.value.elts, strict=False))
                    else:
                        pairs.append((target, node.value))
            elif isinstance(node, ast.AnnAssign):
                if any(c in ast.unparse(node.annotation) for c in CORE_CLASSES):
                    bound.add(ast.unparse(node.target))
                pairs.append((node.target, node.value))
            elif isinstance(node, ast.arg) and node.annotation is not None:
                if any(c in ast.unparse(node.annotation) for c in CORE_CLASSES):
                    bound.add(node.arg)
            elif isinstance(node, ast.withitem) and node.optional_vars is not None:
                pairs.append((node.optional_vars, node.context_expr))
            for target, value in pairs:
                if value is not None and _core_instance(value, bound):
                    bound.add(ast.unparse(target))
        if len(bound) == before:
            return bound


def _private_reads(source: str, filename: str = "<source>") -> list[str]:
    tree = ast.parse(source, filename)
    bound = _core_bindings(tree)
    found = []
    for node in ast.walk(tree):
        attr: str | None = None
        if isinstance(node, ast.Attribute) and _core_instance(node.value, bound):
            attr = node.attr
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("getattr", "setattr", "hasattr")
            and len(node.args) >= 2
            and _core_instance(node.args[0], bound)
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
        ):
            attr = node.args[1].value
        if attr is not None and attr.startswith("_") and not attr.startswith("__"):
            line = getattr(node, "lineno", "?")
            found.append(f"{filename}:{line} reads {ast.unparse(node)}")
    return found


def test_the_private_read_check_finds_what_it_looks_for() -> None:
    source = """
def capture(registry: BrokerRegistry) -> None:
    with registry._lock:
        configs = dict(registry._configs)

def other() -> None:
    reg, factory = BrokerRegistry(), BrokerFactory()
    alias = factory
    alias._service_cache.clear()
    factory.registry._services
    getattr(reg, "_refresh_hooks")
    BrokerFactory()._config_sources
    self.core = BrokerRegistry()
    self.core._in_refresh

def fine(registry: BrokerRegistry, plugin_registry: object) -> None:
    registry.snapshot().brokers
    plugin_registry._loaded
    registry.__class__
"""
    reads = sorted(r.split(" reads ", 1)[1] for r in _private_reads(source))
    assert reads == sorted(
        [
            "registry._lock",
            "registry._configs",
            "alias._service_cache",
            "factory.registry._services",
            "getattr(reg, '_refresh_hooks')",
            "BrokerFactory()._config_sources",
            "self.core._in_refresh",
        ]
    )


def test_no_plugin_system_module_reads_a_private_attribute_of_the_core() -> None:
    """The bridge reads the registry through ``snapshot()`` and the public methods; the
    core may change its insides without breaking the plugin system."""
    files = sorted((ROOT / "stonks_plugins").rglob("*.py"))
    assert files
    reads = [
        read
        for f in files
        for read in _private_reads(f.read_text("utf-8"), str(f.relative_to(ROOT)))
    ]
    assert reads == []
