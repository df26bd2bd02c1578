"""Start-up stays lean (issue 17), checked as facts, never as timings.

- No process imports jsonschema (or referencing, rpds) before a config is validated: not
  ``django.setup()`` with the bundled plugins, not safe mode, not ``manage.py check``.
- Installed distributions are scanned once per process: settings (``plugin_apps()``) and
  ``ready()`` share the scan, and each distribution's metadata files are read once.
- The shared scan finds what ``importlib.metadata.entry_points()`` and ``find_spec`` find,
  shadowed packages, duplicate distributions and odd metadata included.
- What discovery keeps of a valid manifest is its file's bytes, and a candidate read back
  from that says what it said before.

Start-up can be observed only once per process, so those checks run a fresh interpreter.
The speed and memory figures are benchmarks/bench_ready.py, bench_entry_points.py and
bench_memory.py.
"""

from __future__ import annotations

import importlib
import json
import os
import pickle
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

from stonks_plugins import installed
from stonks_plugins.discovery import discover
from stonks_plugins.discovery.candidate import Candidate, digest
from stonks_plugins.discovery.directories import clear_cache
from stonks_plugins.discovery.entry_points import GROUPS, forget_entry_points, scan_entry_points
from stonks_plugins.manifest.model import PluginManifest
from stonks_plugins.manifest.validation import parse_manifest
from tests.conftest import BUNDLED, ROOT

HEAVY = ("jsonschema", "referencing", "rpds")

# The child: start the site as a process does, report which heavy modules it imported, then
# validate a config (the moment they may come) and report again.
SETUP = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
import django
django.setup()
heavy = ("jsonschema", "referencing", "rpds")
before = sorted(m for m in sys.modules if m.split(".")[0] in heavy)
from stonks_plugins.config.validation import validate_config
_, issues = validate_config({"type": "object", "required": ["a"]}, {})
after = sorted({m.split(".")[0] for m in sys.modules if m.split(".")[0] in heavy})
print("REPORT " + json.dumps({"before": before, "after": after, "issues": len(issues)}))
"""

# manage.py check, in-process, reporting at exit what it imported.
CHECK = r"""
import atexit, json, runpy, sys
sys.path.insert(0, sys.argv[1])
heavy = ("jsonschema", "referencing", "rpds")
atexit.register(lambda: print("REPORT " + json.dumps(
    sorted(m for m in sys.modules if m.split(".")[0] in heavy))))
sys.argv = ["manage.py", "check"]
runpy.run_path("manage.py", run_name="__main__")
"""

# Settings and ready() with one installed plugin distribution on PYTHONPATH: how often the
# scan ran and each of its metadata files was opened (an audit hook sees every open).
SCAN = r"""
import json, os, sys
sys.path.insert(0, sys.argv[1])
site = sys.argv[2] + os.sep
opened = {}
mine = os.path.join(sys.argv[1], "stonks_plugins") + os.sep


def ours():  # an open the plugin system made (kombu, imported by it, reads entry points too)
    frame = sys._getframe(2)
    while frame is not None:
        name = frame.f_code.co_filename
        if name.startswith(mine):
            return True
        if "site-packages" in name or "importlib/metadata" in name:
            return False
        frame = frame.f_back
    return False


def hook(event, args):
    if event == "open" and args and isinstance(args[0], str) and args[0].startswith(site):
        if ours():
            opened[args[0][len(site):]] = opened.get(args[0][len(site):], 0) + 1
