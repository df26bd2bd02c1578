"""The background runtime of a serving process: it loads every served plugin at start
without a request, retries a failed load after its backoff (never on a user's request), and
writes what it learns itself. These tests commit (the runtime's thread has its own database
connection, as in production)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator

import pytest

from stonks_plugins import propagation
from stonks_plugins.lifecycle import signals
from stonks_plugins.manager import manager
from stonks_plugins.models import EventKind, Plugin
from stonks_plugins.registry import plugin_registry
from stonks_plugins.runtime import lanes, loads, outbox, quiet
from stonks_plugins.runtime.background import background, ensure_started
from stonks_plugins.runtime.serving import serving
from tests.stonks_overwatch.test_home import failures, page
from tests.stonks_plugins.runtime.helpers import wait_until

pytestmark = pytest.mark.django_db(transaction=True)


def _fresh_process() -> None:
    """Forget what this process loaded, as a new web or worker process would start."""
    serving.reset()
    plugin_registry.clear()
    loads.forget()


@pytest.fixture
def runtime(settings) -> Iterator[None]:  # type: ignore[no-untyped-def]
    settings.PLUGINS_WARMUP = True
    settings.PLUGINS_REFRESH_INTERVAL = 0.1
    settings.CELERY_TASK_ALWAYS_EAGER = False  # no in-process beat in these tests
    yield
    background.stop()


def test_plugins_are_loaded_at_start_before_any_request(make_broker, runtime) -> None:
    make_broker("warm-one", "WRM1")
    make_broker("warm-two", "WRM2")
    manager.sync()
    _fresh_process()
    assert plugin_registry.peek("warm-one") is None

    assert background.start()
    assert wait_until(lambda: plugin_registry.peek("warm-one") and plugin_registry.peek("warm-two"))


def test_a_failed_load_is_retried_in_the_background_and_comes_back(
    make_broker, runtime, settings, admin_client_logged
) -> None:
    # A shorter backoff than the default 5 s, and a longer wait for the recovery: the retry
    # that finds the broker back comes well within it even on a busy machine (it failed once
    # in 23 runs with 5 s and 10 s), while the page below still comes long before it.
    settings.PLUGINS_LOAD_RETRY_BASE = 2.0
    root = make_broker("flaky-login", "FLKY", slow=("fail-init",))
    make_broker("steady", "STDY")
    manager.sync()
    row = Plugin.objects.get(name="flaky-login")
    assert (row.state, row.error_code) == ("error", "initialize_failed")
    _fresh_process()

    assert background.start()
    assert wait_until(lambda: plugin_registry.peek("steady"))
    assert wait_until(lambda: plugin_registry.load_failure("flaky-login")[0] >= 1)
    # A user's request during the backoff starts no load: it says when the retry is due.
    html = page(admin_client_logged)
    assert "next attempt in" in failures(html)["flaky-login"]

    (root / "fail-init").unlink()  # the broker's login works again
    assert wait_until(lambda: Plugin.objects.get(name="flaky-login").state == "active", 20)
    row = Plugin.objects.get(name="flaky-login")
    assert row.error_code == ""
    assert row.events.filter(reason__startswith="recovered").exists()
    assert "flaky-login" not in failures(page(admin_client_logged))


def test_a_retry_that_fails_as_before_writes_nothing_new_until_it_fails_another_way(
    make_broker, runtime, settings, caplog
) -> None:
    """Each retry of a failed load used to write an event and lock the plugin's row beside
    the pages, though nothing had changed, and to log a warning: an operator's log filled
    with the same line from every process. Its repeats are now only logged at debug level
    (the plugin_failed signal is still sent); a failure of another kind is news again."""
    caplog.set_level(logging.WARNING)
    settings.PLUGINS_LOAD_RETRY_BASE = 0.1
    root = make_broker("refused-login", "RFSD", slow=("fail-init",))
    manager.sync()
    row = Plugin.objects.get(name="refused-login")
    assert (row.state, row.error_code) == ("error", "initialize_failed")
    _fresh_process()
    caplog.clear()  # what sync said, in the process before
    sent: list[str] = []

    def heard(sender, name, **kwargs):  # type: ignore[no-untyped-def]
        sent.append(name)

    signals.plugin_failed.connect(heard, weak=False)
    try:
        assert background.start()
        assert wait_until(lambda: plugin_registry.load_failure("refused-login")[0] >= 1)
        assert wait_until(lambda: outbox.pending() == 0)
        events = row.events.filter(kind=EventKind.FAILURE)
        first = events.count()
        assert wait_until(lambda: plugin_registry.load_failure("refused-login")[0] >= 4)
        assert wait_until(lambda: outbox.pending() == 0)
        assert events.count() == first  # three retries more, failing as before
        assert sent.count("refused-login") >= 4  # each one still signalled
        said = [r.getMessage() for r in caplog.records if "refused-login" in r.getMessage()]
        assert len([m for m in said if "initialize failed" in m]) == 1, said

        (root / "fail-init-says").write_text("runtime test broker: the login timed out")
        assert wait_until(lambda: events.filter(reason__contains="timed out").exists())
        # The row says so too (written by the outbox just after the event).
        assert wait_until(
            lambda: "timed out" in Plugin.objects.get(name="refused-login").error_message
        )
        row.refresh_from_db()
        assert (row.state, row.error_code) == ("error", "initialize_failed")
    finally:
        signals.plugin_failed.disconnect(heard)


def test_a_retry_reads_the_plugins_config_again_only_once_a_change_arrives(
    make_broker, runtime, settings
) -> None:
    """Reading a plugin's config (its row, its live version, the schema: 1.4-3 ms of ORM)
    was half of what a retry that fails as before cost the process, beside its pages, on
    every retry. It is read again only once this process takes in a change (any process's:
    an applied config is one), and the retry after that reads it."""
    settings.PLUGINS_LOAD_RETRY_BASE = 0.1
    make_broker("sticky-login", "STKY", slow=("fail-init",))
    manager.sync()
    _fresh_process()
    reads: list[str] = []
    provider = plugin_registry.hooks.config_provider
    assert provider is not None

    def reading(name: str):  # type: ignore[no-untyped-def]
        reads.append(name)
        return provider(name)

    plugin_registry.hooks.config_provider = reading
    try:
        assert background.start()
        assert wait_until(lambda: plugin_registry.load_failure("sticky-login")[0] >= 2)
        read = reads.count("sticky-login")  # the first load's and the first retry's
        assert wait_until(lambda: plugin_registry.load_failure("sticky-login")[0] >= 5)
        assert reads.count("sticky-login") == read  # three retries more, no read

        propagation.bump()  # a change, committed by any process
        assert wait_until(lambda: reads.count("sticky-login") > read)
    finally:
        plugin_registry.hooks.config_provider = provider


def test_the_runtimes_writes_wait_for_a_moment_without_a_request(
    make_broker, runtime, monkeypatch
) -> None:
    """The outbox's writes (a few ms of Python each, holding the interpreter's lock) are
    made between requests, not beside a page - and a process that is never idle still
    makes them, all of a round's after ``quiet.WAIT`` at most."""
    make_broker("quiet-one", "QUT1")
    manager.sync()
    _fresh_process()
    assert background.start()
    assert wait_until(lambda: plugin_registry.peek("quiet-one") is not None)
    written: list[float] = []
    monkeypatch.setattr(quiet, "WAIT", 30.0)
    with quiet.request():  # a page in flight
        outbox.post("a test record", lambda: written.append(time.monotonic()))
        time.sleep(0.5)  # five rounds of the runtime's loop
        assert written == []
        ended = time.monotonic()
    assert wait_until(lambda: written, timeout=5)
    assert written[0] >= ended

    monkeypatch.setattr(quiet, "WAIT", 1.0)
    with quiet.request():  # a process never idle: its writes wait WAIT in all, not each
        began = time.monotonic()
        for n in range(6):
            outbox.post(f"busy record {n}", lambda: written.append(time.monotonic()))
        assert wait_until(lambda: len(written) == 7, timeout=10)
        assert written[-1] - began < 3.0  # six waits of WAIT each would be 6 s


