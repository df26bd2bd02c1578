"""The SDK's public surface: ``stonks_plugins.sdk.__all__`` is exactly what docs/sdk.md lists,
every public name resolves, the export toolkit is its submodule, and the names that left the
surface still work for one release with a ``DeprecationWarning`` naming what to use instead."""

from __future__ import annotations

import ast
import re
import warnings

import pytest

import stonks_plugins
from stonks_plugins import exports as toolkit
from stonks_plugins import interface_adapters, sdk, versioning
from stonks_plugins.scaffold.generator import PLUGIN_TYPES, Names, render_files
from stonks_plugins.sdk._deprecated import DEPRECATED
from tests.conftest import BUNDLED, FIXTURES, ROOT

DOCS = ROOT / "docs" / "sdk.md"

# What plugin authors are promised. Adding a name to the SDK is a decision: add it here, to
# docs/sdk.md and to __all__ together.
PUBLIC = frozenset(
    {
        "SDK_VERSION",
        # plugin classes and what they work with
        "BasePlugin",
        "BaseBrokerPlugin",
        "BaseAggregatorPlugin",
        "BaseViewPlugin",
        "BaseMiddlewarePlugin",
        "BaseConfig",
        "Health",
        "HealthStatus",
        "InterfaceVersion",
        "Panel",
        "PanelRow",
        "ServiceCall",
        "ServiceType",
        "get_portfolio",
        "plugin_logger",
        # why a plugin cannot run
        "PluginNotReady",
        "PluginAuthFailed",
        "PluginConfigRejected",
        # services and records, API v1
        "BrokerServiceInterface",
        "PortfolioServiceInterface",
        "TransactionServiceInterface",
        "DepositServiceInterface",
        "DividendServiceInterface",
        "FeeServiceInterface",
        "AccountServiceInterface",
        "AuthenticationServiceInterface",
        "UpdateServiceInterface",
        "PortfolioEntry",
        "TotalPortfolio",
        "Transaction",
        "Deposit",
        "Dividend",
        "Fee",
        "AccountOverview",
        # services and records, API v2
        "BrokerServiceV2",
        "PortfolioServiceV2",
        "TransactionServiceV2",
        "DepositServiceV2",
        "DividendServiceV2",
        "FeeServiceV2",
        "AccountServiceV2",
        "Money",
        "PortfolioEntryV2",
        "TotalPortfolioV2",
        "TransactionV2",
        "DepositV2",
        "DividendV2",
        "FeeV2",
        "AccountOverviewV2",
        "in_range",
        # the export toolkit, a submodule with its own __all__
        "exports",
    }
)

# Each deprecated alias, the object it still stands for, and words its warning must say.
DEPRECATED_ALIASES = {
    "CompatibilityAdapter": (interface_adapters.CompatibilityAdapter, "internal"),
    "get_service_v2": (interface_adapters.get_service_v2, "internal"),
    "VersionedInterface": (versioning.VersionedInterface, "PortfolioServiceV2"),
    "CORE_API_VERSION": (stonks_plugins.CORE_API_VERSION, "use SDK_VERSION"),
}


def _documented_names() -> set[str]:
    text = DOCS.read_text("utf-8")
    table = text.split("<!-- public-names")[1].split("<!-- /public-names -->")[0]
    rows = [line.split("|")[2] for line in table.splitlines() if line.startswith("| ")][1:]
    # a cell's names are its backticked words outside "(...)" remarks, which may quote
    # other words (`not_ready`, `interface_version`)
    return {name for cell in rows for name in re.findall(r"`(\w+)`", re.sub(r"\(.*?\)", "", cell))}


def test_all_is_exactly_the_documented_surface() -> None:
    assert len(sdk.__all__) == len(set(sdk.__all__)), "a name is listed twice"
    assert set(sdk.__all__) == PUBLIC
    documented = _documented_names()
    assert documented == PUBLIC, (
        f"docs/sdk.md lists {sorted(documented - PUBLIC)} not in the SDK and misses "
        f"{sorted(PUBLIC - documented)}"
    )


