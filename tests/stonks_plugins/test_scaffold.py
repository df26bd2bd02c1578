"""``manage.py plugins new``: the generated plugin validates, syncs as active, shows its data
on the home page, passes the test kit, its own tests pass, its wheel builds and is found
through its entry point — and adding it changes no file outside its folder (the measure of
issue 6: upstream, adding a broker touched 56 files)."""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path
from typing import Any

import pytest

from stonks_plugins.manager import manager
from stonks_plugins.models import Plugin
from stonks_plugins.scaffold import PLUGIN_TYPES, Names, package_name
from stonks_plugins.testing import PluginTestSuite, failure_report
from tests.cli import cli_exit as cli
from tests.conftest import ROOT

TEMPLATES = ROOT / "stonks_plugins" / "scaffold" / "templates"
GROUPS = {
    "broker": "stonks_overwatch.brokers",
    "aggregator": "stonks_overwatch.aggregators",
    "view": "stonks_overwatch.views",
    "middleware": "stonks_overwatch.middleware",
}


def new(tmp_path: Path, name: str, plugin_type: str = "broker") -> Path:
    code, out, err = cli("new", name, "--type", plugin_type, "--dir", str(tmp_path))
    assert code == 0, out + err
    return tmp_path / name


def clean_env(**extra: str) -> dict[str, str]:
    """The environment for a child process: no settings module or plugin overrides of ours."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DJANGO_SETTINGS_MODULE", "PLUGIN_DIRS", "PYTHONPATH")
        and not k.startswith("STONKS_PLUGIN_")
    }
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.update(extra)
    return env


# -- names and refusals ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "package", "prefix", "display"),
    [
        ("acme-broker", "acme_broker", "AcmeBroker", "Acme Broker"),
        ("my.csv_broker", "my_csv_broker", "MyCsvBroker", "My Csv Broker"),
        ("1st-broker", "plugin_1st_broker", "Plugin1stBroker", "1st Broker"),
        ("json", "json_plugin", "Json", "Json"),
        ("tests", "tests_plugin", "Tests", "Tests"),
        ("class", "class_plugin", "Class", "Class"),
    ],
)
def test_names(name: str, package: str, prefix: str, display: str) -> None:
    names = Names.of(name)
    assert (names.package, names.class_prefix, names.display_name) == (package, prefix, display)
    assert package_name(name) == package
    assert names.distribution == f"stonks-{name}"


@pytest.mark.parametrize("name", ["Acme", "_acme", "acme broker", "a" * 65, "ünï", "acme/x", ""])
def test_bad_names_are_refused_with_exit_2(tmp_path: Path, name: str) -> None:
    code, _, err = cli("new", name, "--dir", str(tmp_path))
    assert code == 2
    assert "invalid plugin name" in err and "^[a-z0-9][a-z0-9._-]{0,63}$" in err
    assert list(tmp_path.iterdir()) == []


def test_an_unknown_type_is_refused_with_exit_2(tmp_path: Path) -> None:
    code, _, err = cli("new", "acme", "--type", "exchange", "--dir", str(tmp_path))
    assert code == 2
    assert "unknown plugin type 'exchange'" in err and "broker, aggregator, view, middleware" in err
    assert list(tmp_path.iterdir()) == []


def test_an_existing_folder_is_refused_with_exit_1_unless_forced(tmp_path: Path) -> None:
    target = new(tmp_path, "acme-broker")
    (target / "acme_broker" / "exports.py").write_text("# my parser\n")
    (target / "NOTES.md").write_text("mine\n")
    code, out, err = cli("new", "acme-broker", "--dir", str(tmp_path))
    assert code == 1 and "already exists" in err and "--force" in err
    assert (target / "acme_broker" / "exports.py").read_text() == "# my parser\n"
    code, out, _ = cli("new", "acme-broker", "--dir", str(tmp_path), "--json")
    assert code == 1 and "already exists" in json.loads(out)["error"]
    code, _, _ = cli("new", "acme-broker", "--dir", str(tmp_path), "--force")
    assert code == 0
    assert "def parse_positions" in (target / "acme_broker" / "exports.py").read_text()
    assert (target / "NOTES.md").read_text() == "mine\n"  # not a generated file: kept


def test_a_file_in_the_way_is_refused(tmp_path: Path) -> None:
    (tmp_path / "acme").write_text("not a folder")
    code, _, err = cli("new", "acme", "--dir", str(tmp_path), "--force")
    assert code == 1 and "is not a folder" in err


@pytest.mark.slow
def test_exit_statuses_from_the_command_line(tmp_path: Path) -> None:
    new(tmp_path, "taken-broker")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "manage.py", "plugins", "new", *args, "--dir", str(tmp_path)],
            cwd=ROOT,
            env=clean_env(DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}"),
            capture_output=True,
            text=True,
            timeout=120,
        )

    assert run("Bad").returncode == 2
    assert run("ok-broker", "--type", "nope").returncode == 2
    proc = run("taken-broker")
    assert proc.returncode == 1 and "already exists" in proc.stderr


# -- what is written -------------------------------------------------------------------------------


def test_default_folder_is_the_first_plugin_dir_and_json_lists_the_files(plugin_dirs) -> None:
    code, out, _ = cli("new", "acme-broker", "--json")
    assert code == 0
    data = json.loads(out)
    target = plugin_dirs.path / "acme-broker"
    assert Path(data["path"]) == target.resolve()
    assert (data["name"], data["type"], data["package"]) == ("acme-broker", "broker", "acme_broker")
    assert data["entry_point_group"] == "stonks_overwatch.brokers"
    on_disk = sorted(p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file())
    assert data["files"] == on_disk
    assert {
        "plugin_manifest.json",
        "pyproject.toml",
        "README.md",
        ".gitignore",
        "acme_broker/__init__.py",
        "acme_broker/config.py",
        "acme_broker/exports.py",
        "acme_broker/plugin.py",
        "acme_broker/services.py",
        "acme_broker/data/positions.csv",
        "acme_broker/data/transactions.csv",
        "tests/test_acme_broker.py",
    } == set(on_disk)
    assert not [p for p in plugin_dirs.path.iterdir() if p.name.startswith(".")]  # no staging
    assert any("plugins sync" in step for step in data["next_steps"])


def test_a_name_already_taken_is_a_warning(plugin_dirs, tmp_path: Path) -> None:
    plugin_dirs.add("healthy-fixture")
    code, out, _ = cli("new", "healthy-fixture", "--dir", str(tmp_path / "elsewhere"), "--json")
    assert code == 0
    (warning,) = json.loads(out)["warnings"]
    assert "already installed" in warning and "duplicate" in warning


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level:
            names.add(node.module or "")
    return names


@pytest.mark.parametrize("plugin_type", PLUGIN_TYPES)
def test_every_type_validates_and_passes_the_kit(tmp_path: Path, plugin_type: str) -> None:
    name = f"my-{plugin_type}"
    target = new(tmp_path, name, plugin_type)
    code, out, _ = cli("validate", str(target), "--json")
    assert code == 0 and json.loads(out)["valid"] is True, out
    manifest = json.loads((target / "plugin_manifest.json").read_text())
    assert manifest["plugin"]["type"] == plugin_type
    assert (
        manifest["entry_points"]["main"] == f"my_{plugin_type}.plugin:My{plugin_type.title()}Plugin"
    )
    schema = manifest["configuration"]["schema"]
    assert isinstance(schema, dict) and "settings" in schema["properties"]

    suite = PluginTestSuite(target)
    results = suite.run_all(cycles=2)
    assert all(r.passed for r in results), failure_report(suite.name, suite.location, results)

    # A plugin imports from the project only stonks_plugins.sdk (its tests: the kit).
    package = target / f"my_{plugin_type}"
    for source in package.rglob("*.py"):
        project = {m for m in _imports(source) if m.startswith(("stonks_plugins", "stonks_ov"))}
        assert project <= {"stonks_plugins.sdk"}, source
    for source in (target / "tests").rglob("*.py"):
        project = {m for m in _imports(source) if m.startswith(("stonks_plugins", "stonks_ov"))}
        assert project <= {"stonks_plugins.testing"}, source

    pyproject = tomllib.loads((target / "pyproject.toml").read_text())
    group = pyproject["project"]["entry-points"][GROUPS[plugin_type]]
    assert group == {name: manifest["entry_points"]["main"]}
    wheel = pyproject["tool"]["hatch"]["build"]["targets"]["wheel"]
    assert wheel["force-include"] == {
        "plugin_manifest.json": f"my_{plugin_type}/plugin_manifest.json"
    }


def test_templates_ship_as_package_data() -> None:
    """The glob in pyproject.toml's package-data covers every template file."""
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    globs = data["tool"]["setuptools"]["package-data"]["stonks_plugins"]
    pkg = ROOT / "stonks_plugins"
    shipped = {p for g in globs for p in pkg.glob(g) if p.is_file()}
    templates = {p for p in TEMPLATES.rglob("*") if p.is_file() and "__pycache__" not in p.parts}
    assert templates and templates <= shipped


