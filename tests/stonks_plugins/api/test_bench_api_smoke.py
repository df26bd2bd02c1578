"""``benchmarks/bench_api.py`` still runs and prints its table (small N, one round: this
checks that it works, never how fast anything is), and never touches ``db.sqlite3``."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow


def test_bench_api_runs_and_prints_its_figures() -> None:
    db = ROOT / "db.sqlite3"
    before = db.stat().st_mtime_ns if db.exists() else None
    script = str(ROOT / "benchmarks" / "bench_api.py")
    proc = subprocess.run(
        [sys.executable, script, "--n", "20", "--repeat", "1", "--json"],
        cwd=ROOT,
        env=dict(os.environ, PYTHONIOENCODING="utf-8"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "api / faster baseline" in proc.stdout and "target <= 1.3x" in proc.stdout
    figures = json.loads(proc.stdout[proc.stdout.index("\n{") + 1 :])
    assert figures["n"] == 20 and set(figures["median_ms"]) == {"api", "bare", "bare-only"}
    assert (db.stat().st_mtime_ns if db.exists() else None) == before
