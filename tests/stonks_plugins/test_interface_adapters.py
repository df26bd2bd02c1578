"""API v2 of the deposit, dividend, fee and account services, and the CompatibilityAdapter
between v1 and v2: a v1 plugin and a v2 plugin with the same data give a v1 consumer (the
legacy pages, through ``BrokerFactory``) and a v2 consumer (``get_service_v2``) the same
figures; date ranges select the same records; adapters unwrap instead of stacking."""

from __future__ import annotations

import dataclasses
import shutil
import textwrap
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from stonks_overwatch.core.aggregators import DepositAggregator, DividendAggregator, FeeAggregator
from stonks_overwatch.core.factory import BrokerFactory
from stonks_plugins.interface_adapters import (
    VERSIONS,
    CompatibilityAdapter,
    get_service_v2,
    serve_v1,
)
from stonks_plugins.manager import manager
from stonks_plugins.models import Plugin
from stonks_plugins.sdk import (
    AccountOverview,
    AccountOverviewV2,
    AccountServiceInterface,
    AccountServiceV2,
    AuthenticationServiceInterface,
    Deposit,
    DepositServiceInterface,
    DepositServiceV2,
    DepositV2,
    Dividend,
    DividendServiceInterface,
    DividendServiceV2,
    DividendV2,
    Fee,
    FeeServiceInterface,
    FeeServiceV2,
    FeeV2,
    Money,
    ServiceType,
    Transaction,
    TransactionV2,
    UpdateServiceInterface,
)
from tests.conftest import FIXTURES

D1, D2, D3 = date(2024, 1, 5), date(2024, 2, 5), date(2024, 3, 5)
RANGES = ((None, None), (D2, None), (None, D2), (D2, D2), (D2, D3), (D3, D1))


def _usd(text: str) -> Money:
    return Money(Decimal(text), "USD")


def _within(day: date, start: date | None, end: date | None) -> bool:
    return (start is None or start <= day) and (end is None or day <= end)


# -- in-memory services: the same records in v1 and in v2 ------------------------------------


class V1Deposits(DepositServiceInterface):
    def get_cash_deposits(self) -> list[Deposit]:
        return [Deposit(d, 100.1, "USD", f"Deposit {d:%b}") for d in (D1, D2, D3)]


class V2Deposits(DepositServiceV2):
    def get_cash_deposits(
        self, start: date | None = None, end: date | None = None
    ) -> list[DepositV2]:
        return [
            DepositV2(d, _usd("100.1"), f"Deposit {d:%b}")
            for d in (D1, D2, D3)
            if _within(d, start, end)
        ]


class V1Dividends(DividendServiceInterface):
    def get_dividends(self) -> list[Dividend]:
        return [Dividend(d, "Alpha", "ALP", 3.4, -0.51, "USD") for d in (D1, D2, D3)]


class V2Dividends(DividendServiceV2):
    def get_dividends(self, start: date | None = None, end: date | None = None) -> list[DividendV2]:
        return [
            DividendV2(d, "Alpha", "ALP", _usd("3.40"), _usd("-0.51"))
            for d in (D1, D2, D3)
            if _within(d, start, end)
        ]


class V1Fees(FeeServiceInterface):
    def get_fees(self) -> list[Fee]:
        return [Fee(d, "Connection fee", -2.5, "USD") for d in (D1, D2, D3)]


class V2Fees(FeeServiceV2):
    def get_fees(self, start: date | None = None, end: date | None = None) -> list[FeeV2]:
        return [
            FeeV2(d, "Connection fee", _usd("-2.50"))
            for d in (D1, D2, D3)
            if _within(d, start, end)
        ]


class V1Account(AccountServiceInterface):
    def get_account_overview(self) -> AccountOverview:
        return AccountOverview("b", "ACC-1", 1234.56, "USD", {"source": "test"})


class V2Account(AccountServiceV2):
    def get_account_overview(self) -> AccountOverviewV2:
        return AccountOverviewV2("b", "ACC-1", _usd("1234.56"), {"source": "test"})


