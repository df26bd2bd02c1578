"""Discovery and the files a plugin supplies, tried as an attacker or a careless operator would
(issue 13, reproductions 6, 7, 8, 9 and 13): a folder name that is not UTF-8, a Django app
whose label is a host app's, a FIFO or a device as a plugin's file, plugin names that differ
only by '-', '.' and '_', and a 50 MB manifest. Each case ends in a clear error for that
plugin; the site, the sync and the other plugins carry on.

Files that cannot live in git (a FIFO, a folder name that is not UTF-8, a huge manifest) are
made here, in the test's temporary folder."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.apps import apps
from django.conf import settings as django_settings
from django.db import connections
from django.test import override_settings
from hypothesis import given
from hypothesis import strategies as st

from stonks_overwatch.core.service_types import ServiceType
from stonks_plugins import django_apps, loader, module_names
from stonks_plugins.conf import DEFAULTS
from stonks_plugins.discovery import discover, entry_points
from stonks_plugins.discovery.directories import scan_directory_plugin
from stonks_plugins.manager import manager
from stonks_plugins.models import Plugin, PluginEvent
from stonks_plugins.plugin_files import PluginFileError, read_plugin_file
from stonks_plugins.registry import plugin_registry
from tests.cli import cli
from tests.conftest import BUNDLED, FIXTURES, ROOT

MANIFEST = "plugin_manifest.json"


def copy(src: str, dest_dir: Path, as_name: str | None = None) -> Path:
    dest = dest_dir / (as_name or src)
    shutil.copytree(FIXTURES / src, dest, ignore=shutil.ignore_patterns("__pycache__"))
    return dest


def stored_text(row: Plugin) -> Iterator[str]:
    """Every string a plugin row holds, as the database gets it."""
    for field in row._meta.concrete_fields:
        value = getattr(row, field.attname)
        yield (
            value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
        )


# -- 6: a folder whose name is not UTF-8 ---------------------------------------------------------


def _misnamed_folder(base: Path, source: str = "collide-one") -> bytes:
    """A copy of a valid plugin under the folder name b'bad-\\xff-name' (not UTF-8)."""
    folder = os.path.join(os.fsencode(base), b"bad-\xff-name")
    shutil.copytree(os.fsencode(FIXTURES / source), folder)
    return folder


MISNAMED = "bad-\\xff-name"  # how it is listed: the bad byte spelled out


@pytest.mark.django_db
def test_a_folder_name_that_is_not_utf8_is_listed_and_the_others_sync(plugin_dirs) -> None:
    plugin_dirs.add("healthy-fixture")
    _misnamed_folder(plugin_dirs.path)

    code, out, err = cli("sync")

    assert code == 0, err
    assert MISNAMED in out.split("failed:", 1)[1]
    assert Plugin.objects.get(name="healthy-fixture").state == "active"
    row = Plugin.objects.get(name=MISNAMED)
    assert (row.state, row.error_code) == ("error", "manifest_unreadable")
    assert "not valid UTF-8" in row.error_message and "rename the folder" in row.error_message
    assert "b'bad-\\xffname'" not in row.error_message  # the bytes are shown as they are:
    assert "b'bad-\\xff-name'" in row.error_message
    assert not Plugin.objects.filter(name="collide-one").exists()  # its manifest is not read
    for plugin in Plugin.objects.all():  # nothing PostgreSQL would refuse reached the rows
        for text in stored_text(plugin):
            text.encode("utf-8")
    # Idempotent, like any sync.
    events = PluginEvent.objects.count()
    code, out, _ = cli("sync")
    assert code == 0 and out.strip().endswith("nothing changed")
    assert PluginEvent.objects.count() == events


@pytest.mark.django_db
def test_api_sync_answers_200_listing_the_folder(plugin_dirs, admin_client_logged) -> None:
    plugin_dirs.add("healthy-fixture")
    _misnamed_folder(plugin_dirs.path)

    response = admin_client_logged.post("/api/v1/plugins/sync/")

    assert response.status_code == 200, response.content
    assert MISNAMED in response.json()["failed"]
    listed = admin_client_logged.get("/api/v1/plugins/").json()
    rows = {r["name"]: r for r in (listed["results"] if isinstance(listed, dict) else listed)}
    assert rows[MISNAMED]["error"]["code"] == "manifest_unreadable"
    assert rows["healthy-fixture"]["state"] == "active"


def test_a_misnamed_folder_without_a_manifest_is_no_plugin(tmp_path: Path) -> None:
    os.mkdir(os.path.join(os.fsencode(tmp_path), b"notes-\xfe"))
    copy("healthy-fixture", tmp_path)
    assert list(discover([tmp_path], entry_points=False).by_name()) == ["healthy-fixture"]


# -- 7: a Django app plugin whose label is a host app's ------------------------------------------


def _app_plugin(base: Path, folder: str, package: str, apps_py: str | None = None) -> Path:
    """A Django app plugin made here (its package's modules are sentinels, like the fixtures')."""
    root = base / folder
    (root / package).mkdir(parents=True)
    raw = json.loads((FIXTURES / "hostile-app-label-auth" / MANIFEST).read_text())
    raw["plugin"]["name"] = folder
    raw["services"]["portfolio"] = f"{package}.services.PortfolioService"
    raw["x-django-app"] = package
    (root / MANIFEST).write_text(json.dumps(raw, indent=2))
    sentinel = (FIXTURES / "hostile-app-label-auth" / "auth" / "__init__.py").read_text()
    (root / package / "__init__.py").write_text(sentinel)
    if apps_py is not None:
        (root / package / "apps.py").write_text(apps_py)
    return root


SENTINELS = (
    "STONKS_FIXTURE_SENTINEL_HOSTILE_APP_LABEL_AUTH",
    "STONKS_FIXTURE_SENTINEL_HOSTILE_APP_LABEL_ADMIN",
)


def _hostile_apps(base: Path) -> None:
    copy("hostile-app-label-auth", base)  # package 'auth': django.contrib.auth's label
    copy("hostile-app-label-admin", base)  # AppConfig label 'admin'
    # rest_framework.authtoken is listed by settings after they call plugin_apps.
    _app_plugin(base, "label-authtoken", "authtoken")
    _app_plugin(
        base,
        "label-host",
        "tracker",
        'from django.apps import AppConfig\n\n\nclass C(AppConfig):\n    name = "x"\n'
        '    label: str = "stonks_plugins"\n',
    )
    _app_plugin(  # a label only running the code would tell
        base,
        "label-computed",
        "computed",
        "from django.apps import AppConfig\n\n\nclass C(AppConfig):\n    name = 'x'\n"
        "    label = 'no' + 'tesapp'\n",
    )
    _app_plugin(base, "label-invalid", "badlabel", 'class C:\n    label = "not-an-identifier"\n')
    copy("app-fixture", base)  # label 'notesapp': fine...
    # ... and a second plugin whose app has that label too: the first one keeps it.
    shutil.copytree(FIXTURES / "app-fixture", base / "zz-notes-copy")
    raw = json.loads((base / "zz-notes-copy" / MANIFEST).read_text())
    raw["plugin"]["name"] = "zz-notes-copy"
    (base / "zz-notes-copy" / MANIFEST).write_text(json.dumps(raw))


def test_plugin_apps_leave_out_apps_whose_label_is_taken(tmp_path: Path) -> None:
    _hostile_apps(tmp_path)
    before = set(sys.modules)
    try:
        # As settings call it: host apps read from the settings module itself.
        assert django_apps.plugin_apps([tmp_path]) == ["_stonks_plugin_pkgs.app_fixture.notesapp"]
        # As a caller that passes them: the same verdict.
        listed = django_apps.plugin_apps([tmp_path], host_apps=django_settings.INSTALLED_APPS)
        assert listed == ["_stonks_plugin_pkgs.app_fixture.notesapp"]
        new = set(sys.modules) - before
        assert new <= {"_stonks_plugin_pkgs", "_stonks_plugin_pkgs.app_fixture"}
        assert not [v for v in SENTINELS if v in os.environ]
    finally:
        sys.modules.pop("_stonks_plugin_pkgs.app_fixture", None)


def test_app_labels_are_read_from_the_source() -> None:
    assert django_apps.app_labels(str(FIXTURES / "app-fixture" / "notesapp"), "notesapp") == (
        frozenset({"notesapp"}),
        "",
    )
    admin_pkg = FIXTURES / "hostile-app-label-admin" / "notes_admin"
    assert django_apps.app_labels(str(admin_pkg), "notes_admin") == (frozenset({"admin"}), "")
    auth_pkg = FIXTURES / "hostile-app-label-auth" / "auth"
    assert django_apps.app_labels(str(auth_pkg), "auth") == (frozenset({"auth"}), "")


@pytest.mark.django_db
def test_sync_records_a_taken_label_as_manifest_invalid(plugin_dirs) -> None:
    plugin_dirs.add("hostile-app-label-auth")
    plugin_dirs.add("hostile-app-label-admin")
    _app_plugin(
        plugin_dirs.path,
        "label-computed",
        "computed",
        "class C:\n    label = 'no' + 'tesapp'\n",
    )
    plugin_dirs.add("healthy-fixture")

    report = manager.sync()

    assert set(report.failed) >= {"hostile-app-label-auth", "hostile-app-label-admin"}
    auth = Plugin.objects.get(name="hostile-app-label-auth")
    assert (auth.state, auth.error_code) == ("error", "manifest_invalid")
    assert "'auth'" in auth.error_message and "'django.contrib.auth'" in auth.error_message
    assert "rename" in auth.error_message
    assert auth.error_details == [{"path": "$.x-django-app", "message": auth.error_message}]
    assert auth.requires == ""  # a restart would not help: none is asked for
    admin = Plugin.objects.get(name="hostile-app-label-admin")
    assert admin.error_code == "manifest_invalid"
    assert "'admin'" in admin.error_message and "'django.contrib.admin'" in admin.error_message
    computed = Plugin.objects.get(name="label-computed")
    assert computed.error_code == "manifest_invalid" and "string literal" in computed.error_message
    assert Plugin.objects.get(name="healthy-fixture").state == "active"
    assert not [v for v in SENTINELS if v in os.environ]
    assert apps.get_app_config("auth").name == "django.contrib.auth"


def _subprocess_env(tmp_path: Path, plugin_dir: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("REDIS_URL", "CELERY_BROKER_URL", "DJANGO_SETTINGS_MODULE")
    }
    env.update(
        {
            "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
            "PLUGIN_DIRS": str(plugin_dir),
            "PYTHONDONTWRITEBYTECODE": "1",
            "PLUGINS_WARMUP": "0",
        }
    )
    return env


@pytest.mark.slow
def test_the_site_starts_beside_app_plugins_with_taken_labels(tmp_path: Path) -> None:
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    _hostile_apps(plugins)
    env = _subprocess_env(tmp_path, plugins)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
        )

    check = run("manage.py", "check")
    assert check.returncode == 0, check.stderr
    assert "Application labels aren't unique" not in check.stderr
    wsgi = run("-c", "import stonks_overwatch.wsgi; print('served')")
    assert wsgi.returncode == 0 and "served" in wsgi.stdout, wsgi.stderr
    assert run("manage.py", "migrate", "--no-input").returncode == 0
    sync = run("manage.py", "plugins", "sync")
    assert sync.returncode == 0, sync.stderr
    listed = run("manage.py", "plugins", "list", "--json")
    rows = {r["name"]: r for r in json.loads(listed.stdout)}
    for name, label, holder in (
        ("hostile-app-label-auth", "auth", "django.contrib.auth"),
        ("hostile-app-label-admin", "admin", "django.contrib.admin"),
        ("label-authtoken", "authtoken", "rest_framework.authtoken"),
        ("label-host", "stonks_plugins", "stonks_plugins"),
        ("zz-notes-copy", "notesapp", "_stonks_plugin_pkgs.app_fixture.notesapp"),
    ):
        error = rows[name]["error"]
        assert error["code"] == "manifest_invalid", (name, error)
        assert f"'{label}'" in error["message"] and f"'{holder}'" in error["message"]
    for name in ("label-computed", "label-invalid"):
        assert rows[name]["error"]["code"] == "manifest_invalid", rows[name]
    assert rows["app-fixture"]["state"] == "active", rows["app-fixture"]
    for out in (check, wsgi, sync, listed):
        assert not [v for v in SENTINELS if v in out.stdout + out.stderr]


# -- 8: a FIFO or a device as a plugin's file ----------------------------------------------------


def _within(seconds: float, call: Callable[[], Any], fifo: Path | None = None) -> Any:
    """``call()`` on a thread; a call that has not returned after ``seconds`` fails the test
    (instead of hanging the suite), and a reader blocked on ``fifo`` is then let go."""
    result: dict[str, Any] = {}

    def run() -> None:
        try:
            result["value"] = call()
        except BaseException as exc:
            result["error"] = exc
        finally:
            connections.close_all()

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        if fifo is not None:  # a writer that comes and goes: the blocked open returns
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            os.close(fd)
        pytest.fail(f"still waiting after {seconds} s: reading a plugin's file blocked")
    if "error" in result:
        raise result["error"]
    return result["value"]


@pytest.mark.django_db(transaction=True)
def test_a_fifo_as_config_schema_hangs_no_page(plugin_dirs, admin_client_logged) -> None:
    folder = plugin_dirs.add("config-fixture")
    plugin_dirs.add("healthy-fixture")
    fifo = folder / "config_schema.json"
    fifo.unlink()
    os.mkfifo(fifo)
    _within(60, manager.sync, fifo)
    row = Plugin.objects.get(name="config-fixture")

    def get(url: str) -> Any:
        return _within(60, lambda: admin_client_logged.get(url), fifo)

    for url in ("config/", "config/schema/"):
        response = get(f"/api/v1/plugins/config-fixture/{url}")
        assert response.status_code == 409, (url, response.content)
        error = response.json()["error"]
        assert error["code"] == "config_invalid"
        assert "plugin 'config-fixture'" in error["message"]
        assert "config_schema.json is a FIFO (named pipe), not a regular file" in error["message"]
    page = get(f"/admin/stonks_plugins/plugin/{row.pk}/change/")
    assert page.status_code == 200
    assert "is a FIFO (named pipe), not a regular file" in page.content.decode()
    home = get("/")
    assert home.status_code == 200
    html = home.content.decode()
    assert 'data-broker="healthy-fixture"' in html  # the other plugin is served
    assert "is a FIFO (named pipe)" in html  # and this one says why it is not


def test_a_fifo_or_a_device_as_manifest_is_never_read(tmp_path: Path) -> None:
    (tmp_path / "fifo").mkdir()
    os.mkfifo(tmp_path / "fifo" / MANIFEST)
    (tmp_path / "device").mkdir()
    (tmp_path / "device" / MANIFEST).symlink_to("/dev/zero")  # a read would never end
    copy("healthy-fixture", tmp_path)
    found = _within(30, lambda: discover([tmp_path], entry_points=False).by_name())
    assert list(found) == ["healthy-fixture"]  # neither is a plugin folder
    cand = _within(
        30, lambda: scan_directory_plugin(tmp_path / "fifo"), tmp_path / "fifo" / MANIFEST
    )
    assert cand.problem is not None and cand.problem.code == "manifest_unreadable"


@pytest.mark.django_db
def test_validate_refuses_a_fifo_manifest_with_a_clear_error(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / MANIFEST)
    code, out, err = _within(
        30, lambda: cli("validate", str(tmp_path / MANIFEST)), tmp_path / MANIFEST
    )
    assert code == 1
    assert "manifest_unreadable" in out + err and "FIFO" in out + err


def test_read_plugin_file_takes_regular_files_only_within_the_limit(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(PluginFileError, match=r"is a FIFO \(named pipe\), not a regular file"):
        _within(30, lambda: read_plugin_file(tmp_path / "pipe", 100), tmp_path / "pipe")
    with pytest.raises(PluginFileError, match="is a character device"):
        read_plugin_file("/dev/zero", 100)
    with pytest.raises(PluginFileError, match="is a directory"):
        read_plugin_file(tmp_path, 100)
    (tmp_path / "big").write_bytes(b"x" * 101)
    with pytest.raises(PluginFileError, match="is 101 bytes, more than the limit of 100 bytes"):
        read_plugin_file(tmp_path / "big", 100)
    assert read_plugin_file(tmp_path / "big", 101) == b"x" * 101
    (tmp_path / "link").symlink_to(tmp_path / "big")
    with pytest.raises(OSError):
        read_plugin_file(tmp_path / "link", 200, follow_symlinks=False)


@pytest.mark.django_db
def test_a_schema_file_over_the_limit_is_refused(plugin_dirs, admin_client_logged) -> None:
    folder = plugin_dirs.add("config-fixture")
    schema = json.loads((folder / "config_schema.json").read_text())
    schema["description"] = "x" * 5000
    (folder / "config_schema.json").write_text(json.dumps(schema))
    manager.sync()
    with override_settings(PLUGINS_MAX_SCHEMA_BYTES=4096):
        response = admin_client_logged.get("/api/v1/plugins/config-fixture/config/schema/")
    assert response.status_code == 409
    message = response.json()["error"]["message"]
    assert "more than the limit of 4096 bytes (PLUGINS_MAX_SCHEMA_BYTES)" in message


# -- 9: names that differ only by '-', '.' and '_' -----------------------------------------------


LOOKALIKES = {
    "hostile-lookalike-dash": "acme-broker",
    "hostile-lookalike-dot": "acme.broker",
    "hostile-lookalike-underscore": "acme_broker",
}


@pytest.mark.django_db
def test_lookalike_names_each_run_their_own_code(plugin_dirs) -> None:
    for folder in LOOKALIKES:
        plugin_dirs.add(folder)
    manager.sync()
    try:
        served = {}
        for name in LOOKALIKES.values():
            service = plugin_registry.load(name).services[ServiceType.PORTFOLIO]
            served[name] = [entry.name for entry in service().get_portfolio()]
        assert served == {name: [name] for name in LOOKALIKES.values()}
        prefixes = {loader.package_prefix(name) for name in LOOKALIKES.values()}
        assert len(prefixes) == 3
    finally:
        for cand in discover(entry_points=False).plugins:
            loader.release(cand)


@pytest.mark.django_db
def test_lookalike_names_each_show_their_own_position_on_the_home_page(
    plugin_dirs, admin_client_logged
) -> None:
    for folder in LOOKALIKES:
        plugin_dirs.add(folder)
    manager.sync()
    html = admin_client_logged.get("/").content.decode()
    for symbol, name in (("ACMD", "acme-broker"), ("ACMO", "acme.broker"), ("ACMU", "acme_broker")):
        row = html.split(f'data-broker="{name}"', 1)[1].split("</tr>", 1)[0]
        assert symbol in row, (name, row)


def _decode_slug(slug: str) -> str:
    """The inverse of ``plugin_slug``, written from its documented table."""
    out = bytearray()
    i = 0
    while i < len(slug):
        char = slug[i]
        if char != "_":
            out += char.encode()
            i += 1
            continue
        nxt = slug[i + 1 : i + 2]
        if nxt == "U":
            out += b"_"
            i += 2
        elif nxt == "D":
            out += b"."
            i += 2
        elif nxt == "X":
            out.append(int(slug[i + 2 : i + 4], 16))
            i += 4
        else:
            out += b"-"
            i += 1
    return out.decode("utf-8", "surrogatepass")


@given(st.text(min_size=1))
def test_module_names_cannot_collide(name: str) -> None:
    slug = module_names.plugin_slug(name)
    assert slug.isascii() and all(c.isalnum() or c == "_" for c in slug)
    assert _decode_slug(slug) == name  # one name per slug: no two plugins share a package


@given(st.text(alphabet="ab-._@", min_size=1, max_size=8))
def test_module_names_of_lookalike_names(name: str) -> None:
    assert _decode_slug(module_names.plugin_slug(name)) == name


def test_every_place_that_names_plugin_modules_uses_the_one_function() -> None:
    for name in ("acme-broker", "acme.broker", "acme_broker", "dup@x"):
        prefix = loader.package_prefix(name)
        assert prefix == module_names.package_prefix(name)
        assert prefix == f"{django_apps.PKG_ROOT}.{django_apps._slug(name)}"
    assert loader.package_prefix("healthy-fixture") == "_stonks_plugin_pkgs.healthy_fixture"


# -- 13: a manifest far over the size limit ------------------------------------------------------


def _pad(folder: Path, size: int, extension: bool = False) -> int:
    """Pad the manifest's description (or an ``x-`` key, which makes no manifest invalid) so
    the file is about ``size`` bytes; returns the file's size."""
    path = folder / MANIFEST
    raw = json.loads(path.read_text())
    if extension:
        raw["x-padding"] = "x" * size
    else:
        raw["plugin"]["description"] = "x" * size
    path.write_text(json.dumps(raw))
    return path.stat().st_size