def test_a_web_process_takes_requests_once_warm_and_knows_its_hanging_brokers(
    make_broker, runtime, settings, admin_client_logged
) -> None:
    settings.PLUGINS_PAGE_BUDGET = 0.5
    make_broker("warm-quick", "WQCK")
    hanging = make_broker("warm-hangs", "WHNG", slow=("slow-service",))
    manager.sync()
    _fresh_process()
    try:
        # What the WSGI module does at import: start, and wait (bounded) for the warm-up.
        ensure_started(ready_within=5.0)
        assert background.warmed.is_set()
        assert plugin_registry.peek("warm-quick") is not None
        # The warm-up page asked every broker: the quick one's answer is kept, and the
        # hanging one is known not to be waited for - the first user's page is served at once.
        assert lanes.lane("warm-hangs").slow()
        html = page(admin_client_logged)
        assert "WQCK" in html
        assert "still running" in failures(html)["warm-hangs"]
    finally:
        (hanging / "slow-service").unlink()


def test_the_warm_up_asks_a_broker_slow_once_again_before_the_process_takes_requests(
    make_broker, runtime, settings
) -> None:
    settings.PLUGINS_SLOW_CALL = 0.1
    slow = make_broker("warm-slow", "WSLO")
    busy = make_broker("warm-busy-start", "WBSY")
    manager.sync()
    _fresh_process()
    (slow / "delay-service").write_text("0.2")
    (busy / "delay-once").write_text("0.2")  # slowed by the start, for its first call only
    ensure_started(ready_within=5.0)
    assert background.warmed.is_set()
    # Both were asked twice before the first request: the slow one is known slow for good
    # (users' pages will not run it beside them), the other is waited for again (its one
    # slow answer made it slow; only a quick second answer clears that).
    assert lanes.lane("warm-slow").confirmed and lanes.lane("warm-slow").slow()
    lane = lanes.lane("warm-busy-start")
    assert not (busy / "delay-once").exists() and not lane.slow()


