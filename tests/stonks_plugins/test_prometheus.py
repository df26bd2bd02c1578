"""``/metrics``: the Prometheus text format a scraper reads - per plugin and instance its calls,
errors, latency, circuit, state, health and its own ``get_metrics()`` numbers - and who may
read it (loopback, or a bearer token). One process here (no PROMETHEUS_MULTIPROC_DIR); the
sum over gunicorn workers is tests/e2e/test_prometheus_gunicorn.py."""

from __future__ import annotations

import json
import os
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from stonks_overwatch.core.service_types import ServiceType
from stonks_plugins.manager import manager
from stonks_plugins.models import PluginEvent
from stonks_plugins.monitoring import multiproc, plugin_values, prometheus
from stonks_plugins.redaction import forget_all
from stonks_plugins.registry import plugin_registry
from stonks_plugins.runtime import loads

pytestmark = pytest.mark.django_db

NAME = "prom-fixture"
API_KEY = "k3y-prom-Zq81-xyzzy"
PIN = "864209"

MANIFEST = {
    "plugin": {
        "name": "",
        "version": "1.2.0",
        "type": "broker",
        "display_name": "Prometheus fixture",
        "description": "Test plugin: reports its own metrics",
    },
    "api": {"min_version": "1.0.0", "max_version": "2.0.0"},
    "dependencies": {"python": ">=3.11", "stonks-overwatch-core": ">=2.0.0,<3.0.0"},
    "capabilities": {"services": ["portfolio"]},
    "configuration": {
        "config_class": "PKG.plugin.PromConfig",
        "schema": {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "properties": {
                "api_key": {"type": "string", "writeOnly": True},
                "pin": {"type": "string", "writeOnly": True},
            },
        },
    },
    "services": {"portfolio": "PKG.plugin.PortfolioService"},
    "entry_points": {"main": "PKG.plugin:PromPlugin"},
}

CODE = """
import time
from dataclasses import dataclass

from stonks_plugins.sdk import (
    BaseBrokerPlugin, BaseConfig, PortfolioEntry, PortfolioServiceInterface, TotalPortfolio,
)


@dataclass
class PromConfig(BaseConfig):
    api_key: str = ""
    pin: str = ""


class PortfolioService(PortfolioServiceInterface):
    def get_portfolio(self):
        return [PortfolioEntry(name="P", symbol="PRM", shares=1.0, price=2.0, value=2.0)]

    def get_portfolio_total(self):
        return TotalPortfolio(total_value=2.0)


class PromPlugin(BaseBrokerPlugin):
    def get_metrics(self):
        {body}
"""

REPORTING = """
        key = getattr(self.config, "api_key", "")
        pin = getattr(self.config, "pin", "") or "0"
        return {
            "positions_seen": 7,
            "ratio": 0.25,
            "connected": True,
            "status": "fine",
            "sync": {"last_ok": 1700000000, "note": "text"},
            "api_key": 123456,
            "password": 99,
            "leak_" + key: 1,
            "code": int(pin),
        }"""


def write_plugin(base: Path, name: str, body: str = REPORTING) -> None:
    pkg = name.replace("-", "_")
    folder = base / name
    (folder / pkg).mkdir(parents=True)
    manifest = json.loads(json.dumps(MANIFEST).replace("PKG", pkg))
    manifest["plugin"]["name"] = name
    (folder / "plugin_manifest.json").write_text(json.dumps(manifest))
    (folder / pkg / "__init__.py").write_text("")
    code = CODE.replace("{body}", textwrap.dedent(body).strip().replace("\n", "\n        "))
    (folder / pkg / "plugin.py").write_text(code)


@pytest.fixture(autouse=True)
def _one_process(monkeypatch) -> Iterator[None]:  # type: ignore[no-untyped-def]
    """Fresh metrics in one-process mode, whatever the developer's environment says."""
    monkeypatch.delenv(multiproc.ENV, raising=False)
    prometheus.reset()
    forget_all()
    yield
    prometheus.reset()
    forget_all()


