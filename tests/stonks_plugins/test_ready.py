"""Start-up (``AppConfig.ready``) keeps its promises, checked in fresh interpreters.

ready() runs discovery and hooks the bridge, and nothing more: it imports no plugin code,
writes nothing to the database, works before ``migrate``, survives a plugin folder full of
broken plugins, and in safe mode lets no plugin broker in. Start-up can only be observed
once per process, so each check starts ``python -c PROBE`` with its own environment. No
timing here: the start-up cost is measured by benchmarks/bench_ready.py.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUNDLED = ROOT / "plugins"
FIXTURES = ROOT / "tests" / "fixtures" / "plugins"
BUNDLED_BROKERS = {"degiro-broker", "bitvavo-broker"}

# The child: watch every import and every file opened (audit hooks see attempts that fail
# too), run django.setup(), optionally read the broker registry, then report as JSON.
PROBE = r"""
import json, os, sys
root, spec = sys.argv[1], json.loads(sys.argv[2])
sys.path.insert(0, root)
dirs = [os.path.realpath(d) + os.sep for d in spec["plugin_dirs"] if os.path.isdir(d)]
packages = set(spec["packages"])
attempted, opened = [], []


def inside(path):
    try:
        real = os.path.realpath(os.fsdecode(path))
    except (TypeError, ValueError):
        return False
    return any(real.startswith(d) for d in dirs)


def hook(event, args):
    if event == "import":
        name = args[0]
        if name.startswith("_stonks_plugin_pkgs") or name.split(".")[0] in packages:
            attempted.append(name)
    elif event == "open" and isinstance(args[0], (str, bytes, os.PathLike)) and inside(args[0]):
        opened.append(os.fsdecode(args[0]))


sys.addaudithook(hook)
import django
from django.db import connections

queries = []


def spy(execute, sql, params, many, context):
    queries.append(sql)
    return execute(sql, params, many, context)


connections["default"].execute_wrappers.append(spy)  # every SQL statement of the start-up
django.setup()
connections["default"].execute_wrappers.remove(spy)


def plugin_modules():
    found = []
    for name, mod in list(sys.modules.items()):
        path = getattr(mod, "__file__", None)
        if name.startswith("_stonks_plugin_pkgs") or (path and inside(path)):
            found.append(name)
    return sorted(found)


from stonks_overwatch.core.registry import BrokerRegistry
from stonks_plugins.discovery.directories import _listings
from stonks_plugins.runtime.serving import serving

report = {
    "imported": plugin_modules(),
    "attempted": sorted(set(attempted)),
    "opened": sorted(set(opened)),
    "scanned": {
        cand.location: (cand.problem.code.value if cand.problem else None)
        for _, _, cands in _listings.values()
        for cand in cands
    },
    "hooked": serving.refresh in getattr(BrokerRegistry(), "_refresh_hooks", []),
    "db_exists": os.path.exists(spec["db"]),
    "queries": queries,
}
if spec.get("read_registry"):
    report["brokers"] = BrokerRegistry().get_registered_brokers()
    report["imported_after_read"] = plugin_modules()