sys.addaudithook(hook)
from stonks_plugins import installed
scans = []
real = installed._scan
installed._scan = lambda: scans.append(1) or real()
import django
django.setup()
from stonks_plugins.discovery.entry_points import scan_entry_points
found = [(c.name, c.ok, c.location) for c in scan_entry_points()]
print("REPORT " + json.dumps({"scans": len(scans), "opened": opened, "found": found}))
"""


def _child(code: str, *args: str, env: dict[str, str]) -> Any:
    proc = subprocess.run(
        [sys.executable, "-c", code, str(ROOT), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, f"child failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}"
    line = next(x for x in proc.stdout.splitlines() if x.startswith("REPORT "))
    return json.loads(line.removeprefix("REPORT "))


def _env(tmp_path: Path, plugin_dirs: str, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "stonks_overwatch.settings",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "PLUGIN_DIRS": plugin_dirs,
        "PLUGINS_SAFE_MODE": "0",
        "REDIS_URL": "",
        "CELERY_BROKER_URL": "",
        "LOG_LEVEL": "ERROR",
        **extra,
    }


@pytest.mark.parametrize("safe_mode", ["0", "1"])
def test_start_up_imports_no_jsonschema_until_a_config_is_validated(
    tmp_path: Path, safe_mode: str
) -> None:
    # The bundled plugins declare config schemas, secrets among them: still nothing.
    env = _env(tmp_path, str(BUNDLED), PLUGINS_SAFE_MODE=safe_mode)
    report = _child(SETUP, env=env)
    assert report["before"] == []
    # The same process validates a config: now jsonschema is there, and it worked.
    assert report["after"] == list(HEAVY) and report["issues"] == 1


def test_manage_py_check_imports_no_jsonschema(tmp_path: Path) -> None:
    assert _child(CHECK, env=_env(tmp_path, str(BUNDLED))) == []


# -- installed distributions -------------------------------------------------------------------

MANIFEST = {
    "plugin": {"name": "NAME", "version": "1.0.0", "type": "TYPE"},
    "api": {"min_version": "1.0.0", "max_version": "2.0.0"},
    "dependencies": {"python": ">=3.11", "stonks-overwatch-core": ">=2.0.0,<3.0.0"},
    "capabilities": {"services": []},
}


def _manifest(name: str, plugin_type: str) -> str:
    data = json.loads(json.dumps(MANIFEST))
    data["plugin"].update(name=name, type=plugin_type)
    if plugin_type == "broker":
        data["capabilities"]["services"] = ["portfolio"]
        data["services"] = {"portfolio": f"{name.replace('-', '_')}.services.PortfolioService"}
    return json.dumps(data, indent=2)


def install(
    site: Path,
    dist: str,
    version: str,
    entries: str,
    package: str | None = None,
    manifest: str | None = None,
    metadata_text: str | None = None,
) -> None:
    """A distribution as pip leaves it: ``NAME-VERSION.dist-info`` and its package."""
    info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        metadata_text or f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n\nText\n"
    )
    (info / "entry_points.txt").write_text(textwrap.dedent(entries))
    if package is not None:
        (site / package).mkdir(exist_ok=True)
        (site / package / "__init__.py").write_text("")
        if manifest is not None:
            (site / package / "plugin_manifest.json").write_text(manifest)


@pytest.fixture
def sites(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, Path, Path]]:
    """Three folders on sys.path, in this order: ``early`` (before the others), ``site`` and
    ``late`` (after the interpreter's own)."""
    early, site, late = tmp_path / "early", tmp_path / "site", tmp_path / "late"
    for folder in (early, site, late):
        folder.mkdir()
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.syspath_prepend(str(early))
    monkeypatch.setattr(sys, "path", [*sys.path, str(late)])
    forget_entry_points()
    yield early, site, late
    forget_entry_points()
    importlib.invalidate_caches()


def _reference() -> list[tuple[Any, ...]]:
    """What importlib.metadata and find_spec say, as the scan used to ask them."""
    eps = metadata.entry_points()
    out = []
    for group in GROUPS:
        for ep in sorted(eps.select(group=group), key=lambda e: e.name):
            dist = ep.dist
            label = f"{dist.metadata['Name']}=={dist.version}" if dist is not None else None
            try:
                spec = importlib.util.find_spec(ep.value.split(":")[0].split(".")[0])
            except (ImportError, ValueError, AttributeError):
                spec = None
            folder = (
                str(next(iter(spec.submodule_search_locations)))
                if spec is not None and spec.submodule_search_locations
                else None
            )
            out.append((ep.name, group, ep.value, label, folder))
    return out


def test_the_shared_scan_finds_what_importlib_finds(sites: tuple[Path, Path, Path]) -> None:
    early, site, late = sites
    broker = "[stonks_overwatch.brokers]\nacme-broker = acme_broker.plugin:Plugin\n"
    install(site, "acme-broker", "1.2.0", broker, "acme_broker", _manifest("acme-broker", "broker"))
    install(
        site,
        "Two-Views",
        "0.1",
        """
        # a comment, a section of no interest, then two groups
        [console_scripts]
        two = two_views.cli:main

        [stonks_overwatch.views]
        zeta-view = two_views.plugin:Zeta
        alpha-view = two_views.plugin:Alpha
        [stonks_overwatch.middleware]
        tap = two_views.tap:Tap
        """,
        "two_views",
        _manifest("alpha-view", "view"),
    )
    # No manifest in the package; a value that names no module; an odd METADATA.
    install(site, "bare", "2.0", "[stonks_overwatch.brokers]\nbare = bare.plugin:P\n", "bare")
    install(site, "odd", "3.0", "[stonks_overwatch.brokers]\nodd = :nothing\n")
    install(
        site,
        "lower",
        "4.0",
        "[stonks_overwatch.aggregators]\nlow = low_agg.plugin:P\n",
        "low_agg",
        _manifest("low", "aggregator"),
        metadata_text="Metadata-Version: 2.1\nname: Lower-Case\nversion: 4.0\n",
    )
    # A module of the same name earlier on sys.path: the import system loads that, not the
    # distribution's package, so there is no package folder to read a manifest from.
    install(
        site,
        "shadowed",
        "1.0",
        "[stonks_overwatch.brokers]\nshadowed = shadowed.plugin:P\n",
        "shadowed",
        _manifest("shadowed", "broker"),
    )
    (early / "shadowed.py").write_text("")
    # The same distribution again, later on sys.path: only the first copy counts.
    install(late, "acme-broker", "0.9.0", "[stonks_overwatch.brokers]\nold = old_acme.plugin:P\n")
    importlib.invalidate_caches()

    found = [
        (e.name, e.group, e.value, e.distribution, e.package_dir)
        for e in installed.plugin_entry_points()
    ]
    assert found == _reference()
    mine = {e.name: e for e in installed.plugin_entry_points()}
    assert set(mine) >= {"acme-broker", "alpha-view", "zeta-view", "tap", "bare", "low", "odd"}
    assert "old" not in mine
    assert mine["acme-broker"].distribution == "acme-broker==1.2.0"
    assert mine["low"].distribution == "Lower-Case==4.0"
    assert mine["acme-broker"].manifest == str(site / "acme_broker" / "plugin_manifest.json")
    assert mine["odd"].package_dir is None and mine["odd"].manifest is None
    assert mine["shadowed"].package_dir is None

    # What discovery makes of them: the broker is fine, each broken one says why.
    by_value = {c.entry_point: c for c in scan_entry_points()}
    acme = by_value["acme_broker.plugin:Plugin"]
    assert acme.ok and acme.location == "acme-broker==1.2.0"
    assert "ships no plugin_manifest.json" in by_value["bare.plugin:P"].problem.message
    tap = by_value["two_views.tap:Tap"]  # a view's manifest in the middleware group
    assert tap.problem is not None and "$.plugin.type is 'view'" in tap.problem.message


def test_a_distributions_label_is_read_when_a_plugins_location_is(
    sites: tuple[Path, Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    import pickle

    from stonks_plugins.installed import metadata_files

    _, site, _ = sites
    broker = "[stonks_overwatch.brokers]\nacme-broker = acme_broker.plugin:Plugin\n"
    install(site, "acme-broker", "1.2.0", broker, "acme_broker", _manifest("acme-broker", "broker"))
    importlib.invalidate_caches()
    reads: list[object] = []
    real = metadata_files.distribution_label
    monkeypatch.setattr(
        metadata_files, "distribution_label", lambda f, d: reads.append(f) or real(f, d)
    )
    acme = next(c for c in scan_entry_points() if c.entry_point == "acme_broker.plugin:Plugin")
    assert acme.ok and reads == []  # the scan read no METADATA
    copy = pickle.loads(pickle.dumps(acme))  # as a process-isolated plugin's child gets it
    assert type(copy.stored("location")) is str and copy.location == "acme-broker==1.2.0"
    assert len(reads) == 1
    assert acme.location == "acme-broker==1.2.0" and acme.label == "acme-broker"
    assert len(reads) == 1  # read once, kept


def test_one_scan_per_process_each_metadata_file_read_once(
    tmp_path: Path,
) -> None:
    site = tmp_path / "site"
    broker = "[stonks_overwatch.brokers]\nacme-broker = acme_broker.plugin:Plugin\n"
    install(site, "acme-broker", "1.2.0", broker, "acme_broker", _manifest("acme-broker", "broker"))
    (tmp_path / "empty").mkdir()
    env = _env(tmp_path, str(tmp_path / "empty"), PYTHONPATH=str(site))
    report = _child(SCAN, str(site), env=env)
    # Settings listed the plugin apps, ready() discovered: one scan (Celery's start-up puts
    # the working directory on sys.path in between, which changes nothing).
    assert report["scans"] == 1
    info = "acme_broker-1.2.0.dist-info"
    assert report["opened"][f"{info}/entry_points.txt"] == 1
    assert report["opened"][f"{info}/METADATA"] == 1
    # The manifest too: read by settings (does it declare a Django app?), not again by ready().
    assert report["opened"]["acme_broker/plugin_manifest.json"] == 1
    assert report["found"] == [["acme-broker", True, "acme-broker==1.2.0"]]


def test_a_manifest_changed_after_settings_read_it_is_read_again(tmp_path: Path) -> None:
    from stonks_plugins.django_apps import plugin_apps

    folder = tmp_path / "plugins" / "acme-broker"
    folder.mkdir(parents=True)
    manifest = folder / "plugin_manifest.json"
    data = json.loads(_manifest("acme-broker", "broker"))
    manifest.write_text(json.dumps(data))
    clear_cache()
    try:
        assert plugin_apps([tmp_path / "plugins"], host_apps=[]) == []  # as settings do
        data["plugin"]["version"] = "9.9.9"
        manifest.write_text(json.dumps(data, indent=1))  # another size, whatever the clock
        cand = discover([tmp_path / "plugins"], entry_points=False).by_name()["acme-broker"]
        assert cand.manifest is not None and cand.manifest.version == "9.9.9"
    finally:
        clear_cache()


# -- what discovery keeps -----------------------------------------------------------------------


def test_discovery_keeps_a_valid_manifest_as_its_bytes_and_reads_back_the_same(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "plugins" / "acme-broker"
    folder.mkdir(parents=True)
    text = _manifest("acme-broker", "broker")
    data = json.loads(text)
    data["x-notes"] = "kept in raw, not in the model"
    (folder / "plugin_manifest.json").write_text(json.dumps(data))
    clear_cache()
    try:
        cand = discover([tmp_path / "plugins"], entry_points=False).by_name()["acme-broker"]
        kept = cand.stored("manifest")
        assert not isinstance(kept, PluginManifest)  # the bytes, not the parsed model
        assert not hasattr(cand, "__dict__")  # slots: no per-instance dictionary
        assert cand.ok and cand.declared_name == "acme-broker"
        assert cand.manifest == parse_manifest(data, "t")
        assert cand.raw == data  # x- keys included
        assert cand.fingerprint == digest((folder / "plugin_manifest.json").read_bytes())
        clone = pickle.loads(pickle.dumps(cand))  # as sent to a plugin's child process
        assert clone == cand and clone.manifest == cand.manifest and clone.raw == data
        assert isinstance(clone, Candidate) and clone.stored("manifest") is not None
        # Discovered again with nothing changed: the same verdict, nothing re-read.
        again = discover([tmp_path / "plugins"], entry_points=False).by_name()["acme-broker"]
        assert again is cand
    finally:
        clear_cache()
