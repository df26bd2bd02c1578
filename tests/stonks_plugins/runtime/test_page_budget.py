"""A request never waits on plugin code longer than the page budget: a slow broker is shown
from its last good answer (marked "as of"), or as unavailable with the reason, while every
other broker renders; stuck calls cost later pages nothing; loads never block each other."""

from __future__ import annotations

import re
import threading
import time

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from stonks_plugins import propagation
from stonks_plugins.errors import ReasonCode
from stonks_plugins.manager import manager
from stonks_plugins.models import Plugin
from stonks_plugins.registry import plugin_registry
from stonks_plugins.runtime import lanes, loads, outbox, reaper
from stonks_plugins.runtime.retry import retry_plugin
from stonks_plugins.runtime.serving import serving
from stonks_plugins.sandbox import SandboxError
from tests.stonks_overwatch.test_home import failures, page, symbols
from tests.stonks_plugins.runtime.helpers import wait_until

pytestmark = pytest.mark.django_db


@pytest.fixture
def short_budget(settings):  # type: ignore[no-untyped-def]
    settings.PLUGINS_PAGE_BUDGET = 0.5
    return 0.5


def marked_rows(html: str) -> set[str]:
    """The brokers whose portfolio rows are marked "as of" an earlier answer."""
    return set(re.findall(r'<tr data-broker="([^"]+)">(?:(?!</tr>).)*class="stale"', html, re.S))


def test_slow_broker_is_shown_as_of_its_last_answer_and_the_page_does_notwait_until(
    make_broker, short_budget, admin_client_logged
) -> None:
    slow = make_broker("slow-broker", "SLOW")
    make_broker("quick-broker", "QUIK")
    manager.sync()
    html = page(admin_client_logged)
    assert symbols(html)["slow-broker"] == {"SLOW"}, failures(html)
    assert 'data-stale="slow-broker"' not in html

    marker = slow / "slow-service"
    marker.write_text("1")
    try:
        html = page(admin_client_logged)
        # The page came back while the broker's call is still running: it did not wait.
        assert "slow-broker" in lanes.stuck()
        shown = symbols(html)
        assert shown["quick-broker"] == {"QUIK"}
        assert shown["slow-broker"] == {"SLOW"}  # its last good answer
        notice = html[html.index('data-stale="slow-broker"') :].split("</li>", 1)[0]
        assert "as of" in notice and "no answer within 0.5 s" in notice
        # Its rows, and only its rows, carry the time of that answer.
        assert marked_rows(html) == {"slow-broker"}
        assert failures(html) == {}
    finally:
        marker.unlink()
    assert wait_until(lambda: "slow-broker" not in lanes.stuck())
    html = page(admin_client_logged)
    assert 'data-stale="slow-broker"' not in html
    assert symbols(html)["slow-broker"] == {"SLOW"}


def test_a_slow_broker_is_served_from_its_last_answer_and_refreshed_in_the_background(
    make_broker, short_budget, settings, admin_client_logged
) -> None:
    settings.PLUGINS_SLOW_CALL = 0.1
    settings.PLUGINS_REVALIDATE_EVERY = 0.5
    broker = make_broker("sluggish", "SLUG")
    make_broker("quick-broker", "QUIK")
    manager.sync()
    (broker / "delay-service").write_text("0.2")  # within the budget, but slow
    html = page(admin_client_logged)
    assert 'data-stale="sluggish"' not in html  # waited for: it answered in time

    html = page(admin_client_logged)  # not waited for again: its answer is recent enough
    assert symbols(html)["sluggish"] == {"SLUG"}
    notice = html[html.index('data-stale="sluggish"') :].split("</li>", 1)[0]
    assert "answers slowly (0.2 s); refreshed in the background" in notice
    assert "sluggish" not in lanes.stuck()  # and not asked again yet

    (broker / "delay-service").unlink()  # quick again
    due = lanes.lane("sluggish").refresh_after()
    assert wait_until(lambda: lastgood_age("sluggish") >= due)
    html = page(admin_client_logged)  # due: served as before, and asked in the background
    assert 'data-stale="sluggish"' in html
    assert wait_until(lambda: lanes.lane("sluggish").latency < 0.1)  # refreshed behind the page
    html = page(admin_client_logged)
    assert 'data-stale="sluggish"' not in html  # quick again: waited for, fresh


