"""Middleware plugins around broker service calls.

The runtime's service wrapper (:mod:`stonks_plugins.runtime.calls`) runs each broker call
through the chain of active middleware plugins (lowest ``order`` first) before the service
itself. The chain is looked up per call, so enabling or disabling a middleware plugin takes
effect without rebuilding any service. Each ``intercept`` runs on the middleware's own lane
within the caller's deadline: a middleware that fails or hangs is skipped (and reported by
its boundary) and the call still reaches the service: the chain waits for a middleware at
most half of what is left of the budget, so a hanging one never costs the broker's answer.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from ..base import BaseMiddlewarePlugin, ServiceCall
from ..registry import LoadedPlugin
from ..runtime import budget, lanes, loads
from ..runtime.serving import serving
from ..sandbox import SandboxError

logger = logging.getLogger(__name__)


def served_chain() -> list[str]:
    """The middleware plugins served here, their loads begun (call from the thread that
    may read the database: the request's)."""
    names = serving.serving("middleware")
    for name in names:
        loads.begin(name)
    return names


def _loaded_chain(names: list[str]) -> list[LoadedPlugin]:
    chain = []
    for name in names:
        try:
            loaded = loads.acquire(name)
        except SandboxError as err:
            logger.warning("skipping middleware %s: %s", name, err)
            continue
        if isinstance(loaded.instance, BaseMiddlewarePlugin):
            chain.append(loaded)
    return sorted(chain, key=lambda lp: (getattr(lp.instance, "order", 100), lp.name))


def active_chain() -> list[LoadedPlugin]:
    return _loaded_chain(served_chain())


def run_chain(call: ServiceCall, target: Callable[[], Any], names: list[str] | None = None) -> Any:
    chain = _loaded_chain(served_chain() if names is None else names)
    if not chain:
        return target()

    def step(i: int) -> Any:
        if i == len(chain):
            return target()
        loaded = chain[i]
        done: list[Any] = []
        failed: list[BaseException] = []
        started: list[bool] = []

        def proceed() -> Any:
            if failed:
                raise failed[0]
            if not done:
                started.append(True)
                try:
                    done.append(step(i + 1))
                except BaseException as exc:
                    failed.append(exc)
                    raise
            return done[0]

        instance = loaded.instance
        assert loaded.sandbox is not None and isinstance(instance, BaseMiddlewarePlugin)
        box = loaded.sandbox
        scope = budget.current()

        def intercept() -> Any:
            with budget.inherit(scope):
                return box.run("intercept", instance.intercept, call, proceed, timeout=None)

        try:
            running = lanes.lane(loaded.name).start("intercept", intercept)
            # Half of what is left: if the middleware hangs, the rest of the chain and the
            # service still have time to answer without it.
            now = time.monotonic()
            return running.wait(now + (budget.deadline() - now) / 2, budget.limit())
        except SandboxError as err:
            if failed:  # the rest of the chain (or the service) failed: not this middleware
                raise failed[0] from None
            logger.warning("skipping middleware %s: %s", loaded.name, err)
            if done:
                return done[0]
            if started:  # the rest of the chain is running in the middleware's thread
                raise
            return proceed()

    return step(0)
