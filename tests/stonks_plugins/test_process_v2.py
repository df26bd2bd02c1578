"""A v2-only plugin in a child process (fixture ``proc-v2``): the legacy home page shows its
positions in v1, a v2 consumer gets Decimal money equal to what the plugin made, and a
Decimal keeps its exact text across the process boundary (``"0.10"`` does not come back as
``0.1``). ``proc-v2`` holds proc-healthy's positions (its v1 counterpart), so the two
plugins' rows can be compared cell by cell."""

from __future__ import annotations

import os
import pickle
import re
from datetime import date
from decimal import Decimal

import pytest

from stonks_overwatch.core.factory import BrokerFactory
from stonks_overwatch.core.interfaces import (
    PortfolioServiceInterface,
    TransactionServiceInterface,
)
from stonks_overwatch.core.registry import BrokerRegistry
from stonks_overwatch.core.service_types import ServiceType
from stonks_plugins.interface_adapters import CompatibilityAdapter, get_service_v2
from stonks_plugins.interfaces_v2 import (
    Money,
    PortfolioServiceV2,
    TotalPortfolioV2,
    TransactionServiceV2,
)
from stonks_plugins.manager import manager
from stonks_plugins.models import Plugin
from stonks_plugins.registry import plugin_registry
from stonks_plugins.runtime.serving import serving
from stonks_plugins.sandbox.process import ProcessHost, _loads
from tests.conftest import FIXTURES, fast_process_plugins

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

ROW = re.compile(
    r'<tr data-broker="(?P<broker>[^"]*)"><td>(?P<name>[^<]*)</td><td>(?P<symbol>[^<]*)</td>'
    r'<td>[^<]*</td>\s*<td class="num">(?P<shares>[^<]*)</td>'
    r'<td class="num">(?P<value>[^<]*)</td><td>(?P<currency>[^<]*)</td>'
)


def eur(text: str) -> Money:
    return Money(Decimal(text), "EUR")


@pytest.fixture(autouse=True)
def _fast(settings) -> None:  # type: ignore[no-untyped-def]
    fast_process_plugins(settings, call_timeout=5.0)


@pytest.fixture
def proc_v2(plugin_dirs):  # type: ignore[no-untyped-def]
    """proc-v2 and its v1 counterpart proc-healthy, both synced and active."""
    plugin_dirs.add("proc-v2")
    plugin_dirs.add("proc-healthy")
    manager.sync()
    assert Plugin.objects.get(name="proc-v2").state == "active"
    serving.refresh(force=True)  # registers them in this process, as a page view would
    yield
    manager.unload_plugin("proc-v2")
    manager.unload_plugin("proc-healthy")


def home_rows(client) -> dict[str, list[tuple[str, ...]]]:  # type: ignore[no-untyped-def]
    """Broker -> its portfolio rows on the home page as (shares, value, currency)."""
    response = client.get("/")
    assert response.status_code == 200
    rows: dict[str, list[tuple[str, ...]]] = {}
    for m in ROW.finditer(response.content.decode()):
        rows.setdefault(m["broker"], []).append((m["shares"], m["value"], m["currency"]))
    return rows


def test_home_page_shows_the_v2_plugin_in_v1_with_its_v1_counterparts_figures(
    proc_v2, admin_client_logged
) -> None:
    html = admin_client_logged.get("/").content.decode()
    assert '<tr data-broker="proc-v2"><td>Proc V2 One</td><td>PRV1</td><td>proc-v2</td>' in html
    assert '<tr data-broker="proc-v2"><td>Proc V2 Two</td><td>PRV2</td><td>proc-v2</td>' in html
    rows = home_rows(admin_client_logged)
    assert sorted(rows["proc-v2"]) == [("2", "100.00", "EUR"), ("4", "100.00", "EUR")]
    assert sorted(rows["proc-v2"]) == sorted(rows["proc-healthy"])
    assert "Some brokers could not be read" not in html
    # What the page got is v1, made in the plugin's child, not in this process.
    v1 = BrokerFactory().create_service("proc-v2", ServiceType.PORTFOLIO)
    entries = v1.get_portfolio()
    host = plugin_registry.loaded()["proc-v2"].host
    assert host is not None and host.pid not in (None, os.getpid())
    assert {(e.symbol, e.shares, e.value, e.isin) for e in entries} == {
        ("PRV1", 2.0, 100.0, f"PID{host.pid}"),
        ("PRV2", 4.0, 100.0, f"PID{host.pid}"),
    }
    assert v1.get_portfolio_total().total_value == 200.0
    [first, second] = BrokerFactory().create_service("proc-v2", "transaction").get_transactions()
    assert (first.date, first.total, first.fees) == (date(2024, 1, 15), 100.0, 0.1)
    assert second.symbol == "PRV2"


