"""Installing, upgrading, uninstalling and purging plugins with the real pip.

A small broker plugin, ``install-probe-broker`` (distribution ``stonks-install-probe-broker``,
package ``install_probe``), is written and built into wheels here. pip installs them into a
throwaway virtual environment whose ``site-packages`` this test process imports from (put on
``sys.path`` for the test, then emptied and taken off): the code path is the production one
(``python -m pip`` as a child process, then this process sees the new distribution without a
restart), but the shared test environment that other tests run in at the same time is never
changed. That environment lends its packages to the throwaway one through a ``.pth`` file
(pip, hatchling), so nothing is downloaded: pip runs with ``--no-index`` and finds
requirements in the folder of built wheels.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from stonks_overwatch.core.registry import BrokerRegistry
from stonks_plugins.discovery.entry_points import forget_entry_points
from stonks_plugins.install import pip as pip_runner
from stonks_plugins.manager import manager
from stonks_plugins.models import Plugin, PluginConfig, PluginEvent
from stonks_plugins.trust import integrity
from tests.cli import cli, cli_json

pytestmark = [pytest.mark.slow, pytest.mark.django_db]

NAME = "install-probe-broker"
DIST = "stonks-install-probe-broker"
PACKAGE = "install_probe"
PLUGINS = "/admin/stonks_plugins/plugin/"
API = "/api/v1"
PIP = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]


# -- the probe plugin, as source folders and wheels --------------------------------------------


def _manifest(version: str) -> dict[str, Any]:
    return {
        "plugin": {
            "name": NAME,
            "version": version,
            "type": "broker",
            "display_name": "Install Probe",
            "description": "Test plugin installed with pip by the install tests",
        },
        "api": {"min_version": "1.0.0", "max_version": "2.0.0"},
        "dependencies": {"python": ">=3.11", "stonks-overwatch-core": ">=2.0.0,<3.0.0"},
        "capabilities": {"services": ["portfolio"]},
        "configuration": {
            "schema": {
                "type": "object",
                "properties": {
                    "settings": {
                        "type": "object",
                        "properties": {"nickname": {"type": "string", "default": ""}},
                    }
                },
            }
        },
        "services": {"portfolio": f"{PACKAGE}.services.PortfolioService"},
        "entry_points": {"main": f"{PACKAGE}.plugin:ProbePlugin"},
    }


SERVICES = '''"""One position, so a page shows which version is served."""

from stonks_plugins.sdk import PortfolioEntry, PortfolioServiceInterface, TotalPortfolio

from .data import SYMBOL


class PortfolioService(PortfolioServiceInterface):
    def get_portfolio(self):
        return [PortfolioEntry(name="Install Probe Holding", symbol=SYMBOL, shares=2.0,
                               price=10.0, value=20.0)]

    def get_portfolio_total(self):
        return TotalPortfolio(total_value=20.0)
'''
PLUGIN = """from stonks_plugins.sdk import BaseBrokerPlugin


class ProbePlugin(BaseBrokerPlugin):
    pass
