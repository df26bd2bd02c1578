"""Distribution: every bundled plugin builds a wheel, and a wheel installed with pip into a
fresh virtual environment beside the host is discovered through its entry point, with no
folder on the plugin path, valid, compatible, and (for a broker) serving its data.

The fresh environment is made with ``python -m venv`` (no system site packages). The host is
installed into it from the repository's sources as a real distribution
(``stonks-overwatch-core``): its own pyproject needs setuptools>=77, which an offline
machine may not have, so the test packs the same two packages with hatchling (already there
for the plugins). The host's runtime dependencies (Django, jsonschema, ...) are not
downloaded: a ``.pth`` file points at the current environment's site-packages, which holds
no plugin. The plugin itself is installed into the fresh environment with pip, from the wheel.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import BUNDLED, ROOT

pytestmark = pytest.mark.slow

PIP = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
ARTEFACTS = ("build", "dist", "*.egg-info", "*.whl", ".eggs")


def _bundled() -> dict[str, dict[str, Any]]:
    """Plugin folder name → its distribution name, package, entry point and manifest."""
    found: dict[str, dict[str, Any]] = {}
    for folder in sorted(BUNDLED.iterdir()):
        if (
            not (folder / "pyproject.toml").is_file()
            or not (folder / "plugin_manifest.json").is_file()
        ):
            continue
        project = tomllib.loads((folder / "pyproject.toml").read_text("utf-8"))["project"]
        manifest = json.loads((folder / "plugin_manifest.json").read_text("utf-8"))
        groups = project.get("entry-points", {})
        entry = next(
            (
                (group, name, value)
                for group, points in groups.items()
                if group.startswith("stonks_overwatch.")
                for name, value in points.items()
            ),
            None,
        )
        found[folder.name] = {
            "name": manifest["plugin"]["name"],
            "type": manifest["plugin"]["type"],
            "distribution": project["name"],
            "version": project["version"],
            "entry_point": entry,
        }
    return found


BUNDLED_PLUGINS = _bundled()
BROKERS = ("degiro-broker", "bitvavo-broker", "csv-broker")

# What each bundled broker's sample data adds up to (see its tests for the arithmetic).
SAMPLE_TOTALS = {
    "degiro-broker": {"total_value": 2909.69, "total_cash": 1405.48, "total_deposits": 4200.00},
    "bitvavo-broker": {
        "total_value": 458.54 + 391.21 + 217.80,
        "total_cash": 24.54,
        "total_deposits": 1450.00,
    },
    "csv-broker": {"total_value": 3742.00, "total_cash": 2000.75, "total_deposits": 5500.00},
}

SCRIPT = r'''
"""Run inside the fresh environment: discover with an empty plugin folder, then load each
expected plugin and call its services."""
import dataclasses
import json
import sys
from pathlib import Path


def summary(value):
    if isinstance(value, list):
        return {"count": len(value), "types": sorted({type(v).__name__ for v in value})}
    if dataclasses.is_dataclass(value):
        return {"type": type(value).__name__, **dataclasses.asdict(value)}
    return {"type": type(value).__name__}


def main():
    empty, expected = Path(sys.argv[1]), json.loads(sys.argv[2])
    import stonks_plugins
    from stonks_plugins.discovery import discover
    from stonks_plugins.interface_adapters import CompatibilityAdapter
    from stonks_plugins.registry import SERVICE_INTERFACES, PluginRegistry

    result = discover(plugin_dirs=[empty])
    report = {
        "prefix": sys.prefix,
        "base_prefix": sys.base_prefix,
        "host": stonks_plugins.__file__,
        "found": sorted(c.name for c in result.plugins),
        "plugins": {},
    }
    for name, kind in expected.items():
        cand = result.get(name)
        if cand is None:
            continue
        entry = {
            "source": cand.source.value,
            "location": cand.location,
            "entry_point": cand.entry_point,
            "ok": cand.ok,
            "problem": None if cand.problem is None else str(cand.problem),
            "root": str(cand.root),
        }
        report["plugins"][name] = entry
        if kind != "broker" or not cand.ok:
            continue
        registry = PluginRegistry()
        registry.register(cand)
        loaded = registry.load(name)
        entry["module"] = sys.modules[type(loaded.instance).__module__].__file__
        config = loaded.config_class.from_dict({})
        services = {}
        for stype in loaded.services:
            # As the v1 pages see it (a v2 service through the compatibility adapter).
            service = CompatibilityAdapter.adapt_v2_to_v1(
                loaded.create_service(stype, config=config), stype
            )
            methods = sorted(SERVICE_INTERFACES[stype].__abstractmethods__)
            services[stype.value] = {
                m: summary(getattr(service, m)()) for m in methods if m.startswith("get_")
            }
        entry["services"] = services
        entry["health"] = loaded.instance.health_check().status.value
        registry.clear()
    print(json.dumps(report, default=str))


main()
'''


def _run(cmd: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120, **kwargs)
    assert out.returncode == 0, f"{' '.join(map(str, cmd))}\n{out.stdout}\n{out.stderr}"
    return out


def _artefacts(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for pattern in ARTEFACTS for p in folder.glob(pattern)}


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``pip wheel`` of every bundled plugin, straight from its folder in plugins/."""
    out = tmp_path_factory.mktemp("wheels")
    built: dict[str, Path] = {}
    for folder, info in BUNDLED_PLUGINS.items():
        before = _artefacts(BUNDLED / folder)
        target = out / folder
        _run(
            [
                *PIP,
                "wheel",
                "--no-deps",
                "--no-build-isolation",
                "--no-index",
                "--quiet",
                "-w",
                str(target),
                str(BUNDLED / folder),
            ],
            cwd=out,
        )
        assert _artefacts(BUNDLED / folder) == before, f"build artefacts left in plugins/{folder}"
        (wheel,) = target.glob("*.whl")
        dist = info["distribution"].replace("-", "_")
        assert wheel.name.startswith(f"{dist}-{info['version']}-"), wheel.name
        built[folder] = wheel
    return built


