"""Shared fixtures. Each test starts with no plugin registered in this process and with the
discovery cache empty, so tests never see each other's plugins."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "plugins"
BUNDLED = ROOT / "plugins"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture(autouse=True)
def _fresh_plugin_runtime(settings: pytest.FixtureRequest) -> Iterator[None]:
    from stonks_plugins.discovery.directories import clear_cache
    from stonks_plugins.legacy.bridge import bridge
    from stonks_plugins.registry import plugin_registry

    settings.PLUGINS_REFRESH_INTERVAL = 0  # type: ignore[attr-defined]
    bridge.reset()
    plugin_registry.clear()
    clear_cache()
    yield
    bridge.reset()
    plugin_registry.clear()
    clear_cache()


@pytest.fixture
def plugin_dirs(settings: pytest.FixtureRequest, tmp_path: Path):  # type: ignore[no-untyped-def]
    """Point PLUGIN_DIRS at a fresh folder; ``add(src, as_name)`` copies a plugin into it."""

    base = tmp_path / "plugins"
    base.mkdir()
    settings.PLUGIN_DIRS = [base]  # type: ignore[attr-defined]

    class Dirs:
        path = base

        @staticmethod
        def add(src: Path | str, as_name: str | None = None) -> Path:
            src = Path(src)
            if not src.is_absolute():
                src = FIXTURES / src if (FIXTURES / src).exists() else BUNDLED / src
            dest = base / (as_name or src.name)
            shutil.copytree(src, dest, ignore=shutil.ignore_patterns("__pycache__"))
            return dest

    return Dirs


@pytest.fixture
def admin_client_logged(client, django_user_model):  # type: ignore[no-untyped-def]
    user = django_user_model.objects.create_superuser("admin", "admin@example.com", "pw")
    client.force_login(user)
    return client
