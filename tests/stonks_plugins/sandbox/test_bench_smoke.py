"""The boundary benchmark runs and prints its table (figures are not asserted: speed is
judged by running the benchmark itself, not by unit tests)."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT


def test_benchmark_prints_its_table() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_boundary.py"), "--n", "10000"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    for label in (
        "direct call",
        "wrapped call (fast path)",
        "overhead",
        "ratio wrapped/direct",
        "with arguments",
        "run() bounded",
    ):
        assert label in out, out
    assert "target <= 500 ns" in out
    assert "result: PASS" in out or "result: FAIL" in out
