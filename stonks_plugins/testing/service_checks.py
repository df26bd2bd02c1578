"""The kit's check of one service: call every method of the interface it implements and
check what comes back, field by field (:mod:`.conformance`).

A v1 service is checked against its v1 interface. A v2 service is checked against its v2
interface — plus, for the list methods, that ``start``/``end`` select the records dated in
the range — and then once more as a v1 consumer (the legacy pages, the aggregators) sees it
through the compatibility adapter, so its author knows those pages will work too. Each
result line names the interface and API version it was checked against.
"""

from __future__ import annotations

from typing import Any

from stonks_overwatch.core.exceptions import BrokerUnavailableError
from stonks_overwatch.core.service_types import ServiceType

from ..errors import PluginError
from ..interface_adapters import serve_v1
from .conformance import hint_name, interface_methods, returns_nothing, type_problem
from .results import TestResult
from .versions import ServiceContract, contract_for, range_problem, takes_date_range

FAULTS = (PluginError, BrokerUnavailableError)
"""What a call into a plugin raises when the plugin fails (in-process: ``SandboxError``,
which is both; process-isolated: the process host's errors)."""


def fault_message(err: Exception) -> str:
    return str(getattr(err, "message", None) or err)


def check_service(
    result: TestResult, stype: ServiceType, cls: Any, service: Any, config_text: str
) -> None:
    """Record the checks of one built ``service`` (of class ``cls``) in ``result``;
    ``config_text`` is the config it was built with, for the failure messages."""
    contract = contract_for(stype, cls)
    prefix = f"service.{stype.value}"
    if not check_methods(result, prefix, service, contract, config_text):
        return  # the v1 view would only repeat the v2 result's problem
    if contract.is_v2:
        legacy = ServiceContract(stype, contract.v1_interface)
        check_methods(
            result, f"{prefix}.v1", serve_v1(service, stype), legacy, config_text, via_adapter=True
        )


def check_methods(
    result: TestResult,
    prefix: str,
    service: Any,
    contract: ServiceContract,
    config_text: str,
    via_adapter: bool = False,
) -> bool:
    """Call every method of ``contract.interface`` on ``service`` and check what it returns;
    whether every result had the declared type."""
    interface = contract.interface
    seen_by = (
        f"as a v1 consumer sees it through the compatibility adapter: {contract.label}"
        if via_adapter
        else f"checked against {contract.label}"
    )
    ok = True
    for method, hint in interface_methods(interface):
        name = f"{prefix}.{method}"
        if returns_nothing(hint):
            result.ok(name, f"not called: {method}() acts (returns None) and may change data")
            continue
        try:
            value = getattr(service, method)()
        except FAULTS as err:
            ok = result.fail(
                name,
                f"{method}() raised {fault_message(err)}; it must work with the kit's config "
                f"{config_text}: ship sample data your defaults point at, or pass config=... "
                "to PluginTestSuite",
            )
            continue
        except Exception as exc:  # only the adapter's conversion runs outside the sandbox
            ok = result.fail(
                name,
                f"{method}() {seen_by} raised {type(exc).__name__}: {exc}; return the v2 "
                "records of stonks_plugins.sdk so the adapter can convert them",
            )
            continue
        problem = type_problem(value, hint, f"{method}()")
        if problem:
            ok = result.fail(
                name,
                f"{problem} ({seen_by}); {interface.__name__}.{method} returns "
                f"{hint_name(hint)} (build them with the data classes of stonks_plugins.sdk)",
            )
        elif isinstance(value, list) and not value:
            result.ok(
                name,
                f"returned an empty list ({seen_by}), so item types were not checked; ship "
                "sample data so the kit can check them",
            )
        else:
            what = (
                f"{len(value)} items of {hint_name(hint)}"
                if isinstance(value, list)
                else f"one {hint_name(hint)}"
            )
            result.ok(name, f"returned {what} ({seen_by})")
            if isinstance(value, list) and takes_date_range(interface, method):
                # Not part of ``ok``: v1 consumers never pass a range.
                check_range(result, name, service, method, value)
    return ok


def check_range(result: TestResult, name: str, service: Any, method: str, items: list[Any]) -> None:
    """A v2 list method's ``start``/``end``: only the items dated in the range."""
    try:
        problem = range_problem(getattr(service, method), method, items)
    except FAULTS as err:
        problem = f"{method}(start=..., end=...) raised {fault_message(err)}"
    if problem:
        result.fail(f"{name}.range", problem)
    else:
        result.ok(f"{name}.range", "start/end select the items dated in the range")
