"""The console overview, the plugin page's sections (manifest, capabilities, services,
events, health history, metrics with their charts) and the rule that no admin page ever
shows a stored secret."""

from __future__ import annotations

import re
from typing import Any

import pytest

from stonks_plugins.admin.charts import health_chart, metrics_chart
from stonks_plugins.admin.forms import BASE_VERSION_FIELD, SUBMIT_FIELD
from stonks_plugins.manager import manager
from stonks_plugins.models import Plugin, PluginConfig, PluginEvent

from .conftest import GOOD, PLUGINS, SECRET, change_url, page

pytestmark = pytest.mark.django_db
OVERVIEW = f"{PLUGINS}overview/"


def test_overview_counts_every_state_and_health(console, operator) -> None:  # type: ignore[no-untyped-def]
    console.add("incompatible-api")
    manager.sync(actor="setup")
    manager.disable("healthy-fixture", actor="ops")
    manager.check_health("config-fixture", actor="ops")
    response = operator.get(OVERVIEW)
    html = page(response)
    states = {s["state"]: s["count"] for s in response.context["states"]}
    assert states == {
        "discovered": 0,
        "loading": 0,
        "loaded": 0,
        "active": 1,
        "error": 1,
        "disabled": 1,
        "unloading": 0,
    }
    healths = {h["status"]: h["count"] for h in response.context["healths"]}
    assert healths == {"healthy": 1, "degraded": 0, "unhealthy": 0, "none": 2}
    for name, state in (
        ("config-fixture", "active"),
        ("healthy-fixture", "disabled"),
        ("incompatible-api", "error"),
    ):
        tile = html.split(f'data-plugin="{name}"')[1].split("</a>")[0]
        assert f"so-badge so-state-{state}" in tile
    assert "<code>incompatible_api</code>" in html
    assert f'href="{PLUGINS}?state__exact=error"' in html  # each count opens the filtered list
    assert f'href="{OVERVIEW}"' in page(operator.get(PLUGINS))  # linked from the list


def test_plugin_page_shows_manifest_capabilities_events_health_and_metrics(
    console, operator
) -> None:  # type: ignore[no-untyped-def]
    assert "CFG-EUR" in operator.get("/").content.decode()  # calls into the plugin, here
    manager.check_health("config-fixture", actor="ops")
    manager.check_health("config-fixture", actor="ops")
    html = page(operator.get(change_url("config-fixture")))
    assert '  "plugin": {\n    "name": &quot;config-fixture&quot;' in html or (
        "&quot;name&quot;: &quot;config-fixture&quot;" in html
    )
    assert '<span class="so-chip">portfolio</span>' in html
    assert "<code>cfgfix.services.PortfolioService</code>" in html
    assert "discovered and validated" in html and "loaded → active" in html
    assert html.count('<rect class="so-hbar so-hbar-healthy"') == 2  # health over time
    metrics = html.split('id="metrics"')[1].split("</section>")[0]
    assert '<svg class="so-chart so-metrics-chart"' in metrics
    assert "<code>portfolio.get_portfolio</code>" in metrics
    assert re.search(r'<rect class="so-bar so-bar-calls" x="\d+" y="\d+" width="[1-9]', metrics)
    assert "so-circuit-closed" in metrics


def test_charts_scale_bars_to_the_largest_value() -> None:
    chart = metrics_chart(
        [
            ("a", {"calls": 10, "errors": 5, "timeouts": 0, "avg_ms": 2.0, "max_ms": 8.0}),
            ("b", {"calls": 5, "errors": 0, "timeouts": 0, "avg_ms": 1.0, "max_ms": 4.0}),
        ]
    )
    assert chart is not None
    a, b = chart["rows"]
    assert a["calls_w"] == chart["bar_w"] == 2 * b["calls_w"]
    assert a["errors_w"] == chart["bar_w"] / 2 and b["errors_w"] == 0
    assert a["max_w"] == chart["bar_w"] and a["avg_w"] == chart["bar_w"] / 4
    assert metrics_chart([]) is None and health_chart([]) is None