PAIRS = [
    pytest.param(ServiceType.DEPOSIT, V1Deposits, V2Deposits, "get_cash_deposits", id="deposit"),
    pytest.param(ServiceType.DIVIDEND, V1Dividends, V2Dividends, "get_dividends", id="dividend"),
    pytest.param(ServiceType.FEE, V1Fees, V2Fees, "get_fees", id="fee"),
    pytest.param(ServiceType.ACCOUNT, V1Account, V2Account, "get_account_overview", id="account"),
]
LISTS = [p for p in PAIRS if p.id != "account"]
INTERFACES = {  # spelled out here, not read from the adapters' own table under test
    ServiceType.DEPOSIT: (DepositServiceInterface, DepositServiceV2),
    ServiceType.DIVIDEND: (DividendServiceInterface, DividendServiceV2),
    ServiceType.FEE: (FeeServiceInterface, FeeServiceV2),
    ServiceType.ACCOUNT: (AccountServiceInterface, AccountServiceV2),
}


@pytest.mark.parametrize(("stype", "v1_cls", "v2_cls", "method"), PAIRS)
def test_both_directions_give_the_other_versions_records(
    stype: ServiceType, v1_cls: type, v2_cls: type, method: str
) -> None:
    as_v2 = CompatibilityAdapter.adapt_v1_to_v2(v1_cls(), stype)
    assert isinstance(as_v2, INTERFACES[stype][1])
    assert getattr(as_v2, method)() == getattr(v2_cls(), method)()
    as_v1 = CompatibilityAdapter.adapt_v2_to_v1(v2_cls(), stype)
    assert isinstance(as_v1, INTERFACES[stype][0])
    assert getattr(as_v1, method)() == getattr(v1_cls(), method)()


@pytest.mark.parametrize(("stype", "v1_cls", "v2_cls", "method"), PAIRS)
def test_the_type_is_found_from_the_method_names(
    stype: ServiceType, v1_cls: type, v2_cls: type, method: str
) -> None:
    """A consumer that does not say which service it holds still gets the right adapter."""
    assert isinstance(CompatibilityAdapter.adapt_v1_to_v2(v1_cls()), INTERFACES[stype][1])
    assert isinstance(CompatibilityAdapter.adapt_v2_to_v1(v2_cls()), INTERFACES[stype][0])
    assert isinstance(serve_v1(v2_cls()), INTERFACES[stype][0])


@pytest.mark.parametrize(("stype", "v1_cls", "v2_cls", "method"), LISTS)
def test_a_v1_service_seen_in_v2_filters_the_date_range(
    stype: ServiceType, v1_cls: type, v2_cls: type, method: str
) -> None:
    adapted = getattr(CompatibilityAdapter.adapt_v1_to_v2(v1_cls()), method)
    native = getattr(v2_cls(), method)
    for start, end in RANGES:
        assert adapted(start, end) == native(start, end), (start, end)
    assert [r.date for r in adapted(start=D2)] == [D2, D3]
    assert [r.date for r in adapted(end=D1)] == [D1]
    assert adapted(start=D3, end=D1) == []  # an empty range is no error


@pytest.mark.parametrize(("stype", "v1_cls", "v2_cls", "method"), PAIRS)
def test_round_trips_unwrap_instead_of_stacking(
    stype: ServiceType, v1_cls: type, v2_cls: type, method: str
) -> None:
    v1, v2 = v1_cls(), v2_cls()
    there = CompatibilityAdapter.adapt_v1_to_v2(v1, stype)
    assert CompatibilityAdapter.adapt_v2_to_v1(there, stype) is v1
    back = CompatibilityAdapter.adapt_v2_to_v1(v2, stype)
    assert CompatibilityAdapter.adapt_v1_to_v2(back, stype) is v2
    # Already the version asked for: unchanged.
    assert CompatibilityAdapter.adapt_v1_to_v2(v2, stype) is v2
    assert CompatibilityAdapter.adapt_v2_to_v1(v1, stype) is v1