# -- in the host -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_new_broker_syncs_active_and_shows_on_the_home_page(
    plugin_dirs, admin_client_logged
) -> None:
    code, _, _ = cli("new", "my-broker", "--type", "broker")
    assert code == 0
    code, out, _ = cli("sync", "--json")
    assert code == 0 and "my-broker" in json.loads(out)["activated"]
    row = Plugin.objects.get(name="my-broker").summary()
    assert (row["state"], row["source"], row["type"], row["error"]) == (
        "active",
        "directory",
        "broker",
        None,
    )
    html = admin_client_logged.get("/").content.decode()
    rows = [part.split("</tr>", 1)[0] for part in html.split('<tr data-broker="my-broker">')[1:]]
    assert len(rows) == 2, html
    assert "Acme Corporation" in rows[0] + rows[1] and "Globex Holdings" in rows[0] + rows[1]
    assert ">405.00<" in "".join(rows) and ">125.00<" in "".join(rows)
    code, out, _ = cli("health", "my-broker", "--json")
    assert code == 0 and json.loads(out)["status"] == "healthy"
    assert manager.get("my-broker").state == "active"


@pytest.mark.django_db
def test_every_type_shows_up_in_the_host(plugin_dirs, admin_client_logged) -> None:
    """An aggregator's panel on the home page, a view's page under /plugins/NAME/, a
    middleware around the broker calls: zero core changes for any type."""
    for plugin_type in PLUGIN_TYPES:
        assert cli("new", f"my-{plugin_type}", "--type", plugin_type)[0] == 0
    code, out, _ = cli("sync", "--json")
    assert code == 0
    assert sorted(json.loads(out)["activated"]) == sorted(f"my-{t}" for t in PLUGIN_TYPES)
    html = admin_client_logged.get("/").content.decode()
    assert 'data-broker="my-broker"' in html
    assert "Positions by broker" in html
    page = admin_client_logged.get("/plugins/my-view/")
    assert page.status_code == 200 and b"positions" in page.content
    intercepted = manager.metrics("my-middleware")["metrics"]["intercept"]["calls"]
    assert intercepted > 0


