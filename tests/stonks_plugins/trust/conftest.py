"""Plugins made to order for the trust tests: each of its modules (the folder's own
``__init__.py``, its package, its service module) writes a marker file outside the plugin
when it runs, so a test can prove that none of a refused plugin's code ran."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

MANIFEST: dict[str, Any] = {
    "plugin": {"version": "1.0.0", "type": "broker", "description": "trust test broker"},
    "api": {"min_version": "1.0.0", "max_version": "2.0.0"},
    "dependencies": {"python": ">=3.11", "stonks-overwatch-core": ">=2.0.0,<3.0.0"},
    "capabilities": {"services": ["portfolio"]},
    "services": {"portfolio": "trustpkg.services.PortfolioService"},
}

MARK = "from pathlib import Path\n\nPath({markers!r}, {name!r}).write_text('ran')\n"

SERVICES = """
from stonks_plugins.sdk import PortfolioEntry, PortfolioServiceInterface, TotalPortfolio

from .data import POSITION
from tests.cli import cli, cli_json


class PortfolioService(PortfolioServiceInterface):
    def get_portfolio(self):
        name, symbol, shares, price = POSITION
        return [PortfolioEntry(name=name, symbol=symbol, shares=shares, price=price,
                               value=shares * price)]

    def get_portfolio_total(self):
        return TotalPortfolio(total_value=sum(e.value for e in self.get_portfolio()))
"""

ROW = re.compile(r'<tr data-broker="([^"]*)"><td>[^<]*</td><td>([^<]*)</td>')
MakePlugin = Callable[..., Path]


class Markers:
    def __init__(self, path: Path) -> None:
        self.path = path

    def ran(self, plugin: str) -> list[str]:
        """Which of the plugin's modules ran: 'folder', 'package', 'services'."""
        return sorted(p.name.split(":", 1)[1] for p in self.path.glob(f"{plugin}:*"))

    def clear(self) -> None:
        for p in self.path.iterdir():
            p.unlink()


@pytest.fixture
def markers(tmp_path: Path) -> Markers:
    path = tmp_path / "markers"
    path.mkdir()
    return Markers(path)


@pytest.fixture
def make_plugin(plugin_dirs, markers: Markers) -> MakePlugin:  # type: ignore[no-untyped-def]
    """``make_plugin(name, symbol, **manifest_extra)``: a broker plugin in PLUGIN_DIRS serving
    one position with ``symbol``; its folder ``__init__.py``, package and service module each
    leave a marker when they run. It ships a README too (a data file)."""

    def make(name: str, symbol: str = "TRST", **extra: Any) -> Path:
        root = plugin_dirs.path / name
        pkg = root / "trustpkg"
        pkg.mkdir(parents=True)
        manifest = json.loads(json.dumps(MANIFEST))
        manifest["plugin"]["name"] = name
        manifest.update(extra)
        (root / "plugin_manifest.json").write_text(json.dumps(manifest, indent=4))
        for where, module in (
            ("folder", root / "__init__.py"),
            ("package", pkg / "__init__.py"),
        ):
            module.write_text(MARK.format(markers=str(markers.path), name=f"{name}:{where}"))
        (pkg / "services.py").write_text(
            MARK.format(markers=str(markers.path), name=f"{name}:services") + SERVICES
        )
        (pkg / "data.py").write_text(f"POSITION = ('Trust Holding', {symbol!r}, 2.0, 5.0)\n")
        (root / "README.txt").write_text("A broker for the trust tests.\n")
        return root

    return make


def served(client: Any) -> dict[str, set[str]]:
    """Broker -> symbols on the home page."""
    response = client.get("/")
    assert response.status_code == 200
    found: dict[str, set[str]] = {}
    for broker, symbol in ROW.findall(response.content.decode()):
        found.setdefault(broker, set()).add(symbol)
    return found


def edit_one_byte(path: Path) -> None:
    """Change one byte, keeping the size (and so nothing but the content tells)."""
    data = bytearray(path.read_bytes())
    index = data.index(b"ran")
    data[index] = ord("R")
    path.write_bytes(bytes(data))