def test_one_slow_answer_is_checked_again_soon_before_a_broker_is_served_stale(
    make_broker, short_budget, settings, admin_client_logged
) -> None:
    settings.PLUGINS_SLOW_CALL = 0.1
    settings.PLUGINS_REVALIDATE_EVERY = 60.0
    # The slow answer (0.2 s) must still come within the page's budget: room for a machine
    # busy with other tests (under xdist it once took longer than 0.5 s).
    settings.PLUGINS_PAGE_BUDGET = 2.0
    broker = make_broker("hiccup", "HICC")
    manager.sync()
    lane = lanes.lane("hiccup")
    (broker / "delay-service").write_text("0.2")  # a busy moment: one slow answer
    page(admin_client_logged)
    (broker / "delay-service").unlink()
    assert lane.refresh_after() <= lanes.RECHECK_SLOW  # not a minute of stale pages
    assert 'data-stale="hiccup"' in page(admin_client_logged)  # meanwhile not waited for
    assert wait_until(lambda: lastgood_age("hiccup") >= lane.refresh_after())
    page(admin_client_logged)  # due: asked again behind the page, and quick
    assert wait_until(lambda: lane.latency < 0.05)
    html = page(admin_client_logged)
    assert 'data-stale="hiccup"' not in html and symbols(html)["hiccup"] == {"HICC"}

    (broker / "delay-service").write_text("0.2")  # slow for good this time
    page(admin_client_logged)
    assert wait_until(lambda: lastgood_age("hiccup") >= lane.refresh_after())
    page(admin_client_logged)  # the check finds it slow again: confirmed
    assert wait_until(lambda: lane.confirmed)
    assert lane.refresh_after() == 60.0
    assert "answers slowly (0.2 s)" in page(admin_client_logged)


def lastgood_age(plugin: str) -> float:
    from stonks_plugins.runtime import lastgood

    answer = lastgood.get(plugin, ("portfolio", "get_portfolio", ((), ())))
    return answer.age if answer is not None else 0.0


def test_slow_broker_with_no_earlier_answer_is_unavailable_with_the_reason(
    make_broker, short_budget, admin_client_logged
) -> None:
    slow = make_broker("slow-broker", "SLOW", slow=("slow-service",))
    make_broker("quick-broker", "QUIK")
    manager.sync()
    try:
        html = page(admin_client_logged)
        shown = symbols(html)
        assert shown["quick-broker"] == {"QUIK"} and "slow-broker" not in shown
        assert "no answer within 0.5 s" in failures(html)["slow-broker"]
        # Still 'active': its code loaded and initialised; only this call is slow.
        assert Plugin.objects.get(name="slow-broker").state == "active"
    finally:
        (slow / "slow-service").unlink()


def test_a_hung_call_holds_one_thread_and_later_pages_do_not_wait_for_it(
    make_broker, short_budget, admin_client_logged
) -> None:
    slow = make_broker("slow-broker", "SLOW", slow=("slow-service",))
    make_broker("quick-broker", "QUIK")
    manager.sync()
    try:
        html = page(admin_client_logged)
        assert "no answer within 0.5 s" in failures(html)["slow-broker"]
        for _ in range(3):
            html = page(admin_client_logged)
            # Not called again while the first call hangs: answered at once, no new thread.
            assert "still running" in failures(html)["slow-broker"]
            assert symbols(html)["quick-broker"] == {"QUIK"}
        assert len(lanes.stuck()["slow-broker"]) == 1
    finally:
        (slow / "slow-service").unlink()
    assert wait_until(lambda: "slow-broker" not in lanes.stuck())
    # The hung call returned in the end: the plugin answers again, fresh.
    html = page(admin_client_logged)
    assert symbols(html)["slow-broker"] == {"SLOW"}
    assert 'data-stale="slow-broker"' not in html


