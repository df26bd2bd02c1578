"""The kit decides where a plugin's code runs by the host's own rule: with
``PLUGINS_ISOLATE_UNTRUSTED`` on, a plugin not signed by a trusted key never runs in the
process that runs the kit — not even to resolve its manifest's references — as the host
would never run it in its own."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from stonks_plugins.testing import PluginTestSuite
from stonks_plugins.trust import authoring
from tests.conftest import fast_process_plugins

from .conftest import SERVICES

RECORDING = """
import os

with open({marker!r}, "a") as log:
    log.write(f"{{os.getpid()}}\\n")
"""


def recording_plugin(make_plugin: Callable[..., Path], marker: Path) -> Path:
    """A healthy broker whose services module writes the importing process's pid to
    ``marker`` (the one file its permissions let it write when it runs in a child)."""
    return make_plugin(
        "pid-recorder",
        {"services.py": RECORDING.format(marker=str(marker)) + SERVICES},
        permissions=[f"write:{marker}"],
    )


def importers(marker: Path) -> set[int]:
    return {int(line) for line in marker.read_text().split()} if marker.exists() else set()


@pytest.mark.slow
def test_an_untrusted_plugin_runs_only_in_its_own_process_when_the_setting_says_so(
    make_plugin: Callable[..., Path], tmp_path: Path, settings: Any
) -> None:
    fast_process_plugins(settings, call_timeout=20.0)
    marker = tmp_path / "imports.log"
    suite = PluginTestSuite(recording_plugin(make_plugin, marker))

    settings.PLUGINS_ISOLATE_UNTRUSTED = False
    result = suite.test_plugin_interfaces()
    assert result.passed, result.report()
    assert result.check("references") is None  # resolved here, one check per reference
    assert os.getpid() in importers(marker)

    marker.unlink()
    settings.PLUGINS_ISOLATE_UNTRUSTED = True
    result = suite.test_plugin_interfaces()
    assert result.passed, result.report()
    found = importers(marker)
    assert found and os.getpid() not in found  # imported, but only in the plugin's process
    references = result.check("references")
    assert references is not None and "PLUGINS_ISOLATE_UNTRUSTED" in references.message
    assert result.check("service.portfolio.get_portfolio") is not None  # served from the child


def test_a_plugin_signed_by_a_trusted_key_is_checked_in_this_process(
    make_plugin: Callable[..., Path], tmp_path: Path, settings: Any
) -> None:
    marker = tmp_path / "imports.log"
    root = recording_plugin(make_plugin, marker)
    key = authoring.keygen(tmp_path / "signing.key")
    authoring.lock(str(root))
    authoring.sign(str(root), tmp_path / "signing.key")
    settings.PLUGINS_ISOLATE_UNTRUSTED = True
    settings.PLUGINS_TRUSTED_KEYS = [key]

    result = PluginTestSuite(root).test_plugin_interfaces()
    assert result.passed, result.report()
    assert result.check("references") is None
    assert importers(marker) == {os.getpid()}
