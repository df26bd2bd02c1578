"""``PluginSandbox.wrap``: the fast path for service methods. A wrapped service answers like
the real one, is still an instance of its interface, and every public method call is
counted and guarded."""

from __future__ import annotations

import inspect
import threading
from typing import Any, ClassVar

import pytest

from stonks_overwatch.core.config import BaseConfig
from stonks_overwatch.core.data import PortfolioEntry, TotalPortfolio
from stonks_overwatch.core.exceptions import BrokerUnavailableError
from stonks_overwatch.core.interfaces import PortfolioServiceInterface
from stonks_plugins.errors import ReasonCode
from stonks_plugins.sandbox import (
    SERVICE_CODE,
    CircuitBreaker,
    PluginSandbox,
    SandboxedProxy,
    SandboxError,
)
from stonks_plugins.sandbox.boundary import _shape

from .conftest import FakeClock

MISSING = object()


class Portfolio(PortfolioServiceInterface):
    config_class: ClassVar[type] = BaseConfig
    currency = "EUR"

    def __init__(self, config: BaseConfig | None = None, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        self.fail_with: BaseException | None = None
        self.calls = 0
        self.hook = lambda x: x * 2

    def get_portfolio(self) -> list[PortfolioEntry]:
        self.calls += 1
        if self.fail_with is not None:
            raise self.fail_with
        return [PortfolioEntry("Apple", "AAPL", 2.0, 100.0, 200.0, broker="acme")]

    def get_portfolio_total(self) -> TotalPortfolio:
        return TotalPortfolio(200.0, brokers=("acme",))

    def shapes(self, a: int, /, b: int, *rest: int, c: int = 3, d: Any = MISSING, **kw: Any) -> Any:
        return (a, b, rest, c, d is MISSING, kw)

    def keyword_only(self, *, flag: bool = False) -> bool:
        return flag

    def whoami(self) -> object:
        return self

    @property
    def doubled(self) -> int:
        return self.calls * 2

    @property
    def broken(self) -> int:
        raise RuntimeError("property exploded")

    @staticmethod
    def static(x: int) -> int:
        return x + 1

    @classmethod
    def klass(cls) -> str:
        return cls.__name__

    def _private(self) -> object:
        return self


@pytest.fixture
def sandbox() -> PluginSandbox:
    return PluginSandbox("acme")


def test_results_equal_direct_ones(sandbox: PluginSandbox) -> None:
    direct, target = Portfolio(), Portfolio()
    proxy = sandbox.wrap(target, "portfolio")
    assert proxy.get_portfolio() == direct.get_portfolio()
    assert proxy.get_portfolio_total() == direct.get_portfolio_total()
    assert proxy.shapes(1, 2) == direct.shapes(1, 2) == (1, 2, (), 3, True, {})
    assert proxy.shapes(1, b=2, c=4, d=None, e=5) == direct.shapes(1, b=2, c=4, d=None, e=5)
    assert proxy.shapes(1, 2, 7, 8) == (1, 2, (7, 8), 3, True, {})
    assert proxy.keyword_only(flag=True) is True
    assert proxy.static(1) == 2 and proxy.klass() == "Portfolio"
    assert proxy.whoami() is target  # methods run on the real instance
    assert proxy.hook(21) == 42  # a callable instance attribute is wrapped too


def test_proxy_is_still_an_instance_of_the_interface(sandbox: PluginSandbox) -> None:
    proxy = sandbox.wrap(Portfolio(), "portfolio")
    assert isinstance(proxy, PortfolioServiceInterface)
    assert isinstance(proxy, Portfolio)
    assert isinstance(proxy, SandboxedProxy)
    assert repr(proxy) == "<sandboxed Portfolio of plugin 'acme' as 'portfolio'>"
    assert sandbox.wrap(proxy, "other") is proxy


def test_wrong_arguments_are_the_callers_type_error(sandbox: PluginSandbox) -> None:
    proxy = sandbox.wrap(Portfolio(), "portfolio")
    with pytest.raises(TypeError, match=r"get_portfolio\(\) takes 0 positional"):
        proxy.get_portfolio(1)
    with pytest.raises(TypeError, match="shapes"):
        proxy.shapes()
    assert sandbox.circuit.failures == 0


def test_wrappers_are_cached_and_keep_metadata(sandbox: PluginSandbox) -> None:
    proxy = sandbox.wrap(Portfolio(), "portfolio")
    method = proxy.get_portfolio
    assert proxy.get_portfolio is method
    assert method.__name__ == "get_portfolio"
    assert (
        method.__wrapped__.__self__
        is object.__getattribute__(proxy, "__dict__")["_sandbox__target"]
    )


def test_attributes_pass_through(sandbox: PluginSandbox) -> None:
    target = Portfolio()
    proxy = sandbox.wrap(target, "portfolio")
    assert proxy.currency == "EUR" and proxy.config is None
    assert proxy.config_class is BaseConfig  # a class is data, not a service method
    proxy.get_portfolio()
    assert proxy.calls == 1 and proxy.doubled == 2
    proxy.currency = "USD"  # setting goes to the instance
    assert target.currency == "USD" and proxy.currency == "USD"
    target.calls = 10
    assert proxy.calls == 10 and proxy.doubled == 20
    del proxy.currency
    assert proxy.currency == "EUR"
    assert proxy._private() is target  # private names pass through, unwrapped
    assert "portfolio._private" not in sandbox.metrics.operations()
    assert "get_portfolio" in dir(proxy)
    with pytest.raises(AttributeError):
        _ = proxy.nope


def test_metrics_count_calls_and_errors_per_method(sandbox: PluginSandbox) -> None:
    target = Portfolio()
    proxy = sandbox.wrap(target, "portfolio")
    for _ in range(40):
        proxy.get_portfolio()
    proxy.get_portfolio_total()
    target.fail_with = ValueError("nope")
    for _ in range(2):
        with pytest.raises(SandboxError):
            proxy.get_portfolio()
    snap = sandbox.metrics.snapshot()
    assert snap["portfolio.get_portfolio"]["calls"] == 42
    assert snap["portfolio.get_portfolio"]["errors"] == 2
    assert 0 < snap["portfolio.get_portfolio"]["timed"] <= 42
    assert snap["portfolio.get_portfolio_total"]["calls"] == 1
    assert snap["__total__"]["calls"] == 43 and snap["__total__"]["errors"] == 2


def test_service_exception_becomes_sandbox_error(sandbox: PluginSandbox) -> None:
    failures: list[SandboxError] = []
    sandbox.on_failure = failures.append
    target = Portfolio()
    target.fail_with = KeyError("ISIN")
    proxy = sandbox.wrap(target, "portfolio")
    with pytest.raises(BrokerUnavailableError) as info:  # what aggregators catch
        proxy.get_portfolio()
    err = info.value
    assert isinstance(err, SandboxError)
    assert err.code is SERVICE_CODE and err.service and not err.tripped
    assert err.operation == "portfolio.get_portfolio"
    assert str(err) == "plugin 'acme': portfolio.get_portfolio failed: KeyError: 'ISIN'"
    assert "in get_portfolio" in err.traceback
    assert failures == [err]


def test_system_exit_in_a_service_is_caught_interrupt_is_not(sandbox: PluginSandbox) -> None:
    target = Portfolio()
    proxy = sandbox.wrap(target, "portfolio")
    target.fail_with = SystemExit(1)
    with pytest.raises(SandboxError, match=r"called sys.exit\(1\)"):
        proxy.get_portfolio()
    target.fail_with = KeyboardInterrupt()
    with pytest.raises(KeyboardInterrupt):
        proxy.get_portfolio()


def test_a_raising_property_is_a_service_failure(sandbox: PluginSandbox) -> None:
    proxy = sandbox.wrap(Portfolio(), "portfolio")
    with pytest.raises(SandboxError, match=r"portfolio\.broken failed: RuntimeError"):
        _ = proxy.broken
    assert sandbox.metrics.stats("portfolio.broken").errors == 1


def test_circuit_on_the_fast_path(clock: FakeClock) -> None:
    failures: list[SandboxError] = []
    recovered: list[str] = []
    sandbox = PluginSandbox(
        "acme",
        circuit=CircuitBreaker(threshold=3, base_delay=5.0, jitter=0.0, clock=clock),
        on_failure=failures.append,
        on_recover=recovered.append,
    )
    target = Portfolio()
    proxy = sandbox.wrap(target, "portfolio")
    target.fail_with = OSError("timeout talking to broker")
    codes = []
    for _ in range(3):
        with pytest.raises(SandboxError) as info:
            proxy.get_portfolio()
        codes.append((info.value.code, info.value.tripped))
    assert codes == [
        (SERVICE_CODE, False),
        (SERVICE_CODE, False),
        (ReasonCode.CIRCUIT_OPEN, True),
    ]
    assert failures[-1].cause_code is SERVICE_CODE
    target.fail_with = None
    with pytest.raises(SandboxError) as info:
        proxy.get_portfolio_total()  # every method of the plugin is refused
    assert info.value.code is ReasonCode.CIRCUIT_OPEN and info.value.retry_in == 5.0
    assert target.calls == 3
    assert sandbox.metrics.stats("portfolio.get_portfolio_total").rejected == 1
    assert len(failures) == 3

    clock.advance(5.0)
    assert proxy.get_portfolio()[0].symbol == "AAPL"  # the trial
    assert sandbox.circuit.state == "closed" and sandbox.circuit.clean
    assert recovered == ["portfolio.get_portfolio"]


def test_a_success_between_failures_resets_the_count(sandbox: PluginSandbox) -> None:
    target = Portfolio()
    proxy = sandbox.wrap(target, "portfolio")
    target.fail_with = ValueError("x")
    with pytest.raises(SandboxError):
        proxy.get_portfolio()
    assert sandbox.circuit.failures == 1
    target.fail_with = None
    proxy.get_portfolio()
    assert sandbox.circuit.failures == 0 and sandbox.circuit.clean


def test_nested_sandbox_error_passes_through(sandbox: PluginSandbox) -> None:
    inner = SandboxError("other", ReasonCode.CIRCUIT_OPEN, "fee.get_fees", "open")
    target = Portfolio()
    target.fail_with = inner
    proxy = sandbox.wrap(target, "portfolio")
    with pytest.raises(SandboxError) as info:
        proxy.get_portfolio()
    assert info.value is inner and sandbox.circuit.failures == 0


def test_an_instance_override_is_not_cached(sandbox: PluginSandbox) -> None:
    target = Portfolio()
    target.get_portfolio_total = lambda: "patched"  # type: ignore[method-assign]
    proxy = sandbox.wrap(target, "portfolio")
    assert proxy.get_portfolio_total() == "patched"
    target.get_portfolio_total = lambda: "patched again"  # type: ignore[method-assign]
    assert proxy.get_portfolio_total() == "patched again"


def test_finalizer_of_the_class_does_not_run_for_the_proxy() -> None:
    closed: list[str] = []

    class WithDel(Portfolio):
        def __del__(self) -> None:
            closed.append("closed")

    sandbox = PluginSandbox("acme")
    target = WithDel()
    proxy = sandbox.wrap(target, "portfolio")
    proxy.get_portfolio()
    del proxy
    assert closed == []
    del target
    assert closed == ["closed"]


def test_slotted_class() -> None:
    class Slotted:
        __slots__ = ("value",)

        def __init__(self) -> None:
            self.value = 1

        def get(self) -> int:
            return self.value

    sandbox = PluginSandbox("acme")
    target = Slotted()
    proxy = sandbox.wrap(target, "s")
    assert proxy.get() == 1 and proxy.value == 1
    proxy.value = 5
    assert target.value == 5 and proxy.get() == 5


def test_unsubclassable_class_gets_a_plain_proxy() -> None:
    class Sealed:
        def __init_subclass__(cls, **kwargs: Any) -> None:
            raise TypeError("sealed")

        def get(self) -> str:
            return "ok"

    class Boom:
        def get(self) -> str:
            raise ValueError("x")

    sandbox = PluginSandbox("acme")
    proxy = sandbox.wrap(Sealed(), "s")
    assert not isinstance(proxy, Sealed) and isinstance(proxy, SandboxedProxy)
    assert proxy.get() == "ok" and proxy.get is proxy.get
    assert sandbox.metrics.stats("s.get").calls == 1
    with pytest.raises(SandboxError):
        sandbox.wrap(Boom(), "b").get()


def test_wrap_callable_and_threads(sandbox: PluginSandbox) -> None:
    counter = sandbox.wrap_callable(lambda x, y=1: x + y, "fn")
    assert counter(1) == 2 and counter(1, y=5) == 6

    proxy = sandbox.wrap(Portfolio(), "portfolio")
    errors: list[BaseException] = []

    def hammer() -> None:
        try:
            for _ in range(500):
                proxy.get_portfolio()
        except BaseException as exc:  # pragma: no cover - shown by the assert
            errors.append(exc)

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert errors == []
    assert 0 < sandbox.metrics.stats("portfolio.get_portfolio").calls <= 2000


def test_close_forgets_proxy_classes(sandbox: PluginSandbox) -> None:
    first = type(sandbox.wrap(Portfolio(), "portfolio"))
    assert type(sandbox.wrap(Portfolio(), "portfolio")) is first
    assert sandbox.close().ok
    assert type(sandbox.wrap(Portfolio(), "portfolio")) is not first


def test_odd_signatures_fall_back_to_the_generic_wrapper(sandbox: PluginSandbox) -> None:
    def clash(_sbx_func: int) -> int:  # uses the template's own names
        return _sbx_func

    def liar(*args: Any, **kwargs: Any) -> tuple[Any, ...]:
        return args

    params = [
        inspect.Parameter("b", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=1),
        inspect.Parameter("a", inspect.Parameter.POSITIONAL_OR_KEYWORD),
    ]
    sig = inspect.Signature.__new__(inspect.Signature)
    sig._parameters = dict((p.name, p) for p in params)  # type: ignore[attr-defined]
    liar.__signature__ = sig  # type: ignore[attr-defined]  # invalid as a def
    assert _shape(liar)[0] == ("b=_sbx_d0, a", "b, a", 1)
    assert sandbox.wrap_callable(clash, "clash")(_sbx_func=3) == 3
    assert sandbox.wrap_callable(liar, "liar")(1, 2) == (1, 2)
    assert sandbox.wrap_callable(print, "builtin") is not None
