"""Middleware plugins around broker service calls.

One wrapper is installed into the core's ``BrokerFactory``: each service it builds becomes a
proxy whose public methods run the chain of active middleware plugins (lowest ``order``
first) before the service itself. The chain is looked up on every call, so enabling or
disabling a middleware plugin takes effect without rebuilding any service. A middleware that
fails is skipped (and reported by its boundary); the call still reaches the service.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from stonks_overwatch.core.service_types import ServiceType

from ..base import BaseMiddlewarePlugin, ServiceCall
from ..legacy.bridge import load_serving
from ..registry import LoadedPlugin
from ..sandbox import SandboxError

logger = logging.getLogger(__name__)


def active_chain() -> list[LoadedPlugin]:
    chain = [
        loaded
        for _, loaded in load_serving("middleware")
        if isinstance(loaded.instance, BaseMiddlewarePlugin)
    ]
    return sorted(chain, key=lambda lp: (getattr(lp.instance, "order", 100), lp.name))


def run_chain(
    call: ServiceCall, target: Callable[[], Any], chain: list[LoadedPlugin] | None = None
) -> Any:
    chain = active_chain() if chain is None else chain
    if not chain:
        return target()

    def step(i: int) -> Any:
        if i == len(chain):
            return target()
        loaded = chain[i]
        done: list[Any] = []
        failed: list[BaseException] = []

        def proceed() -> Any:
            if failed:
                raise failed[0]
            if not done:
                try:
                    done.append(step(i + 1))
                except BaseException as exc:
                    failed.append(exc)
                    raise
            return done[0]

        instance = loaded.instance
        assert loaded.sandbox is not None and isinstance(instance, BaseMiddlewarePlugin)
        try:
            return loaded.sandbox.run("intercept", instance.intercept, call, proceed, timeout=None)
        except SandboxError as err:
            if failed:  # the rest of the chain (or the service) failed: not this middleware
                raise failed[0] from None
            logger.warning("skipping middleware %s: %s", loaded.name, err)
            return proceed()

    return step(0)


class InterceptedService:
    """Stands for a broker service; every public method goes through the chain."""

    def __init__(self, broker: str, service_type: ServiceType, service: Any) -> None:
        self._broker = broker
        self._type = service_type
        self._service = service

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._service, name)
        if name.startswith("_") or not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            sc = ServiceCall(self._broker, self._type, name, args, kwargs)
            return run_chain(sc, lambda: attr(*args, **kwargs))

        return call


def wrap_service(broker: str, service_type: ServiceType, service: Any) -> Any:
    return InterceptedService(broker, service_type, service)