def test_every_public_name_resolves_without_a_warning() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        values = {name: getattr(sdk, name) for name in sdk.__all__}
        namespace: dict[str, object] = {}
        exec("from stonks_plugins.sdk import *", namespace)
    assert all(v is not None for v in values.values())
    assert set(namespace) - {"__builtins__"} == PUBLIC  # a star import: exactly the surface
    assert values["exports"] is sdk.exports
    assert issubclass(values["BaseBrokerPlugin"], values["BasePlugin"])
    assert issubclass(values["PluginAuthFailed"], Exception)


def test_the_sdk_version_is_kept() -> None:
    assert sdk.SDK_VERSION == stonks_plugins.CORE_API_VERSION == "1.0.0"
    assert "`SDK_VERSION` is `1.0.0`" in DOCS.read_text("utf-8")


def test_the_export_toolkit_is_a_submodule_and_stays_importable_from_the_sdk() -> None:
    assert sdk.exports.__all__ == toolkit.__all__
    assert not set(toolkit.__all__) & set(sdk.__all__)  # the short list stays short
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for name in toolkit.__all__:
            assert getattr(sdk.exports, name) is getattr(toolkit, name), name
            assert getattr(sdk, name) is getattr(toolkit, name), name
        from stonks_plugins.sdk import ImportReport, read_csv
        from stonks_plugins.sdk.exports import ImportReport as Report
        from stonks_plugins.sdk.exports import read_csv as read
    assert (ImportReport, read_csv) == (Report, read)


def test_the_aliases_under_test_are_every_deprecated_name() -> None:
    assert set(DEPRECATED) == set(DEPRECATED_ALIASES)


@pytest.mark.parametrize("name", sorted(DEPRECATED_ALIASES))
def test_a_deprecated_alias_still_works_and_warns_what_to_use_instead(name: str) -> None:
    target, advice = DEPRECATED_ALIASES[name]
    with pytest.warns(DeprecationWarning, match=re.escape(advice)) as caught:
        value = getattr(sdk, name)
    assert value is target
    assert len(caught) == 1
    message = str(caught[0].message)
    assert f"stonks_plugins.sdk.{name} is deprecated" in message
    assert caught[0].filename == __file__  # the warning points at the line that used it

    with pytest.warns(DeprecationWarning, match=re.escape(name)) as caught:
        namespace: dict[str, object] = {}
        exec(compile(f"from stonks_plugins.sdk import {name}", __file__, "exec"), namespace)
    assert namespace[name] is target
    assert len(caught) == 1  # one import, one warning


@pytest.mark.parametrize("name", sorted(DEPRECATED_ALIASES))
def test_a_deprecated_alias_is_not_part_of_the_surface(name: str) -> None:
    assert name not in sdk.__all__
    assert name not in dir(sdk)
    assert name in DOCS.read_text("utf-8").split("## Deprecated names")[1]


def test_a_name_the_sdk_never_had_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match=r"stonks_plugins\.sdk' has no attribute 'Registry'"):
        sdk.Registry  # noqa: B018
    with pytest.raises(ImportError, match="Registry"):
        exec("from stonks_plugins.sdk import Registry", {})


def _sdk_imports(source: str, where: str) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(source, where)):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
            "stonks_plugins.sdk"
        ):
            names.update(alias.name for alias in node.names)
    return names


def test_bundled_plugins_fixtures_and_generated_plugins_use_no_deprecated_name() -> None:
    """What plugins ship with and what ``plugins new`` writes keep working, without a warning:
    every name they import from the SDK is public (or the toolkit's)."""
    sources = {
        str(p.relative_to(ROOT)): p.read_text("utf-8")
        for root in (BUNDLED, FIXTURES)
        for p in sorted(root.rglob("*.py"))
    }
    for plugin_type in PLUGIN_TYPES:
        for path, content in render_files(Names.of(f"my-{plugin_type}"), plugin_type).items():
            if path.endswith(".py"):
                sources[f"plugins new --type {plugin_type}: {path}"] = content.decode()
    used: dict[str, set[str]] = {}
    for where, source in sources.items():
        for name in _sdk_imports(source, where):
            used.setdefault(name, set()).add(where)
    assert used  # the plugins do import the SDK
    allowed = set(sdk.__all__) | set(sdk.exports.__all__)
    assert {n: sorted(w) for n, w in used.items() if n not in allowed} == {}
