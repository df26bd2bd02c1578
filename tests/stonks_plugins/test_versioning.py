"""API versions (InterfaceVersion, VersionChecker), the v2 service interfaces and the
v1 <-> v2 CompatibilityAdapter: the same data, seen by both kinds of consumer."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from stonks_overwatch.core.registry import BrokerRegistry
from stonks_plugins.compatibility import check_compatibility
from stonks_plugins.errors import ReasonCode
from stonks_plugins.interface_adapters import CompatibilityAdapter, get_service_v2
from stonks_plugins.manager import manager
from stonks_plugins.manifest.model import PluginManifest
from stonks_plugins.models import Plugin
from stonks_plugins.sdk import (
    Money,
    PortfolioEntry,
    PortfolioEntryV2,
    PortfolioServiceInterface,
    PortfolioServiceV2,
    ServiceType,
    TotalPortfolio,
    TotalPortfolioV2,
    Transaction,
    TransactionServiceInterface,
    TransactionServiceV2,
    TransactionV2,
)
from stonks_plugins.versioning import (
    InterfaceVersion,
    VersionChecker,
    VersionedInterface,
    interface_version_of,
)
from tests.conftest import BUNDLED, FIXTURES

# -- InterfaceVersion / VersionChecker -------------------------------------------------------


def test_interface_version_parses_and_orders() -> None:
    assert InterfaceVersion.parse("2.0.0") == InterfaceVersion(2, 0, 0)
    assert InterfaceVersion.parse("2.1") == InterfaceVersion(2, 1, 0)
    assert InterfaceVersion.parse("v1") == InterfaceVersion(1)
    assert str(InterfaceVersion.parse("3.4.5")) == "3.4.5"
    assert InterfaceVersion(1, 9) < InterfaceVersion(2, 0)
    with pytest.raises(ValueError):
        InterfaceVersion.parse("two")


@pytest.mark.parametrize(
    ("served", "required", "ok"),
    [
        ("2.0.0", "2.0.0", True),
        ("2.3.0", "2.1.0", True),  # a newer minor only adds
        ("2.3.1", "2.3.9", True),  # patch is ignored
        ("2.0.0", "2.1.0", False),  # the plugin needs something 2.0 lacks
        ("1.0.0", "2.0.0", False),  # a major is a break
        ("2.0.0", "1.0.0", False),
    ],
)
def test_compatibility_rule(served: str, required: str, ok: bool) -> None:
    s, r = InterfaceVersion.parse(served), InterfaceVersion.parse(required)
    assert s.is_compatible_with(r) is ok


def test_versioned_interfaces() -> None:
    assert PortfolioServiceV2.interface_version == InterfaceVersion(2)
    assert issubclass(PortfolioServiceV2, VersionedInterface)
    assert InterfaceVersion(1) in PortfolioServiceV2.get_supported_versions()
    assert interface_version_of(PortfolioServiceInterface) == InterfaceVersion(1)
    assert interface_version_of(TransactionServiceV2) == InterfaceVersion(2)


@pytest.mark.parametrize(
    "entry",
    [
        "BrokerServiceInterface",
        "PortfolioServiceInterface",
        "UpdateServiceInterface",
        "PortfolioServiceV2",
        "PortfolioServiceV2@2.0.0",
        "PortfolioServiceInterface@2",
        "TransactionServiceInterface@1.0",
        "TransactionServiceV2@2",
        "DepositServiceV2",
        "DividendServiceV2@2.0.0",
        "FeeServiceV2@2",
        "AccountServiceV2@2.0",
        "DepositServiceInterface@2",  # the v1 name with @2 is the same v2 interface
    ],
)
def test_known_interfaces_pass(entry: str) -> None:
    assert VersionChecker().check([entry]) == []


@pytest.mark.parametrize(
    ("entry", "words"),
    [
        ("NoSuchInterface", ["NoSuchInterface", "1.0.0", "does not serve"]),
        ("PortfolioServiceV2@2.1", ["PortfolioServiceInterface", "2.1.0", "1.0.0, 2.0.0"]),
        # Authentication and update carry no money or dates: they have no v2.
        (
            "AuthenticationServiceInterface@2",
            ["AuthenticationServiceInterface", "2.0.0", "serves 1.0.0"],
        ),
        ("UpdateServiceV2", ["UpdateServiceV2", "does not serve"]),
        ("PortfolioServiceV2@x", ["no valid version"]),
    ],
)
def test_unknown_or_unserved_interfaces_are_incompatible_api(entry: str, words: list[str]) -> None:
    [issue] = VersionChecker().check([entry])
    assert issue.code is ReasonCode.INCOMPATIBLE_API
    for w in words:
        assert w in issue.message


def test_core_publishes_served_versions() -> None:
    served = VersionChecker().served_versions()
    assert served["PortfolioServiceInterface"] == ["1.0.0"]
    assert served["PortfolioServiceV2"] == ["2.0.0"]
    assert served["DepositServiceInterface"] == ["1.0.0"]
    for name in ("DepositServiceV2", "DividendServiceV2", "FeeServiceV2", "AccountServiceV2"):
        assert served[name] == ["2.0.0"]
    assert "AuthenticationServiceV2" not in served and "UpdateServiceV2" not in served


def _manifest(interfaces: list[str]) -> PluginManifest:
    return PluginManifest.from_dict(
        {
            "plugin": {"name": "x", "version": "1.0.0", "type": "broker"},
            "api": {"min_version": "1.0.0", "interfaces": interfaces},
        }
    )


def test_check_compatibility_uses_the_version_checker() -> None:
    [issue] = check_compatibility(_manifest(["BrokerServiceInterface", "Bogus@1"]))
    assert issue.code is ReasonCode.INCOMPATIBLE_API and "Bogus@1" in issue.message
    assert check_compatibility(_manifest(["PortfolioServiceV2@2.0.0"])) == []


@pytest.mark.parametrize(
    "folder",
    sorted(
        p
        for base in (BUNDLED, FIXTURES)
        for p in base.iterdir()
        # unreadable-json is broken on purpose: there are no interfaces to read.
        if (p / "plugin_manifest.json").exists() and p.name != "unreadable-json"
    ),
    ids=lambda p: p.name,
)
def test_bundled_and_fixture_interfaces_are_known(folder) -> None:  # type: ignore[no-untyped-def]
    import json

    data = json.loads((folder / "plugin_manifest.json").read_text())
    interfaces = data.get("api", {}).get("interfaces", []) if isinstance(data, dict) else []
    assert VersionChecker().check(interfaces) == []


# -- the same data, both ways ----------------------------------------------------------------

DAY1, DAY2, DAY3 = date(2024, 1, 5), date(2024, 2, 5), date(2024, 3, 5)


class V1Portfolio(PortfolioServiceInterface):
    def get_portfolio(self) -> list[PortfolioEntry]:
        return [
            PortfolioEntry("Alpha", "ALP", 3.0, 10.1, 30.3, currency="USD", broker="b"),
            PortfolioEntry("Beta", "BET", 0.5, 2000.0, 1000.0, currency="USD", broker="b"),
        ]

    def get_portfolio_total(self) -> TotalPortfolio:
        return TotalPortfolio(total_value=1030.3, total_cash=5.25, currency="USD")


class V1Transactions(TransactionServiceInterface):
    def get_transactions(self) -> list[Transaction]:
        return [
            Transaction(d, "Alpha", "ALP", "buy", 1.0, 10.1, 10.1, fees=0.5, currency="USD")
            for d in (DAY1, DAY2, DAY3)
        ]


def _m(text: str) -> Money:
    return Money(Decimal(text), "USD")


class V2Portfolio(PortfolioServiceV2):
    def get_portfolio(self, as_of: date | None = None) -> list[PortfolioEntryV2]:
        return [
            PortfolioEntryV2("Alpha", "ALP", Decimal("3"), _m("10.1"), _m("30.3"), broker="b"),
            PortfolioEntryV2("Beta", "BET", Decimal("0.5"), _m("2000"), _m("1000.00"), broker="b"),
        ]

    def get_portfolio_total(self, as_of: date | None = None) -> TotalPortfolioV2:
        return TotalPortfolioV2(total_value=_m("1030.3"), total_cash=_m("5.25"))


class V2Transactions(TransactionServiceV2):
    def get_transactions(
        self, start: date | None = None, end: date | None = None
    ) -> list[TransactionV2]:
        return [
            TransactionV2(d, "Alpha", "ALP", "buy", Decimal(1), _m("10.1"), _m("10.1"), _m("0.5"))
            for d in (DAY1, DAY2, DAY3)
            if (start is None or start <= d) and (end is None or d <= end)
        ]


def test_v1_service_adapted_to_v2_gives_decimal_money_with_equal_values() -> None:
    v2 = CompatibilityAdapter.adapt_v1_to_v2(V1Portfolio())
    assert isinstance(v2, PortfolioServiceV2)
    native = V2Portfolio()
    assert v2.get_portfolio() == native.get_portfolio()
    entry = v2.get_portfolio()[0]
    assert isinstance(entry.value.amount, Decimal) and entry.value == _m("30.3")
    assert entry.price.amount == Decimal("10.1")  # not the binary expansion of 10.1
    total = v2.get_portfolio_total()
    assert (total.total_value, total.total_cash) == (_m("1030.3"), _m("5.25"))
    assert total.currency == "USD"
    with pytest.raises(NotImplementedError):
        v2.get_portfolio(as_of=date(2000, 1, 1))  # v1 has no history
    assert v2.get_portfolio(as_of=date.today()) == native.get_portfolio()


def test_v1_transactions_adapted_to_v2_filter_the_date_range() -> None:
    v2 = CompatibilityAdapter.adapt_v1_to_v2(V1Transactions())
    native = V2Transactions()
    for start, end in ((None, None), (DAY2, None), (None, DAY2), (DAY2, DAY2), (DAY3, DAY1)):
        assert v2.get_transactions(start, end) == native.get_transactions(start, end)
    assert [t.date for t in v2.get_transactions(start=DAY2)] == [DAY2, DAY3]


def test_v2_service_adapted_to_v1_gives_floats_equal_within_rounding() -> None:
    v1 = CompatibilityAdapter.adapt_v2_to_v1(V2Portfolio())
    assert isinstance(v1, PortfolioServiceInterface)
    for got, want in zip(v1.get_portfolio(), V1Portfolio().get_portfolio(), strict=True):
        assert isinstance(got.value, float)
        assert (got.name, got.symbol, got.currency) == (want.name, want.symbol, want.currency)
        assert got.shares == pytest.approx(want.shares)
        assert got.price == pytest.approx(want.price)
        assert got.value == pytest.approx(want.value)
    total = v1.get_portfolio_total()
    assert total.total_value == pytest.approx(1030.3) and total.currency == "USD"
    assert total.total_cash == pytest.approx(5.25) and total.total_deposits == 0.0
    txs = CompatibilityAdapter.adapt_v2_to_v1(V2Transactions()).get_transactions()
    assert txs == V1Transactions().get_transactions()


def test_adapters_unwrap_instead_of_stacking() -> None:
    native = V2Portfolio()
    there = CompatibilityAdapter.adapt_v2_to_v1(native)
    assert CompatibilityAdapter.adapt_v1_to_v2(there) is native
    v1 = V1Portfolio()
    assert CompatibilityAdapter.adapt_v2_to_v1(CompatibilityAdapter.adapt_v1_to_v2(v1)) is v1
    assert CompatibilityAdapter.adapt_v1_to_v2(native) is native
    assert CompatibilityAdapter.adapt_v2_to_v1(v1) is v1


def test_money_keeps_decimal_and_currency() -> None:
    assert Money(0.1, "EUR").amount == Decimal("0.1")  # type: ignore[arg-type]
    assert Money(Decimal("1.10"), "EUR") + Money(Decimal("2"), "EUR") == Money(
        Decimal("3.10"), "EUR"
    )
    with pytest.raises(ValueError):
        Money(Decimal(1), "EUR") + Money(Decimal(1), "USD")


# -- through the registry: each consumer gets the version it asks for -----------------------


@pytest.mark.django_db
def test_v2_only_plugin_is_served_on_the_v1_home_page(plugin_dirs, admin_client_logged) -> None:
    plugin_dirs.add("v2-fixture")
    manager.sync()
    row = Plugin.objects.get(name="v2-fixture")
    assert row.state == "active", row.error_message
    html = admin_client_logged.get("/").content.decode()
    assert '<tr data-broker="v2-fixture"><td>V2 Fixture Holding</td><td>V2FX</td>' in html
    # The v1 registry hands the legacy pages a v1 service with float figures...
    from stonks_overwatch.core.factory import BrokerFactory

    BrokerRegistry()  # refresh through the bridge happens on read
    v1 = BrokerFactory().create_service("v2-fixture", ServiceType.PORTFOLIO)
    [entry] = v1.get_portfolio()
    assert isinstance(entry.value, float)
    assert (entry.shares, entry.price, entry.value) == (4.0, 25.125, 100.5)
    assert entry.currency == "EUR"
    # ...and a v2 consumer the same figures as Decimal money.
    [entry2] = get_service_v2("v2-fixture", ServiceType.PORTFOLIO).get_portfolio()
    assert entry2.value == Money(Decimal("100.5"), "EUR")
    assert entry2.price == Money(Decimal("25.125"), "EUR")


@pytest.mark.django_db
def test_v1_plugin_is_usable_by_a_v2_consumer(plugin_dirs, admin_client_logged) -> None:
    plugin_dirs.add("healthy-fixture")
    manager.sync()
    assert Plugin.objects.get(name="healthy-fixture").state == "active"
    html = admin_client_logged.get("/").content.decode()
    assert 'data-broker="healthy-fixture"' in html
    service = get_service_v2("healthy-fixture", ServiceType.PORTFOLIO)
    assert isinstance(service, PortfolioServiceV2)
    [entry] = service.get_portfolio()
    assert (entry.symbol, entry.shares) == ("HLTH", Decimal("10.0"))
    assert entry.price == Money(Decimal("12.5"), "EUR")
    assert entry.value == Money(Decimal("125"), "EUR")
    assert service.get_portfolio_total().total_value == Money(Decimal("125"), "EUR")


def test_every_v2_interface_in_the_adapter_table_is_a_name_manifests_may_declare() -> None:
    # The adapters' table (interface_adapters.VERSIONS) and the names the version checker
    # knows (versioning) are written apart; a v2 interface added to one must be in the other,
    # or a manifest declaring it would be refused as incompatible.
    from stonks_plugins.interface_adapters import VERSIONS
    from stonks_plugins.versioning import V2, VersionChecker, check_interfaces

    for pair in VERSIONS.values():
        family, version = VersionChecker.parse_entry(pair.v2.__name__)
        assert (family, version) == (pair.v1.__name__, V2), pair.v2.__name__
        assert check_interfaces((pair.v2.__name__, pair.v1.__name__)) == ()