def test_a_refresh_shuts_a_leaving_plugin_down_without_holding_the_serving_lock(
    make_broker, settings
) -> None:
    """A plugin whose shutdown hangs (here in a process without the background runtime,
    where the refreshing thread runs it itself) never keeps another thread's refresh
    waiting: the lock is released before any plugin code runs."""
    settings.PLUGINS_TIMEOUTS = {**settings.PLUGINS_TIMEOUTS, "shutdown": 10.0}
    root = make_broker("slow-to-stop", "STOP", slow=("slow-shutdown",))
    manager.sync()
    assert plugin_registry.peek("slow-to-stop") is not None
    manager.disable("slow-to-stop")
    refreshing = threading.Thread(target=serving.refresh, kwargs={"force": True})
    refreshing.start()
    try:
        assert wait_until(lambda: (root / "in-shutdown").exists())
        assert serving._lock.acquire(blocking=False)  # free while the shutdown hangs
        serving._lock.release()
        assert "slow-to-stop" not in plugin_registry.known()
    finally:
        (root / "slow-shutdown").unlink()
        refreshing.join(10)


def test_a_crashed_child_is_restarted_in_the_background_not_by_a_page(
    plugin_dirs, runtime, settings
) -> None:
    settings.PLUGINS_BACKOFF_BASE = 0.1
    plugin_dirs.add("proc-exit")  # its child exits in every get_portfolio
    manager.sync()
    _fresh_process()
    assert background.start()
    assert wait_until(lambda: plugin_registry.peek("proc-exit"))
    host = plugin_registry.peek("proc-exit").host
    assert host is not None
    # A child runs, started or restarted (a call during a restart is refused at once).
    assert wait_until(lambda: host.pid is not None and host.restart_in is None, timeout=10)
    first = host.pid
    with pytest.raises(Exception, match="exited"):
        host.call("portfolio", "get_portfolio")
    # Nobody calls again: the runtime's thread starts a new child once the backoff is over.
    assert wait_until(
        lambda: host.pid not in (None, first) and host.restart_in is None, timeout=10
    ), host.status()
    assert host.call("portfolio", "get_portfolio_total").total_value == 1.0


def _warmed_with_a_dying_child(plugin_dirs, settings):  # type: ignore[no-untyped-def]
    """A fresh process serving ``proc-exit`` (its child exits in every get_portfolio), once
    its warm-up page asked it (the child started, and exited in the call); its host and
    lane. Restarts are due 0.1 s after a crash, background refreshes every 30 s."""
    settings.PLUGINS_BACKOFF_BASE = 0.1
    settings.PLUGINS_REVALIDATE_EVERY = 30.0
    plugin_dirs.add("proc-exit")
    manager.sync()
    _fresh_process()
    assert background.start()
    assert wait_until(lambda: background.warmed.is_set() and not lanes.busy("proc-exit"))
    host = plugin_registry.peek("proc-exit").host
    assert host is not None
    return host, lanes.lane("proc-exit")