def test_a_call_that_spins_after_its_caller_left_is_stopped_and_its_circuit_opens(
    make_broker, short_budget, admin_client_logged
) -> None:
    spinning = make_broker("spin-broker", "SPIN")
    make_broker("quick-broker", "QUIK")
    manager.sync()
    assert symbols(page(admin_client_logged))["spin-broker"] == {"SPIN"}
    (spinning / "spin-service").write_text("1")
    try:
        html = page(admin_client_logged)
        assert symbols(html)["spin-broker"] == {"SPIN"}  # its last good answer, as of
        # Stopped once it used its allowance of CPU after its caller gave up (at once, had
        # it spun for a whole second while its caller waited). The background runtime
        # sweeps a few times a second; here the test does.
        assert wait_until(lambda: (reaper.sweep(), "spin-broker" not in lanes.stuck())[1], 10)
        assert reaper.watched() == []
        circuit = plugin_registry.sandbox("spin-broker").circuit
        assert circuit.state == "open"
        html = page(admin_client_logged)
        notice = html[html.index('data-stale="spin-broker"') :].split("</li>", 1)[0]
        assert "did not answer in time; asked again in the background" in notice
        assert symbols(html)["quick-broker"] == {"QUIK"}
    finally:
        (spinning / "spin-service").unlink()


def test_a_call_that_starts_spinning_after_its_caller_left_is_stopped_by_the_sweep(
    make_broker, short_budget, admin_client_logged
) -> None:
    broker = make_broker("late-spinner", "LATE")
    manager.sync()
    page(admin_client_logged)
    (broker / "slow-service").write_text("1")  # first it waits (costs no CPU)...
    (broker / "spin-service").write_text("1")  # ...then it spins
    try:
        page(admin_client_logged)
        [watched] = reaper.watched()  # abandoned while it slept: watched, not stopped
        assert watched.plugin == "late-spinner"
        (broker / "slow-service").unlink()
        # The background runtime sweeps a few times a second; here the test does.
        assert wait_until(lambda: (reaper.sweep(), "late-spinner" not in lanes.stuck())[1], 10)
        assert plugin_registry.sandbox("late-spinner").circuit.state == "open"
    finally:
        (broker / "spin-service").unlink()


def test_one_broker_hanging_first_costs_the_others_nothing(
    make_broker, short_budget, admin_client_logged
) -> None:
    """The first call of a page starts every broker's call at once: a broker that hangs
    ahead of the others in the registry's order does not eat their share of the budget."""
    slow = make_broker("aaa-hangs", "HANG", slow=("slow-service",))
    make_broker("zzz-quick", "ZZZQ")
    manager.sync()
    try:
        html = page(admin_client_logged)
        assert symbols(html)["zzz-quick"] == {"ZZZQ"}
        assert "no answer within" in failures(html)["aaa-hangs"]
    finally:
        (slow / "slow-service").unlink()


@pytest.mark.parametrize("phase", ["slow-folder-init", "slow-init"])
def test_a_plugin_hanging_while_it_loads_never_delays_another_plugins_load(
    make_broker, settings, phase: str
) -> None:
    settings.PLUGINS_TIMEOUTS = {**settings.PLUGINS_TIMEOUTS, "import": 30.0, "initialize": 30.0}
    settings.PLUGINS_SYNC_LOAD_TIMEOUT = 1.0
    stuck = make_broker("hangs-loading", "HANG", slow=(phase,))
    make_broker("loads-fine", "FINE")
    try:
        manager.sync()
        row = Plugin.objects.get(name="hangs-loading")
        assert (row.state, row.error_code) == ("error", "timeout")
        assert "did not import and initialise within 1 s" in row.error_message
        assert Plugin.objects.get(name="loads-fine").state == "active"
        # Its load is still running, holding its own locks only: the other plugin loads
        # again (after an unload) while it hangs.
        assert loads.running("hangs-loading")
        plugin_registry.unload("loads-fine")
        loads.forget("loads-fine")
        done = threading.Event()
        threading.Thread(target=lambda: (loads.wait_all(["loads-fine"], 5.0), done.set())).start()
        assert done.wait(5.0)
        assert plugin_registry.peek("loads-fine") is not None
    finally:
        (stuck / phase).unlink()
        assert wait_until(lambda: not loads.running("hangs-loading"))