def test_v2_records_carry_decimal_money_and_v1_floats() -> None:
    [deposit, *_] = CompatibilityAdapter.adapt_v1_to_v2(V1Deposits()).get_cash_deposits()
    assert deposit.amount == _usd("100.1")
    assert str(deposit.amount.amount) == "100.1"  # what v1 printed, not 100.09999999999999431...
    [dividend, *_] = CompatibilityAdapter.adapt_v2_to_v1(V2Dividends()).get_dividends()
    assert (dividend.amount, dividend.taxes, dividend.currency) == (3.4, -0.51, "USD")
    assert isinstance(dividend.amount, float) and isinstance(dividend.taxes, float)
    account = CompatibilityAdapter.adapt_v2_to_v1(V2Account()).get_account_overview()
    assert (account.cash, account.currency, account.extra) == (1234.56, "USD", {"source": "test"})


def test_what_does_not_round_trip_is_as_documented() -> None:
    """The module docstring's list: trailing zeros, "no taxes" vs zero, one currency."""

    class NoTaxes(DividendServiceV2):
        def get_dividends(
            self, start: date | None = None, end: date | None = None
        ) -> list[DividendV2]:
            return [DividendV2(D1, "Alpha", "ALP", _usd("3.40"))]

    [v1] = CompatibilityAdapter.adapt_v2_to_v1(NoTaxes()).get_dividends()
    assert v1.taxes == 0.0  # "not reported" reaches a v1 consumer as zero...

    class ZeroTaxes(DividendServiceInterface):
        def get_dividends(self) -> list[Dividend]:
            return [Dividend(D1, "Alpha", "ALP", 3.4, currency="USD")]

    [v2] = CompatibilityAdapter.adapt_v1_to_v2(ZeroTaxes()).get_dividends()
    assert v2.taxes == _usd("0")  # ...and v1's zero a v2 consumer as zero money, never None
    [fee, *_] = CompatibilityAdapter.adapt_v2_to_v1(V2Fees()).get_fees()
    assert fee.amount == -2.5 and fee.currency == "USD"
    [again, *_] = CompatibilityAdapter.adapt_v1_to_v2(V1Fees()).get_fees()
    assert str(again.amount.amount) == "-2.5"  # v2's "-2.50" lost its trailing zero in v1


def test_a_dividend_refuses_taxes_in_another_currency() -> None:
    with pytest.raises(ValueError, match="taxes in EUR but the amount in USD"):
        DividendV2(D1, "Alpha", "ALP", _usd("3.40"), Money(Decimal("-0.5"), "EUR"))


class _Auth(AuthenticationServiceInterface):
    def is_authenticated(self) -> bool:
        return True


class _Update(UpdateServiceInterface):
    def update_all(self) -> None:
        return None


@pytest.mark.parametrize(
    ("stype", "cls"), [(ServiceType.AUTHENTICATION, _Auth), (ServiceType.UPDATE, _Update)]
)
def test_authentication_and_update_services_stay_v1(stype: ServiceType, cls: type) -> None:
    # No v2 of these: either consumer gets the very service, told its type or not.
    assert stype not in VERSIONS
    service = cls()
    for given in (stype, None):
        assert CompatibilityAdapter.adapt_v1_to_v2(service, given) is service
        assert CompatibilityAdapter.adapt_v2_to_v1(service, given) is service
        assert serve_v1(service, given) is service


# -- through the registry: a v1 plugin and a v2 plugin with the same data ---------------------

