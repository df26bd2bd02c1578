"""The kit's ``interfaces`` test: the manifest's references resolve to classes of the right
kind, and what the loaded plugin serves answers with what its interfaces declare.

Each dotted path of the manifest is resolved on its own before loading, so every broken one
is reported at once (loading stops at the first) — except for a plugin the host would run in
a child process, whose code must not run in the kit's process either.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from typing import Any

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
from ..discovery.candidate import Candidate
from ..interface_adapters import accepted_interfaces
from ..isolated_plugins import runs_isolated
from ..registry import LoadedPlugin
from ..sandbox import PluginSandbox, SandboxError
from .conformance import type_problem
from .results import TestResult
from .service_checks import check_service
from .support import (
    FAILED,
    PluginUnderTest,
    check_declared_interfaces,
    kind_of,
    resolve,
    timed,
)
from .versions import contract_for

TYPE_BASES: dict[str, type[BasePlugin]] = {
    "broker": BaseBrokerPlugin,
    "aggregator": BaseAggregatorPlugin,
    "view": BaseViewPlugin,
    "middleware": BaseMiddlewarePlugin,
}
KNOWN_INTERFACES = frozenset(n for n in sdk.__all__ if n.endswith("Interface"))

SAMPLE_PORTFOLIO = (
    PortfolioEntry("Kit Sample Equity", "KITE", 10.0, 12.5, 125.0, "EUR", broker="kit-sample"),
    PortfolioEntry(
        "Kit Sample Fund", "KITF", 4.0, 50.0, 200.0, "USD", product_type="etf", broker="kit-sample"
    ),
)
"""What aggregator and middleware hooks are called with."""


def check_interfaces(kit: PluginUnderTest) -> TestResult:
    result = TestResult("interfaces", kit.safe_name())
    with timed(result):
        cand = kit.usable(result, report_ok=True)
        if cand is None:
            return result
        check_declared_interfaces(result, cand)
        _check_references(result, cand, kit.timeouts)
        if not result.passed:
            return result  # loading would only repeat the problems above
        with kit.loaded(result, cand) as loaded:
            if loaded is None:
                return result
            _check_loaded_services(result, cand, loaded)
            config = kit.build_config(result, loaded)
            if config is not FAILED:
                _check_service_methods(result, kit, loaded, config)
            _check_type_hook(result, loaded)
    return result


def isolation_reason(cand: Candidate) -> str | None:
    """Why the host runs the plugin in a child process (the runtime's own rule,
    :func:`~stonks_plugins.isolated_plugins.runs_isolated`), or None when it runs in-process."""
    if not runs_isolated(cand):
        return None
    if cand.manifest is not None and cand.manifest.isolation == "process":
        return "isolation: process"
    return "PLUGINS_ISOLATE_UNTRUSTED: not signed by a trusted key"


def _check_references(
    result: TestResult, cand: Candidate, timeouts: dict[str, float | None]
) -> None:
    manifest = cand.manifest
    assert manifest is not None
    reason = isolation_reason(cand)
    if reason:
        # Its code must not run in this process: loading it (in its own) checks them.
        result.ok("references", f"resolved in the plugin's own process ({reason})")
        return
    box = PluginSandbox(cand.name, timeouts=timeouts)
    try:
        main = manifest.entry_points.main
        expected = TYPE_BASES.get(manifest.type, BasePlugin)
        if main:
            _check_main(result, box, cand, main, expected)
        elif manifest.type != "broker":
            result.fail(
                "entry_points.main",
                f"a {manifest.type} plugin needs entry_points.main naming its "
                f"{expected.__name__} subclass (e.g. 'mypkg.plugin:MyPlugin')",
            )
        for stype, ref in manifest.services.items():
            _check_service_ref(result, box, cand, stype, ref)
    finally:
        box.close(join_timeout=0.5)
        loader.release(cand)


def _check_main(
    result: TestResult,
    box: PluginSandbox,
    cand: Candidate,
    ref: str,
    expected: type[BasePlugin],
) -> None:
    assert cand.manifest is not None
    cls = resolve(result, "entry_points.main", box, cand, ref)
    if cls is FAILED:
        return
    if not (isinstance(cls, type) and issubclass(cls, BasePlugin)):
        result.fail(
            "entry_points.main",
            f"'{ref}' is {kind_of(cls)}, not a subclass of stonks_plugins.sdk.BasePlugin; "
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
    result: TestResult, box: PluginSandbox, cand: Candidate, stype: ServiceType, ref: str
) -> None:
    name = f"service.{stype.value}"
    cls = resolve(result, name, box, cand, ref)
    if cls is FAILED:
        return
    problem = _service_class_problem(stype, cls)
    if problem:
        result.fail(name, f"services.{stype.value} '{ref}' {problem}")
    else:
        result.ok(name, _implements(stype, cls))


def _check_loaded_services(result: TestResult, cand: Candidate, loaded: LoadedPlugin) -> None:
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


def _check_service_methods(
    result: TestResult, kit: PluginUnderTest, loaded: LoadedPlugin, config: Any
) -> None:
    """Each service against the interface version it implements (see :mod:`.service_checks`)."""
    config_text = repr(kit.config_data(loaded.candidate))
    for stype, cls in loaded.services.items():
        service = kit.create_service(result, f"service.{stype.value}.create", loaded, stype, config)
        if service is not FAILED:
            check_service(result, stype, cls, service, config_text)


def _check_type_hook(result: TestResult, loaded: LoadedPlugin) -> None:
    """The hook the host calls on an aggregator, view or middleware plugin, called once with
    sample data: it must answer with what its base class declares."""
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


def _service_class_problem(stype: ServiceType, cls: Any) -> str | None:
    accepted = accepted_interfaces(stype)
    if not (isinstance(cls, type) and issubclass(cls, accepted)):
        names = " or ".join(f"stonks_plugins.sdk.{i.__name__}" for i in accepted)
        return (
            f"is {kind_of(cls)}, which does not implement "
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