def test_a_starting_worker_makes_the_calls_that_came_due_while_it_warmed_up(
    plugin_dirs, runtime, settings, admin_client_logged
) -> None:
    """The warm-up's call crashed ``proc-exit``'s child, restarted while the worker waited
    for its warm-up to settle. Its next call - the one a user's first page would have made,
    to watch it die again - is the worker's own, before it takes requests: the first page
    already knows the crash loop."""
    settings.PLUGINS_BACKOFF_BASE = 0.1
    plugin_dirs.add("proc-exit")
    manager.sync()
    _fresh_process()
    ensure_started(ready_within=10.0)  # what the WSGI module does at import
    lane = lanes.lane("proc-exit")
    assert lane.crashes >= 2, lane.slow()
    assert "died in each of its last" in failures(page(admin_client_logged))["proc-exit"]


def test_a_crashed_child_nobody_waits_for_is_restarted_only_before_its_next_call(
    plugin_dirs, runtime, settings
) -> None:
    """A child that crashes on every call, of a plugin the pages no longer wait for, is not
    restarted as soon as its backoff is over - that would take an interpreter's start from
    the pages after each crash - but when its next (background) call comes near."""
    settings.PLUGINS_SLOW_CALL = 0.001  # every call is slow: pages serve its last answer
    host, lane = _warmed_with_a_dying_child(plugin_dirs, settings)
    assert host.crashes, host.status()
    assert lane.slow() and not lane.called_within(10.0)
    assert wait_until(lambda: host.revivable, timeout=5), host.status()
    assert not background._stop.wait(0.5)  # several rounds of the runtime's loop
    assert host.pid is None  # nobody will call it for ~30 s: not restarted yet

    settings.PLUGINS_REVALIDATE_EVERY = 1.0  # its refresh is now due within the lead
    assert lane.called_within(10.0)
    assert wait_until(lambda: host.pid is not None, timeout=10), host.status()


def test_a_child_that_dies_in_every_call_is_not_restarted_for_each_page(
    plugin_dirs, runtime, settings, admin_client_logged
) -> None:
    """Once its child died in two calls in a row, the pages stop calling the plugin: they
    show why at once, and no page's call restarts it as soon as its backoff is over (an
    interpreter's start of CPU beside the pages, seconds apart, to watch it die again); its
    child is restarted shortly before its next background call."""
    host, lane = _warmed_with_a_dying_child(plugin_dirs, settings)
    # One crash is retried by the pages (it may have been a one-off); a second ends that.
    assert wait_until(lambda: bool(page(admin_client_logged)) and lane.crashes >= 2, timeout=10)
    restarts = host.restarts
    shown = failures(page(admin_client_logged))["proc-exit"]
    assert "died in each of its last 2 calls" in shown and "exited" in shown, shown
    for _ in range(10):  # ten times its restart backoff
        page(admin_client_logged)
        time.sleep(0.1)
    assert host.restarts == restarts, host.status()
    assert host.pid is None  # its next call is ~30 s away: not restarted yet

    # Reloaded (its code fixed, say), its old children's deaths no longer keep the pages
    # from calling it.
    manager.reload("proc-exit")
    assert wait_until(lambda: lane.crashes == 0, timeout=10)
    assert "died in each" not in lane.slow()
    assert wait_until(lambda: not loads.running("proc-exit"), timeout=10)  # its new child


def test_a_web_process_takes_requests_once_its_plugins_children_have_started(
    plugin_dirs, runtime, settings
) -> None:
    """The warm-up page gives up on a child that starts slowly (its budget is a page's);
    the process still takes no request until the child has started: its start would share
    the CPU with the first pages."""
    settings.PLUGINS_PAGE_BUDGET = 0.05
    plugin_dirs.add("proc-healthy")
    manager.sync()
    _fresh_process()
    ensure_started(ready_within=20.0)
    assert background.warmed.is_set()
    loaded = plugin_registry.peek("proc-healthy")
    assert loaded is not None and loaded.host is not None and loaded.host.pid is not None
    assert not loads.running("proc-healthy") and not lanes.busy("proc-healthy")


