"""A broker whose service fails the same way on every page is news once per streak: its
first failure is an event with its traceback, the one that opens its circuit another (it
changes the plugin's state); the pages between add none. It is news again once it answered,
or when it fails another way."""

from __future__ import annotations

import pytest

from stonks_plugins.manager import manager
from stonks_plugins.models import EventKind, PluginEvent
from tests.stonks_overwatch.test_home import failures, page, symbols

pytestmark = pytest.mark.django_db


def _failure_events(name: str) -> list[str]:
    return list(
        PluginEvent.objects.filter(plugin__name=name, kind=EventKind.FAILURE)
        .order_by("id")
        .values_list("reason", flat=True)
    )


def test_a_service_failing_the_same_way_on_every_page_is_one_event_until_its_circuit_opens(
    make_broker, settings, admin_client_logged
) -> None:
    settings.PLUGINS_CIRCUIT_THRESHOLD = 4
    root = make_broker("bad-export", "BADX")
    make_broker("good-export", "GOOD")
    manager.sync()
    (root / "fail-service").write_text("bad row at line 7")
    for _ in range(3):
        html = page(admin_client_logged)
        assert "bad row at line 7" in failures(html)["bad-export"]  # every page says so
        assert symbols(html)["good-export"] == {"GOOD"}
    assert _failure_events("bad-export") == [
        "portfolio.get_portfolio failed: ValueError: bad row at line 7"
    ]
    page(admin_client_logged)  # the 4th failure in a row opens the circuit: news
    events = _failure_events("bad-export")
    assert len(events) == 2 and "circuit open after 4 consecutive failures" in events[1]


def test_a_failure_is_news_again_after_an_answer_or_when_it_changes(
    make_broker, settings, admin_client_logged
) -> None:
    settings.PLUGINS_CIRCUIT_THRESHOLD = 100
    root = make_broker("flaky-export", "FLKX")
    manager.sync()
    marker = root / "fail-service"
    marker.write_text("bad row at line 7")
    page(admin_client_logged)
    page(admin_client_logged)
    assert len(_failure_events("flaky-export")) == 1
    marker.write_text("the export is empty")  # another way
    page(admin_client_logged)
    assert len(_failure_events("flaky-export")) == 2
    marker.unlink()
    assert symbols(page(admin_client_logged))["flaky-export"] == {"FLKX"}
    marker.write_text("the export is empty")  # as before its answer, but after one
    page(admin_client_logged)
    assert _failure_events("flaky-export")[-1].endswith("ValueError: the export is empty")
    assert len(_failure_events("flaky-export")) == 3
