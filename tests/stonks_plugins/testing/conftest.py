"""Helpers for the kit's tests: copies of fixture plugins, and small plugins written on the
spot, each broken in exactly one way."""

from __future__ import annotations

import json
import shutil
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import BUNDLED, FIXTURES

FAST = {"import": 5.0, "initialize": 0.3, "health_check": 0.3, "shutdown": 0.3}
"""Short sandbox limits so hanging fixtures cost a fraction of a second."""


def copy_plugin(src: str, dest_root: Path) -> Path:
    """A copy of a fixture or bundled plugin (bytecode is never written to the repository)."""
    origin = FIXTURES / src if (FIXTURES / src).exists() else BUNDLED / src
    dest = dest_root / src
    shutil.copytree(origin, dest, ignore=shutil.ignore_patterns("__pycache__"))
    return dest


SERVICES = """
from stonks_plugins.sdk import PortfolioEntry, PortfolioServiceInterface, TotalPortfolio


class PortfolioService(PortfolioServiceInterface):
    def get_portfolio(self):
        return [PortfolioEntry(name="Kit Holding", symbol="KIT", shares=2.0, price=5.0,
                               value=10.0, broker="kit")]

    def get_portfolio_total(self):
        return TotalPortfolio(total_value=10.0)
"""

CONFIG = """
from dataclasses import dataclass

from stonks_plugins.sdk import BaseConfig


@dataclass
class KitConfig(BaseConfig):
    import_folder: str = ""
    retries: int = 3
"""


def manifest(name: str, **sections: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "plugin": {"name": name, "version": "1.0.0", "type": "broker"},
        "api": {"min_version": "1.0.0", "max_version": "2.0.0"},
        "dependencies": {"python": ">=3.11", "stonks-overwatch-core": ">=2.0.0,<3.0.0"},
        "capabilities": {"services": ["portfolio"]},
        "services": {"portfolio": "kitpkg.services.PortfolioService"},
    }
    for key, value in sections.items():
        if value is None:
            doc.pop(key, None)
        else:
            doc[key] = value
    return doc


@pytest.fixture
def make_plugin(tmp_path: Path) -> Callable[..., Path]:
    """``make_plugin(name, files={"services.py": src, ...}, **manifest sections)``: a plugin
    folder whose package is ``kitpkg``; by default a healthy one-position broker."""

    def make(name: str, files: dict[str, str] | None = None, **sections: Any) -> Path:
        root = tmp_path / name
        pkg = root / "kitpkg"
        pkg.mkdir(parents=True)
        (pkg / "__init__.py").write_text("")
        sources = {"services.py": SERVICES, "config.py": CONFIG, **(files or {})}
        for rel, text in sources.items():
            (pkg / rel).write_text(textwrap.dedent(text))
        doc = manifest(name, **sections)
        (root / "plugin_manifest.json").write_text(json.dumps(doc, indent=2))
        return root

    return make
