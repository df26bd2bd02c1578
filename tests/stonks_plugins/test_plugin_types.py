"""The plugin types beyond brokers, each through its bundled example: an aggregator's panels
on the home page, a view plugin's page with its template, static file and navigation entry
(404 once disabled), and a middleware that converts values until it is disabled."""

from __future__ import annotations

import re

import pytest

from stonks_plugins.manager import manager
from stonks_plugins.models import Plugin

pytestmark = pytest.mark.django_db
ROW = re.compile(
    r'<tr data-broker="([^"]*)"><td>([^<]*)</td><td>([^<]*)</td><td>[^<]*</td>\s*'
    r'<td class="num">[^<]*</td><td class="num">([^<]*)</td><td>([^<]*)</td>'
)


@pytest.fixture(autouse=True)
def _fast(settings) -> None:  # type: ignore[no-untyped-def]
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def rows(client) -> dict[str, tuple[str, str]]:  # type: ignore[no-untyped-def]
    html = client.get("/").content.decode()
    return {name: (value, currency) for _, name, _, value, currency in ROW.findall(html)}


def test_aggregator_panels_on_the_home_page(plugin_dirs, admin_client_logged) -> None:
    plugin_dirs.add("allocation-aggregator")
    plugin_dirs.add("healthy-fixture")
    manager.sync()
    html = admin_client_logged.get("/").content.decode()
    assert 'data-plugin="allocation-aggregator"' in html
    for title in ("By currency", "By broker", "By product type"):
        assert f"<h3>{title}</h3>" in html
    assert "<td>healthy-fixture</td>" in html and "<td>ibkr</td>" in html
    manager.disable("allocation-aggregator")
    assert (
        'data-plugin="allocation-aggregator"' not in admin_client_logged.get("/").content.decode()
    )


def test_view_plugin_page_static_and_nav_then_404_when_disabled(
    plugin_dirs, admin_client_logged
) -> None:
    plugin_dirs.add("insights-view")
    plugin_dirs.add("healthy-fixture")
    manager.sync()
    home = admin_client_logged.get("/").content.decode()
    assert '<a href="/plugins/insights-view/" class="plugin-nav">Insights</a>' in home
    page = admin_client_logged.get("/plugins/insights-view/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'id="insights-summary"' in html and 'data-broker="healthy-fixture"' in html
    css = admin_client_logged.get("/plugins/insights-view/static/insights.css")
    assert css.status_code == 200 and b"insights-title" in b"".join(css.streaming_content)
    assert admin_client_logged.get("/plugins/insights-view/static/../plugin.py").status_code == 404
    assert admin_client_logged.get("/plugins/insights-view/nope").status_code == 404

    manager.disable("insights-view")
    assert admin_client_logged.get("/plugins/insights-view/").status_code == 404
    assert admin_client_logged.get("/plugins/insights-view/static/insights.css").status_code == 404
    assert "plugin-nav" not in admin_client_logged.get("/").content.decode()
    assert admin_client_logged.get("/plugins/no-such-plugin/").status_code == 404


def test_middleware_converts_until_disabled(plugin_dirs, admin_client_logged) -> None:
    plugin_dirs.add("base-currency-middleware")
    manager.sync()
    converted = rows(admin_client_logged)
    # ibkr's USD positions, converted with the default rate 0.92.
    assert converted["Example Semiconductor Inc"] == ("1450.66", "EUR")
    manager.disable("base-currency-middleware")
    assert rows(admin_client_logged)["Example Semiconductor Inc"] == ("1576.80", "USD")
    manager.enable("base-currency-middleware")
    assert rows(admin_client_logged)["Example Semiconductor Inc"][1] == "EUR"


def test_failing_middleware_is_skipped_not_fatal(plugin_dirs, admin_client_logged) -> None:
    folder = plugin_dirs.add("base-currency-middleware")
    plugin = folder / "basecurrency" / "plugin.py"
    plugin.write_text(
        plugin.read_text().replace(
            "        result = proceed()\n",
            "        raise RuntimeError('middleware bug')\n",
        )
    )
    manager.sync()
    assert rows(admin_client_logged)["Example Semiconductor Inc"] == ("1576.80", "USD")
    assert (
        Plugin.objects.get(name="base-currency-middleware")
        .events.filter(kind="failure", reason__contains="middleware bug")
        .exists()
    )