def test_a_page_only_reads(make_broker, short_budget, admin_client_logged) -> None:
    """Failures, recoveries and metrics found while serving a page are written by the
    process's background runtime, never by the request."""
    slow = make_broker("slow-broker", "SLOW")
    make_broker("quick-broker", "QUIK")
    manager.sync()
    page(admin_client_logged)  # the first page of a session may write the session
    (slow / "slow-service").write_text("1")
    outbox.background(True)  # as in a serving process, whose runtime writes the outbox
    try:
        with CaptureQueriesContext(connection) as queries:
            html = page(admin_client_logged)
        assert 'data-stale="slow-broker"' in html
        writes = [
            q["sql"]
            for q in queries.captured_queries
            if q["sql"].lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE"))
        ]
        assert writes == []
        assert outbox.pending() > 0  # the overrun is news, posted for the background
    finally:
        outbox.background(False)
        (slow / "slow-service").unlink()
    outbox.drain()
    assert Plugin.objects.get(name="slow-broker").events.filter(kind="failure").exists()


def test_a_page_leaves_the_plugin_rows_to_the_background_runtime(
    make_broker, admin_client_logged, settings
) -> None:
    """In a process whose background runtime keeps the served set current, a change made
    elsewhere is read by that runtime, not by the first page of each process that meets it
    (a read of every plugin row, several ms of that page)."""
    settings.PLUGINS_REFRESH_INTERVAL = 0.0  # any page may look for changes
    make_broker("rows-read-once", "RRO1")
    manager.sync()
    page(admin_client_logged)  # the set is built (the first page of a session may write)
    propagation.bump()  # a change made elsewhere
    outbox.background(True)  # as in a serving process
    try:
        with CaptureQueriesContext(connection) as queries:
            html = page(admin_client_logged)
        assert "RRO1" in html
        plugin_reads = [q["sql"] for q in queries.captured_queries if "stonks_plugins_" in q["sql"]]
        assert plugin_reads == []
    finally:
        outbox.background(False)
    with CaptureQueriesContext(connection) as queries:
        page(admin_client_logged)  # without the runtime, the page reads the change itself
    assert any("stonks_plugins_plugin" in q["sql"] for q in queries.captured_queries)


def test_a_background_retry_loads_again_after_a_failed_attempt(make_broker) -> None:
    """In a worker whose background runtime owns retries, a user's request never retries a
    load, but beat's retry task does (once the backoff is over)."""

    root = make_broker("flaky-login", "FLKY", slow=("fail-init",))
    manager.sync()
    assert Plugin.objects.get(name="flaky-login").error_code == "initialize_failed"
    (root / "fail-init").unlink()  # the broker's login works again
    outbox.background(True)
    try:
        assert wait_until(lambda: plugin_registry.load_failure("flaky-login")[1] == 0)
        with pytest.raises(SandboxError, match="next attempt"):
            loads.acquire("flaky-login")  # a request: it says when, and does not retry
        serving.refresh(force=True)  # as beat's round does before its retries
        assert retry_plugin("flaky-login", "initialize_failed")
    finally:
        outbox.background(False)
    assert plugin_registry.peek("flaky-login") is not None


def test_a_middleware_lane_gets_its_slots_even_if_a_health_check_made_it_first() -> None:
    assert lanes.lane("some-middleware").slots == 4  # made by a health check
    assert lanes.lane("some-middleware", 256).slots == 256


def test_a_middleware_lane_keeps_a_worker_parked_for_each_call_it_ran_at_once(
    monkeypatch,
) -> None:
    """Every broker call of a page passes the middleware at once: beyond a lane's usual four
    parked workers, each call of every page started a thread, which ended with the call."""
    lane = lanes.lane("many-at-once", 256)  # as a middleware's lane is made
    gate = threading.Event()

    def run_together() -> None:
        gate.clear()
        calls = [lane.start("intercept", gate.wait, 5.0, revalidate=False) for _ in range(7)]
        gate.set()
        for call in calls:
            assert call.wait(time.monotonic() + 5, 5.0) is True
        assert wait_until(lambda: len(lane._workers._parked) == 7)  # back, parked

    run_together()
    started: list[str] = []
    start = threading.Thread.start

    def counted(thread: threading.Thread) -> None:
        started.append(thread.name)
        start(thread)

    monkeypatch.setattr(threading.Thread, "start", counted)
    run_together()
    assert started == []