def test_a_page_does_not_wait_for_a_background_retry_of_a_failed_load(
    make_broker, runtime, settings, admin_client_logged
) -> None:
    """While the runtime retries a failed load - here one whose initialize() now hangs -
    a page tells the last failure at once: the retry is the background's, and waiting for
    it would cost the page its whole budget."""
    settings.PLUGINS_PAGE_BUDGET = 30.0  # a page that waited for the retry would show it
    settings.PLUGINS_TIMEOUTS = {**settings.PLUGINS_TIMEOUTS, "initialize": 60.0}
    root = make_broker("retry-hangs", "RTRH", slow=("fail-init",))
    make_broker("steady-two", "STD2")
    manager.sync()
    _fresh_process()
    assert background.start()
    assert wait_until(lambda: plugin_registry.load_failure("retry-hangs")[0] >= 1)
    (root / "slow-init").write_text("1")  # its next attempt hangs in initialize()
    # An attempt begun before the marker may still be running, about to fail at once: the
    # page is asked while a later one runs.
    begun_before = loads._attempts.get("retry-hangs")
    try:
        assert wait_until(
            lambda: (
                loads.running("retry-hangs")
                and loads._attempts.get("retry-hangs") is not begun_before
            ),
            timeout=10,
        )
        html = page(admin_client_logged)
        assert "STD2" in html
        assert "being retried now" in failures(html)["retry-hangs"]
    finally:
        (root / "slow-init").unlink()


def test_a_broker_still_loading_after_a_page_waited_for_it_is_answered_without_its_lane(
    make_broker, runtime, settings, admin_client_logged
) -> None:
    """Once one page (here the warm-up's) waited in vain for a plugin's load - its
    initialize() hangs - later pages say it is still starting without a hop to its lane."""
    settings.PLUGINS_PAGE_BUDGET = 0.3
    settings.PLUGINS_TIMEOUTS = {**settings.PLUGINS_TIMEOUTS, "initialize": 60.0}
    root = make_broker("load-hangs", "LDHG", slow=("slow-init",))
    make_broker("steady-three", "STD3")
    manager.sync()
    _fresh_process()
    try:
        ensure_started(ready_within=5.0)
        assert loads.running("load-hangs")
        # Its lane need not say it is slow: the warm-up's call may have failed at once, its
        # page's deadline having passed before it began (as on a busy start).
        lanes.reset()
        for _ in range(3):
            html = page(admin_client_logged)
            assert "STD3" in html
            assert "still starting" in failures(html)["load-hangs"]
        assert lanes.lane("load-hangs").launched == 0.0  # no call was started
    finally:
        (root / "slow-init").unlink()


def test_a_start_waits_for_a_second_call_that_outlasts_the_warm_up_page(
    make_broker, runtime, settings
) -> None:
    """Slow once within the budget, then slower than the warm-up page's whole budget when
    asked again: the process takes requests only once that second call has answered, not
    while it still runs (in process it would take the interpreter's lock from a page)."""
    settings.PLUGINS_SLOW_CALL = 0.1
    settings.PLUGINS_PAGE_BUDGET = 1.0
    broker = make_broker("warm-slower", "WSLR")
    manager.sync()
    _fresh_process()
    (broker / "delay-service").write_text("0.2")
    (broker / "delay-second").write_text("1.5")  # the recheck: past the 1 s warm-up page
    began = time.monotonic()
    ensure_started(ready_within=5.0)
    assert not (broker / "delay-second").exists()  # the second call was made
    assert not lanes.busy("warm-slower")  # and had answered before the start returned
    assert time.monotonic() - began >= 1.5
    assert lanes.lane("warm-slower").confirmed


def test_a_broker_the_warm_up_asked_again_is_waited_for_before_requests(monkeypatch) -> None:
    """Its second call, still running when the warm-up page's budget ran out, would run
    beside the first user's page: the process waits for it, within its start's bound."""
    from stonks_plugins.runtime import background as background_module

    outbox.clear()
    monkeypatch.setattr(background_module, "_rechecked", {"settle-recheck"})
    lane = lanes.lane("settle-recheck")
    answered = threading.Event()
    lane.start("portfolio.get_portfolio", answered.wait, 5.0)
    threading.Timer(0.3, answered.set).start()
    began = time.monotonic()
    background_module._warm_up_settle(began + 3.0)
    assert 0.25 <= time.monotonic() - began < 2.0  # until the call answered, not longer
    assert not lanes.busy("settle-recheck")

    never = threading.Event()
    lane.start("portfolio.get_portfolio", never.wait, 5.0)
    began = time.monotonic()
    background_module._warm_up_settle(began + 0.3)  # bounded by the start's limit
    assert time.monotonic() - began < 1.0
    never.set()
    assert wait_until(lambda: not lanes.busy("settle-recheck"))