def _assert_refused(row: Plugin, size: int, limit: int) -> None:
    assert (row.state, row.error_code) == ("error", "manifest_unreadable")
    assert f"is {size} bytes, more than the limit of {limit} bytes" in row.error_message
    assert "PLUGINS_MAX_MANIFEST_BYTES" in row.error_message
    assert row.manifest == {} and row.description == "" and row.display_name == ""
    assert sum(len(text) for text in stored_text(row)) < 4096  # nothing of the content


@pytest.mark.django_db
def test_a_manifest_over_the_limit_is_unreadable_and_nothing_of_it_is_stored(
    plugin_dirs, admin_client_logged
) -> None:
    plugin_dirs.add("healthy-fixture")
    size = _pad(plugin_dirs.add("collide-one"), 100 * 1024, extension=True)
    with override_settings(PLUGINS_MAX_MANIFEST_BYTES=64 * 1024):
        report = manager.sync()
        assert "collide-one" in report.failed
        row = Plugin.objects.get(name="collide-one")  # the folder's name: nothing was read
        _assert_refused(row, size, 64 * 1024)
        assert Plugin.objects.get(name="healthy-fixture").state == "active"
        page = admin_client_logged.get(f"/admin/stonks_plugins/plugin/{row.pk}/change/")
        assert page.status_code == 200 and "x" * 1000 not in page.content.decode()
    # A larger limit reads it at the next sync, without a restart.
    with override_settings(PLUGINS_MAX_MANIFEST_BYTES=size):
        manager.sync()
        again = Plugin.objects.get(name="collide-one")
        assert again.state == "active", (again.error_code, again.error_message)


