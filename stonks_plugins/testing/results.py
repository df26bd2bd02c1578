"""What the kit reports: one :class:`TestResult` per standard test, a list of named checks.

A check is a plain ``(name, ok, message)`` triple so a plugin's own tests can assert on it,
print it or turn it into JSON without knowing the kit's classes. A failed check's message
says what is wrong *and* what to change; :meth:`TestResult.report` lists them for a person.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple


class Check(NamedTuple):
    """One thing the kit verified: ``name`` (dotted, stable), whether it held, and why."""

    name: str
    ok: bool
    message: str = ""


@dataclass
class TestResult:
    """The outcome of one standard test (``interfaces``, ``lifecycle``, ``configuration``)."""

    __test__ = False  # not a pytest test class, although its name starts with "Test"

    test: str
    plugin: str
    checks: list[Check] = field(default_factory=list)
    duration_s: float = 0.0

    @property
    def passed(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.ok]

    def add(self, name: str, ok: bool, message: str = "") -> bool:
        self.checks.append(Check(name, ok, message))
        return ok

    def ok(self, name: str, message: str = "") -> bool:
        return self.add(name, True, message)

    def fail(self, name: str, message: str) -> bool:
        return self.add(name, False, message)

    def check(self, name: str) -> Check | None:
        """The first check called ``name`` (None when the test did not get that far)."""
        return next((c for c in self.checks if c.name == name), None)

    def report(self, failures_only: bool = False) -> str:
        """Human-readable lines, one per check."""
        verdict = "passed" if self.passed else f"FAILED ({len(self.failures)} failed)"
        lines = [f"{self.test} [{self.plugin}]: {verdict} in {self.duration_s:.2f} s"]
        for c in self.checks:
            if failures_only and c.ok:
                continue
            mark = "ok  " if c.ok else "FAIL"
            lines.append(f"  {mark} {c.name}" + (f": {c.message}" if c.message else ""))
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        return {
            "test": self.test,
            "plugin": self.plugin,
            "passed": self.passed,
            "duration_s": round(self.duration_s, 4),
            "checks": [c._asdict() for c in self.checks],
        }

    def __str__(self) -> str:
        return self.report()


@dataclass(frozen=True)
class MethodTiming:
    """Latency of one service method, called through the plugin's isolation boundary."""

    operation: str
    """``service.method``, as the sandbox's metrics name it (``portfolio.get_portfolio``)."""
    calls: int
    p50_us: float
    p95_us: float
    mean_us: float
    direct_p50_us: float | None
    """The same method called on an instance built outside the boundary (the baseline);
    None for a process-isolated plugin, whose classes exist only in its own process."""

    @property
    def overhead_us(self) -> float | None:
        """Median cost of the boundary: p50 through it minus p50 of the direct call."""
        return None if self.direct_p50_us is None else self.p50_us - self.direct_p50_us

    def as_dict(self) -> dict[str, Any]:
        return {
            "operation": self.operation,
            "calls": self.calls,
            "p50_us": round(self.p50_us, 2),
            "p95_us": round(self.p95_us, 2),
            "mean_us": round(self.mean_us, 2),
            "direct_p50_us": _round(self.direct_p50_us),
            "overhead_us": _round(self.overhead_us),
        }


@dataclass
class BenchmarkResult(TestResult):
    """A small benchmark: load time and per-method latency. Its checks fail only when a
    method raised or the plugin did not load; the figures are for people, not thresholds."""

    calls: int = 0
    load_ms: float = 0.0
    timings: list[MethodTiming] = field(default_factory=list)

    def timing(self, operation: str) -> MethodTiming | None:
        return next((t for t in self.timings if t.operation == operation), None)

    def report(self, failures_only: bool = False) -> str:
        lines = [super().report(failures_only), f"  load + initialize: {self.load_ms:.1f} ms"]
        for t in self.timings:
            direct = "n/a" if t.direct_p50_us is None else f"{t.direct_p50_us:.1f} us"
            lines.append(
                f"  {t.operation:<40} p50 {t.p50_us:>9.1f} us  p95 {t.p95_us:>9.1f} us  "
                f"direct p50 {direct:>12}  ({t.calls} calls)"
            )
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        return {
            **super().as_dict(),
            "calls": self.calls,
            "load_ms": round(self.load_ms, 3),
            "timings": [t.as_dict() for t in self.timings],
        }


def failure_report(name: str, location: str, results: list[TestResult]) -> str:
    """Every failed check of ``results``, one line each; '' when all passed."""
    seen: set[tuple[str, str]] = set()
    lines = []
    total = 0
    for r in results:
        total += len(r.checks)
        for c in r.failures:
            if (c.name, c.message) in seen:
                continue
            seen.add((c.name, c.message))
            lines.append(f"  [{r.test}] {c.name}: {c.message}")
    if not lines:
        return ""
    return f"plugin '{name}' ({location}) failed {len(lines)} of {total} kit checks:\n" + "\n".join(
        lines
    )


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)