@pytest.fixture
def served(plugin_dirs, applied):  # type: ignore[no-untyped-def]
    """The fixture plugin synced, configured with two secrets and loaded in this process."""
    write_plugin(plugin_dirs.path, NAME)
    manager.sync()
    applied(manager.set_config, NAME, {"api_key": API_KEY, "pin": PIN}, actor="ops")
    return loads.acquire(NAME)


def call_portfolio(loaded: Any, times: int) -> None:
    service = loaded.create_service(ServiceType.PORTFOLIO)
    for _ in range(times):
        assert service.get_portfolio()[0].symbol == "PRM"


def scrape(client, **extra: str) -> tuple[str, dict[tuple[str, frozenset[Any]], float]]:  # type: ignore[no-untyped-def]
    """The text, and every sample by (name, labels): it must parse."""
    resp = client.get("/metrics", **extra)
    assert resp.status_code == 200, resp.content
    assert resp["Content-Type"].startswith("text/plain; version=0.0.4")
    text = resp.content.decode()
    samples = {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    return text, samples


def value(samples: dict[tuple[str, frozenset[Any]], float], name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


OP = "portfolio.get_portfolio"


def test_scrape_shows_calls_latency_state_health_circuit_and_plugin_numbers(served, client) -> None:  # type: ignore[no-untyped-def]
    call_portfolio(served, 5)
    stats = plugin_registry.sandbox(NAME).metrics.stats(OP)
    text, samples = scrape(client)

    me = {"plugin": NAME, "instance": ""}
    assert value(samples, "stonks_plugin_calls_total", **me, operation=OP) == stats.calls == 5
    assert value(samples, "stonks_plugin_errors_total", **me, operation=OP) == 0
    timed = value(samples, "stonks_plugin_call_duration_seconds_count", **me, operation=OP)
    assert timed == stats.timed >= 1
    inf = value(
        samples, "stonks_plugin_call_duration_seconds_bucket", **me, operation=OP, le="+Inf"
    )
    assert inf == timed
    assert value(samples, "stonks_plugin_circuit_state", **me) == 0

    assert value(samples, "stonks_plugin_state", **me, state="active") == 1
    assert value(samples, "stonks_plugin_state", **me, state="error") == 0
    assert value(samples, "stonks_plugin_enabled", **me) == 1
    assert value(samples, "stonks_plugin_error", **me, code="") == 0
    assert value(samples, "stonks_plugin_health", **me, status="unknown") == 1
    info = {"version": "1.2.0", "type": "broker", "source": "directory"}
    assert value(samples, "stonks_plugin_info", **me, **info) == 1

    custom = {
        dict(labels)["metric"]: v
        for (name, labels), v in samples.items()
        if name == "stonks_plugin_custom" and dict(labels)["plugin"] == NAME
    }
    assert custom["positions_seen"] == 7
    assert custom["ratio"] == 0.25
    assert custom["connected"] == 1
    assert custom["sync.last_ok"] == 1700000000
    # Text is no number; secret-looking keys and a number equal to a secret are left out.
    assert not {"status", "sync.note", "api_key", "password", "code"} & custom.keys()
    assert value(samples, "stonks_plugin_custom_answered", **me) == 1
    # The key that quoted the secret is there, masked; no secret shows anywhere.
    assert "leak_masked" in custom
    assert API_KEY not in text and PIN not in text
    # Asking for its numbers is no call of the plugin's.
    assert "get_metrics" not in plugin_registry.sandbox(NAME).metrics.operations()


def test_health_and_error_follow_the_rows(served, client) -> None:  # type: ignore[no-untyped-def]
    manager.check_health(NAME)
    _, samples = scrape(client)
    me = {"plugin": NAME, "instance": ""}
    assert value(samples, "stonks_plugin_health", **me, status="healthy") == 1
    assert value(samples, "stonks_plugin_health", **me, status="unknown") == 0
    assert value(samples, "stonks_plugin_health_checked_timestamp_seconds", **me) > 0

    manager.disable(NAME)
    _, samples = scrape(client)
    assert value(samples, "stonks_plugin_state", **me, state="disabled") == 1
    assert value(samples, "stonks_plugin_enabled", **me) == 0


def test_each_scrape_adds_only_the_new_calls(served, client) -> None:  # type: ignore[no-untyped-def]
    me = {"plugin": NAME, "instance": "", "operation": OP}
    call_portfolio(served, 2)
    _, samples = scrape(client)
    assert value(samples, "stonks_plugin_calls_total", **me) == 2
    _, samples = scrape(client)
    assert value(samples, "stonks_plugin_calls_total", **me) == 2  # nothing new, nothing added
    call_portfolio(served, 3)
    _, samples = scrape(client)
    assert value(samples, "stonks_plugin_calls_total", **me) == 5
    # Counters reset in place (as an operator's reload may) never make the total go down.
    plugin_registry.sandbox(NAME).metrics.reset()
    call_portfolio(served, 1)
    _, samples = scrape(client)
    assert value(samples, "stonks_plugin_calls_total", **me) == 6


def test_an_instance_is_labelled_apart_from_its_plugin(client) -> None:  # type: ignore[no-untyped-def]
    box = plugin_registry.sandbox("acme-broker:paper")
    box.run("portfolio.get_portfolio", lambda: [], timeout=None)
    with pytest.raises(Exception):  # noqa: B017 - any failure is a SandboxError
        box.run("portfolio.get_portfolio", lambda: 1 / 0, timeout=None)
    _, samples = scrape(client)
    labels = {"plugin": "acme-broker", "instance": "paper", "operation": OP}
    assert value(samples, "stonks_plugin_calls_total", **labels) == 2
    assert value(samples, "stonks_plugin_errors_total", **labels) == 1
    assert prometheus.split_name("acme-broker") == ("acme-broker", "")
    assert prometheus.split_name("a:b:c") == ("a", "b:c")


def test_an_open_circuit_shows(served, client) -> None:  # type: ignore[no-untyped-def]
    plugin_registry.sandbox(NAME).circuit.trip()
    _, samples = scrape(client)
    assert value(samples, "stonks_plugin_circuit_state", plugin=NAME, instance="") == 2


def test_get_metrics_that_hangs_or_raises_does_not_hold_or_break_the_scrape(
    plugin_dirs, client, settings
) -> None:  # type: ignore[no-untyped-def]
    write_plugin(plugin_dirs.path, "prom-hangs", "time.sleep(3)\nreturn {'late': 1}")
    write_plugin(plugin_dirs.path, "prom-raises", "raise RuntimeError('no metrics today')")
    write_plugin(plugin_dirs.path, NAME)
    manager.sync()
    for name in ("prom-hangs", "prom-raises", NAME):
        loads.acquire(name)
    events = PluginEvent.objects.filter(plugin__name="prom-raises").count()
    settings.PLUGINS_PAGE_BUDGET = 0.3
    _, samples = scrape(client)
    answered = {
        dict(labels)["plugin"]: v
        for (name, labels), v in samples.items()
        if name == "stonks_plugin_custom_answered"
    }
    assert answered == {"prom-hangs": 0, "prom-raises": 0, NAME: 1}
    # Until it answers again the one that hung is not asked (a page would not wait either).
    _, samples = scrape(client)
    assert value(samples, "stonks_plugin_custom_answered", plugin="prom-hangs", instance="") == 0
    assert value(samples, "stonks_plugin_custom_answered", plugin=NAME, instance="") == 1
    assert value(samples, "stonks_plugin_state", plugin="prom-hangs", instance="", state="active")
    # A raising get_metrics is logged, not an event, and costs the plugin nothing.
    assert PluginEvent.objects.filter(plugin__name="prom-raises").count() == events
    assert plugin_registry.sandbox("prom-raises").circuit.state == "closed"


@pytest.mark.parametrize(
    ("address", "headers", "token", "status"),
    [
        ("127.0.0.1", {}, "", 200),
        ("::1", {}, "", 200),
        ("::ffff:127.0.0.1", {}, "", 200),
        ("10.1.2.3", {}, "", 403),
        ("10.1.2.3", {"HTTP_AUTHORIZATION": "Bearer anything"}, "", 403),
        ("127.0.0.1", {"HTTP_X_FORWARDED_FOR": "203.0.113.9"}, "", 403),
        ("10.1.2.3", {}, "tok-Secret-42", 401),
        ("10.1.2.3", {"HTTP_AUTHORIZATION": "Bearer wrong"}, "tok-Secret-42", 401),
        ("10.1.2.3", {"HTTP_AUTHORIZATION": "Basic tok-Secret-42"}, "tok-Secret-42", 401),
        ("10.1.2.3", {"HTTP_AUTHORIZATION": "Bearer tok-Secret-42"}, "tok-Secret-42", 200),
        ("127.0.0.1", {"HTTP_FORWARDED": "for=1.2.3.4"}, "tok-Secret-42", 401),
    ],
)
def test_who_may_read(client, settings, address, headers, token, status) -> None:  # type: ignore[no-untyped-def]
    settings.PLUGINS_METRICS_TOKEN = token
    resp = client.get("/metrics", REMOTE_ADDR=address, **headers)
    assert resp.status_code == status
    body = resp.content.decode()
    if token:
        assert token not in body
    if status == 200:
        assert "# TYPE stonks_plugin_state gauge" in body
    elif status == 401:
        assert resp["WWW-Authenticate"].startswith("Bearer")
        assert "stonks_plugin" not in body


def test_no_login_no_csrf_and_reads_only(client) -> None:  # type: ignore[no-untyped-def]
    assert client.get("/metrics").status_code == 200  # anonymous
    assert client.head("/metrics").status_code == 200
    assert client.post("/metrics").status_code == 405


def test_numbers_are_flattened_bounded_and_filtered() -> None:
    from decimal import Decimal

    raw = {
        "a": 1,
        "b": {"c": 2.5, "d": {"e": True, "f": {"too": {"deep": 1}}}},
        "money": Decimal("1.5"),
        "token": 5,
        "nope": None,
        "list": [1, 2],
    }
    assert plugin_values.numbers(raw) == {"a": 1.0, "b.c": 2.5, "b.d.e": 1.0, "money": 1.5}
    assert plugin_values.numbers({"echo": 4321}, ("4321",)) == {}
    assert plugin_values.numbers([1, 2]) == {}
    many = plugin_values.numbers({f"k{i}": i for i in range(500)})
    assert len(many) == plugin_values.MAX_VALUES


def test_dead_processes_lose_their_live_gauges_and_keep_their_counters(
    tmp_path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv(multiproc.ENV, str(tmp_path))
    me, gone, other_host = multiproc.identity(), multiproc.identity(2**22 + 7), "elsewhere-5"
    names = [
        f"counter_{me}.db",
        f"gauge_livemax_{me}.db",
        f"counter_{gone}.db",
        f"gauge_livemax_{gone}.db",
        f"gauge_livemax_{other_host}.db",
    ]
    for name in names:
        (tmp_path / name).write_bytes(b"")
    multiproc.mark_process_dead(2**22 + 7)
    assert not (tmp_path / f"gauge_livemax_{gone}.db").exists()
    assert (tmp_path / f"counter_{gone}.db").exists()  # sums never go down
    assert (tmp_path / f"gauge_livemax_{me}.db").exists()
    # A new start sweeps this host's dead processes, never a live one or another host's.
    assert multiproc.sweep_dead() == 1
    assert sorted(os.listdir(tmp_path)) == sorted(
        [f"counter_{me}.db", f"gauge_livemax_{me}.db", f"gauge_livemax_{other_host}.db"]
    )


def test_an_empty_multiproc_dir_means_one_process(monkeypatch, client) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv(multiproc.ENV, "")  # as a .env copied from .env.example sets it
    prometheus.reset()
    text, _ = scrape(client)
    assert "# TYPE stonks_plugin_state gauge" in text
    assert multiproc.configure() is None
    assert multiproc.ENV not in os.environ
    assert not any(Path.cwd().glob("counter_*.db"))