@pytest.mark.django_db
def test_an_overlong_field_is_named_not_echoed(plugin_dirs) -> None:
    _pad(plugin_dirs.add("collide-one"), 100 * 1024)  # description: at most 2000 characters
    manager.sync()
    row = Plugin.objects.get(name="collide-one")
    assert row.error_code == "manifest_invalid" and "$.plugin.description" in row.error_message
    assert "(102400 characters) is too long" in row.error_message
    assert len(row.error_message) < 1000


@pytest.mark.django_db
def test_a_1mb_manifest_is_refused_at_the_default_limit(plugin_dirs) -> None:
    limit = DEFAULTS["MAX_MANIFEST_BYTES"]
    assert limit == django_apps._DEFAULT_MANIFEST_LIMIT  # the settings-time copy agrees
    size = _pad(plugin_dirs.add("collide-one"), 1 << 20)
    manager.sync()
    _assert_refused(Plugin.objects.get(name="collide-one"), size, limit)


@pytest.mark.django_db
def test_validate_refuses_a_manifest_over_the_limit(tmp_path: Path) -> None:
    size = _pad(copy("collide-one", tmp_path), 4096)
    with override_settings(PLUGINS_MAX_MANIFEST_BYTES=1024):
        code, out, err = cli("validate", str(tmp_path / "collide-one"))
    assert code == 1
    assert f"is {size} bytes, more than the limit of 1024 bytes" in out + err


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A folder on ``sys.path`` to install distributions into."""
    folder = tmp_path / "site"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    entry_points.forget_entry_points()
    yield folder
    entry_points.forget_entry_points()


def _install_view(site: Path) -> Path:
    """The bundled insights view, installed as a distribution; returns its manifest."""
    shutil.copytree(BUNDLED / "insights-view" / "insights", site / "insights")
    manifest = site / "insights" / MANIFEST
    shutil.copy(BUNDLED / "insights-view" / MANIFEST, manifest)
    info = site / "stonks_insights_view-1.0.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: stonks-insights-view\nVersion: 1.0.0\n"
    )
    (info / "entry_points.txt").write_text(
        "[stonks_overwatch.views]\ninsights-view = insights.plugin:InsightsView\n"
    )
    return manifest


@pytest.mark.django_db
def test_an_installed_distribution_with_a_manifest_over_the_limit(site: Path) -> None:
    manifest = _install_view(site)
    size = _pad(manifest.parent, 100 * 1024)
    with override_settings(PLUGINS_MAX_MANIFEST_BYTES=64 * 1024, PLUGIN_DIRS=[]):
        manager.sync()
        row = Plugin.objects.get(name="insights-view")
        assert row.source == "entry_point"
        _assert_refused(row, size, 64 * 1024)


# -- text no database stores, inside a manifest --------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("escape", "words"), [("\\ud800", "lone surrogate"), ("\\u0000", "NUL character")]
)
def test_a_manifest_string_no_database_can_store_is_refused(
    plugin_dirs, escape: str, words: str
) -> None:
    plugin_dirs.add("healthy-fixture")
    folder = plugin_dirs.add("collide-one")
    text = (folder / MANIFEST).read_text()
    (folder / MANIFEST).write_text(text.replace("Test fixture: Collide One", f"bad {escape} text"))

    code, _, err = cli("sync")

    assert code == 0, err
    row = Plugin.objects.get(name="collide-one")
    assert row.error_code == "manifest_unreadable"
    assert "$.plugin.description" in row.error_message and words in row.error_message
    assert row.manifest == {}
    assert Plugin.objects.get(name="healthy-fixture").state == "active"
