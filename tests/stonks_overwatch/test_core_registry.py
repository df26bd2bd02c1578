"""The legacy core the plugins plug into: the broker registry, the factory, the aggregators.

Each test gets its own registry and factory (the singletons are swapped out and put back), so
nothing here sees the plugin bridge or the brokers the running project registered."""

from __future__ import annotations

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
from stonks_overwatch.core.registry import BrokerRegistry
from stonks_overwatch.core.registry_setup import register_legacy_brokers
from stonks_overwatch.core.service_types import ServiceType


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
