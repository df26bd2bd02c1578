"""A plugin that is a Django app is imported by Django at start-up, as soon as settings list
it (``django_apps.plugin_apps``): trust is checked there too."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from stonks_plugins import django_apps, loader
from stonks_plugins.trust import integrity, signatures
from tests.conftest import FIXTURES, ROOT

APP = "app-fixture"


@pytest.fixture
def app_dir(tmp_path: Path) -> Iterator[Path]:
    base = tmp_path / "plugins"
    shutil.copytree(FIXTURES / APP, base / APP, ignore=shutil.ignore_patterns("__pycache__"))
    yield base
    prefix = loader.package_prefix(APP)
    for name in [m for m in sys.modules if m == prefix or m.startswith(prefix + ".")]:
        del sys.modules[name]


def listed(base: Path, **kwargs: object) -> bool:
    return any(p.endswith(".notesapp") for p in django_apps.plugin_apps([base], **kwargs))


def test_a_locked_app_is_listed_while_intact_and_left_out_once_tampered(
    app_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    integrity.lock_folder(app_dir / APP)
    assert listed(app_dir, signature_policy="off")
    models = app_dir / APP / "notesapp" / "models.py"
    models.write_text(models.read_text() + "\nimport os  # injected\n")
    with caplog.at_level(logging.WARNING, logger="stonks_plugins.django_apps"):
        assert not listed(app_dir, signature_policy="off")
    assert "changed: notesapp/models.py" in caplog.text
    assert not any(m.endswith("notesapp.models") for m in sys.modules)


def test_enforce_leaves_out_an_unsigned_app_and_lists_a_trusted_one(
    app_dir: Path, tmp_path: Path
) -> None:
    assert listed(app_dir, signature_policy="warn")
    assert not listed(app_dir, signature_policy="enforce", trusted_keys=[])
    key_file = tmp_path / "author.pem"
    public = signatures.generate_key_file(key_file)
    root = app_dir / APP
    integrity.lock_folder(root)
    key = signatures.load_private_key(key_file)
    signatures.sign_manifest(root, (root / "plugin_manifest.json").read_bytes(), key)
    assert listed(app_dir, signature_policy="enforce", trusted_keys=[public])
    assert not listed(app_dir, signature_policy="enforce", trusted_keys=[])
    # An unknown policy counts as 'enforce'; a malformed key trusts nothing, the good one does.
    assert listed(app_dir, signature_policy="enforced?", trusted_keys=[public, "ed25519:x"])


def test_settings_pass_the_policy_from_the_environment(app_dir: Path) -> None:
    """Django's settings list plugin apps while they are being made: the policy and keys in
    the environment reach plugin_apps() through them (a real settings import, in a child)."""
    code = (
        "import django.conf as c; "
        "print(any(a.endswith('.notesapp') for a in c.settings.INSTALLED_APPS))"
    )

    def installed(policy: str) -> bool:
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "stonks_overwatch.settings",
            "PLUGIN_DIRS": str(app_dir),
            "PLUGINS_SIGNATURE_POLICY": policy,
            "PLUGINS_TRUSTED_KEYS": "",
        }
        out = subprocess.run(
            [sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True
        )
        assert out.returncode == 0, out.stderr
        return out.stdout.strip() == "True"

    assert not installed("enforce")
    assert installed("off")