"""


def write_probe(
    root: Path,
    *,
    version: str = "1.0.0",
    symbol: str = "PRB1",
    plugin: bool = True,
    lock: bool = False,
    tamper: bool = False,
) -> Path:
    """A source folder of the probe (``plugin=False``: the same package announcing no
    plugin); ``lock`` records its files in the manifest, ``tamper`` then changes one."""
    src = root / f"probe-{version}-{symbol}-{int(plugin)}{int(lock)}{int(tamper)}"
    pkg = src / PACKAGE
    pkg.mkdir(parents=True)
    group = '[project.entry-points."stonks_overwatch.brokers"]'
    entry = f'{group}\n{NAME} = "{PACKAGE}.plugin:ProbePlugin"\n' if plugin else ""
    (src / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["hatchling"]\nbuild-backend = "hatchling.build"\n\n'
        f'[project]\nname = "{DIST}"\nversion = "{version}"\n\n{entry}\n'
        f'[tool.hatch.build.targets.wheel]\npackages = ["{PACKAGE}"]\n'
    )
    (pkg / "__init__.py").write_text('"""The install probe plugin."""\n')
    (pkg / "data.py").write_text(f'SYMBOL = "{symbol}"\n')
    (pkg / "services.py").write_text(SERVICES)
    (pkg / "plugin.py").write_text(PLUGIN)
    (pkg / "plugin_manifest.json").write_text(json.dumps(_manifest(version), indent=2))
    if lock:
        integrity.lock_folder(pkg)
    if tamper:
        (pkg / "data.py").write_text('SYMBOL = "EVIL"\n')
    return src


def build_wheel(src: Path, out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    before = set(out.glob("*.whl"))
    subprocess.run(
        [
            *PIP,
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "-q",
            "-w",
            str(out),
            str(src),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    (wheel,) = set(out.glob("*.whl")) - before
    return wheel


class Wheels:
    """The probe's wheels: ``index`` is where pip finds requirements (v1 and v2 only)."""

    def __init__(self, base: Path) -> None:
        self.sources = base / "sources"
        self.index = base / "index"
        self.v1 = build_wheel(write_probe(self.sources), self.index)
        self.v2 = build_wheel(write_probe(self.sources, version="1.1.0", symbol="PRB2"), self.index)
        self.tampered = build_wheel(
            write_probe(self.sources, lock=True, tamper=True), base / "tampered"
        )
        self.not_a_plugin = build_wheel(write_probe(self.sources, plugin=False), base / "plain")


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> Wheels:
    return Wheels(tmp_path_factory.mktemp("install-wheels"))