print("PROBE-REPORT " + json.dumps(report))
"""


def _env(db: Path, plugin_dirs: list[Path], safe_mode: bool = False) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="stonks_overwatch.settings",
        DATABASE_URL=f"sqlite:///{db}",
        PLUGIN_DIRS=",".join(str(d) for d in plugin_dirs),
        PLUGINS_SAFE_MODE="1" if safe_mode else "0",
        REDIS_URL="",
        CELERY_BROKER_URL="",
        LOG_LEVEL="WARNING",
    )
    return env


def _package_names(plugin_dirs: list[Path]) -> list[str]:
    """Top-level names a plugin's code could be imported under: every package or module
    inside every plugin folder."""
    names = set()
    for base in plugin_dirs:
        if not base.is_dir():
            continue
        for folder in base.iterdir():
            if not folder.is_dir() or folder.is_symlink():
                continue
            try:
                children = list(folder.iterdir())
            except OSError:
                continue
            for child in children:
                if child.suffix == ".py" and child.stem != "__init__":
                    names.add(child.stem)
                elif (child / "__init__.py").is_file():
                    names.add(child.name)
    return sorted(names)


def probe(
    db: Path, plugin_dirs: list[Path], *, safe_mode: bool = False, read_registry: bool = False
) -> tuple[dict[str, Any], str]:
    spec = {
        "plugin_dirs": [str(d) for d in plugin_dirs],
        "packages": _package_names(plugin_dirs),
        "db": str(db),
        "read_registry": read_registry,
    }
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, str(ROOT), json.dumps(spec)],
        cwd=ROOT,
        env=_env(db, plugin_dirs, safe_mode),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, f"start-up failed (exit {proc.returncode}):\n{proc.stderr}"
    line = next(x for x in proc.stdout.splitlines() if x.startswith("PROBE-REPORT "))
    return json.loads(line.removeprefix("PROBE-REPORT ")), proc.stderr


def manage(db: Path, plugin_dirs: list[Path], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=_env(db, plugin_dirs),
        capture_output=True,
        text=True,
        timeout=300,
    )


def tables(db: Path) -> list[str]:
    if not db.exists():
        return []
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    return sorted(r[0] for r in rows)


def snapshot(db: Path) -> tuple[dict[str, int], str, int]:
    """Row counts of the plugin tables, a digest of every row of every table, and SQLite's
    file change counter, which every committed write bumps (even one rewriting a row with
    the values it had)."""
    digest = hashlib.sha256()
    counts = {}
    with sqlite3.connect(db) as conn:
        for table in tables(db):
            rows = conn.execute(f'SELECT * FROM "{table}" ORDER BY 1').fetchall()
            digest.update(repr((table, rows)).encode())
            if table.startswith("stonks_plugins_"):
                counts[table] = len(rows)
    with db.open("rb") as f:
        change_counter = int.from_bytes(f.read(28)[24:28], "big")
    return counts, digest.hexdigest(), change_counter


# A plugin that is a Django app (x-django-app) is installed by settings: Django's app registry
# imports its apps and models at start-up, like any installed app's. That is not ready().
_APP_PLUGIN = "_stonks_plugin_pkgs.app_fixture"


def _not_app_plugin(names: list[str]) -> list[str]:
    return [
        n
        for n in names
        if n != "_stonks_plugin_pkgs" and n != _APP_PLUGIN and not n.startswith(_APP_PLUGIN + ".")
    ]


def assert_no_plugin_code(report: dict[str, Any]) -> None:
    imported = _not_app_plugin(report["imported"])
    attempted = _not_app_plugin(report["attempted"])
    assert imported == [], f"ready() imported plugin code: {imported}"
    assert attempted == [], f"ready() tried to import: {attempted}"
    # An app plugin's apps.py is read as text (its app label is checked before Django
    # imports it: django_apps.app_labels), never run: the imports above show that.
    others = [
        p
        for p in report["opened"]
        if Path(p).name not in ("plugin_manifest.json", "apps.py")
        and "app-fixture" not in Path(p).parts
    ]
    assert others == [], f"ready() opened files other than manifests: {others}"


def assert_no_database_access(report: dict[str, Any], stderr: str) -> None:
    """Start-up consults the database only on the first registry read, after it."""
    assert report["queries"] == [], f"start-up ran SQL: {report['queries']}"
    assert "Accessing the database during app initialization" not in stderr


def default_dirs() -> list[Path]:
    """The bundled plugins, and the broken-plugin corpus when it is there."""
    return [BUNDLED, *([FIXTURES] if FIXTURES.is_dir() else [])]


def write_import_witness(base: Path) -> Path:
    """A valid plugin whose code, if ever imported, leaves a file behind."""
    folder = base / "witness"
    (folder / "witness").mkdir(parents=True)
    marker = base / "WITNESS-IMPORTED"
    body = f"from pathlib import Path\nPath({str(marker)!r}).write_text(__name__)\n"
    for module in ("__init__", "services", "config", "plugin"):
        (folder / "witness" / f"{module}.py").write_text(body)
    manifest = {
        "plugin": {"name": "witness", "version": "1.0.0", "type": "broker"},
        "api": {"min_version": "1.0.0"},
        "capabilities": {"services": ["portfolio"]},
        "services": {"portfolio": "witness.services.PortfolioService"},
        "entry_points": {"main": "witness.plugin:WitnessPlugin"},
    }
    (folder / "plugin_manifest.json").write_text(json.dumps(manifest))
    return marker


@pytest.fixture(scope="module")
def migrated_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An SQLite database after ``migrate`` and ``plugins sync`` of the bundled plugins."""
    db = tmp_path_factory.mktemp("ready-db") / "db.sqlite3"
    for args in (("migrate", "--no-input", "-v", "0"), ("plugins", "sync")):
        proc = manage(db, [BUNDLED], *args)
        assert proc.returncode == 0, f"manage.py {' '.join(args)} failed:\n{proc.stderr}"
    return db