def test_the_child_reports_v2_and_the_service_is_a_v2_instance(proc_v2) -> None:
    loaded = plugin_registry.load("proc-v2")
    assert loaded.host is not None
    assert loaded.host.interface_versions == {"portfolio": "2.0.0", "transaction": "2.0.0"}
    portfolio = loaded.create_service(ServiceType.PORTFOLIO)
    assert isinstance(portfolio, PortfolioServiceV2)
    assert not isinstance(portfolio, PortfolioServiceInterface)
    assert isinstance(loaded.create_service(ServiceType.TRANSACTION), TransactionServiceV2)
    # The classes the registry lists stand for the same interfaces (the test kit reads them).
    assert issubclass(loaded.services[ServiceType.PORTFOLIO], PortfolioServiceV2)
    assert not issubclass(loaded.services[ServiceType.PORTFOLIO], PortfolioServiceInterface)
    # The v1 registry hands out the v1 view (the adapter), as for an in-process v2 plugin.
    served = BrokerRegistry().get_service_class("proc-v2", "transaction")()
    assert isinstance(served, TransactionServiceInterface)


def test_get_service_v2_returns_money_equal_to_the_plugins_figures(proc_v2) -> None:
    portfolio = get_service_v2("proc-v2", ServiceType.PORTFOLIO)
    entries = sorted(portfolio.get_portfolio(), key=lambda e: e.symbol)
    assert [(e.symbol, e.shares, e.price, e.value) for e in entries] == [
        ("PRV1", Decimal("2"), eur("50.00"), eur("100.00")),
        ("PRV2", Decimal("4"), eur("25.00"), eur("100.00")),
    ]
    assert all(isinstance(e.value.amount, Decimal) for e in entries)
    assert portfolio.get_portfolio_total().total_value == eur("200.00")
    transactions = get_service_v2("proc-v2", ServiceType.TRANSACTION).get_transactions()
    assert [(t.date, t.quantity, t.price, t.total, t.fees) for t in transactions] == [
        (date(2024, 1, 15), Decimal("2"), eur("50.00"), eur("100.00"), eur("0.10")),
        (date(2024, 2, 20), Decimal("4"), eur("25.00"), eur("100.00"), eur("0.10")),
    ]


def test_decimals_and_dates_cross_the_process_boundary_exactly(proc_v2) -> None:
    # The plugin's native v2 service behind the v1 registry entry: the adapter the legacy
    # pages see unwraps to it, with no float in between (get_service_v2 reaches the same
    # service through the bounded front: test_exact_money.py).
    v1 = BrokerRegistry().get_service_class("proc-v2", "transaction")()
    native = CompatibilityAdapter.adapt_v1_to_v2(v1, ServiceType.TRANSACTION)
    assert isinstance(native, TransactionServiceV2)
    # Dates go to the child (the range) and come back (each record's date).
    [feb] = native.get_transactions(start=date(2024, 2, 1), end=date(2024, 2, 29))
    assert feb.date == date(2024, 2, 20)
    assert str(feb.fees.amount) == "0.10" and str(feb.price.amount) == "25.00"
    portfolio = plugin_registry.load("proc-v2").create_service(ServiceType.PORTFOLIO)
    total = portfolio.get_portfolio_total(as_of=date(2024, 3, 31))
    assert isinstance(total, TotalPortfolioV2)
    assert str(total.total_value.amount) == "200.00" and total.as_of == date(2024, 3, 31)


def test_only_v2_records_cross_not_the_v2_interfaces() -> None:
    """The host accepts the v2 records, never a class of the v2 module that is not one."""
    assert _loads(pickle.dumps(("ok", eur("0.10")))) == ("ok", eur("0.10"))
    with pytest.raises(pickle.UnpicklingError, match="PortfolioServiceV2"):
        _loads(pickle.dumps(("ok", PortfolioServiceV2)))


def test_a_proxy_built_before_the_first_start_follows_the_childs_report(tmp_path) -> None:
    """Only the child knows what its classes implement: a host that never ran its child
    starts it to build a proxy, and the proxy implements what the child reported."""
    from tests.stonks_plugins.test_process_isolation import copy_plugin

    host = ProcessHost(copy_plugin(FIXTURES / "proc-v2", tmp_path), call_timeout=10.0)
    try:
        assert host.interface_versions == {}
        proxy = host.service_proxy("portfolio")  # spawns the child
        assert host.interface_versions == {"portfolio": "2.0.0", "transaction": "2.0.0"}
        assert host.pid not in (None, os.getpid())
        assert isinstance(proxy, PortfolioServiceV2)
        assert str(proxy.get_portfolio()[0].price.amount) == "50.00"
    finally:
        host.close(grace=2.0)
