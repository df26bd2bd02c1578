"""Broker calls where no request waits: straight through, at the cost of a direct call.

A user's request owes its answer within the page budget, so :mod:`.calls` runs each of its
calls on the broker's lane and waits at most until the deadline: a thread hop, tens of
microseconds. Outside a request - a Celery task, the CLI, a script - nobody is owed an
answer by a deadline, and a hop per call would make a loop over a thousand symbols pay it a
thousand times. There the call runs in the caller's thread: middleware chain (each
``intercept`` through its boundary's fast path), then the plugin's method through its
boundary, as if called directly. What bounds such a caller is its own limit: Celery's
``task_time_limit`` stops a task that hangs (``CELERY_TASK_TIME_LIMIT``), and the CLI has
its operator.

What a call needs - the loaded service, the middleware chain, whether the broker is known to
be slow - is resolved once and kept in a :class:`Resolved` on the front, valid while nothing
this process serves has changed (:mod:`..generation`) and for at most
``PLUGINS_REFRESH_INTERVAL`` seconds, after which the process checks for changes made
elsewhere (the poll behind the push) before trusting it again. A broker that is not loaded
yet, failed to load, or is slow takes the bounded path, which loads it, waits for it at
most ``PLUGINS_CALL_TIMEOUT`` or answers from its last good result.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

from .. import generation
from ..base import ServiceCall
from ..conf import plugin_settings
from ..hosting.middleware import Link, resolved_chain
from ..instance_names import relabel
from ..legacy.bridge import DeferredService
from ..registry import plugin_registry
from ..versioning import InterfaceVersion
from . import lanes
from .serving import serving

if TYPE_CHECKING:
    from stonks_overwatch.core.service_types import ServiceType

    from .calls import BoundedService

_monotonic = time.monotonic


class Resolved:
    """What a front's calls need, resolved once per change."""

    __slots__ = ("chain", "generation", "instance", "methods", "target", "until")

    def __init__(
        self, seen: int, until: float, target: Any, chain: tuple[Link, ...], instance: bool
    ) -> None:
        self.generation = seen
        self.until = until
        self.target = target
        self.chain = chain
        self.instance = instance
        self.methods: dict[str, Callable[..., Any]] = {}


def call(front: BoundedService, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``front.name(*args, **kwargs)`` for a caller outside any request."""
    fast = front._resolved
    if fast is None or fast.generation != generation.current or _monotonic() >= fast.until:
        fast = front._resolved = resolve(front)
        if fast is None:
            return front._call(name, args, kwargs)
    method = fast.methods.get(name)
    if method is None:
        method = fast.methods[name] = getattr(fast.target, name)
    if fast.chain:
        value = _through(fast.chain, front, name, args, kwargs, method)
    else:
        value = method(*args, **kwargs)
    return relabel(front._broker, value) if fast.instance else value


def resolve(front: BoundedService) -> Resolved | None:
    """The front's service and chain as they stand now; None when the call must take the
    bounded path (the broker is not loaded, or is known to be slow or failing)."""
    serving.refresh()  # a process without requests still notices changes made elsewhere
    seen = generation.current  # read before resolving: a change meanwhile is seen next call
    service = front._service
    if isinstance(service, DeferredService):
        if plugin_registry.peek(service.plugin) is None:
            return None
        service = service.resolve()
    if lanes.lane(front._broker).slow():
        return None
    chain = resolved_chain()
    until = _monotonic() + float(plugin_settings.REFRESH_INTERVAL)
    return Resolved(seen, until, front._target(service), chain, ":" in front._broker)


def _through(
    chain: tuple[Link, ...],
    front: BoundedService,
    name: str,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    method: Callable[..., Any],
) -> Any:
    call = service_call(front._broker, front._type, name, args, kwargs, front._version)
    rest: Callable[[], Any] = partial(method, *args, **kwargs) if args or kwargs else method
    if len(chain) > 1:
        for link in reversed(chain[1:]):
            rest = partial(link.intercept, call, rest)
    return chain[0].intercept(call, rest)


_new = object.__new__
_set = object.__setattr__


def service_call(
    broker: str,
    service_type: ServiceType,
    method: str,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    version: InterfaceVersion,
) -> ServiceCall:
    """``ServiceCall(...)`` at a third of the cost: the frozen dataclass's ``__init__`` sets
    each field through ``object.__setattr__``, most of a trivial middleware's overhead."""
    call: ServiceCall = _new(ServiceCall)
    fields = {
        "broker": broker,
        "service_type": service_type,
        "method": method,
        "args": args,
        "kwargs": kwargs,
        "interface_version": version,
    }
    _set(call, "__dict__", fields)
    return call