def _host_wheel(out: Path) -> Path:
    """The host packed from the repository's sources (see the module docstring for why)."""
    src = out / "host-src"
    for package in ("stonks_overwatch", "stonks_plugins"):
        shutil.copytree(
            ROOT / package, src / package, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
        )
    version = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]["version"]
    (src / "pyproject.toml").write_text(
        "[build-system]\n"
        'requires = ["hatchling"]\n'
        'build-backend = "hatchling.build"\n\n'
        "[project]\n"
        'name = "stonks-overwatch-core"\n'
        f'version = "{version}"\n\n'
        "[tool.hatch.build.targets.wheel]\n"
        'packages = ["stonks_overwatch", "stonks_plugins"]\n'
    )
    _run(
        [
            *PIP,
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "-q",
            "-w",
            str(out / "host"),
            str(src),
        ]
    )
    (wheel,) = (out / "host").glob("*.whl")
    return wheel


@pytest.fixture(scope="module")
def fresh_venv(tmp_path_factory: pytest.TempPathFactory, wheels: dict[str, Path]) -> Path:
    """A new virtual environment holding the host and every plugin wheel, nothing else."""
    base = tmp_path_factory.mktemp("fresh")
    venv = base / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    python = venv / "bin" / "python"
    site = Path(
        _run(
            [str(python), "-I", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]
        ).stdout.strip()
    )
    host_site = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    # Only the host's dependencies come from the current environment, and no plugin does.
    for path in host_site:
        assert not list(Path(path).glob("stonks_*broker*")), path
    (site / "_stonks_host_dependencies.pth").write_text("\n".join(sorted(host_site)) + "\n")
    _run(
        [
            *PIP,
            "--python",
            str(python),
            "install",
            "--no-deps",
            "--no-index",
            "--quiet",
            str(_host_wheel(base)),
            *map(str, wheels.values()),
        ]
    )
    return venv