@pytest.fixture(scope="module")
def throwaway_env(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A virtual environment (no pip of its own) that imports the test environment's packages
    through a ``.pth`` file; (its python, its site-packages)."""
    venv = tmp_path_factory.mktemp("install-env") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = Path(
        subprocess.run(
            [str(python), "-I", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    host = sorted({sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]})
    (site / "_stonks_host.pth").write_text("\n".join(host) + "\n")
    return python, site


def _forget_probe() -> None:
    for module in [m for m in sys.modules if m == PACKAGE or m.startswith(f"{PACKAGE}.")]:
        del sys.modules[module]
    importlib.invalidate_caches()
    forget_entry_points()


@pytest.fixture
def env(
    throwaway_env: tuple[Path, Path],
    wheels: Wheels,
    plugin_dirs: Any,
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Path]:
    """Installing allowed, pip pointed at the throwaway environment, which this process
    imports from; emptied afterwards. Yields its site-packages."""
    python, site = throwaway_env
    settings.PLUGINS_INSTALL_ENABLED = True
    settings.PLUGINS_PIP_TIMEOUT = 120.0
    monkeypatch.setattr(pip_runner, "interpreter", lambda: str(python))
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(wheels.index))
    monkeypatch.setenv("PIP_NO_BUILD_ISOLATION", "0")  # pip's spelling of "no isolation"
    sys.path.append(str(site))
    _forget_probe()
    try:
        yield site
    finally:
        sys.path.remove(str(site))
        for child in site.iterdir():
            if child.name != "_stonks_host.pth":
                shutil.rmtree(child) if child.is_dir() else child.unlink()
        _forget_probe()


@pytest.fixture
def operator(django_user_model: Any, settings: Any) -> Client:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    user = django_user_model.objects.create_superuser("ops", "ops@example.com", "pw")
    client = Client()
    client.force_login(user)
    return client


def installed(site: Path) -> bool:
    return any(site.glob("stonks_install_probe_broker-*.dist-info"))


def row() -> Plugin:
    return Plugin.objects.get(name=NAME)


def shown(client: Client) -> str:
    """The home page: every active broker's positions."""
    return client.get("/").content.decode()


def reasons() -> list[str]:
    return list(PluginEvent.objects.filter(plugin__name=NAME).values_list("reason", flat=True))


# -- install, upgrade, uninstall -----------------------------------------------------------------


def test_installed_wheel_is_active_without_restart_then_upgraded_and_uninstalled(
    env: Path, wheels: Wheels, operator: Client
) -> None:
    code, out, err = cli("install", str(wheels.v1))
    assert code == 0, err
    assert f"installed {DIST} 1.0.0" in out
    assert installed(env)
    plugin = row()
    assert (plugin.state, plugin.source, plugin.version) == ("active", "entry_point", "1.0.0")
    assert plugin.location == f"{DIST}==1.0.0"
    assert NAME in BrokerRegistry().get_registered_brokers()
    assert "PRB1" in shown(operator)
    event = PluginEvent.objects.filter(plugin=plugin, kind="action").first()
    assert event is not None and event.actor == "cli"
    assert event.reason.startswith(f"installed {DIST}==1.0.0 from ")

    code, result = cli_json("install", str(wheels.v2))
    assert code == 0, result
    assert result["distributions"] == [
        {"name": DIST, "version": "1.1.0", "requested": True, "previous": "1.0.0"}
    ]
    assert [(p["name"], p["version"], p["state"]) for p in result["plugins"]] == [
        (NAME, "1.1.0", "active")
    ]
    page = shown(operator)
    assert "PRB2" in page and "PRB1" not in page
    assert f"upgraded {DIST} 1.0.0 -> 1.1.0 from {wheels.v2}" in reasons()

    code, result = cli_json("uninstall", NAME)
    assert code == 0, result
    assert result["distribution"] == f"{DIST}==1.1.0"
    assert not installed(env)
    plugin = row()
    assert plugin.missing and plugin.state == "error"
    assert NAME not in BrokerRegistry().get_registered_brokers()
    assert "PRB2" not in shown(operator)
    assert f"uninstalled {DIST}==1.1.0" in reasons()


def test_purge_with_and_without_the_config(
    env: Path, wheels: Wheels, caplog: pytest.LogCaptureFixture
) -> None:
    assert cli("install", f"{DIST}==1.0.0")[0] == 0  # a requirement, found in the index
    manager.set_config(NAME, {"settings": {"nickname": "kept"}}, actor="ana")
    code, out, err = cli("purge", NAME)
    assert code == 1
    assert "is present and has been active" in err and f"plugins uninstall {NAME}" in err
    assert row().configs.count() == 1  # refused: nothing changed

    assert cli("uninstall", NAME)[0] == 0
    code, result = cli_json("purge", NAME, "--keep-config")
    assert code == 0, result
    assert result["config_kept"] is True and result["deleted"]["stonks_plugins.PluginEvent"] > 0
    plugin = row()
    assert plugin.missing
    assert [c.data for c in plugin.configs.all()] == [{"settings": {"nickname": "kept"}}]
    assert reasons() == [
        "purged: its history was deleted; the row and its config versions are kept for a reinstall"
    ]

    # Reinstalled: the same row comes back with its config.
    assert cli("install", str(wheels.v1))[0] == 0
    plugin = row()
    assert (plugin.state, plugin.missing) == ("active", False)
    assert manager.get_config(NAME).data == {"settings": {"nickname": "kept"}}

    assert cli("uninstall", NAME)[0] == 0
    with caplog.at_level(logging.WARNING, logger="stonks_plugins.install"):
        code, out, err = cli("purge", NAME)
    assert code == 0, err
    assert "row and config deleted" in out
    assert not Plugin.objects.filter(name=NAME).exists()
    assert not PluginConfig.objects.filter(plugin__name=NAME).exists()
    assert any(
        f"plugin {NAME} purged by cli (config deleted)" in r.getMessage() for r in caplog.records
    )
    assert cli("purge", NAME)[0] == 1  # nothing left to purge


def test_install_a_source_folder(env: Path, wheels: Wheels) -> None:
    source = write_probe(wheels.sources.parent / "folder-install", symbol="SRC1")
    code, _out, err = cli("install", str(source))
    assert code == 0, err
    assert row().state == "active"
    assert cli("uninstall", NAME)[0] == 0
    assert not installed(env)


# -- refused installs ------------------------------------------------------------------------------


def test_a_tampered_wheel_is_refused_and_uninstalled_again(env: Path, wheels: Wheels) -> None:
    code, _out, err = cli("install", str(wheels.tampered))
    assert code == 1
    assert "error: refused" in err and "pip said" not in err
    assert "its files do not match the lock in plugin_manifest.json" in err
    assert "changed: data.py" in err
    assert f"it was uninstalled again ({DIST})" in err
    assert not installed(env)
    assert not Plugin.objects.filter(name=NAME, missing=False).exists()
    assert "install_probe" not in sys.modules  # none of its code ran


def test_an_unsigned_plugin_is_refused_under_enforce(env: Path, wheels: Wheels, settings) -> None:
    settings.PLUGINS_SIGNATURE_POLICY = "enforce"
    code, result = cli_json("install", str(wheels.v1))
    assert code == 1
    assert result["code"] == "integrity_failed"
    assert "it is not signed, and PLUGINS_SIGNATURE_POLICY is 'enforce'" in result["error"]
    assert not installed(env)


def test_a_distribution_without_a_plugin_is_uninstalled_again(env: Path, wheels: Wheels) -> None:
    code, result = cli_json("install", str(wheels.not_a_plugin))
    assert code == 1
    assert result["code"] == "not_a_plugin"
    assert (
        "announces no plugin" in result["error"] and "stonks_overwatch.brokers" in result["error"]
    )
    assert not installed(env)


def test_pip_failure_shows_pips_output(env: Path) -> None:
    code, _out, err = cli("install", "stonks-no-such-plugin-xyz==9.9")
    assert code == 1
    assert "error: pip could not install stonks-no-such-plugin-xyz==9.9" in err
    assert "pip said:" in err and "No matching distribution" in err


def test_a_pip_run_over_the_timeout_is_stopped(env: Path, wheels: Wheels, settings: Any) -> None:
    settings.PLUGINS_PIP_TIMEOUT = 0.01
    code, result = cli_json("install", str(wheels.v1))
    assert (code, result["code"]) == (1, "pip_timeout")
    assert "PLUGINS_PIP_TIMEOUT" in result["error"]
    assert not Plugin.objects.filter(name=NAME).exists()


def test_one_pip_run_at_a_time(env: Path, wheels: Wheels) -> None:
    with pip_runner.exclusive():  # as another install in this environment would
        code, result = cli_json("install", str(wheels.v1))
    assert (code, result["code"]) == (1, "busy")
    assert "another plugin install or uninstall is running" in result["error"]
    assert not installed(env)


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("missing-folder/", "no such file or folder"),
        ("nowhere.whl", "no such file or folder"),
        ("--index-url=http://evil.example/", "is an option, not a requirement"),
        ("not a requirement !", "is not a file, a folder or a valid requirement"),
    ],
)
def test_bad_targets_are_refused_before_pip(
    target: str, message: str, env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pip_runner, "run", lambda args: pytest.fail("pip must not run"))
    code, out, _ = cli("install", "--json", "--", target)  # '--': a target may start with '-'
    result = json.loads(out)
    assert (code, result["code"]) == (1, "bad_target")
    assert message in result["error"]


