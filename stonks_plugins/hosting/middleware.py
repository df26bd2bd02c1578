"""Middleware plugins around broker service calls.

The runtime's service wrapper (:mod:`stonks_plugins.runtime.calls`) runs each broker call
through the chain of active middleware plugins (lowest ``order`` first) before the service
itself. The chain - which plugins, loaded, in order, each ``intercept`` wrapped by its
boundary's fast path - is resolved once per change and kept: a call only checks that the
middleware plugins served and their loaded code are still the ones it was built from, so
enabling, disabling or reloading a middleware plugin takes effect at the next call without
rebuilding any service. Each ``intercept`` runs on the middleware's own lane
within the caller's deadline: a middleware that fails or hangs is skipped (and reported by
its boundary) and the call still reaches the service: the chain waits for a middleware at
most half of what is left of the budget, so a hanging one never costs the broker's answer.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..base import BaseMiddlewarePlugin, ServiceCall
from ..errors import ReasonCode
from ..registry import LoadedPlugin, plugin_registry
from ..runtime import budget, lanes, loads
from ..runtime.serving import serving
from ..sandbox import SandboxError

logger = logging.getLogger(__name__)
MIDDLEWARE_SLOTS = 256  # every broker call of every request passes each middleware


def served_chain() -> list[str]:
    """The middleware plugins served here, their loads begun (call from the thread that
    may read the database: the request's)."""
    names = serving.serving("middleware")
    for name in names:
        loads.begin(name)
    return names


@dataclass(frozen=True)
class Link:
    """One middleware of the chain, its ``intercept`` through its boundary's fast path."""

    loaded: LoadedPlugin
    intercept: Callable[[ServiceCall, Callable[[], Any]], Any]


@dataclass(frozen=True)
class _Resolved:
    names: list[str]
    loaded: list[LoadedPlugin]
    """What each served name had loaded when the chain was built (compared by identity)."""
    chain: tuple[Link, ...]


_resolved = _Resolved([], [], ())


def _loaded_chain(names: list[str]) -> tuple[Link, ...]:
    """The chain for the middleware plugins ``names``; built again only when they, or the
    loaded code of one of them (a reload, a config change that re-initialised it), changed."""
    last = _resolved
    if names == last.names:
        peek = plugin_registry.peek
        if all(peek(n) is lp for n, lp in zip(names, last.loaded, strict=True)):
            return last.chain
    return _resolve(names)


def _resolve(names: list[str]) -> tuple[Link, ...]:
    global _resolved
    found: list[LoadedPlugin] = []
    links = []
    for name in names:
        try:
            loaded = loads.acquire(name)
        except SandboxError as err:
            logger.warning("skipping middleware %s: %s", name, err)
            continue
        found.append(loaded)
        instance = loaded.instance
        if isinstance(instance, BaseMiddlewarePlugin) and loaded.sandbox is not None:
            intercept = loaded.sandbox.wrap_callable(instance.intercept, "intercept")
            links.append(Link(loaded, intercept))
    links.sort(key=lambda link: (getattr(link.loaded.instance, "order", 100), link.loaded.name))
    chain = tuple(links)
    if len(found) == len(names):  # one still loading (or failing) is asked for again
        _resolved = _Resolved(list(names), found, chain)
    return chain


def resolved_chain() -> tuple[Link, ...]:
    """The middleware chain served now, each link's ``intercept`` through its boundary's
    fast path (resolved again only after a change)."""
    return _loaded_chain(served_chain())


def run_chain(call: ServiceCall, target: Callable[[], Any], names: list[str] | None = None) -> Any:
    chain = _loaded_chain(served_chain() if names is None else names)
    # Each link wraps the rest, built from the service outwards. (A closure that calls
    # itself for the next link is a cycle: on every broker call, garbage for the collector.)
    rest = target
    for link in reversed(chain):
        rest = functools.partial(_intercepted, link, call, rest)
    return rest()


def _intercepted(link: Link, call: ServiceCall, rest: Callable[[], Any]) -> Any:
    """One middleware around ``rest`` (the rest of the chain and the service).

    The middleware's ``intercept`` runs on its own lane; when it calls ``proceed()``, the
    rest runs back here, in the caller's thread - a broker's code never runs on a
    middleware's thread, so a broker that hangs holds no middleware slot and the reaper
    blames the right plugin. The middleware gets half of what is left of the budget, and
    the time the rest takes besides: that time is not the middleware's, neither against its
    allowance nor in how slow its lane is judged (a middleware around a slow broker is not
    slow, and is not skipped on the next pages for it)."""
    loaded = link.loaded
    scope = budget.current()
    wake = threading.Event()
    asked = threading.Event()
    answered = threading.Event()
    outcome: dict[str, Any] = {}
    rest_took = [0.0]  # seconds the rest of the chain ran, written before ``answered``
    returned = threading.Event()  # the intercept is over (set before ``wake``)

    def proceed() -> Any:  # on the middleware's thread
        asked.set()
        wake.set()
        if not answered.wait(max(0.0, budget.deadline() - time.monotonic())):
            raise _not_its_fault(call, "the rest of the chain did not answer in time")
        if "error" in outcome:
            # Another plugin's failure: handed over as a SandboxError, which the
            # middleware's boundary passes on without counting it against the middleware.
            error = outcome["error"]
            if isinstance(error, SandboxError):
                raise error
            raise _not_its_fault(call, f"{type(error).__name__}: {error}")
        return outcome["value"]

    def intercept() -> Any:
        try:
            with budget.inherit(scope):
                return link.intercept(call, proceed)
        finally:
            returned.set()
            wake.set()

    def run_rest() -> None:
        began = time.monotonic()
        try:
            outcome["value"] = rest()
        except BaseException as exc:  # handed to the middleware, and to our caller
            outcome["error"] = exc
        rest_took[0] += time.monotonic() - began
        answered.set()

    try:
        running = lanes.lane(loaded.name, MIDDLEWARE_SLOTS).start(
            "intercept", intercept, excused=lambda: rest_took[0]
        )
    except SandboxError as err:
        logger.warning("skipping middleware %s: %s", loaded.name, err)
        return rest()
    now = time.monotonic()
    deadline = budget.deadline()
    own_share = now + (deadline - now) / 2
    until = own_share
    while True:
        wake.clear()
        if asked.is_set() and not answered.is_set():
            run_rest()
            until = min(deadline, own_share + rest_took[0])
            continue
        if returned.is_set() or time.monotonic() >= until:
            break
        wake.wait(max(0.0, until - time.monotonic()))
    if returned.is_set():
        # Its answer is made; its thread marks the call done a moment later. Woken in
        # between, this thread must not take the call for unfinished: it would sleep until
        # the middleware's share of the budget ran out, or skip a middleware that answered.
        running.pending.done.wait(max(0.0, deadline - time.monotonic()))
    try:
        return running.wait(until, budget.limit())
    except SandboxError as err:
        if "error" in outcome:  # the rest of the chain failed, not this middleware
            raise outcome["error"] from None
        logger.warning("skipping middleware %s: %s", loaded.name, err)
        if answered.is_set():
            return outcome["value"]
        return rest()


def _not_its_fault(call: ServiceCall, message: str) -> SandboxError:
    return SandboxError(call.broker, ReasonCode.HEALTH_FAILED, call.method, message)