V1_TWIN_SERVICES = '''
"""The v2-fixture's data served through API v1 (floats), by a plugin of its own."""

from stonks_plugins.sdk import (
    AccountOverview, AccountServiceInterface, Deposit, DepositServiceInterface, Dividend,
    DividendServiceInterface, Fee, FeeServiceInterface, Transaction,
    TransactionServiceInterface,
)

from .data import ACCOUNT, DEPOSITS, DIVIDENDS, FEES, POSITION, TRANSACTIONS

BROKER = "v1-twin"


class TransactionService(TransactionServiceInterface):
    def get_transactions(self):
        name, symbol, _, _, currency = POSITION
        return [
            Transaction(day, name, symbol, kind, float(q), float(p), float(q * p), float(f),
                        currency, BROKER)
            for day, kind, q, p, f in TRANSACTIONS
        ]


class DepositService(DepositServiceInterface):
    def get_cash_deposits(self):
        return [Deposit(d, float(a), c, text, BROKER) for d, a, c, text in DEPOSITS]


class DividendService(DividendServiceInterface):
    def get_dividends(self):
        name, symbol, _, _, _ = POSITION
        return [
            Dividend(d, name, symbol, float(a), float(t), c, BROKER) for d, a, t, c in DIVIDENDS
        ]


class FeeService(FeeServiceInterface):
    def get_fees(self):
        return [Fee(d, text, float(a), c, BROKER) for d, text, a, c in FEES]


class AccountService(AccountServiceInterface):
    def get_account_overview(self):
        account_id, cash, currency, extra = ACCOUNT
        return AccountOverview(BROKER, account_id, float(cash), currency, dict(extra))
'''

V1_TWIN_MANIFEST = """{
  "plugin": {"name": "v1-twin", "version": "1.0.0", "type": "broker"},
  "api": {"min_version": "1.0.0", "interfaces": ["TransactionServiceInterface",
          "DepositServiceInterface", "DividendServiceInterface", "FeeServiceInterface",
          "AccountServiceInterface"]},
  "capabilities": {"services": ["transaction", "deposit", "dividend", "fee", "account"]},
  "services": {
    "transaction": "v1twin.services.TransactionService",
    "deposit": "v1twin.services.DepositService",
    "dividend": "v1twin.services.DividendService",
    "fee": "v1twin.services.FeeService",
    "account": "v1twin.services.AccountService"
  }
}"""


@pytest.fixture
def twin_plugins(plugin_dirs) -> None:  # type: ignore[no-untyped-def]
    """v2-fixture, and 'v1-twin': the same data module behind v1 services."""
    plugin_dirs.add("v2-fixture")
    twin = plugin_dirs.path / "v1-twin"
    (twin / "v1twin").mkdir(parents=True)
    (twin / "v1twin" / "__init__.py").write_text("")
    shutil.copy(FIXTURES / "v2-fixture" / "v2fixture" / "data.py", twin / "v1twin" / "data.py")
    (twin / "v1twin" / "services.py").write_text(textwrap.dedent(V1_TWIN_SERVICES))
    (twin / "plugin_manifest.json").write_text(V1_TWIN_MANIFEST)
    manager.sync()
    for name in ("v2-fixture", "v1-twin"):
        row = Plugin.objects.get(name=name)
        assert row.state == "active", (name, row.error_code, row.error_message)


def _records(result: Any) -> list[Any]:
    return result if isinstance(result, list) else [result]


def _fields(record: Any) -> dict[str, Any]:
    """Every field but ``broker`` (each plugin stamps its own name)."""
    return {k: v for k, v in dataclasses.asdict(record).items() if k != "broker"}


SERVED = [
    pytest.param(ServiceType.TRANSACTION, "get_transactions", Transaction, TransactionV2, id="tx"),
    pytest.param(ServiceType.DEPOSIT, "get_cash_deposits", Deposit, DepositV2, id="deposit"),
    pytest.param(ServiceType.DIVIDEND, "get_dividends", Dividend, DividendV2, id="dividend"),
    pytest.param(ServiceType.FEE, "get_fees", Fee, FeeV2, id="fee"),
    pytest.param(
        ServiceType.ACCOUNT,
        "get_account_overview",
        AccountOverview,
        AccountOverviewV2,
        id="account",
    ),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("stype", "method", "record_v1", "record_v2"), SERVED)