def test_a_plugin_folder_without_packaging_says_how_to_install_it(
    env: Path, plugin_dirs: Any, tmp_path: Path
) -> None:
    folder = write_probe(tmp_path)
    (folder / "pyproject.toml").unlink()
    shutil.move(str(folder / PACKAGE / "plugin_manifest.json"), folder / "plugin_manifest.json")
    code, result = cli_json("install", str(folder))
    assert code == 1
    assert "install it by copying the folder into a plugin directory" in result["error"]


# -- what uninstall and purge refuse --------------------------------------------------------------


def test_directory_plugins_are_not_uninstalled_and_running_ones_not_purged(
    plugin_dirs: Any, settings: Any
) -> None:
    settings.PLUGINS_INSTALL_ENABLED = True
    plugin_dirs.add("healthy-fixture")
    manager.sync()
    code, result = cli_json("uninstall", "healthy-fixture")
    assert (code, result["code"]) == (1, "not_uninstallable")
    assert "is a directory plugin" in result["error"] and "deleting that folder" in result["error"]
    code, result = cli_json("purge", "healthy-fixture")
    assert (code, result["code"]) == (1, "purge_refused")
    assert Plugin.objects.get(name="healthy-fixture").state == "active"

    # Gone (its folder deleted, then a sync): purged, config and all.
    shutil.rmtree(plugin_dirs.path / "healthy-fixture")
    manager.sync()
    code, result = cli_json("purge", "healthy-fixture")
    assert code == 0, result
    assert not Plugin.objects.filter(name="healthy-fixture").exists()


