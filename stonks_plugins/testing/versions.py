"""Which API version the kit checks a service against, and the checks only v2 has.

A service class implementing a v2 interface (``DepositServiceV2``...) is checked against
that interface — its records, ``Money`` and ``Decimal``, field by field — and then a second
time as the legacy pages see it: through the compatibility adapter, against the v1
interface, so its author knows the v1 pages will work too. A v1 class is checked against v1
only. The interfaces stay the contract (:mod:`stonks_plugins.versioning`); nothing here keeps
a table of its own beyond the adapters' one.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from stonks_overwatch.core.service_types import ServiceType

from ..interface_adapters import implemented_interface
from ..interfaces_v2 import in_range
from ..registry import SERVICE_INTERFACES
from ..versioning import InterfaceVersion, interface_version_of


@dataclass(frozen=True)
class ServiceContract:
    """The interface (and its version) one service is checked against."""

    service_type: ServiceType
    interface: type

    @property
    def version(self) -> InterfaceVersion:
        return interface_version_of(self.interface)

    @property
    def is_v2(self) -> bool:
        return self.version.major == 2

    @property
    def v1_interface(self) -> type:
        """What a v1 consumer (the legacy pages, the aggregators) calls it through."""
        return SERVICE_INTERFACES[self.service_type]

    @property
    def label(self) -> str:
        """``PortfolioServiceV2, API v2``: named in the kit's result lines."""
        return f"{self.interface.__name__}, API v{self.version.major}"


def contract_for(stype: ServiceType, cls: Any) -> ServiceContract:
    """The interface the service class ``cls`` implements (for a process-isolated plugin,
    the class standing for it in the host, which implements the same)."""
    return ServiceContract(stype, implemented_interface(stype, cls))


def takes_date_range(interface: type, method: str) -> bool:
    """Whether the interface's ``method`` takes ``start``/``end`` (the v2 list methods)."""
    try:
        params = inspect.signature(getattr(interface, method)).parameters
    except (AttributeError, TypeError, ValueError):
        return False
    return "start" in params and "end" in params


def range_problem(call: Callable[..., Any], method: str, items: list[Any]) -> str | None:
    """None when ``call(start=, end=)`` returns exactly the items of ``items`` (the
    unbounded answer) dated within the range, for a closed and both half-open ranges around
    a middle date; else what went wrong. Raises what ``call`` raises."""
    days = sorted({d for i in items if isinstance(d := getattr(i, "date", None), date)})
    if not days:
        return None
    day = days[len(days) // 2]
    for start, end in ((day, day), (day, None), (None, day)):
        got = call(start=start, end=end)
        where = f"{method}(start={start}, end={end})"
        if not isinstance(got, list):
            return f"{where} returned {type(got).__name__}, not a list"
        outside = [g.date for g in got if not in_range(getattr(g, "date", day), start, end)]
        want = sum(1 for i in items if in_range(i.date, start, end))
        if outside or len(got) != want:
            extra = f", {len(outside)} of them dated outside it ({outside[0]})" if outside else ""
            return (
                f"{where} returned {len(got)} items{extra}; expected the {want} of "
                f"{method}() dated in that range (start and end are inclusive, None is open)"
            )
    return None