def test_v1_and_v2_plugins_give_both_consumers_the_same_figures(
    twin_plugins: None, stype: ServiceType, method: str, record_v1: type, record_v2: type
) -> None:
    def v1_consumer(broker: str) -> list[Any]:  # what the legacy pages do
        return _records(getattr(BrokerFactory().create_service(broker, stype), method)())

    def v2_consumer(broker: str) -> list[Any]:
        return _records(getattr(get_service_v2(broker, stype), method)())

    for broker in ("v1-twin", "v2-fixture"):
        assert v1_consumer(broker) and all(type(r) is record_v1 for r in v1_consumer(broker))
        assert all(type(r) is record_v2 for r in v2_consumer(broker)), broker
    assert [_fields(r) for r in v1_consumer("v2-fixture")] == [
        _fields(r) for r in v1_consumer("v1-twin")
    ]
    assert [_fields(r) for r in v2_consumer("v2-fixture")] == [
        _fields(r) for r in v2_consumer("v1-twin")
    ]
    assert {r.broker for r in v1_consumer("v2-fixture")} == {"v2-fixture"}


@pytest.mark.django_db
def test_the_figures_a_user_sees_in_each_version(twin_plugins: None) -> None:
    """The fixture's deposits as numbers: floats on the v1 side, Decimal money on v2's."""
    deposits_v1 = BrokerFactory().create_service("v2-fixture", ServiceType.DEPOSIT)
    assert [(d.amount, d.currency) for d in deposits_v1.get_cash_deposits()] == [
        (1000.1, "EUR"),
        (250.0, "USD"),
        (-100.55, "EUR"),
    ]
    deposits_v2 = get_service_v2("v1-twin", ServiceType.DEPOSIT)
    assert [d.amount for d in deposits_v2.get_cash_deposits()] == [
        Money(Decimal("1000.10"), "EUR"),
        Money(Decimal("250"), "USD"),
        Money(Decimal("-100.55"), "EUR"),
    ]
    [div, _] = get_service_v2("v1-twin", ServiceType.DIVIDEND).get_dividends()
    assert (div.amount, div.taxes) == (
        Money(Decimal("3.40"), "EUR"),
        Money(Decimal("-0.51"), "EUR"),
    )
    account = get_service_v2("v1-twin", ServiceType.ACCOUNT).get_account_overview()
    assert account.cash == Money(Decimal("1234.56"), "EUR") and account.account_id == "V2FX-0001"
    overview = BrokerFactory().create_service("v2-fixture", ServiceType.ACCOUNT)
    assert overview.get_account_overview().cash == 1234.56


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("stype", "method", "record_v1", "record_v2"), [p for p in SERVED if p.id != "account"]
)
def test_date_ranges_select_the_same_records_from_both_plugins(
    twin_plugins: None, stype: ServiceType, method: str, record_v1: type, record_v2: type
) -> None:
    v1_plugin = getattr(get_service_v2("v1-twin", stype), method)
    v2_plugin = getattr(get_service_v2("v2-fixture", stype), method)
    everything = v2_plugin()
    days = sorted({r.date for r in everything})
    assert len(days) >= 2, "the fixture needs records on several days"
    for start, end in ((days[1], None), (None, days[0]), (days[1], days[-1]), (days[-1], days[0])):
        got = v2_plugin(start, end)
        assert [_fields(r) for r in v1_plugin(start, end)] == [_fields(r) for r in got]
        assert [r for r in everything if _within(r.date, start, end)] == got


@pytest.mark.django_db
def test_the_legacy_aggregators_include_a_v2_plugin(twin_plugins: None) -> None:
    """The v1 pages' aggregators add the v2 plugin's records up with the v1 plugin's."""
    aggregates: list[tuple[Callable[[], Any], int]] = [
        (DepositAggregator().get_cash_deposits, 3),
        (DividendAggregator().get_dividends, 2),
        (FeeAggregator().get_fees, 4),
    ]
    for collect, count in aggregates:
        agg = collect()
        assert agg.failures == {}
        assert sorted(agg.brokers) == ["v1-twin", "v2-fixture"]
        mine = [r for r in agg.items if r.broker == "v2-fixture"]
        assert len(mine) == count and all(isinstance(r.amount, float) for r in mine)