# -- slow: subprocesses, pip, git ----------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("plugin_type", ["broker", "view"])
def test_the_generated_tests_pass(tmp_path: Path, plugin_type: str) -> None:
    target = new(tmp_path, f"gen-{plugin_type}", plugin_type)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q"],
        cwd=target,
        env=clean_env(PYTHONPATH=str(ROOT)),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    expected = 11 if plugin_type == "broker" else 3
    assert f"{expected} passed" in proc.stdout, proc.stdout


WHEEL_SCRIPT = r"""
import json
from stonks_plugins.discovery.entry_points import scan_entry_points
from stonks_plugins.testing import PluginTestSuite

found = {c.name: c for c in scan_entry_points()}
cand = found["wheel-broker"]
suite = PluginTestSuite(cand)
results = suite.run_all(cycles=2)
print(json.dumps({
    "source": cand.source.value, "group": cand.group, "location": cand.location,
    "problem": cand.problem.as_dict() if cand.problem else None,
    "passed": all(r.passed for r in results),
    "report": "\n".join(r.report(failures_only=True) for r in results),
}))
"""


@pytest.mark.slow
def test_the_wheel_builds_and_is_found_through_its_entry_point(tmp_path: Path) -> None:
    target = new(tmp_path / "src", "wheel-broker")
    dist = tmp_path / "dist"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    proc = subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(dist), str(target)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (wheel,) = dist.glob("stonks_wheel_broker-0.1.0-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        assert (
            "[stonks_overwatch.brokers]\nwheel-broker = wheel_broker.plugin:WheelBrokerPlugin"
            in (zf.read(entry_points).decode())
        )
    assert {
        "wheel_broker/plugin_manifest.json",
        "wheel_broker/data/positions.csv",
        "wheel_broker/data/transactions.csv",
        "wheel_broker/services.py",
    } <= names
    assert not any(n.startswith("tests/") for n in names)

    site = tmp_path / "site"
    proc = subprocess.run(
        [*pip, "install", "--no-deps", "--no-build-isolation", "--target", str(site), str(wheel)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    proc = subprocess.run(
        [sys.executable, "-c", WHEEL_SCRIPT],
        cwd=tmp_path,
        env=clean_env(PYTHONPATH=os.pathsep.join([str(site), str(ROOT)])),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    assert (data["source"], data["group"], data["problem"]) == (
        "entry_point",
        "stonks_overwatch.brokers",
        None,
    )
    assert data["location"] == "stonks-wheel-broker==0.1.0"
    assert data["passed"], data["report"]


HOME_SCRIPT = r"""
import json, os
import django
os.environ["DJANGO_SETTINGS_MODULE"] = "stonks_overwatch.settings"
django.setup()
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client
from stonks_plugins.models import Plugin

call_command("migrate", verbosity=0)
call_command("plugins", "sync")
user = User.objects.create_user("u", password="pw")
client = Client()
client.force_login(user)
print(json.dumps({
    "acme": Plugin.objects.get(name="acme-broker").summary(),
    "page": client.get("/").content.decode(),
}, default=str))
"""


def _git(repo: Path, *args: str) -> str:
    proc = subprocess.run(
        ["git", "-c", "user.name=kit", "-c", "user.email=kit@example.com", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.mark.slow
def test_adding_a_broker_changes_no_file_outside_its_folder(tmp_path: Path) -> None:
    """Issue 6, item 7: a copy of this checkout (tracked files and new ones not ignored, as
    they are now) in a fresh git repository; ``plugins new acme-broker`` with the default
    PLUGIN_DIRS, sync, the home page shows acme's positions, and ``git status`` lists only
    paths under plugins/acme-broker/."""
    repo = tmp_path / "checkout"
    listed = _git(ROOT, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
    for rel in filter(None, listed.split("\0")):
        src = ROOT / rel
        if src.is_file():  # files deleted in the work tree are still in the index
            dest = repo / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest)
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "baseline")
    assert _git(repo, "status", "--porcelain", "--untracked-files=all") == ""

    env = clean_env(DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}", REDIS_URL="")
    proc = subprocess.run(
        [sys.executable, "manage.py", "plugins", "new", "acme-broker", "--type", "broker"],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (repo / "plugins" / "acme-broker" / "plugin_manifest.json").is_file()

    proc = subprocess.run(
        [sys.executable, "-c", HOME_SCRIPT],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = json.loads(proc.stdout.strip().splitlines()[-1])
    assert data["acme"]["state"] == "active" and data["acme"]["error"] is None
    page = data["page"]
    assert page.count('<tr data-broker="acme-broker">') == 2
    assert "Acme Corporation" in page and "Globex Holdings" in page

    status = _git(repo, "status", "--porcelain", "--untracked-files=all").splitlines()
    paths = [line[3:] for line in status]
    assert "plugins/acme-broker/plugin_manifest.json" in paths
    outside = [p for p in paths if not p.startswith("plugins/acme-broker/")]
    assert outside == [], f"adding a broker changed core files: {outside}"
    assert all(line.startswith("??") for line in status)  # only new files, nothing modified
