"""Exact money: a v2 consumer (``get_service_v2``) receives the ``Decimal`` amounts a v2
plugin produced, digit for digit, through the real factory path - the bounded front, the
plugin's lane and the middleware chain - with a middleware plugin active; a v1 consumer of
the same plugin still gets floats, by design. In process and from a child process."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from stonks_overwatch.core.factory import BrokerFactory
from stonks_overwatch.core.service_types import ServiceType
from stonks_plugins.interface_adapters import CompatibilityAdapter, get_service_v2
from stonks_plugins.interfaces_v2 import DepositServiceV2, Money, PortfolioServiceV2
from stonks_plugins.manager import manager
from stonks_plugins.models import Plugin
from stonks_plugins.runtime.calls import BoundedService
from stonks_plugins.runtime.serving import serving
from tests.conftest import fast_process_plugins

pytestmark = pytest.mark.django_db

EXACT = "0.010713949999999999"
"""A figure whose float is 0.01071395: any float on the way shows."""


def _rewrite(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{path} changed: '{old}' not found"
    path.write_text(text.replace(old, new))


def _tap_saw() -> str:
    [outcome] = manager.check_health("v2-tap-middleware")
    return outcome.status.message


@pytest.fixture
def v2_exact(plugin_dirs):  # type: ignore[no-untyped-def]
    """v2-fixture with a position priced, and a deposit of, EXACT; the tap middleware on."""
    folder = plugin_dirs.add("v2-fixture")
    data = folder / "v2fixture" / "data.py"
    _rewrite(data, 'Decimal("25.125")', f'Decimal("{EXACT}")')
    _rewrite(data, 'Decimal("1000.10")', f'Decimal("{EXACT}")')
    plugin_dirs.add("v2-tap-middleware")
    manager.sync()
    for name in ("v2-fixture", "v2-tap-middleware"):
        row = Plugin.objects.get(name=name)
        assert row.state == "active", (name, row.error_message)
    serving.refresh(force=True)


def test_a_v2_consumer_gets_the_plugins_digits_through_the_middleware(v2_exact) -> None:
    # The real path: what the factory hands out is the runtime's bounded front.
    assert isinstance(BrokerFactory().create_service("v2-fixture", "portfolio"), BoundedService)
    portfolio = get_service_v2("v2-fixture", ServiceType.PORTFOLIO)
    assert isinstance(portfolio, PortfolioServiceV2)
    [entry] = portfolio.get_portfolio()
    assert str(entry.price.amount) == EXACT
    assert str(entry.value.amount) == "0.042855799999999996"  # 4 x EXACT, no rounding
    assert str(portfolio.get_portfolio_total().total_value.amount) == "0.042855799999999996"
    deposits = get_service_v2("v2-fixture", ServiceType.DEPOSIT)
    assert isinstance(deposits, DepositServiceV2)
    first = deposits.get_cash_deposits()[0]
    assert first.amount == Money(Decimal(EXACT), "EUR") and str(first.amount.amount) == EXACT
    # Arguments reach the plugin's own v2 method (a range selects there).
    january = deposits.get_cash_deposits(start=date(2024, 1, 1), end=date(2024, 1, 31))
    assert [str(d.amount.amount) for d in january] == [EXACT]
    # Both calls went through the middleware, as v2 calls.
    saw = _tap_saw()
    assert "v2-fixture:portfolio.get_portfolio@2" in saw
    assert "v2-fixture:deposit.get_cash_deposits@2" in saw


def test_a_v1_consumer_of_the_same_plugin_still_gets_floats(v2_exact) -> None:
    v1 = BrokerFactory().create_service("v2-fixture", ServiceType.PORTFOLIO)
    [entry] = v1.get_portfolio()
    assert isinstance(entry.price, float) and entry.price == 0.01071395
    [deposit, *_] = BrokerFactory().create_service("v2-fixture", "deposit").get_cash_deposits()
    assert deposit.amount == 0.01071395
    assert "v2-fixture:portfolio.get_portfolio@1" in _tap_saw()


def test_v1_and_v2_answers_are_kept_apart(v2_exact) -> None:
    """Each version's answer is remembered on its own (same method name, other records): a
    v2 call right after a v1 one gets v2 records, and back."""
    v1 = BrokerFactory().create_service("v2-fixture", ServiceType.PORTFOLIO)
    v2 = get_service_v2("v2-fixture", ServiceType.PORTFOLIO)
    for _ in range(2):
        assert isinstance(v1.get_portfolio()[0].price, float)
        assert str(v2.get_portfolio()[0].price.amount) == EXACT
    # The adapters see the front for what it is: no wrapping on wrapping.
    back = CompatibilityAdapter.adapt_v2_to_v1(v2)
    assert isinstance(back, BoundedService) and back.wrapped is v1.wrapped
    assert isinstance(back.get_portfolio()[0].price, float)
    assert CompatibilityAdapter.adapt_v1_to_v2(v2) is v2


def test_a_v1_plugin_reaches_a_v2_consumer_through_the_adapter(plugin_dirs) -> None:
    plugin_dirs.add("healthy-fixture")
    manager.sync()
    serving.refresh(force=True)
    service = get_service_v2("healthy-fixture", ServiceType.PORTFOLIO)
    assert isinstance(service, PortfolioServiceV2)
    [entry] = service.get_portfolio()
    assert entry.price == Money(Decimal("12.5"), "EUR")


@pytest.mark.slow
def test_the_digits_cross_from_a_child_process(plugin_dirs, settings) -> None:
    fast_process_plugins(settings, call_timeout=5.0)
    folder = plugin_dirs.add("proc-v2")
    _rewrite(folder / "procv2" / "data.py", '"2", "50.00"', f'"2", "{EXACT}"')
    plugin_dirs.add("v2-tap-middleware")
    manager.sync()
    assert Plugin.objects.get(name="proc-v2").state == "active"
    serving.refresh(force=True)
    try:
        entries = get_service_v2("proc-v2", ServiceType.PORTFOLIO).get_portfolio()
        by_symbol = {e.symbol: e for e in entries}
        assert str(by_symbol["PRV1"].price.amount) == EXACT
        assert str(by_symbol["PRV1"].value.amount) == "0.021427899999999998"
        assert by_symbol["PRV1"].isin != "" and "PID" in by_symbol["PRV1"].isin
        assert "proc-v2:portfolio.get_portfolio@2" in _tap_saw()
        v1 = BrokerFactory().create_service("proc-v2", ServiceType.PORTFOLIO).get_portfolio()
        assert {e.symbol: e.price for e in v1}["PRV1"] == 0.01071395
    finally:
        manager.unload_plugin("proc-v2")