@pytest.fixture(scope="module")
def report(fresh_venv: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    work = tmp_path_factory.mktemp("run")
    empty = work / "no-plugins"
    empty.mkdir()
    script = work / "check.py"
    script.write_text(SCRIPT)
    expected = {info["name"]: info["type"] for info in BUNDLED_PLUGINS.values()}
    # -I: no PYTHONPATH, no user site, not even the script's folder on sys.path.
    out = _run(
        [str(fresh_venv / "bin" / "python"), "-I", str(script), str(empty), json.dumps(expected)],
        cwd=work,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_the_brokers_are_bundled_with_a_pyproject() -> None:
    assert set(BROKERS) <= set(BUNDLED_PLUGINS)
    for folder in BROKERS:
        group, name, _ = BUNDLED_PLUGINS[folder]["entry_point"]
        assert (group, name) == ("stonks_overwatch.brokers", folder)


@pytest.mark.parametrize("folder", sorted(BUNDLED_PLUGINS))
def test_wheel_carries_the_package_and_its_manifest(folder: str, wheels: dict[str, Path]) -> None:
    info = BUNDLED_PLUGINS[folder]
    _, _, value = info["entry_point"]
    package = value.split(".", 1)[0]
    with zipfile.ZipFile(wheels[folder]) as wheel:
        names = wheel.namelist()
        entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        assert f"{info['name']} = {value}" in wheel.read(entry_points).decode()
    assert f"{package}/plugin_manifest.json" in names
    assert f"{package}/__init__.py" in names
    assert not [n for n in names if "__pycache__" in n or n.startswith("tests/")]
    if folder in BROKERS:
        assert any(n.startswith(f"{package}/data/") and n.endswith(".csv") for n in names)


def test_the_environment_is_fresh(fresh_venv: Path, report: dict[str, Any]) -> None:
    config = (fresh_venv / "pyvenv.cfg").read_text()
    assert "include-system-site-packages = false" in config
    assert Path(report["prefix"]) == fresh_venv
    assert report["prefix"] != report["base_prefix"]
    # The host is the installed distribution, not the repository checkout.
    assert Path(report["host"]).is_relative_to(fresh_venv)


@pytest.mark.parametrize("folder", sorted(BUNDLED_PLUGINS))
def test_installed_wheel_is_discovered_through_its_entry_point(
    folder: str, fresh_venv: Path, report: dict[str, Any]
) -> None:
    info = BUNDLED_PLUGINS[folder]
    assert info["name"] in report["plugins"], report["found"]
    found = report["plugins"][info["name"]]
    assert found["source"] == "entry_point"
    assert found["location"] == f"{info['distribution']}=={info['version']}"
    assert found["entry_point"] == info["entry_point"][2]
    assert found["ok"], found["problem"]  # a valid manifest, compatible with this host
    assert Path(found["root"]).is_relative_to(fresh_venv)


@pytest.mark.parametrize("folder", BROKERS)
def test_installed_broker_serves_its_sample_data(
    folder: str, fresh_venv: Path, report: dict[str, Any]
) -> None:
    found = report["plugins"][BUNDLED_PLUGINS[folder]["name"]]
    assert Path(found["module"]).is_relative_to(fresh_venv)
    assert found["health"] == "healthy"
    services = found["services"]
    assert {"portfolio", "transaction", "deposit", "fee", "account"} <= set(services)
    for methods in services.values():
        for result in methods.values():
            assert result.get("count", 1) > 0, methods
    total = services["portfolio"]["get_portfolio_total"]
    assert total["type"] == "TotalPortfolio"
    for key, value in SAMPLE_TOTALS[folder].items():
        assert total[key] == pytest.approx(value), key
    assert services["transaction"]["get_transactions"]["types"] == ["Transaction"]