def test_the_setting_gate_refuses_everywhere(
    plugin_dirs: Any, operator: Client, wheels: Wheels
) -> None:
    plugin_dirs.add("healthy-fixture")
    manager.sync()
    for args in (("install", str(wheels.v1)), ("uninstall", "healthy-fixture")):
        code, result = cli_json(*args)
        assert (code, result["code"]) == (1, "install_disabled")
        assert "PLUGINS_INSTALL_ENABLED" in result["error"]
    # The console says so on its install page and refuses the upload.
    page = operator.get(f"{PLUGINS}install/").content.decode()
    assert "PLUGINS_INSTALL_ENABLED" in page
    response = operator.post(f"{PLUGINS}install/", {"wheel": _upload(wheels.v1)}, follow=True)
    assert any("PLUGINS_INSTALL_ENABLED" in str(m) for m in response.context["messages"])
    # The API answers 403 with the setting's name.
    api = APIClient()
    api.force_authenticate(_superuser())
    response = api.post(f"{API}/plugins/install/", {"wheel": _upload(wheels.v1)})
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "install_disabled"


def _superuser() -> Any:
    from django.contrib.auth import get_user_model

    return get_user_model().objects.get(username="ops")


def _upload(wheel: Path) -> SimpleUploadedFile:
    return SimpleUploadedFile(wheel.name, wheel.read_bytes(), "application/octet-stream")


# -- the console and the API ----------------------------------------------------------------------


def test_the_permission_gate(
    env: Path, wheels: Wheels, django_user_model: Any, settings: Any
) -> None:
    """Staff who may change plugins but not install them see no install page, and the API
    refuses them; nothing is installed."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    user = django_user_model.objects.create_user("carl", "c@x.io", "pw", is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label="stonks_plugins", codename__in=["view_plugin", "change_plugin"]
        )
    )
    client = Client()
    client.force_login(user)
    assert "Install a plugin" not in client.get(PLUGINS).content.decode()
    assert client.get(f"{PLUGINS}install/").status_code == 403
    assert client.post(f"{PLUGINS}install/", {"wheel": _upload(wheels.v1)}).status_code == 403
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    response = api.post(f"{API}/plugins/install/", {"wheel": _upload(wheels.v1)})
    assert response.status_code == 403
    assert "stonks_plugins.install_plugin" in response.json()["error"]["message"]
    assert not installed(env)


def test_console_upload_uninstall_and_purge(env: Path, wheels: Wheels, operator: Client) -> None:
    assert "Install a plugin" in operator.get(PLUGINS).content.decode()
    response = operator.post(f"{PLUGINS}install/", {"wheel": _upload(wheels.v1)}, follow=True)
    messages = [str(m) for m in response.context["messages"]]
    assert any(f"Installed {DIST} 1.0.0" in m for m in messages), messages
    assert any(f"{NAME}: active" in m for m in messages), messages
    assert row().state == "active" and "PRB1" in shown(operator)
    assert PluginEvent.objects.filter(plugin=row(), actor="ops", kind="action").exists()

    # A file that is not a wheel is refused before pip sees it.
    bad = SimpleUploadedFile("notes.txt", b"hello")
    response = operator.post(f"{PLUGINS}install/", {"wheel": bad}, follow=True)
    assert any("is not a wheel's file name" in str(m) for m in response.context["messages"])

    # Uninstall and purge are actions with a confirmation page.
    pk = str(row().pk)
    for action in ("uninstall_plugins", "purge_plugins"):
        form = {"action": action, "_selected_action": [pk]}
        confirm = operator.post(PLUGINS, form)
        assert confirm.status_code == 200 and NAME in confirm.content.decode()
        done = operator.post(PLUGINS, {**form, "post": "yes"}, follow=True)
        messages = [str(m) for m in done.context["messages"]]
        assert messages and all("Could not" not in m for m in messages), messages
        if action == "uninstall_plugins":
            assert row().missing and not installed(env)
    assert not Plugin.objects.filter(name=NAME).exists()


def test_api_install_uninstall_purge(env: Path, wheels: Wheels, operator: Client) -> None:
    api = APIClient()
    api.force_authenticate(_superuser())
    response = api.post(f"{API}/plugins/install/", {"wheel": _upload(wheels.v1)})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["plugins"][0]["name"] == NAME and body["plugins"][0]["state"] == "active"
    assert body["ok"] is True

    response = api.post(f"{API}/plugins/{NAME}/purge/")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "purge_refused"

    response = api.post(f"{API}/plugins/{NAME}/uninstall/")
    assert response.status_code == 200, response.content
    assert response.json()["distribution"] == f"{DIST}==1.0.0"
    assert row().missing

    response = api.post(f"{API}/plugins/{NAME}/purge/?keep_config=false")
    assert response.status_code == 200, response.content
    assert response.json()["config_kept"] is False
    assert not Plugin.objects.filter(name=NAME).exists()
    assert api.post(f"{API}/plugins/{NAME}/uninstall/").status_code == 404


# -- other processes ------------------------------------------------------------------------------

WATCHER = r"""
import json, os, sys, time
import django
django.setup()
from stonks_overwatch.core.factory import BrokerFactory
from stonks_overwatch.core.registry import BrokerRegistry