def test_a_plugin_that_keeps_failing_is_asked_again_ever_more_rarely(settings) -> None:
    settings.PLUGINS_REVALIDATE_EVERY = 1.0
    settings.PLUGINS_RETRY_JITTER = 0.0
    lane = lanes.Lane("failing-again", 1)
    answer: list[BaseException | None] = [ValueError("the broker is down")]

    def get_portfolio() -> list[str]:
        if answer[0] is not None:
            raise answer[0]
        return ["ROW"]

    def call_once() -> None:
        lane.start("portfolio.get_portfolio", get_portfolio, revalidate=False)
        assert wait_until(lambda: not lane.running())

    spacing = []
    for _ in range(4):
        call_once()
        spacing.append(lane.refresh_after())
    assert spacing == [1.0, 2.0, 4.0, 8.0]
    answer[0] = None
    call_once()
    assert lane.refresh_after() == 1.0  # it answered: back to the usual spacing
    lane.close()


def test_a_background_refresh_that_spins_is_stopped_though_nobody_waits_for_it(
    settings,
) -> None:
    settings.PLUGINS_PAGE_BUDGET = 0.2
    settings.PLUGINS_SLOW_CALL = 0.1
    lane = lanes.Lane("spins-unwatched", 2)
    lane.latency, lane.sluggish = 5.0, True  # slow: its next call is a refresh nobody waits for
    spun = threading.Event()
    stopped: list[BaseException] = []

    def spin() -> None:
        spun.set()
        try:
            while True:
                pass
        except BaseException as exc:  # CallStopped, raised in this thread by the reaper
            stopped.append(exc)
            raise

    lane.start("portfolio.get_portfolio", spin)
    assert spun.wait(5)
    assert wait_until(lambda: (reaper.sweep(), bool(stopped))[1], 10)
    assert isinstance(stopped[0], reaper.CallStopped)
    assert wait_until(lambda: not lane.running())
    assert plugin_registry.sandbox("spins-unwatched").circuit.state == "open"
    lane.close()


def test_a_plugin_whose_circuit_opened_is_tried_again_in_the_background_not_by_a_page(
    settings,
) -> None:
    """Once its circuit lets a trial through, the trial is the plugin's background refresh:
    a page that carried it waited for its error, its log line and its record (the slowest
    pages of a fault run fell on them). The first answer makes pages ask it again."""
    lane = lanes.Lane("circuit-open", 1)
    refusal = SandboxError(
        "circuit-open",
        ReasonCode.CIRCUIT_OPEN,
        "portfolio.get_portfolio",
        "circuit open after 5 consecutive failures; retry in 30.0 s",
        retry_in=30.0,
    )

    def refused() -> None:
        raise refusal

    lane.start("portfolio.get_portfolio", refused, revalidate=False)
    assert wait_until(lambda: not lane.running())
    # Pages serve its last answer (or its reason) at once instead of a hop to be refused.
    assert "circuit open after 5 consecutive failures" in lane.slow()
    assert not lane.due()  # the circuit would refuse the trial still
    lane.refused_until = time.monotonic() - 0.1  # its circuit may try again now
    assert "circuit open after 5 consecutive failures" in lane.slow()  # pages still don't
    assert lane.due()  # ...the background asks it
    assert lane.called_within(0.0)

    lane.start("portfolio.get_portfolio", lambda: ["ROW"])  # the trial answers
    assert wait_until(lambda: not lane.running())
    assert lane.slow() == ""  # pages ask it again
    lane.close()


def test_a_plugin_failing_twice_in_a_row_is_asked_in_the_background_not_by_pages(
    monkeypatch,
) -> None:
    """One failure is asked again by the next page (a one-off?); after two in a row, pages
    stop waiting for the plugin - each paid for its failure until the circuit's threshold -
    and it is asked in the background, ``RECHECK_FAILED`` apart. An answer ends it."""
    monkeypatch.setattr(lanes, "RECHECK_FAILED", 0.2)
    lane = lanes.Lane("fails-fast", 1)
    answer: list[object] = [ValueError("bad row at line 7")]

    def get_portfolio() -> list[str]:
        if isinstance(answer[0], Exception):
            raise answer[0]
        return ["ROW"]

    def call_once() -> None:
        lane.start("portfolio.get_portfolio", get_portfolio)
        assert wait_until(lambda: not lane.running())

    call_once()
    assert lane.slow() == ""  # one failure: pages still ask it
    call_once()
    assert lane.slow() == "failed (ValueError); asked again in the background"
    assert not lane.due()  # ...not before RECHECK_FAILED
    assert wait_until(lane.due, timeout=2)
    assert lane.called_within(0.0)  # a crashed child of it would be restarted by now

    answer[0] = "ok"
    call_once()  # the background's call answers: pages ask it again
    assert lane.slow() == ""
    lane.close()


