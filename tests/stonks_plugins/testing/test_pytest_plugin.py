"""The kit as a pytest plugin: ``--stonks-plugin-kit PATH``, the ``stonks_plugin_kit``
marker and the ``plugin_suite`` fixture work in a plugin author's test run, and the plugin
stays inert in a run that does not ask for it.

Each case runs pytest in a subprocess with the plugin loaded by ``-p`` (this checkout is not
pip-installed, so its ``pytest11`` entry point is not registered here)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest

from tests.conftest import ROOT

from .conftest import copy_plugin

PLUGIN_MODULE = "stonks_plugins.testing.pytest_plugin"


def run_pytest(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env["PYTHONPATH"] = str(ROOT)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"  # only the kit: faster, and no Django
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            PLUGIN_MODULE,
            "-p",
            "no:cacheprovider",
            "-q",
            "-rA",
            *args,
        ],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_entry_point_names_the_plugin_module() -> None:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))
    eps = data["project"]["entry-points"]["pytest11"]
    # Named after the module, so `-p MODULE` or `pytest_plugins = [MODULE]` next to the
    # installed entry point is a no-op instead of a double registration.
    assert eps == {PLUGIN_MODULE: PLUGIN_MODULE}
    module = __import__(PLUGIN_MODULE, fromlist=["pytest_addoption"])
    assert callable(module.pytest_addoption) and callable(module.plugin_suite)


def test_kit_option_adds_the_standard_tests(tmp_path: Path) -> None:
    good = copy_plugin("healthy-fixture", tmp_path)
    bad = copy_plugin("import-error", tmp_path)
    (tmp_path / "test_nothing.py").write_text("def test_other():\n    pass\n")
    proc = run_pytest(
        tmp_path,
        f"--stonks-plugin-kit={good}",
        f"--stonks-plugin-kit={bad}",
        "-m",
        "stonks_plugin_kit",
    )
    out = proc.stdout
    assert proc.returncode == 1, out + proc.stderr
    for test in ("interfaces", "lifecycle", "configuration"):
        assert f"PASSED healthy-fixture/plugin_manifest.json::{test}" in out
        assert f"FAILED import-error/plugin_manifest.json::{test}" in out
    assert "stonks_fixture_module_that_does_not_exist" in out
    assert "3 failed, 3 passed, 1 deselected" in out


def test_marker_and_fixture(tmp_path: Path) -> None:
    plugin = copy_plugin("healthy-fixture", tmp_path)
    tests = plugin / "tests"
    tests.mkdir()
    (tests / "test_kit.py").write_text(
        textwrap.dedent(
            """
            import pytest

            @pytest.mark.stonks_plugin_kit(cycles=2, benchmark=True)
            class TestStandard:
                pass

            def test_fixture(plugin_suite):
                assert plugin_suite.name == "healthy-fixture"
                plugin_suite.assert_all(cycles=1)
            """
        )
    )
    proc = run_pytest(plugin)  # the plugin is found from the folder holding the tests
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    for test in ("interfaces", "lifecycle", "configuration", "benchmark"):
        assert f"PASSED tests/test_kit.py::TestStandard::{test}" in out
    assert "PASSED tests/test_kit.py::test_fixture" in out
    assert "portfolio.get_portfolio" in out  # the benchmark's figures are shown


def test_option_and_ini_key_pick_the_plugin(tmp_path: Path) -> None:
    plugin = copy_plugin("fault-service-raises", tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    (work / "test_it.py").write_text(
        "def test_it(plugin_suite):\n    assert plugin_suite.name == 'fault-service-raises'\n"
        "    plugin_suite.assert_all(cycles=1)\n"
    )
    proc = run_pytest(work, f"--stonks-plugin={plugin}")
    assert proc.returncode == 1
    assert "[interfaces] service.portfolio.get_portfolio" in proc.stdout
    (work / "pytest.ini").write_text(f"[pytest]\nstonks_plugin_dir = {plugin}\n")
    proc = run_pytest(work)
    assert proc.returncode == 1 and "bad row at line 7" in proc.stdout


def test_no_plugin_found_is_a_clear_failure(tmp_path: Path) -> None:
    (tmp_path / "test_it.py").write_text("def test_it(plugin_suite):\n    pass\n")
    proc = run_pytest(tmp_path)
    assert proc.returncode == 1
    assert "no plugin to test: pass --stonks-plugin PATH" in proc.stdout


def test_inert_unless_asked(tmp_path: Path) -> None:
    """Loaded into an ordinary run it adds nothing, imports nothing of the plugin system and
    leaves unmarked classes alone."""
    (tmp_path / "test_plain.py").write_text(
        textwrap.dedent(
            """
            import sys

            class TestPlain:
                def test_one(self):
                    assert True

            def test_nothing_imported():
                assert "stonks_plugins.testing.suite" not in sys.modules
                assert "stonks_plugins.registry" not in sys.modules
            """
        )
    )
    proc = run_pytest(tmp_path, "--strict-markers")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "2 passed" in proc.stdout


@pytest.mark.parametrize("flag", ["--help"])
def test_options_are_documented(tmp_path: Path, flag: str) -> None:
    out = run_pytest(tmp_path, flag).stdout
    assert "--stonks-plugin=PATH" in out and "--stonks-plugin-kit=PATH" in out
    assert "stonks_plugin_dir" in out


@pytest.mark.slow
def test_loaded_through_its_entry_point(tmp_path: Path) -> None:
    """As when the host is pip-installed: pytest autoloads the plugin from the ``pytest11``
    entry point (here a minimal distribution on PYTHONPATH declaring the same entry point as
    pyproject.toml), and ``-p MODULE`` on top of it is harmless."""
    data = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))
    ((name, value),) = data["project"]["entry-points"]["pytest11"].items()
    info = tmp_path / "site" / "stonks_kit_probe-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: stonks-kit-probe\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[pytest11]\n{name} = {value}\n")
    plugin = copy_plugin("healthy-fixture", tmp_path)
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path / "site"), str(ROOT)])
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    for extra in ([], ["-p", PLUGIN_MODULE]):
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-p",
                "no:cacheprovider",
                "-p",
                "no:django",
                "-q",
                *extra,
                f"--stonks-plugin-kit={plugin}",
                "-m",
                "stonks_plugin_kit",
            ],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "3 passed" in proc.stdout
