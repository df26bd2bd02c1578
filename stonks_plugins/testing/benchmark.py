"""The kit's ``benchmark``: what a plugin's isolation boundary costs, per service method.

Each method is timed through the boundary and, next to it, on an instance built outside it,
so the figure an author reads is the boundary's share rather than the plugin's own work. The
checks fail only when a method raised or the plugin did not load: speed is reported, never
judged (machines differ too much for a threshold).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from time import perf_counter_ns
from typing import Any

from .conformance import interface_methods, returns_nothing
from .results import BenchmarkResult, MethodTiming
from .service_checks import FAULTS, fault_message
from .support import FAILED, PluginUnderTest, timed
from .versions import contract_for


def benchmark_plugin(
    kit: PluginUnderTest, calls: int = 1000, budget_s: float = 5.0
) -> BenchmarkResult:
    result = BenchmarkResult("benchmark", kit.safe_name(), calls=calls)
    with timed(result):
        cand = kit.usable(result)
        if cand is None:
            return result
        start = time.perf_counter()
        with kit.loaded(result, cand) as loaded:
            if loaded is None:
                return result
            result.load_ms = (time.perf_counter() - start) * 1000
            config = kit.build_config(result, loaded)
            if config is FAILED:
                return result
            for stype, cls in loaded.services.items():
                service = kit.create_service(
                    result, f"benchmark.{stype.value}", loaded, stype, config
                )
                if service is FAILED:
                    continue
                # The baseline: the same class built outside the boundary (none for a
                # process-isolated plugin, whose classes live in its own process).
                direct = cls(config=config) if loaded.host is None else None
                contract = contract_for(stype, cls)
                for method, hint in interface_methods(contract.interface):
                    if returns_nothing(hint):
                        continue
                    op = f"{stype.value}.{method}"
                    timing = _measure(
                        result,
                        op,
                        getattr(service, method),
                        getattr(direct, method) if direct is not None else None,
                        calls,
                        budget_s,
                    )
                    if timing is not None:
                        result.timings.append(timing)
        if result.passed:
            result.ok("benchmark", f"{len(result.timings)} methods measured")
    return result


def _measure(
    result: BenchmarkResult,
    op: str,
    boundary: Callable[[], Any],
    direct: Callable[[], Any] | None,
    calls: int,
    budget_s: float,
) -> MethodTiming | None:
    try:
        for _ in range(min(5, calls)):  # warm up caches on both paths
            boundary()
            if direct is not None:
                direct()
        through = _time_calls(boundary, calls, budget_s / 2)
        baseline = _time_calls(direct, calls, budget_s / 2) if direct is not None else []
    except Exception as exc:
        message = fault_message(exc) if isinstance(exc, FAULTS) else f"{type(exc).__name__}: {exc}"
        result.fail(f"benchmark.{op}", f"{op}() raised {message}")
        return None
    return MethodTiming(
        operation=op,
        calls=len(through),
        p50_us=_percentile(through, 0.50),
        p95_us=_percentile(through, 0.95),
        mean_us=sum(through) / len(through) / 1000.0,
        direct_p50_us=_percentile(baseline, 0.50) if baseline else None,
    )


def _time_calls(func: Callable[[], Any], calls: int, budget_s: float) -> list[int]:
    """Nanoseconds per call, for ``calls`` calls or until ``budget_s`` is spent (at least one)."""
    samples: list[int] = []
    deadline = time.perf_counter() + budget_s
    for _ in range(max(1, calls)):
        t0 = perf_counter_ns()
        func()
        samples.append(perf_counter_ns() - t0)
        if time.perf_counter() > deadline:
            break
    return samples


def _percentile(samples: list[int], q: float) -> float:
    """The ``q`` quantile of ``samples`` (nearest rank), in microseconds."""
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))
    return ordered[index] / 1000.0
