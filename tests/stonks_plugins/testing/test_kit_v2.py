"""The kit on API v2 plugins: a v2 service is checked against its v2 interface (Money,
Decimal, date ranges) and again as the legacy pages see it through the compatibility
adapter; the result lines say which version each service was checked against."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from stonks_plugins.testing import PluginTestSuite, TestResult

from .conftest import FAST, copy_plugin
from .test_kit import failed, passed
from .test_pytest_plugin import run_pytest

DATA_SERVICES = ("portfolio", "transaction", "deposit", "dividend", "fee", "account")


def test_the_kit_passes_on_a_v2_only_plugin_and_says_so(tmp_path: Path) -> None:
    results = PluginTestSuite(copy_plugin("v2-fixture", tmp_path)).run_all(cycles=1)
    assert all(r.passed for r in results), "\n".join(r.report() for r in results)
    interfaces = results[0]
    for stype in DATA_SERVICES:
        v2_name = f"{stype.capitalize()}ServiceV2"
        assert f"implements {v2_name} (API 2.0.0)" in passed(interfaces, f"service.{stype}").message
    deposits = passed(interfaces, "service.deposit.get_cash_deposits").message
    assert "3 items of list[DepositV2]" in deposits and "DepositServiceV2, API v2" in deposits
    legacy = passed(interfaces, "service.deposit.v1.get_cash_deposits").message
    assert "3 items of list[Deposit]" in legacy
    assert "compatibility adapter: DepositServiceInterface, API v1" in legacy
    for name in ("transaction.get_transactions", "fee.get_fees", "dividend.get_dividends"):
        passed(interfaces, f"service.{name}.range")
    assert (
        "one AccountOverview "
        in passed(interfaces, "service.account.v1.get_account_overview").message
    )


def test_a_v1_plugin_is_checked_against_v1_only(tmp_path: Path) -> None:
    result = PluginTestSuite(copy_plugin("healthy-fixture", tmp_path)).test_plugin_interfaces()
    assert "PortfolioServiceInterface (API 1.0.0)" in passed(result, "service.portfolio").message
    assert "PortfolioServiceInterface, API v1" in (
        passed(result, "service.portfolio.get_portfolio").message
    )
    assert not [c for c in result.checks if ".v1." in c.name]  # no adapter view to check


BROKEN_V2 = """
from datetime import date
from decimal import Decimal

from stonks_plugins.sdk import (
    AccountOverviewV2, AccountServiceV2, Deposit, DepositServiceV2, DividendServiceV2,
    DividendV2, FeeServiceV2, FeeV2, Money,
)

DAYS = (date(2024, 1, 1), date(2024, 2, 1), date(2024, 3, 1))


class DepositService(DepositServiceV2):
    # A v2 class returning v1 records: the v2 consumer would get floats.
    def get_cash_deposits(self, start=None, end=None):
        return [Deposit(d, 100.0, "EUR") for d in DAYS]


class DividendService(DividendServiceV2):
    # The amount as a bare float instead of Money.
    def get_dividends(self, start=None, end=None):
        return [DividendV2(d, "Kit", "KIT", 3.4) for d in DAYS]


class FeeService(FeeServiceV2):
    # Right records, but start/end ignored.
    def get_fees(self, start=None, end=None):
        return [FeeV2(d, "Fee", Money(Decimal("-1.5"), "EUR")) for d in DAYS]


class AccountService(AccountServiceV2):
    def get_account_overview(self):
        return AccountOverviewV2("kit", "K-1", Money(Decimal("10"), "EUR"), {"rows": 3})
"""

BROKEN_SERVICES = {
    "deposit": "kitpkg.services.DepositService",
    "dividend": "kitpkg.services.DividendService",
    "fee": "kitpkg.services.FeeService",
    "account": "kitpkg.services.AccountService",
}


@pytest.fixture
def broken_v2(make_plugin: Callable[..., Path]) -> Path:
    return make_plugin(
        "broken-v2",
        {"services.py": BROKEN_V2},
        api={
            "min_version": "1.0.0",
            "interfaces": [
                "DepositServiceV2",
                "DividendServiceV2",
                "FeeServiceV2",
                "AccountServiceV2",
            ],
        },
        capabilities={"services": list(BROKEN_SERVICES)},
        services=BROKEN_SERVICES,
    )


def test_a_v2_service_returning_the_wrong_types_fails_clearly(broken_v2: Path) -> None:
    result: TestResult = PluginTestSuite(broken_v2, timeouts=FAST).test_plugin_interfaces()
    assert not result.passed
    message = failed(result, "service.deposit.get_cash_deposits").message
    assert "get_cash_deposits()[0] is Deposit" in message and "expected DepositV2" in message
    assert "checked against DepositServiceV2, API v2" in message
    message = failed(result, "service.dividend.get_dividends").message
    assert "get_dividends()[0].amount is float 3.4, expected Money" in message
    message = failed(result, "service.account.get_account_overview").message
    assert "get_account_overview().extra['rows'] is int 3, expected str" in message
    # A wrong v2 result is reported once, not again through the v1 adapter.
    assert result.check("service.deposit.v1.get_cash_deposits") is None


def test_a_v2_service_ignoring_its_date_range_fails(broken_v2: Path) -> None:
    result = PluginTestSuite(broken_v2, timeouts=FAST).test_plugin_interfaces()
    passed(result, "service.fee.get_fees")  # the records themselves are right...
    message = failed(result, "service.fee.get_fees.range").message  # ...the range is not
    assert "get_fees(start=2024-02-01, end=2024-02-01) returned 3 items" in message
    assert "2 of them dated outside it" in message and "inclusive" in message
    passed(result, "service.fee.v1.get_fees")  # the legacy pages would still work


def test_assert_all_lists_every_v2_problem(broken_v2: Path) -> None:
    with pytest.raises(AssertionError) as err:
        PluginTestSuite(broken_v2, timeouts=FAST).assert_all(cycles=1)
    text = str(err.value)
    assert "plugin 'broken-v2'" in text
    for name in (
        "service.deposit.get_cash_deposits",
        "service.dividend.get_dividends",
        "service.fee.get_fees.range",
        "service.account.get_account_overview",
    ):
        assert f"[interfaces] {name}:" in text


def test_a_class_of_neither_version_names_both_interfaces(
    make_plugin: Callable[..., Path],
) -> None:
    services = """
    from stonks_plugins.sdk import PortfolioServiceV2

    class DepositService(PortfolioServiceV2):
        def get_portfolio(self, as_of=None):
            return []

        def get_portfolio_total(self, as_of=None):
            return None
    """
    plugin = make_plugin(
        "wrong-v2",
        {"services.py": services},
        capabilities={"services": ["deposit"]},
        services={"deposit": "kitpkg.services.DepositService"},
    )
    message = failed(PluginTestSuite(plugin, timeouts=FAST).run("interfaces"), "service.deposit")
    assert "does not implement DepositServiceInterface or DepositServiceV2" in message.message


def test_the_pytest_plugin_runs_the_v2_checks(tmp_path: Path, broken_v2: Path) -> None:
    good = copy_plugin("v2-fixture", tmp_path)
    proc = run_pytest(
        tmp_path, f"--stonks-plugin-kit={good}", f"--stonks-plugin-kit={broken_v2}", "-m", ""
    )
    out = proc.stdout
    assert proc.returncode == 1, out + proc.stderr
    assert "PASSED v2-fixture/plugin_manifest.json::interfaces" in out
    assert "FAILED broken-v2/plugin_manifest.json::interfaces" in out
    assert "expected DepositV2" in out
