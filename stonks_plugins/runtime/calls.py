"""Every broker service the core's ``BrokerFactory`` hands out goes through here.

Outside a request nobody waits on a deadline and the call runs straight through, in the
caller's thread (:mod:`.inline`). In a request, a call on a service (``get_portfolio()``...)
runs - middleware chain, load wait, the plugin's method - as one job on the broker's lane
(:mod:`.lanes`), and the caller waits for it at most until its deadline (:mod:`.budget`).
What then happens:

- the job answers in time: that answer, which is also kept as the broker's last good one;
- it fails or misses the deadline: the last good answer (:mod:`.lastgood`), noted on the
  page with its time ("as of 10:42") and the reason; with none, the ``SandboxError`` the
  core's aggregators already turn into "unavailable: reason" while rendering the rest.

A plugin that missed a deadline, or whose last call took longer than
``PLUGINS_SLOW_CALL``, is not waited for again: its last good answer (or "unavailable") is
served at once and the plugin is asked again in the background at most every
``PLUGINS_REVALIDATE_EVERY`` seconds (stale-while-revalidate), so a slow or stuck broker
costs later pages nothing.

A request asks its brokers one after another (the core's aggregators are sequential), so a
broker that hangs would eat the budget of the ones after it. So the first call of a method
without arguments in a request starts the same call on every other broker that offers the
service, at once; each broker's call then only waits for its own job, and all of them share
one deadline. Calls that a request started and never collected leave their answer as the
last good one; nothing is lost.

A v2 consumer (``get_service_v2``) gets the same front in v2 (:meth:`BoundedService.as_v2`):
its calls take the same lane, deadline and middleware chain, but reach the plugin's own v2
service, so the ``Decimal`` money a v2 plugin made arrives digit for digit (the v1 front
would have turned it into floats and back). The two versions' answers are kept apart.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Hashable, Iterator
from typing import Any

from stonks_overwatch.core.factory import BrokerFactory
from stonks_overwatch.core.registry import BrokerRegistry
from stonks_overwatch.core.service_types import ServiceType

from ..base import ServiceCall
from ..errors import ReasonCode
from ..hosting.middleware import run_chain, served_chain
from ..instance_names import relabel
from ..interface_adapters import VERSIONS, CompatibilityAdapter, Front
from ..legacy.bridge import DeferredService
from ..registry import SERVICE_INTERFACES
from ..sandbox import SandboxError
from ..sandbox.process import implementing
from ..versioning import V1, V2
from . import budget, inline, lanes, lastgood, loads, outbox

logger = logging.getLogger(__name__)

_NO_ARGS: Hashable = ((), ())

in_request = budget.current  # None outside a request: the call takes the inline path


class _Refused:
    """A call that was not made (its plugin is stuck, slow or failing, or its lane is full):
    waiting on it raises why, once."""

    def __init__(self, error: SandboxError) -> None:
        self.error: SandboxError | None = error

    def wait(self, deadline: float, limit: float) -> Any:
        # The traceback keeps this frame and its callers', which hold this object: were it
        # to keep the error, every refused call would leave a cycle of frames for the
        # collector (a page with a dozen failed plugins: ~400 objects, a collection of the
        # middle generation every few pages).
        error, self.error = self.error, None
        if error is None:
            raise RuntimeError("a refused call is waited for once")
        try:
            raise error
        finally:
            del error


class _Stale:
    """A last good answer served without asking the plugin (it is slow or stuck)."""

    def __init__(self, answer: lastgood.Answer, reason: str) -> None:
        self.answer = answer
        self.reason = reason


def _materialise(value: Any) -> Any:
    """A generator would run the plugin's code in the caller's thread, unbounded."""
    if isinstance(value, Iterator) and not isinstance(value, (str, bytes)):
        return list(value)
    return value


class BoundedService(Front):
    """Stands for a broker service; every public method is a bounded call on its lane."""

    _version = V1
    """Which version of the service's interface this front serves (see :class:`_BoundedV2`)."""

    def __init__(self, broker: str, service_type: ServiceType, service: Any) -> None:
        self._broker = broker
        self._type = service_type
        self._service = service
        # Answers are remembered and shared per version: v1 and v2 methods have one name.
        major = self._version.major
        self._resolved: inline.Resolved | None = None  # the fast path's (see :mod:`.inline`)
        self._space = service_type.value if major == 1 else f"{service_type.value}@{major}"

    def as_v1(self) -> Any:
        if self._version == V1:
            return self
        return BoundedService(self._broker, self._type, self._service)

    def as_v2(self) -> Any:
        """This service as a v2 consumer gets it, on the same lane; a type without a v2
        interface (authentication, update) is served in v1."""
        pair = VERSIONS.get(self._type)
        if pair is None or self._version == V2:
            return self
        return _v2_front(pair.v2)(self._broker, self._type, self._service)

    def _target(self, service: Any) -> Any:
        """What the plugin's method is looked up on (on the lane: it may resolve the load)."""
        return service

    def _peer(self, service: Any) -> Any:
        """Another broker's front in this front's version (for the fan-out)."""
        return service

    @property
    def wrapped(self) -> Any:
        return self._service

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        if isinstance(self._service, DeferredService):
            # Resolving the service would wait for the plugin's load: ask the interface
            # whether the name is a method instead.
            interface = SERVICE_INTERFACES.get(self._type)
            if not callable(getattr(interface, name, None)):
                return self._bounded(lambda: getattr(self._service, name), f"{name}")
        else:
            attr = getattr(self._service, name)
            if not callable(attr):
                return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            if in_request() is None:
                return inline.call(self, name, args, kwargs)
            return self._call(name, args, kwargs)

        call.__name__ = name
        return call

    # -- one call --------------------------------------------------------------------------
    def _call(self, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        scope = budget.current()
        key = (self._space, method, lastgood.args_key(args, kwargs))
        pending = scope.pending.pop((self._broker, key), None) if scope is not None else None
        if pending is None:
            if scope is not None and key[2] == _NO_ARGS and (key[:2]) not in scope.fanned:
                scope.fanned.add(key[:2])
                self._fan_out(scope, method, key)
            pending = self._start(method, args, kwargs, key)
        return self._finish(pending, key)

    def _start(
        self, method: str, args: tuple[Any, ...], kwargs: dict[str, Any], key: Any
    ) -> lanes.Call | _Refused | _Stale:
        service = self._service
        if isinstance(service, DeferredService):
            # Its load failed and is retried in the background: the call would only say so,
            # after a hop to the plugin's lane. Say it here (or serve the last good answer).
            failed = loads.known_failure(service.plugin)
            if failed is not None:
                answer = lastgood.get(self._broker, key) if key[2] is not None else None
                return _Stale(answer, failed.message) if answer is not None else _Refused(failed)
        lane = lanes.lane(self._broker)
        slow = lane.slow()
        if not slow:
            return self._launch(method, args, kwargs, key)
        # A slow, failing or stuck plugin costs the page nothing: it is answered from the
        # plugin's last good answer (or as unavailable) at once, and asked again in the
        # background now and then.
        if lane.due():
            self._launch(method, args, kwargs, key)
        answer = lastgood.get(self._broker, key) if key[2] is not None else None
        if answer is not None:
            return _Stale(answer, slow)
        return _Refused(SandboxError(self._broker, ReasonCode.TIMEOUT, method, slow))

    def _launch(
        self, method: str, args: tuple[Any, ...], kwargs: dict[str, Any], key: Any
    ) -> lanes.Call | _Refused:
        lane = lanes.lane(self._broker)
        shared = key if key[2] is not None else None
        joined = lane.joinable(shared) if shared is not None else None
        if joined is not None:
            return joined  # the same call is running for another page: wait for that one
        scope = budget.current()
        service = self._service
        if isinstance(service, DeferredService):
            service.prepare()  # begin its load from this thread, which reads its config
        chain = served_chain()
        broker, stype, version = self._broker, self._type, self._version
        remember = key[2] is not None
        since = lastgood.epoch(broker)

        def job() -> Any:
            with budget.inherit(scope):
                target = getattr(self._target(service), method)
                value = run_chain(
                    ServiceCall(broker, stype, method, args, kwargs, version),
                    lambda: _materialise(target(*args, **kwargs)),
                    chain,
                )
            value = relabel(broker, value)  # an instance's records name the instance
            if remember:
                lastgood.keep(broker, key, value, since)
            return value

        try:
            return lane.start(f"{stype.value}.{method}", job, key=shared)
        except SandboxError as err:
            return _Refused(err)

    def _finish(self, pending: lanes.Call | _Refused | _Stale, key: Any) -> Any:
        if isinstance(pending, _Stale):
            budget.note_stale(self._broker, pending.answer.as_of, pending.reason)
            return pending.answer.value
        try:
            value = pending.wait(budget.deadline(), budget.limit())
        except SandboxError as err:
            outbox.settle()
            answer = lastgood.get(self._broker, key) if key[2] is not None else None
            if answer is None:
                raise
            budget.note_stale(self._broker, answer.as_of, err.message)
            return answer.value
        outbox.settle()
        return value

    def _fan_out(self, scope: budget.Scope, method: str, key: Any) -> None:
        registry, factory = BrokerRegistry(), BrokerFactory()
        with registry.reading():
            for other in registry.get_registered_brokers():
                if other == self._broker or not registry.broker_supports_service(other, self._type):
                    continue
                if (other, key) in scope.pending:
                    continue
                try:
                    service = factory.create_service(other, self._type)
                except Exception:  # the aggregator will meet (and report) the same failure
                    continue
                if isinstance(service, BoundedService):
                    peer = self._peer(service)
                    scope.pending[(other, key)] = peer._start(method, (), {}, key)

    def _bounded(self, read: Any, operation: str) -> Any:
        """A data attribute of the service, read on its lane (reading may load it)."""
        call = lanes.lane(self._broker).start(f"{self._type.value}.{operation}", read)
        return call.wait(budget.deadline(), budget.limit())

    def __repr__(self) -> str:
        what = f"{self._broker}:{self._type.value}@{self._version.major}"
        return f"<BoundedService {what} {self._service!r}>"


class _BoundedV2(BoundedService):
    """The v2 front: the plugin's v2 service when it implements v2 (its records untouched),
    else its v1 service through ``V1ToV2Adapter``. Built per interface by :func:`_v2_front`,
    so ``isinstance(front, PortfolioServiceV2)`` holds as it did for the adapter."""

    _version = V2

    def __init__(self, broker: str, service_type: ServiceType, service: Any) -> None:
        super().__init__(broker, service_type, service)

    def _target(self, service: Any) -> Any:
        return CompatibilityAdapter.adapt_v1_to_v2(service, self._type)

    def _peer(self, service: Any) -> Any:
        return service.as_v2()


@functools.cache
def _v2_front(interface: type) -> type[_BoundedV2]:
    cls: type[_BoundedV2] = implementing(_BoundedV2, interface, _bounded_method)
    return cls


def _bounded_method(name: str) -> Callable[..., Any]:
    def method(self: BoundedService, *args: Any, **kwargs: Any) -> Any:
        if in_request() is None:
            return inline.call(self, name, args, kwargs)
        return self._call(name, args, kwargs)

    method.__name__ = name
    return method


def wrap_service(broker: str, service_type: ServiceType, service: Any) -> Any:
    """The core's service-wrapper hook (installed by ``AppConfig.ready``)."""
    return BoundedService(broker, service_type, service)