def test_ready_imports_no_plugin_code(tmp_path: Path) -> None:
    extra = tmp_path / "more-plugins"
    marker = write_import_witness(extra)
    dirs = [*default_dirs(), extra]
    report, _ = probe(tmp_path / "db.sqlite3", dirs)
    assert_no_plugin_code(report)
    assert not marker.exists()
    # ...while discovery did run over every folder: each manifest was read.
    assert str(BUNDLED / "degiro-broker") in report["scanned"]
    assert str(extra / "witness") in report["scanned"]
    assert report["scanned"][str(extra / "witness")] is None
    if FIXTURES.is_dir():
        assert any(loc.startswith(str(FIXTURES)) for loc in report["scanned"])
    assert report["hooked"]


def test_ready_before_migrate_writes_nothing_and_check_passes(tmp_path: Path) -> None:
    db = tmp_path / "never-migrated.sqlite3"
    report, stderr = probe(db, default_dirs())
    assert tables(db) == [], "ready() created tables"
    assert_no_database_access(report, stderr)
    assert report["hooked"], stderr
    assert "plugin discovery failed" not in stderr
    proc = manage(db, default_dirs(), "check")
    assert proc.returncode == 0, proc.stderr
    assert tables(db) == []


def test_ready_leaves_a_migrated_database_unchanged(migrated_db: Path) -> None:
    before = snapshot(migrated_db)
    assert before[0].get("stonks_plugins_plugin", 0) >= len(BUNDLED_BROKERS)  # sync ran
    report, stderr = probe(migrated_db, default_dirs())
    assert_no_plugin_code(report)
    assert_no_database_access(report, stderr)
    after = snapshot(migrated_db)
    assert after[0] == before[0], "row counts of the plugin tables changed"
    assert after == before, "ready() wrote to the database"


VALID = {
    "plugin": {"name": "placeholder", "version": "1.0.0", "type": "broker"},
    "api": {"min_version": "1.0.0"},
    "services": {"portfolio": "pkg.services.PortfolioService"},
}


def _broken_corpus(base: Path) -> tuple[dict[str, str | None], set[str]]:
    """Every way we know for a plugin folder to be broken. Returns the folders discovery
    must report (folder -> expected problem code, None for a valid one) and the entries it
    must skip as not being plugins at all."""
    base.mkdir()
    expect: dict[str, str | None] = {}

    def plugin(name: str, content: bytes | str, code: str | None) -> Path:
        folder = base / name
        folder.mkdir()
        data = content.encode() if isinstance(content, str) else content
        (folder / "plugin_manifest.json").write_bytes(data)
        expect[name] = code
        return folder

    def manifest(name: str, **changes: Any) -> str:
        return json.dumps({**VALID, "plugin": {**VALID["plugin"], "name": name}, **changes})

    plugin("bad-json", '{"plugin": {"name": "bad-json",', "manifest_unreadable")
    plugin("not-utf8", b'{"plugin": "\xff\xfe"}', "manifest_unreadable")
    plugin("empty-file", "", "manifest_unreadable")
    plugin("json-array", "[1, 2, 3]", "manifest_invalid")
    plugin("schema-violation", '{"plugin": {"name": "Bad Name!"}, "api": 3}', "manifest_invalid")
    plugin("too-deep-to-parse", "[" * 100_000 + "]" * 100_000, "manifest_unreadable")
    nested = "[" * 900 + "]" * 900
    deep = manifest("too-deep-to-check", capabilities={"features": ["X"]})
    plugin("too-deep-to-check", deep.replace('["X"]', f"[{nested}, {nested}]"), "manifest_invalid")
    if Path("/proc/self/mem").exists():  # a regular file whose read fails, even for root
        (base / "io-error").mkdir()
        (base / "io-error" / "plugin_manifest.json").symlink_to("/proc/self/mem")
        expect["io-error"] = "manifest_unreadable"
    # A folder and a manifest nobody may read. Root reads them anyway, so for these only
    # "start-up does not crash" is asserted.
    plugin("locked-folder", manifest("locked-folder"), None).chmod(0)
    plugin("locked-file", manifest("locked-file"), None)
    (base / "locked-file" / "plugin_manifest.json").chmod(0)
    for name in ("locked-folder", "locked-file"):
        del expect[name]
    # Valid manifests: one whose code kills the process if anything imports it, and a copy
    # of a real plugin.
    bomb = plugin("import-bomb", manifest("import-bomb"), None)
    (bomb / "pkg").mkdir()
    (bomb / "pkg" / "__init__.py").write_text("import os\nos._exit(86)\n")
    shutil.copytree(
        BUNDLED / "degiro-broker", base / "healthy", ignore=shutil.ignore_patterns("__pycache__")
    )
    expect["healthy"] = None
    # Not plugins at all: skipped without a fuss.
    (base / "dangling").mkdir()
    (base / "dangling" / "plugin_manifest.json").symlink_to(base / "nowhere.json")
    (base / "manifest-is-a-folder" / "plugin_manifest.json").mkdir(parents=True)
    (base / "fifo").mkdir()
    os.mkfifo(base / "fifo" / "plugin_manifest.json")  # reading it would block forever
    (base / "a-file-not-a-folder").write_text("I am not a plugin")
    (base / "symlink-loop").symlink_to(base / "symlink-loop")
    skipped = {"dangling", "manifest-is-a-folder", "fifo", "a-file-not-a-folder", "symlink-loop"}
    return expect, skipped


