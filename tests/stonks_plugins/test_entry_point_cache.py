"""The entry-point scan is reused while no import path changed, and redone as soon as a
distribution is installed or removed (its .dist-info appears in or leaves a path folder)."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from stonks_plugins import installed
from stonks_plugins.discovery import entry_points
from tests.conftest import BUNDLED


def _install(site: Path) -> None:
    """A minimal installed distribution: metadata, an entry point and the package."""
    shutil.copytree(BUNDLED / "insights-view" / "insights", site / "insights")
    shutil.copy(
        BUNDLED / "insights-view" / "plugin_manifest.json",
        site / "insights" / "plugin_manifest.json",
    )
    info = site / "stonks_insights_view-1.0.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: stonks-insights-view\nVersion: 1.0.0\n"
    )
    (info / "entry_points.txt").write_text(
        "[stonks_overwatch.views]\ninsights-view = insights.plugin:InsightsView\n"
    )


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "site"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    entry_points.forget_entry_points()
    yield folder
    entry_points.forget_entry_points()


def test_scan_is_reused_until_a_distribution_is_installed_or_removed(
    site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert [c.name for c in entry_points.scan_entry_points()] == []
    calls = []
    real = installed._scan
    monkeypatch.setattr(installed, "_scan", lambda: calls.append(1) or real())
    entry_points.scan_entry_points()
    assert calls == []  # nothing changed: no metadata read

    _install(site)
    found = entry_points.scan_entry_points()
    assert calls == [1]
    assert [(c.name, c.source.value, c.ok) for c in found] == [
        ("insights-view", "entry_point", True)
    ]

    manifest = site / "insights" / "plugin_manifest.json"
    data = json.loads(manifest.read_text())
    data["plugin"]["version"] = "1.0.1"
    manifest.write_text(json.dumps(data))  # edited in place, as in an editable install
    assert entry_points.scan_entry_points()[0].manifest.version == "1.0.1"

    shutil.rmtree(site / "stonks_insights_view-1.0.0.dist-info")
    assert entry_points.scan_entry_points() == []
    assert sys.path[0] == str(site)
