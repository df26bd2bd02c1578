"""Outside a request (a Celery task, the CLI) a broker call runs straight through in the
caller's thread, and still follows every change: a middleware enabled or disabled, a broker
disabled, made in this process or noticed through the poll."""

from __future__ import annotations

import dataclasses

import pytest

from stonks_overwatch.core.factory import BrokerFactory
from stonks_overwatch.core.service_types import ServiceType
from stonks_plugins.base import ServiceCall
from stonks_plugins.manager import manager
from stonks_plugins.runtime import budget, lanes, loads
from stonks_plugins.runtime.inline import service_call
from stonks_plugins.sandbox import SandboxError
from stonks_plugins.versioning import V2
from tests.stonks_plugins.runtime.helpers import wait_until

pytestmark = pytest.mark.django_db


def _names(front) -> list[str]:  # type: ignore[no-untyped-def]
    return [entry.name for entry in front.get_portfolio()]


def _front(name: str):  # type: ignore[no-untyped-def]
    assert loads.wait_all([name], 10.0)
    return BrokerFactory().create_service(name, ServiceType.PORTFOLIO)


def test_a_call_outside_a_request_runs_in_the_callers_thread(make_broker) -> None:
    make_broker("task-broker", "TASK")
    manager.sync()
    front = _front("task-broker")
    lane = lanes.lane("task-broker")
    assert budget.current() is None
    before = lane._next  # tickets the lane has handed out
    for _ in range(3):
        assert _names(front) == ["Task-Broker Holding"]
    assert lane._next == before  # no call took the broker's lane
    # In a request the same front hands each call to the broker's lane instead.
    with budget.page(5.0):
        assert _names(front) == ["Task-Broker Holding"]
    assert lane._next == before + 1


def test_a_cached_front_follows_middleware_and_disable_changes(make_broker, make_plugin) -> None:
    make_broker("task-broker", "TASK")
    make_plugin("middleware", "tap-mw")
    manager.sync()
    manager.disable("tap-mw")
    front = _front("task-broker")
    assert _names(front) == ["Task-Broker Holding"]

    manager.enable("tap-mw")
    # Nobody forces a refresh: the front notices within the refresh interval (the poll).
    assert wait_until(lambda: _names(front) == ["Task-Broker Holding (via tap-mw)"], 10.0)

    manager.disable("tap-mw")
    assert wait_until(lambda: _names(front) == ["Task-Broker Holding"], 10.0)

    manager.disable("task-broker")

    def refused() -> bool:
        try:
            front.get_portfolio()
        except SandboxError as err:
            return "task-broker" in str(err)
        return False

    assert wait_until(refused, 10.0)


def test_a_broker_that_failed_to_load_says_why_outside_a_request(make_broker) -> None:
    make_broker("sulky-broker", "SULK", slow=("fail-init",))
    manager.sync()
    loads.wait_all(["sulky-broker"], 10.0)
    front = BrokerFactory().create_service("sulky-broker", ServiceType.PORTFOLIO)
    with pytest.raises(SandboxError) as caught:
        front.get_portfolio()
    assert caught.value.plugin == "sulky-broker"
    assert "refused the login" in str(caught.value)


def test_the_fast_service_call_is_the_dataclass_middleware_sees() -> None:
    fast = service_call("b", ServiceType.PORTFOLIO, "get_portfolio", (1,), {"k": 2}, V2)
    made = ServiceCall("b", ServiceType.PORTFOLIO, "get_portfolio", (1,), {"k": 2}, V2)
    assert type(fast) is ServiceCall and fast == made and repr(fast) == repr(made)
    assert vars(fast) == vars(made)  # no field missing or extra, none left at a default
    assert dataclasses.replace(fast, method="x").method == "x"
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.method = "x"  # type: ignore[misc]
