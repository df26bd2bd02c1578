"""The benchmarks still run and still print their tables (so they cannot rot unnoticed).

Small N and one repetition: this checks that they work, never how fast anything is.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def run_bench(script: str, *args: str) -> str:
    env = dict(os.environ, PYTHONIOENCODING="utf-8", REDIS_URL="")
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=300,
    )
    assert proc.returncode == 0, f"{script} exited {proc.returncode}:\n{proc.stderr}"
    return proc.stdout


def json_tail(out: str) -> dict[str, Any]:
    return json.loads(out[out.index("\n{") + 1 :])


def test_discovery_benchmark_prints_its_table() -> None:
    out = run_bench("bench_discovery.py", "--n", "20", "--repeat", "1", "--json")
    assert "discovery benchmark: 20 directory plugins" in out
    for header in ("case", "ms total", "µs/plugin", "x floor", "target", "result"):
        assert header in out
    for row in ("floor", "cold", "warm", "jsonschema"):
        assert any(line.startswith(row + " ") for line in out.splitlines()), row
    assert "<= 1.5x" in out and "<= 0.3x" in out
    assert "entry-point scan" in out
    assert "overall: " in out
    figures = json_tail(out)
    assert figures["n"] == 20
    assert set(figures["medians"]) == {"floor", "cold", "warm", "jsonschema"}


def test_startup_benchmark_prints_its_table_and_sees_no_plugin_import() -> None:
    out = run_bench("bench_ready.py", "--n", "20", "--repeat", "1", "--json")
    for header in ("configuration", "setup ms", "ready() ms", "manifests", "db created"):
        assert header in out
    for row in ("empty dir", "20 plugins", "safe mode"):
        assert any(line.startswith(row + " ") for line in out.splitlines()), row
    assert "<= 15 ms" in out
    # Not timing: what ready() did is a fact the benchmark reports, and it must hold.
    assert "plugin code imported by ready(): none" in out
    assert "database file created by ready(): no" in out
    runs = json_tail(out)["runs"]
    assert [r["manifests"] for r in runs["20 plugins"]] == [20]
    assert [r["manifests"] for r in runs["safe mode"]] == [0]


def test_page_benchmark_prints_its_table() -> None:
    # Three requests per run and short bounds: about 20 s when pages answer within the budget,
    # under a minute when every fault-run request hangs until its client timeout.
    out = run_bench(
        "bench_page.py",
        "--requests",
        "3",
        "--rounds",
        "1",
        "--timeout",
        "10",
        "--run-timeout",
        "15",
        "--json",
    )
    assert "page benchmark: home page '/', gunicorn -w 2, SQLite" in out
    for header in ("run", "sync s", "in error", "first s", "p50 ms", "p99 ms", "answered"):
        assert header in out
    for row in ("clean", "faults"):
        assert any(line.startswith(row + " ") for line in out.splitlines()), row
    assert "first request <= budget + 0.5 s" in out
    assert "later p99 <= 1.5x clean p99" in out
    assert "medians of 1 round(s)" in out
    assert "every healthy broker's rows" in out
    assert "sync (faults, round 1): " in out and "overall: " in out
    res = json_tail(out)
    assert res["requests"] == 3
    clean, faults = res["runs"]["clean"], res["runs"]["faults"]
    # Facts, not timings: the fault run knows the bundled plugins plus the whole corpus, and
    # the clean run's page shows the legacy broker and the bundled ones.
    assert faults["plugins"] == clean["plugins"] + len(res["corpus"])
    assert [r["round"] for r in faults["rounds"]] == [1]
    assert {"ibkr", "degiro", "bitvavo"} <= set(res["judgement"]["reference_brokers"])
