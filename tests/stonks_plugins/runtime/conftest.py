"""Plugins made to order for the runtime's tests: a broker whose service, load or health
check sleeps while a marker file exists, so a test can make it slow and well again."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

MANIFEST = {
    "plugin": {"version": "1.0.0", "type": "broker", "description": "runtime test broker"},
    "api": {"min_version": "1.0.0", "max_version": "2.0.0"},
    "dependencies": {"python": ">=3.11", "stonks-overwatch-core": ">=2.0.0,<3.0.0"},
    "capabilities": {"services": ["portfolio"]},
}

SERVICES = """
import time
from pathlib import Path

from stonks_plugins.sdk import PortfolioEntry, PortfolioServiceInterface, TotalPortfolio

HERE = Path(__file__).resolve().parent.parent


def _stall(what):
    marker = HERE / what
    while marker.exists():
        time.sleep(0.02)


class PortfolioService(PortfolioServiceInterface):
    def get_portfolio(self):
        _stall("slow-service")
        delay = HERE / "delay-service"
        if delay.exists():
            time.sleep(float(delay.read_text()))
        once = HERE / "delay-once"
        if once.exists():  # one slow answer, then quick ones
            seconds = float(once.read_text())
            once.unlink()
            time.sleep(seconds)
        second = HERE / "delay-second"
        if second.exists():  # the call after the next one is this much slower
            if (HERE / "delay-second.armed").exists():
                seconds = float(second.read_text())
                second.unlink()
                time.sleep(seconds)
            else:
                (HERE / "delay-second.armed").write_text("1")
        failing = HERE / "fail-service"
        if failing.exists():
            raise ValueError(failing.read_text() or "runtime test broker: the export is unreadable")
        spin = HERE / "spin-service"
        while spin.exists():  # a busy loop (the reaper must stop it), rarely looking up
            for _ in range(10_000_000):
                pass
        return [PortfolioEntry(name="{title} Holding", symbol="{symbol}", shares=1.0,
                               price=10.0, value=10.0)]

    def get_portfolio_total(self):
        return TotalPortfolio(total_value=10.0)
"""

PLUGIN = """
import time
from pathlib import Path

from stonks_plugins.sdk import BaseBrokerPlugin, HealthStatus

HERE = Path(__file__).resolve().parent.parent


class Plugin(BaseBrokerPlugin):
    def initialize(self):
        while (HERE / "slow-init").exists():
            time.sleep(0.02)
        if (HERE / "fail-init").exists():
            says = HERE / "fail-init-says"
            raise ConnectionError(
                says.read_text()
                if says.exists()
                else "runtime test broker: the broker refused the login"
            )
        return True

    def health_check(self):
        while (HERE / "slow-health").exists():
            time.sleep(0.02)
        return HealthStatus.healthy("fine")

    def on_config_change(self, config):
        while (HERE / "slow-config").exists():
            time.sleep(0.02)
        self.config = config
        return True

    def shutdown(self):
        (HERE / "in-shutdown").write_text("1")
        while (HERE / "slow-shutdown").exists():
            time.sleep(0.02)
        return True
"""


@pytest.fixture
def make_broker(plugin_dirs):  # type: ignore[no-untyped-def]
    """``make_broker(name, symbol, slow=("slow-service",))`` writes a broker plugin; the
    names in ``slow`` are marker files that keep that phase sleeping until removed
    (``slow-folder-init``, ``slow-init``, ``slow-service``, ``slow-health``,
    ``slow-shutdown``, ``slow-config``: its ``on_config_change``), spin a CPU
    (``spin-service``) or make it fail (``fail-init``; ``fail-init-says`` holds another
    message for it; ``fail-service``, its text the ValueError's if any);
    ``delay-service`` holds seconds the service sleeps, ``delay-once`` seconds its next
    call sleeps (the file goes), ``delay-second`` seconds the call after the next one
    sleeps besides."""

    def make(name: str, symbol: str, slow: tuple[str, ...] = ()) -> Path:
        root = plugin_dirs.path / name
        package = root / "rtbroker"
        package.mkdir(parents=True)
        manifest = json.loads(json.dumps(MANIFEST))
        manifest["plugin"]["name"] = name
        manifest["plugin"]["display_name"] = name.title()
        manifest["services"] = {"portfolio": "rtbroker.services.PortfolioService"}
        manifest["entry_points"] = {"main": "rtbroker.plugin:Plugin"}
        (root / "plugin_manifest.json").write_text(json.dumps(manifest))
        (package / "__init__.py").write_text("")
        (package / "services.py").write_text(
            textwrap.dedent(SERVICES).replace("{title}", name.title()).replace("{symbol}", symbol)
        )
        (package / "plugin.py").write_text(textwrap.dedent(PLUGIN))
        # The folder's own __init__.py runs when the plugin is mounted, before anything else.
        (root / "__init__.py").write_text(
            "import time\nfrom pathlib import Path\n\n"
            "while (Path(__file__).parent / 'slow-folder-init').exists():\n"
            "    time.sleep(0.02)\n"
        )
        for marker in slow:
            (root / marker).write_text("1")
        return root

    return make


KINDS = {
    "aggregator": """
import time
from pathlib import Path

from stonks_plugins.sdk import BaseAggregatorPlugin, Panel

HERE = Path(__file__).resolve().parent.parent


class Plugin(BaseAggregatorPlugin):
    def aggregate(self, portfolio):
        while (HERE / "slow-call").exists():
            time.sleep(0.02)
        return [Panel.breakdown("{name} panel", {"positions": float(len(portfolio))})]
""",
    "view": """
import time
from pathlib import Path

from django.http import HttpResponse
from django.urls import path

from stonks_plugins.sdk import BaseViewPlugin

HERE = Path(__file__).resolve().parent.parent


def hello(request):
    while (HERE / "slow-call").exists():
        time.sleep(0.02)
    return HttpResponse("hello from {name}")


class Plugin(BaseViewPlugin):
    def get_urlpatterns(self):
        return [path("", hello, name="hello")]
""",
    "middleware": """
import dataclasses
import time
from pathlib import Path

from stonks_plugins.sdk import BaseMiddlewarePlugin

HERE = Path(__file__).resolve().parent.parent


class Plugin(BaseMiddlewarePlugin):
    order = 10

    def intercept(self, call, proceed):
        while (HERE / "slow-call").exists():
            time.sleep(0.02)
        result = proceed()
        if call.method == "get_portfolio":
            return [dataclasses.replace(e, name=e.name + " (via {name})") for e in result]
        return result
""",
}


@pytest.fixture
def make_plugin(plugin_dirs):  # type: ignore[no-untyped-def]
    """``make_plugin(kind, name, slow=False)``: an aggregator, view or middleware plugin
    whose one call (aggregate, the page, intercept) sleeps while ``slow-call`` exists."""

    def make(kind: str, name: str, slow: bool = False) -> Path:
        root = plugin_dirs.path / name
        package = root / "rtplugin"
        package.mkdir(parents=True)
        manifest = json.loads(json.dumps(MANIFEST))
        manifest["plugin"].update(name=name, display_name=name.title(), type=kind)
        manifest["capabilities"] = {}
        manifest["entry_points"] = {"main": "rtplugin.plugin:Plugin"}
        (root / "plugin_manifest.json").write_text(json.dumps(manifest))
        (package / "__init__.py").write_text("")
        (package / "plugin.py").write_text(textwrap.dedent(KINDS[kind]).replace("{name}", name))
        if slow:
            (root / "slow-call").write_text("1")
        return root

    return make
