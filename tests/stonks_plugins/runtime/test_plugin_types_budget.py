"""The page budget holds for every plugin type: an Insights panel that hangs shows its last
panels "as of" (or its error), a view plugin's page that hangs answers 503 with the reason,
and a middleware that hangs is skipped - the broker's own answer is shown."""

from __future__ import annotations

import time

import pytest

from stonks_plugins.manager import manager
from stonks_plugins.runtime import lanes
from stonks_plugins.sandbox.timeouts import Workers
from tests.stonks_overwatch.test_home import ROW, page, symbols
from tests.stonks_plugins.runtime.helpers import wait_until

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _short_budget(settings) -> None:  # type: ignore[no-untyped-def]
    settings.PLUGINS_PAGE_BUDGET = 0.5


def _insight(html: str, plugin: str) -> str:
    start = html.index(f'data-plugin="{plugin}"')
    return html[start : html.index("</div>", start)]


def test_a_hanging_panel_shows_its_last_panels_as_of_then_its_error(
    make_plugin, make_broker, admin_client_logged
) -> None:
    make_broker("some-broker", "SOME")
    root = make_plugin("aggregator", "slow-panels")
    manager.sync()
    assert "slow-panels panel" in _insight(page(admin_client_logged), "slow-panels")

    (root / "slow-call").write_text("1")
    try:
        html = page(admin_client_logged)
        assert "slow-panels" in lanes.stuck()  # the page did not wait for it
        panel = _insight(html, "slow-panels")
        assert "slow-panels panel" in panel and "as of" in panel
        assert symbols(html)["some-broker"] == {"SOME"}
    finally:
        (root / "slow-call").unlink()


def test_a_panel_hanging_from_the_start_is_reported_and_the_page_renders(
    make_plugin, make_broker, admin_client_logged
) -> None:
    make_broker("some-broker", "SOME")
    root = make_plugin("aggregator", "slow-panels", slow=True)
    manager.sync()
    try:
        html = page(admin_client_logged)
        assert "no answer within 0.5 s" in _insight(html, "slow-panels")
        assert symbols(html)["some-broker"] == {"SOME"}
    finally:
        (root / "slow-call").unlink()


def test_a_hanging_view_plugin_page_answers_503_with_the_reason(
    make_plugin, admin_client_logged
) -> None:
    root = make_plugin("view", "slow-view")
    manager.sync()
    assert admin_client_logged.get("/plugins/slow-view/").content == b"hello from slow-view"
    (root / "slow-call").write_text("1")
    try:
        response = admin_client_logged.get("/plugins/slow-view/")
        assert response.status_code == 503
        assert "no answer within 0.5 s" in response.content.decode()
        assert admin_client_logged.get("/").status_code == 200  # the rest of the site
    finally:
        (root / "slow-call").unlink()
    assert wait_until(lambda: "slow-view" not in lanes.stuck())
    assert admin_client_logged.get("/plugins/slow-view/").status_code == 200


def test_a_hanging_middleware_is_skipped_and_the_broker_answers(
    make_plugin, make_broker, admin_client_logged
) -> None:
    make_broker("some-broker", "SOME")
    root = make_plugin("middleware", "slow-middle")
    manager.sync()
    assert "(via slow-middle)" in page(admin_client_logged)
    (root / "slow-call").write_text("1")
    try:
        html = page(admin_client_logged)
        assert symbols(html)["some-broker"] == {"SOME"}
        assert "(via slow-middle)" not in html  # its answer came without the middleware
    finally:
        (root / "slow-call").unlink()


def test_a_middleware_is_not_blamed_for_the_time_a_broker_takes(
    make_plugin, make_broker, admin_client_logged, settings
) -> None:
    """A broker that answers in 1.2 s (past half the 2 s budget, past PLUGINS_SLOW_CALL)
    keeps the middleware waiting in ``proceed()`` that long: that is the broker's time, not
    the middleware's. The middleware stays on every page, around every broker."""
    settings.PLUGINS_PAGE_BUDGET = 2.0
    settings.PLUGINS_SLOW_CALL = 0.1  # the site's default (the suite's is higher)
    make_broker("quick-broker", "QUIK")
    slow = make_broker("slowish-broker", "SLOW")
    make_plugin("middleware", "steady-middle")
    manager.sync()
    (slow / "delay-service").write_text("1.2")
    for _ in range(3):
        html = page(admin_client_logged)
        assert symbols(html)["quick-broker"] == {"QUIK"}
        assert symbols(html)["slowish-broker"] == {"SLOW"}
        names = {m["broker"]: m["name"] for m in ROW.finditer(html)}
        assert names["quick-broker"].endswith("(via steady-middle)"), names
        assert names["slowish-broker"].endswith("(via steady-middle)"), names
        assert lanes.lane("steady-middle").slow() == ""
    # The broker's 1.2 s are its own latency; the middleware's excludes them.
    assert lanes.lane("slowish-broker").latency >= 1.2
    assert lanes.lane("slowish-broker").slow()
    assert lanes.lane("steady-middle").latency < 0.5


def test_a_middleware_that_answered_is_not_skipped_while_its_thread_finishes(
    make_plugin, make_broker, admin_client_logged, settings, monkeypatch
) -> None:
    """A middleware's thread wakes the broker's thread when ``intercept`` returns, and marks
    its call done a moment later. A broker thread woken in between took the call for
    unfinished: it slept until the middleware's half of the budget was over, then skipped
    the middleware that had answered (the page showed the broker's raw rows) and judged it
    overrun. Here that moment is stretched to 1.5 s, past the middleware's 1 s share."""
    settings.PLUGINS_PAGE_BUDGET = 2.0
    make_broker("quick-broker", "QUIK")
    make_plugin("middleware", "steady-middle")
    manager.sync()
    assert "(via steady-middle)" in page(admin_client_logged)

    start = Workers.start

    def finishing_late(self, func, args=(), *, name, on_exit):  # type: ignore[no-untyped-def]
        if name.startswith("plugin:steady-middle:"):
            inner = func

            def func(*a):  # type: ignore[no-untyped-def]
                try:
                    return inner(*a)
                finally:
                    time.sleep(1.5)  # after intercept's return, before its call is done

        return start(self, func, args, name=name, on_exit=on_exit)

    monkeypatch.setattr(Workers, "start", finishing_late)
    html = page(admin_client_logged)
    names = {m["broker"]: m["name"] for m in ROW.finditer(html)}
    assert names["quick-broker"].endswith("(via steady-middle)"), names
    assert not lanes.lane("steady-middle").overran
