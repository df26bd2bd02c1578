"""Per-operation counters and sampled latency."""

from __future__ import annotations

import pytest

from stonks_plugins.sandbox import TOTAL_KEY, CallStats, PluginMetrics
from stonks_plugins.sandbox.metrics import EXACT_ABOVE_NS, SAMPLE_MASK


def test_stats_are_created_once_per_operation() -> None:
    m = PluginMetrics()
    a = m.stats("portfolio.get_portfolio")
    assert m.stats("portfolio.get_portfolio") is a
    assert m.stats("fee.get_fees") is not a
    assert m.operations() == ["fee.get_fees", "portfolio.get_portfolio"]


def test_total_key_is_reserved() -> None:
    with pytest.raises(ValueError):
        PluginMetrics().stats(TOTAL_KEY)


def test_observe_adapts_sampling_to_call_cost() -> None:
    st = CallStats()
    assert st.mask == 0  # time everything until a call is known to be cheap
    st.observe(500)
    assert st.mask == SAMPLE_MASK
    st.observe(EXACT_ABOVE_NS)
    assert st.mask == 0
    assert st.timed == 2 and st.max_ns == EXACT_ABOVE_NS


def test_histogram_and_snapshot() -> None:
    st = CallStats()
    st.calls, st.errors = 4, 1
    for ns in (50_000, 2_000_000, 2_000_000, 20_000_000_000):
        st.observe(ns)
    snap = st.snapshot()
    assert snap["calls"] == 4 and snap["errors"] == 1 and snap["timed"] == 4
    assert snap["max_ms"] == 20_000.0
    assert snap["avg_ms"] == pytest.approx((0.05 + 2 + 2 + 20_000) / 4)
    assert snap["histogram"] == {
        "le_0.1ms": 1,
        "le_1ms": 0,
        "le_10ms": 2,
        "le_100ms": 0,
        "le_1000ms": 0,
        "le_10000ms": 0,
        "inf": 1,
    }


def test_snapshot_has_per_operation_stats_and_totals() -> None:
    m = PluginMetrics()
    a, b = m.stats("a.x"), m.stats("b.y")
    a.calls, a.errors, b.calls, b.rejected, b.timeouts = 3, 1, 2, 5, 1
    a.observe(1_000_000)
    b.observe(3_000_000)
    snap = m.snapshot()
    assert set(snap) == {"a.x", "b.y", TOTAL_KEY}
    assert snap[TOTAL_KEY]["calls"] == 5
    assert snap[TOTAL_KEY]["errors"] == 1
    assert snap[TOTAL_KEY]["rejected"] == 5
    assert snap[TOTAL_KEY]["timeouts"] == 1
    assert snap[TOTAL_KEY]["avg_ms"] == 2.0
    assert snap[TOTAL_KEY]["max_ms"] == 3.0


def test_reset_zeroes_in_place() -> None:
    m = PluginMetrics()
    st = m.stats("a.x")
    st.calls = 7
    st.observe(10)
    m.reset()
    assert m.stats("a.x") is st
    assert st.calls == 0 and st.timed == 0 and st.buckets == [0] * len(st.buckets)
