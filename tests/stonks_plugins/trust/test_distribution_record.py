"""An installed distribution (an entry-point plugin) is verified against its wheel's RECORD:
a changed or missing recorded file, or an unrecorded module in its package, is
``integrity_failed`` and none of its code runs."""

from __future__ import annotations

import importlib
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from stonks_plugins import trust
from stonks_plugins.discovery.directories import clear_cache
from stonks_plugins.discovery.entry_points import scan_entry_points
from stonks_plugins.models import Plugin
from tests.cli import cli

pytestmark = pytest.mark.slow

DIST = "stonks-degiro-broker"


@pytest.fixture(scope="module")
def wheel_install(bundled_site: Path) -> Path:
    """The bundled DeGiro plugin pip-installed into a target dir (the session's install)."""
    return bundled_site


@pytest.fixture
def site(wheel_install: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A copy of the install on ``sys.path`` (each test may damage its own)."""
    copy = tmp_path / "site"
    shutil.copytree(wheel_install, copy)
    monkeypatch.syspath_prepend(str(copy))
    importlib.invalidate_caches()
    clear_cache()
    yield copy
    for name in [m for m in sys.modules if m == "degiro" or m.startswith("degiro.")]:
        del sys.modules[name]
    monkeypatch.undo()
    importlib.invalidate_caches()
    clear_cache()


def degiro() -> trust.TrustVerdict:
    clear_cache()
    (cand,) = [c for c in scan_entry_points() if c.name == "degiro-broker"]
    assert cand.location.startswith(f"{DIST}==")
    return trust.verdict(cand)


def test_an_intact_install_passes_and_a_changed_file_is_tampered(site: Path) -> None:
    found = degiro()
    assert (found.status, found.problem, found.locked) == ("unsigned", None, False)
    services = site / "degiro" / "services.py"
    services.write_text(services.read_text() + "\n# an edit\n")
    found = degiro()
    assert found.status == "tampered"
    assert f"the RECORD of the installed distribution {DIST}" in (found.problem or "")
    assert "changed: degiro/services.py" in (found.problem or "")
    assert "--force-reinstall" in (found.problem or "")


def test_an_unrecorded_module_and_a_missing_file_are_tampered(site: Path) -> None:
    (site / "degiro" / "backdoor.py").write_text("x = 1\n")
    assert "extra code: degiro/backdoor.py" in (degiro().problem or "")
    (site / "degiro" / "backdoor.py").unlink()
    (site / "degiro" / "classify.py").unlink()
    assert "missing: degiro/classify.py" in (degiro().problem or "")


@pytest.mark.django_db
def test_sync_refuses_a_tampered_install_before_importing_it(site: Path, plugin_dirs) -> None:
    services = site / "degiro" / "services.py"
    services.write_text(services.read_text() + "\n# an edit\n")
    cli("sync")
    row = Plugin.objects.get(name="degiro-broker")
    assert (row.state, row.error_code) == ("error", "integrity_failed")
    assert "degiro/services.py" in row.error_message
    assert row.trust["status"] == "tampered"
    assert not any(m == "degiro.services" for m in sys.modules)