def _crawl(client: Any, audit_trail: bool = True) -> dict[str, str]:
    """Every console page: list, overview, each plugin; with ``audit_trail`` each event and
    config version too (a reader with only ``view_plugin`` may not open those)."""
    urls = ["/admin/", "/admin/stonks_plugins/", PLUGINS, OVERVIEW, f"{PLUGINS}?q=config"]
    for plugin in Plugin.objects.all():
        urls += [f"{PLUGINS}{plugin.pk}/change/", f"{PLUGINS}{plugin.pk}/history/"]
    if audit_trail:
        urls += ["/admin/stonks_plugins/pluginevent/", "/admin/stonks_plugins/pluginconfig/"]
        urls += [
            f"/admin/stonks_plugins/pluginevent/{e.pk}/change/" for e in PluginEvent.objects.all()
        ]
        urls += [
            f"/admin/stonks_plugins/pluginconfig/{c.pk}/change/" for c in PluginConfig.objects.all()
        ]
    return {url: page(client.get(url)) for url in urls}


def test_no_admin_page_ever_shows_a_stored_secret(console, operator, reader, applied) -> None:  # type: ignore[no-untyped-def]
    applied(manager.set_config, "config-fixture", GOOD, actor="ana")
    refused = {"settings": {"currency": "XXX"}}
    applied(manager.set_config, "config-fixture", refused, actor="ana", partial=True)
    manager.check_health(actor="ops")
    operator.get("/")
    # A form that comes back with errors does not echo a newly typed secret either.
    typed = "typed-but-never-saved-1"
    bounced = operator.post(
        change_url("config-fixture"),
        {
            SUBMIT_FIELD: "1",
            BASE_VERSION_FIELD: "1",
            "credentials.username": "ana",
            "credentials.password": typed,
            "settings.refresh_minutes": "0",
        },
    )
    assert typed not in page(bounced) and SECRET not in page(bounced)
    pages = {
        **_crawl(operator),
        **{f"reader {u}": h for u, h in _crawl(reader, audit_trail=False).items()},
    }
    assert len(pages) > 20
    leaks = [url for url, html in pages.items() if SECRET in html or typed in html]
    assert leaks == []
    assert "********" in pages[change_url("config-fixture")]  # masked, not missing


def test_a_plugin_page_decrypts_no_secret_until_a_config_changes(
    console, operator, applied, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    """The page scrubs text with the plugin's secret values, cached per config version: once
    they are known, showing the page decrypts nothing; a new config is read on the next page."""
    from stonks_plugins.config import secrets, system

    applied(manager.set_config, "config-fixture", GOOD, actor="ana")
    Plugin.objects.filter(name="config-fixture").update(
        state="error", error_code="initialize_failed", error_message=f"login as ana/{SECRET}"
    )
    page(operator.get(change_url("config-fixture")))  # reads (and caches) the secret values
    decrypted: list[Any] = []

    def counting(data: Any, paths: Any) -> Any:
        decrypted.append(data)
        return secrets.decrypt(data, paths)

    monkeypatch.setattr(system, "decrypt", counting)
    html = page(operator.get(change_url("config-fixture")))
    assert decrypted == [] and SECRET not in html and "login as ana/********" in html
    newer = {**GOOD, "credentials": {"username": "ana", "password": "another-long-secret"}}
    applied(manager.set_config, "config-fixture", newer, actor="ana")
    page(operator.get(change_url("config-fixture")))
    assert decrypted  # the new version's secrets are read once


def test_every_plugin_page_renders_for_the_broken_corpus(plugin_dirs, operator) -> None:  # type: ignore[no-untyped-def]
    """A broken manifest, a missing schema or code that fails to import costs a section its
    content, never the page."""
    from tests.conftest import CORPUS

    for name in CORPUS:
        plugin_dirs.add(name)
    plugin_dirs.add("config-fixture")
    manager.sync(actor="setup")
    manager.check_health(actor="ops")
    for plugin in Plugin.objects.all():
        html = page(operator.get(f"{PLUGINS}{plugin.pk}/change/"))
        assert f"so-state-{plugin.state}" in html
        if plugin.error_code:
            assert f"<code>{plugin.error_code}</code>" in html
    assert "so-state-error" in page(operator.get(PLUGINS))
    assert page(operator.get(OVERVIEW))
