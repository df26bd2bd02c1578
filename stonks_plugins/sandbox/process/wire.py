"""What crosses between the host and a plugin's child: the requests, the replies, the spec the
child starts from, and how the host reads a reply without importing the plugin.

Both directions are ``pickle`` payloads framed by ``Connection.send_bytes``/``recv_bytes``
(cheaper than ``send``/``recv``, which go through ``ForkingPickler``). One request at a time per
child. Requests are tuples whose first item is an ``OP_*`` constant; replies are

- ``("ok", result)``;
- ``("err", code, exception type name, message, traceback text)``: the plugin's code raised
  and the child carries on. Exceptions travel as text: their classes live in the plugin's
  modules, which the host must not import;
- ``("fatal", cause, message, traceback text)``: the child is about to exit (it ran out of
  memory; its state cannot be trusted);
- at start-up, ``("ready", pid, interfaces)`` or an ``"err"`` reply followed by the child's
  exit. ``interfaces`` maps each service type to the version of the interface its class
  implements (``{"portfolio": "2.0.0"}``): only the child can look at the class.

Any reply may ride inside ``("logs", records, reply)`` (:mod:`.log_relay`).
"""

from __future__ import annotations

import functools
import io
import pickle
from dataclasses import dataclass, is_dataclass
from typing import Any

from ...discovery.candidate import Candidate

OP_CALL = 0
OP_HEALTH = 1
OP_METRICS = 2
OP_PING = 3
OP_SHUTDOWN = 4
OP_REPORT = 5
"""Read a service's ``import_report``: ``(OP_REPORT, service type, config)``; the reply is
the report as plain data (the plugin's report object stays in the child), or None."""

PROTOCOL = pickle.HIGHEST_PROTOCOL

EXIT_OUT_OF_MEMORY = 97
"""Exit status of a child that hit its memory limit and reported it before exiting."""


@dataclass(frozen=True)
class Limits:
    """Resource limits of one plugin process. ``0`` means no limit."""

    memory_mb: int = 512
    cpu_seconds: int = 60


@dataclass(frozen=True)
class ChildSpec:
    """What the child needs to rebuild the plugin: the very ``Candidate`` the host validated.

    Sent rather than rescanned from the folder, so the child loads exactly what the host
    checked (the same manifest bytes, the same compatibility verdict), and entry-point
    plugins, which have no folder to rescan, need no second code path.
    """

    candidate: Candidate
    crash_log: str | None = None
    deny: tuple[str, ...] = ()
    """Paths the plugin may never open, whatever it declares: the host's database files."""
    log_level: int = 20
    """The least level of the plugin's log records that is kept (the host's
    ``PLUGINS_LOG_LEVEL``); they reach the host on the replies (:mod:`.log_relay`)."""
    environment: dict[str, str] | None = None
    """The child's whole environment (:func:`.spawn.plugin_environment`): a child forked from
    the fork server starts with the server's, and sets this before any plugin code runs.
    None: keep what it started with."""
    idle: bool = False
    """Start under ``SCHED_IDLE`` (:func:`.spawn.is_crashing`): a forked child has the fork
    server's priority, not its starter's, and lowers its own."""


# -- reading a reply: data types only -----------------------------------------------------------

_PROJECT_MODULES = frozenset(
    {"stonks_overwatch.core.data", "stonks_overwatch.core.service_types", "stonks_plugins.health"}
)
"""Modules whose public *classes* may cross: the SDK's data classes, ``ServiceType``,
``HealthStatus``/``Health``."""
_SAFE_NAMES: dict[str, frozenset[str]] = {
    "builtins": frozenset(
        {
            *("bool", "bytearray", "bytes", "complex", "dict", "float", "frozenset", "int"),
            *("list", "range", "set", "slice", "str", "tuple"),
        }
    ),
    "collections": frozenset({"OrderedDict", "defaultdict", "deque"}),
    "datetime": frozenset({"date", "datetime", "time", "timedelta", "timezone"}),
    "decimal": frozenset({"Decimal"}),
    "fractions": frozenset({"Fraction"}),
    "uuid": frozenset({"UUID", "SafeUUID"}),
}
"""Everything else, name by name: a module-wide allowance would let a dotted name such as
``datetime.sys.modules`` reach anything. (``ZoneInfo`` is left out: it pickles through
``builtins.getattr``, which would open every attribute of every allowed class.)"""


@functools.cache
def _record_modules() -> frozenset[str]:
    """Modules of the v2 interfaces, whose record dataclasses (``Money``,
    ``PortfolioEntryV2``...) may cross. Derived from ``SERVICE_INTERFACES_V2`` so a v2
    interface added there has its records accepted with no change here. Computed on first
    use: the child side imports this module and never unpickles a result."""
    from ...interface_adapters import SERVICE_INTERFACES_V2

    return frozenset(i.__module__ for i in SERVICE_INTERFACES_V2.values())


class _ResultUnpickler(pickle.Unpickler):
    """Rebuild only data types the host already has: never import a plugin's module (the very
    thing the isolation is for). ``Decimal`` is rebuilt from its text, so v2 money keeps its
    exactness across the pipe."""

    def find_class(self, module: str, name: str) -> Any:
        if name in _SAFE_NAMES.get(module, ()):
            return super().find_class(module, name)
        records = module in _record_modules()
        if (records or module in _PROJECT_MODULES) and "." not in name and not name.startswith("_"):
            found = super().find_class(module, name)
            # From the v2 module, records only: it also holds the service interfaces and the
            # names it imports, none of which a result has any business instantiating.
            if isinstance(found, type) and (
                not records or (is_dataclass(found) and found.__module__ == module)
            ):
                return found
        raise pickle.UnpicklingError(
            f"{module}.{name} is not a type the host accepts from a plugin process"
        )


def load_reply(data: bytes) -> Any:
    """Unpickle what a plugin's child sent, refusing any class not allowed above."""
    return _ResultUnpickler(io.BytesIO(data)).load()