name = sys.argv[1]

def served():
    return name in BrokerRegistry().get_registered_brokers()

def wait(until, seconds=60.0):
    deadline = time.monotonic() + seconds
    while not until() and time.monotonic() < deadline:
        time.sleep(0.1)
    return until()

print(json.dumps({"served_at_start": served()}), flush=True)
sys.stdin.readline()  # the test installs the plugin, then says go
arrived = wait(served)
service = BrokerFactory().create_service(name, "portfolio") if arrived else None
symbols = [e.symbol for e in service.get_portfolio()] if service else []
print(json.dumps({"arrived": arrived, "symbols": symbols}), flush=True)
sys.stdin.readline()  # uninstalled
print(json.dumps({"gone": wait(lambda: not served())}), flush=True)
"""


def test_another_process_serves_an_installed_plugin_without_a_restart(
    env: Path, throwaway_env: tuple[Path, Path], wheels: Wheels, tmp_path: Path
) -> None:
    """``manage.py plugins install`` in one process (the throwaway environment's own Python,
    so pip changes that environment with no test double); a second process, running all
    along, serves the plugin once it is installed and stops once it is uninstalled."""
    python, _ = throwaway_env
    root = Path(__file__).resolve().parents[2]
    empty = tmp_path / "no-plugins"
    empty.mkdir()
    process_env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("REDIS_URL", "CELERY_BROKER_URL", "DJANGO_SETTINGS_MODULE")
    }
    process_env.update(
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        PLUGIN_DIRS=str(empty),
        DJANGO_SETTINGS_MODULE="stonks_overwatch.settings",
        PLUGINS_INSTALL_ENABLED="1",
        PLUGINS_WARMUP="0",
        PYTHONDONTWRITEBYTECODE="1",
    )

    def manage(*args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [str(python), "manage.py", *args],
            cwd=root,
            env=process_env,
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done

    manage("migrate", "-v", "0")
    watcher = subprocess.Popen(
        [str(python), "-c", WATCHER, NAME],
        cwd=root,
        env=process_env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert watcher.stdin is not None and watcher.stdout is not None
    try:
        assert json.loads(watcher.stdout.readline()) == {"served_at_start": False}
        assert (
            "install-probe-broker 1.0.0: active"
            in manage("plugins", "install", str(wheels.v1)).stdout
        )
        watcher.stdin.write("go\n")
        watcher.stdin.flush()
        assert json.loads(watcher.stdout.readline()) == {"arrived": True, "symbols": ["PRB1"]}
        manage("plugins", "uninstall", NAME)
        watcher.stdin.write("go\n")
        watcher.stdin.flush()
        assert json.loads(watcher.stdout.readline()) == {"gone": True}
    finally:
        watcher.kill()
        watcher.wait(timeout=30)
