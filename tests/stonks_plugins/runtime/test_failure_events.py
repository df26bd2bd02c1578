"""A broker whose service fails the same way on every page is news once per streak: its
first failure is an event with its traceback, the one that opens its circuit another (it
changes the plugin's state); the pages between add none. It is news again once it answered,
or when it fails another way."""

from __future__ import annotations

import pytest

from stonks_plugins.manager import manager
from stonks_plugins.models import EventKind, Plugin, PluginEvent
from stonks_plugins.registry import plugin_registry
from stonks_plugins.runtime import lanes, outbox
from tests.stonks_overwatch.test_home import failures, page, symbols
from tests.stonks_plugins.runtime.helpers import wait_until

pytestmark = pytest.mark.django_db


def _failure_events(name: str) -> list[str]:
    return list(
        PluginEvent.objects.filter(plugin__name=name, kind=EventKind.FAILURE)
        .order_by("id")
        .values_list("reason", flat=True)
    )


def test_a_service_failing_the_same_way_on_every_page_is_one_event_until_its_circuit_opens(
    make_broker, settings, admin_client_logged, monkeypatch
) -> None:
    settings.PLUGINS_CIRCUIT_THRESHOLD = 4
    monkeypatch.setattr(lanes, "RECHECK_FAILED", 0.05)
    root = make_broker("bad-export", "BADX")
    make_broker("good-export", "GOOD")
    manager.sync()
    (root / "fail-service").write_text("bad row at line 7")
    circuit = plugin_registry.sandbox("bad-export").circuit

    def failing_pages() -> None:
        """A page; the 3rd failure on comes from a call made in the background (after two
        failures in a row pages stop waiting for the broker)."""
        html = page(admin_client_logged)
        assert "bad row at line 7" in failures(html)["bad-export"]  # every page says so
        assert symbols(html)["good-export"] == {"GOOD"}
        assert wait_until(lambda: not lanes.busy("bad-export"))
        outbox.settle()

    for _ in range(2):
        failing_pages()
    assert "asked again in the background" in failures(page(admin_client_logged))["bad-export"]
    assert wait_until(lambda: (failing_pages(), circuit.failures >= 3)[1])
    assert _failure_events("bad-export") == [
        "portfolio.get_portfolio failed: ValueError: bad row at line 7"
    ]
    # The 4th failure in a row opens the circuit: news.
    assert wait_until(lambda: (failing_pages(), circuit.failures >= 4)[1])
    events = _failure_events("bad-export")
    assert len(events) == 2 and "circuit open after 4 consecutive failures" in events[1]


def test_a_failure_is_news_again_after_an_answer_or_when_it_changes(
    make_broker, settings, admin_client_logged, monkeypatch
) -> None:
    settings.PLUGINS_CIRCUIT_THRESHOLD = 100
    monkeypatch.setattr(lanes, "RECHECK_FAILED", 0.05)  # once pages stop waiting for it
    root = make_broker("flaky-export", "FLKX")
    manager.sync()
    marker = root / "fail-service"
    marker.write_text("bad row at line 7")
    circuit = plugin_registry.sandbox("flaky-export").circuit

    def failures_after(count: int) -> list[str]:
        """Pages until the plugin failed ``count`` times in a row (after two, its calls are
        made in the background), then its failure events."""
        assert wait_until(lambda: (page(admin_client_logged), circuit.failures >= count)[1])
        assert wait_until(lambda: not lanes.busy("flaky-export"))
        outbox.settle()
        return _failure_events("flaky-export")

    assert len(failures_after(3)) == 1
    marker.write_text("the export is empty")  # another way
    assert len(failures_after(circuit.failures + 1)) == 2
    marker.unlink()
    assert wait_until(lambda: symbols(page(admin_client_logged)).get("flaky-export") == {"FLKX"})
    marker.write_text("the export is empty")  # as before its answer, but after one
    events = failures_after(1)
    assert events[-1].endswith("ValueError: the export is empty")
    assert len(events) == 3


def test_a_failed_trial_of_the_open_circuit_is_no_news_unless_it_fails_another_way(
    make_broker, settings, admin_client_logged
) -> None:
    """Once its circuit opened, the plugin is tried again in the background each time the
    circuit lets a trial through. A trial failing as the streak did was a warning, an event
    with its traceback and a state write at every trial, in every process; now the first
    opening says it once. A trial failing another way is news, and an answer ends it."""
    settings.PLUGINS_CIRCUIT_THRESHOLD = 2
    settings.PLUGINS_BACKOFF_BASE = 0.05
    root = make_broker("trial-export", "TRLX")
    make_broker("fine-export", "FINE")
    manager.sync()
    marker = root / "fail-service"
    marker.write_text("bad row at line 7")
    page(admin_client_logged)
    page(admin_client_logged)  # the 2nd failure in a row opens the circuit
    assert len(_failure_events("trial-export")) == 2
    row = Plugin.objects.get(name="trial-export")
    assert (row.state, row.error_code) == ("error", "circuit_open")
    circuit = plugin_registry.sandbox("trial-export").circuit

    def trials(count: int) -> None:
        """Pages until the circuit re-opened ``count`` times more (each page may start a
        trial in the background; it is not waited for)."""
        target = circuit.opens + count
        assert wait_until(lambda: (page(admin_client_logged), circuit.opens >= target)[1])
        assert wait_until(lambda: not lanes.busy("trial-export"))
        outbox.settle()

    trials(3)
    assert len(_failure_events("trial-export")) == 2  # three failed trials: nothing new

    marker.write_text("the export is empty")  # the next trial fails another way: news
    trials(1)
    news = _failure_events("trial-export")[2:]  # its event, and its row's new message
    assert news and all("ValueError: the export is empty" in e for e in news), news
    assert "the export is empty" in Plugin.objects.get(name="trial-export").error_message

    marker.unlink()  # the next trial answers; the pages after it ask the plugin again
    assert wait_until(lambda: symbols(page(admin_client_logged)).get("trial-export") == {"TRLX"})
    assert symbols(page(admin_client_logged))["fine-export"] == {"FINE"}