def test_a_plugin_about_as_slow_as_the_threshold_stays_served_from_its_last_answer(
    settings,
) -> None:
    settings.PLUGINS_SLOW_CALL = 0.4
    lane = lanes.Lane("borderline", 1)
    delay = [0.5]

    def get_portfolio() -> list[str]:
        time.sleep(delay[0])
        return ["ROW"]

    def call_once() -> None:
        lane.start("portfolio.get_portfolio", get_portfolio, revalidate=False)
        assert wait_until(lambda: not lane.running())

    call_once()
    assert "answers slowly" in lane.slow()
    delay[0] = 0.3  # a little under the threshold: pages still do not wait for it
    call_once()
    assert "answers slowly" in lane.slow()
    delay[0] = 0.0  # clearly quick again: pages wait for it as before
    call_once()
    assert lane.slow() == ""
    lane.close()


def test_a_reloaded_plugin_is_waited_for_again_whatever_its_earlier_code_did(
    make_broker, short_budget, settings, admin_client_logged
) -> None:
    """An operator fixed a slow broker and reloaded it: the next page shows its fresh
    answer. Its lane used to hold the earlier code's slowness against it - and with its last
    answer forgotten by the reload, the broker was unavailable until its background refresh
    came due, a minute later here."""
    settings.PLUGINS_SLOW_CALL = 0.1
    settings.PLUGINS_REVALIDATE_EVERY = 60.0
    broker = make_broker("fixed-later", "FIXD")
    manager.sync()
    lane = lanes.lane("fixed-later")
    (broker / "delay-service").write_text("0.2")
    page(admin_client_logged)  # one slow answer
    assert wait_until(lambda: lastgood_age("fixed-later") >= lane.refresh_after())
    page(admin_client_logged)  # asked again behind the page: slow for good
    assert wait_until(lambda: lane.confirmed)
    assert 'data-stale="fixed-later"' in page(admin_client_logged)

    (broker / "delay-service").unlink()  # the fix
    manager.reload("fixed-later")
    html = page(admin_client_logged)
    assert failures(html) == {}
    assert symbols(html)["fixed-later"] == {"FIXD"}
    assert 'data-stale="fixed-later"' not in html


def test_a_call_of_a_plugins_earlier_code_judges_nothing_about_the_new_one() -> None:
    """A call still running when the plugin's code or config changed fails later: the new
    code is not taken for failing, nor is it made to wait for that call's backoff."""
    lane = lanes.Lane("changed-meanwhile", 2)
    release = threading.Event()

    def old_code() -> None:
        release.wait(5)
        raise ValueError("the old code's bug")

    lane.start("portfolio.get_portfolio", old_code, revalidate=False)
    lane.start_afresh()
    release.set()
    assert wait_until(lambda: not lane.running())
    assert (lane.failure, lane.failures, lane.slow()) == ("", 0, "")
    lane.start("portfolio.get_portfolio", lambda: ["ROW"], revalidate=False)
    assert wait_until(lambda: not lane.running())
    assert lane.latency < 1.0  # the new code's own call is judged as before
    lane.close()


def test_a_brokers_failure_note_shows_its_message_as_text_never_as_markup(
    make_broker, admin_client_logged
) -> None:
    """A plugin's error text reaches the page: whatever markup it holds is shown, escaped,
    beside the healthy brokers' rows (the notes are built in the view, not the template)."""
    make_broker("steady", "STDY")
    broker = make_broker("markup", "MKUP")
    (broker / "fail-service").write_text('bad row <img src=x onerror="alert(1)"> & more')
    manager.sync()
    html = page(admin_client_logged)
    assert "<img" not in html
    assert '<li data-broker="markup"><strong>markup</strong>: ' in html
    assert (
        "bad row &lt;img src=x onerror=&quot;alert(1)&quot;&gt; &amp; more"
        in failures(html)["markup"]
    )
    assert symbols(html)["steady"] == {"STDY"}