def test_ready_survives_a_folder_of_broken_plugins(tmp_path: Path) -> None:
    base = tmp_path / "broken"
    expect, skipped = _broken_corpus(base)
    dirs = [tmp_path / "does-not-exist", base / "a-file-not-a-folder", base]
    try:
        report, stderr = probe(tmp_path / "db.sqlite3", dirs)
        check = manage(tmp_path / "db.sqlite3", dirs, "check")
    finally:
        (base / "locked-folder").chmod(0o755)
        (base / "locked-file" / "plugin_manifest.json").chmod(0o644)
    assert report["hooked"], f"ready() gave up on discovery:\n{stderr}"
    assert "plugin discovery failed" not in stderr
    assert "Traceback" not in stderr
    assert_no_plugin_code(report)
    assert_no_database_access(report, stderr)
    scanned = {Path(loc).name: code for loc, code in report["scanned"].items()}
    assert {name: scanned.get(name, "not scanned") for name in expect} == expect
    assert not skipped & set(scanned)
    assert check.returncode == 0, check.stderr
    assert tables(tmp_path / "db.sqlite3") == []


def test_safe_mode_installs_no_plugin_django_app(tmp_path: Path) -> None:
    # A plugin that is a Django app is imported by Django itself when settings list it in
    # INSTALLED_APPS; safe mode must leave it out, or a broken app plugin could still take
    # the site down at start-up.
    plugins = tmp_path / "plugins"
    shutil.copytree(FIXTURES / "app-fixture", plugins / "app-fixture")
    app = _APP_PLUGIN + ".notesapp"

    normal, _ = probe(tmp_path / "db.sqlite3", [plugins])  # control: the app is installed
    assert app in normal["imported"], normal["imported"]

    safe, _ = probe(tmp_path / "db.sqlite3", [plugins], safe_mode=True)
    assert [n for n in safe["imported"] if n.startswith(_APP_PLUGIN)] == []
    assert [n for n in safe["attempted"] if n.startswith(_APP_PLUGIN)] == []


def test_safe_mode_registers_no_plugin_broker(migrated_db: Path) -> None:
    # Control: without safe mode the bundled brokers appear on the first registry read, as
    # lazy providers (still no plugin code imported).
    normal, _ = probe(migrated_db, [BUNDLED], read_registry=True)
    assert set(normal["brokers"]) >= BUNDLED_BROKERS
    assert normal["imported_after_read"] == []

    safe, stderr = probe(migrated_db, [BUNDLED], safe_mode=True, read_registry=True)
    assert not BUNDLED_BROKERS & set(safe["brokers"]), safe["brokers"]
    assert not safe["hooked"]
    assert safe["imported_after_read"] == []
    assert_no_plugin_code(safe)
    assert "PLUGINS_SAFE_MODE" in stderr
