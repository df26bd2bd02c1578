"""CI runs the plugin test kit against every plugin shipped in plugins/: each must pass all
the standard tests (interfaces, lifecycle, configuration) and the small benchmark."""

from __future__ import annotations

from pathlib import Path

import pytest

from stonks_plugins.testing import PluginTestSuite, failure_report
from tests.conftest import BUNDLED

from .conftest import copy_plugin

PLUGINS = sorted(p.name for p in BUNDLED.iterdir() if (p / "plugin_manifest.json").is_file())


def test_the_bundled_plugins_are_all_here() -> None:
    assert {"degiro-broker", "bitvavo-broker"} <= set(PLUGINS)
    assert len(PLUGINS) == len([p for p in BUNDLED.iterdir() if p.is_dir() and p.name[0] != "."])


@pytest.mark.parametrize("name", PLUGINS)
def test_bundled_plugin_passes_the_kit(name: str, tmp_path: Path) -> None:
    suite = PluginTestSuite(copy_plugin(name, tmp_path))
    results = suite.run_all(cycles=3, benchmark=True, calls=20)
    assert all(r.passed for r in results), failure_report(suite.name, suite.location, results)
    benchmark = results[-1]
    assert benchmark.test == "benchmark"
    manifest = suite.candidate().manifest
    assert manifest is not None
    if manifest.services:  # a broker: every service method was measured
        assert benchmark.timings, benchmark.report()
